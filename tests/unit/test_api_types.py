"""The API types: request shape (to_api), parsing, error messages, defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model_registry_operator.api import (
    KINDS,
    ModelPackageSpec,
    ModelPackageStatus,
    ModelSpec,
    format_validation_error,
    parse_spec,
    to_api,
)

PACKAGE = {
    "modelPackageGroupRef": {"name": "churn"},
    "modelApprovalStatus": "Approved",
    "artifacts": [{"name": "model", "files": [{"path": "model.joblib", "source": "s3://b/k"}]}],
    "inferenceSpecification": {
        "containers": [{"image": "img:1", "modelDataArtifact": "model", "environment": {"A": "1"}}],
        "supportedResponseMIMETypes": ["text/csv"],
    },
    "customerMetadataProperties": {"run": "7"},
    "tags": [{"key": "team", "value": "growth"}],
    "deletionPolicy": "Retain",
}


def test_to_api_uses_botocore_member_names_and_drops_kubernetes_fields() -> None:
    request = to_api(parse_spec("ModelPackage", PACKAGE))
    assert request == {
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {
            "Containers": [{"Image": "img:1", "Environment": {"A": "1"}}],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CustomerMetadataProperties": {"run": "7"},
        "Tags": [{"Key": "team", "Value": "growth"}],
    }


def test_to_api_of_a_nested_model_and_a_model_with_a_package_reference() -> None:
    spec = parse_spec(
        "Model",
        {
            "primaryContainer": {"modelPackageRef": {"name": "p"}, "environment": {"X": "y"}},
            "executionRoleArn": "arn:aws:iam::123456789012:role/R",
        },
    )
    assert to_api(spec) == {
        "PrimaryContainer": {"Environment": {"X": "y"}},
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/R",
    }
    assert to_api(spec.primaryContainer) == {"Environment": {"X": "y"}}
    assert spec.requireApprovedPackage is True


def test_kinds_registry() -> None:
    assert {kind: info.plural for kind, info in KINDS.items()} == {
        "ModelPackageGroup": "modelpackagegroups",
        "ModelPackage": "modelpackages",
        "Model": "models",
    }
    assert KINDS["Model"].spec is ModelSpec and KINDS["ModelPackage"].status is ModelPackageStatus


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {**PACKAGE, "inferenceSpecification": {"containers": [{"image": "a b"}]}},
            "spec.inferenceSpecification.containers[0].image: String should match pattern",
        ),
        (
            {**PACKAGE, "modelPackageName": "x"},
            "spec: exactly one of modelPackageGroupRef, modelPackageGroupName or modelPackageName",
        ),
        (
            {**PACKAGE, "artifacts": None},
            "inferenceSpecification.containers[0].modelDataArtifact names 'model', which is not declared",
        ),
        ({**PACKAGE, "bogus": 1}, "spec.bogus: Extra inputs are not permitted"),
        (
            {**PACKAGE, "modelApprovalStatus": "Yes"},
            "spec.modelApprovalStatus: Input should be 'Approved', 'Rejected' or 'PendingManualApproval'",
        ),
        (
            {**PACKAGE, "modelPackageGroupRef": None, "modelPackageGroupName": "churn-"},
            "spec.modelPackageGroupName: String should match pattern",
        ),
        (
            {**PACKAGE, "artifacts": [PACKAGE["artifacts"][0], PACKAGE["artifacts"][0]]},
            "spec.artifacts: duplicate artifact name 'model'",
        ),
    ],
)
def test_errors_name_the_field(spec: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec("ModelPackage", spec)
    assert expected in format_validation_error(caught.value)


def test_lookbehind_patterns_are_enforced_by_pydantic() -> None:
    parse_spec(
        "ModelPackage",
        {"modelPackageGroupName": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/churn"},
    )
    with pytest.raises(ValidationError):
        parse_spec(
            "ModelPackage",
            {"modelPackageGroupName": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/churn-"},
        )
    parse_spec(
        "Model",
        {
            "primaryContainer": {
                "modelPackageName": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
            }
        },
    )
    with pytest.raises(ValidationError):
        parse_spec("Model", {"primaryContainer": {"modelPackageName": "churn-/3"}})


def test_model_choices() -> None:
    with pytest.raises(ValidationError, match="set exactly one of primaryContainer or containers"):
        parse_spec("Model", {"containers": []})
    with pytest.raises(
        ValidationError, match="set exactly one of image, modelPackageName or modelPackageRef"
    ):
        parse_spec("Model", {"primaryContainer": {"image": "x", "modelPackageRef": {"name": "p"}}})
    parse_spec("Model", {"containers": [{"image": "a"}, {"image": "b"}]})


def test_artifact_paths_cannot_escape_the_archive() -> None:
    for bad in ["../x", "a/../b", "/etc/passwd", "a//b", "./a", "a/"]:
        with pytest.raises(ValidationError) as caught:
            parse_spec(
                "ModelPackage",
                {**PACKAGE, "artifacts": [{"name": "model", "files": [{"path": bad, "source": "s3://b/k"}]}]},
            )
        assert format_validation_error(caught.value).startswith(
            "spec.artifacts[0].files[0].path: String should match"
        )
    for good in ["model.joblib", "code/inference.py", ".hidden", "..data", "a/...b"]:
        ModelPackageSpec.model_validate(
            {**PACKAGE, "artifacts": [{"name": "model", "files": [{"path": good, "source": "s3://b/k"}]}]}
        )


def test_group_spec_may_be_empty() -> None:
    assert to_api(parse_spec("ModelPackageGroup", None)) == {}


def test_status_reads_what_the_operator_writes() -> None:
    status = ModelPackageStatus.model_validate(
        {
            "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/1",
            "observedGeneration": 2,
            "modelPackageVersion": 1,
            "artifacts": [{"name": "model", "uri": "s3://b/k/model.tar.gz", "sha256": "ab", "size": 3}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Registered",
                    "message": "Registered.",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 2,
                }
            ],
            "somethingNewer": 1,
        }
    )
    assert status.conditions[0].status == "True" and status.artifacts[0].size == 3


def test_customer_metadata_reserves_the_operator_marker() -> None:
    from model_registry_operator.registry.base import OWNER_UID_KEY

    with pytest.raises(ValidationError) as caught:
        parse_spec("ModelPackage", {**PACKAGE, "customerMetadataProperties": {OWNER_UID_KEY: "x"}})
    assert "spec.customerMetadataProperties: customerMetadataProperties may hold" in format_validation_error(
        caught.value
    )


@pytest.mark.parametrize(
    "kind, spec", [("ModelPackageGroup", {}), ("Model", {"primaryContainer": {"image": "x"}})]
)
@pytest.mark.parametrize(
    "key", ["registry.mlops.dev/uid", "registry.mlops.dev/identity", "registry.mlops.dev/x"]
)
def test_tags_reserve_the_operator_owner_tag(kind: str, spec: dict, key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec(kind, {**spec, "tags": [{"key": key, "value": "x"}]})
    assert (
        "spec.tags: tags may hold at most 49 entries and no key starting with registry.mlops.dev/"
        in format_validation_error(caught.value)
    )
    assert (
        len(parse_spec(kind, {**spec, "tags": [{"key": f"k{i}", "value": "v"} for i in range(49)]}).tags)
        == 49
    )


def test_odd_keys_are_quoted_in_paths() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec("Model", {"primaryContainer": {"image": "x", "environment": {"A B": "1"}}, "we\nird": 1})
    message = format_validation_error(caught.value)
    assert 'spec.primaryContainer.environment["A B"] (key): String should match pattern' in message
    assert 'spec["we\\nird"]: Extra inputs are not permitted' in message


def test_api_fields_carry_the_api_reference_description() -> None:
    schema = ModelSpec.model_json_schema()
    assert schema["properties"]["executionRoleArn"]["description"].startswith(
        "The Amazon Resource Name (ARN) of the IAM role"
    )
    assert (
        schema["properties"]["modelName"]["description"]
        == "Name of the model in SageMaker. Defaults to metadata.name."
    )
