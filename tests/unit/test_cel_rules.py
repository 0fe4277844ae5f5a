"""Each CEL rule in the CRDs rejects what it should, with its message, and accepts the
rest; transition rules (immutability, append-only) are exercised with oldSelf on update."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import crd_validation
from model_registry_operator.api import KINDS
from model_registry_operator.api.modelpackage import IMMUTABLE_FIELDS

ROOT = Path(__file__).resolve().parents[2]


@cache
def crd(kind: str) -> dict[str, Any]:
    text = (ROOT / "crds" / f"{KINDS[kind].plural}.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def sample(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifests" / "samples" / name).read_text())


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[dict[str, str]]:
    return crd_validation.validate(crd(obj["kind"]), obj, old)


def rejected(obj: dict[str, Any], message: str, field: str, old: dict[str, Any] | None = None) -> None:
    found = causes(obj, old)
    assert any(message in c["message"] and c["field"] == field for c in found), found


PACKAGE = "modelpackage-modeldataurl.yaml"
ARTIFACTS = "modelpackage-artifacts.yaml"


# --- One-of choices ----------------------------------------------------------------------------

GROUP_CHOICE = "exactly one of modelPackageGroupRef, modelPackageGroupName or modelPackageName must be set"


def test_package_needs_a_group_or_a_name() -> None:
    obj = sample(PACKAGE)
    del obj["spec"]["modelPackageGroupRef"]
    rejected(obj, GROUP_CHOICE, "spec")
    obj["spec"]["modelPackageName"] = "standalone"
    assert causes(obj) == []


@pytest.mark.parametrize("extra", [{"modelPackageGroupName": "churn"}, {"modelPackageName": "churn"}])
def test_package_takes_only_one_of_group_ref_group_name_package_name(extra: dict[str, str]) -> None:
    obj = sample(PACKAGE)
    obj["spec"].update(extra)
    rejected(obj, GROUP_CHOICE, "spec")


def test_container_takes_one_kind_of_model_data() -> None:
    obj = sample(ARTIFACTS)
    obj["spec"]["inferenceSpecification"]["containers"][0]["modelDataUrl"] = "s3://b/model.tar.gz"
    rejected(
        obj,
        "set at most one of modelDataUrl, modelDataSource or modelDataArtifact",
        "spec.inferenceSpecification.containers[0]",
    )


def test_model_data_artifact_must_be_declared() -> None:
    obj = sample(ARTIFACTS)
    obj["spec"]["inferenceSpecification"]["containers"][0]["modelDataArtifact"] = "weights"
    rejected(
        obj, "every modelDataArtifact must name an entry of spec.artifacts", "spec.inferenceSpecification"
    )
    del obj["spec"]["artifacts"]
    rejected(
        obj, "every modelDataArtifact must name an entry of spec.artifacts", "spec.inferenceSpecification"
    )


def test_additional_inference_specifications_cannot_use_artifacts() -> None:
    obj = sample(ARTIFACTS)
    obj["spec"]["additionalInferenceSpecifications"] = [
        {"name": "neo", "containers": [{"image": "x", "modelDataArtifact": "model"}]}
    ]
    rejected(
        obj,
        "modelDataArtifact is only supported in spec.inferenceSpecification.containers",
        "spec.additionalInferenceSpecifications[0]",
    )


def test_model_needs_exactly_one_of_primary_container_or_containers() -> None:
    obj = sample("model-pipeline.yaml")
    message = "set exactly one of primaryContainer or containers"
    obj["spec"]["primaryContainer"] = {"image": "x"}
    rejected(obj, message, "spec")
    del obj["spec"]["primaryContainer"]
    obj["spec"]["containers"] = []
    rejected(obj, message, "spec")
    del obj["spec"]["containers"]
    rejected(obj, message, "spec")


@pytest.mark.parametrize(
    "container",
    [
        {},
        {"image": "x", "modelPackageRef": {"name": "p"}},
        {"modelPackageName": "p", "modelPackageRef": {"name": "p"}},
    ],
)
def test_model_container_has_one_source(container: dict[str, Any]) -> None:
    obj = sample("model-from-package.yaml")
    obj["spec"]["primaryContainer"] = container
    rejected(obj, "set exactly one of image, modelPackageName or modelPackageRef", "spec.primaryContainer")


def test_model_container_model_data_choice() -> None:
    obj = sample("model-pipeline.yaml")
    obj["spec"]["containers"][1]["modelDataSource"] = {
        "s3DataSource": {"s3Uri": "s3://b/p/", "s3DataType": "S3Prefix", "compressionType": "None"}
    }
    rejected(obj, "set at most one of modelDataUrl or modelDataSource", "spec.containers[1]")


# --- metadata.name as the SageMaker name -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind_sample", "field"),
    [
        ("churn.v1", "modelpackagegroup.yaml", "modelPackageGroupName"),
        ("m" * 64, "model-from-package.yaml", "modelName"),
    ],
)
def test_metadata_name_must_suit_sagemaker_unless_the_name_is_set(
    name: str, kind_sample: str, field: str
) -> None:
    obj = sample(kind_sample)
    obj["metadata"]["name"] = name
    rejected(obj, f"set spec.{field}", "")
    obj["spec"][field] = "valid-name"
    assert causes(obj) == []


# --- Transition rules --------------------------------------------------------------------------

CHANGED = {
    "modelPackageGroupRef": {"name": "other"},
    "modelPackageGroupName": "other",
    "modelPackageName": "other",
    "modelPackageDescription": "other",
    "sourceAlgorithmSpecification": {"sourceAlgorithms": [{"algorithmName": "xgboost"}]},
    "validationSpecification": {
        "validationRole": "arn:aws:iam::123456789012:role/Validator",
        "validationProfiles": [],
    },
    "metadataProperties": {"commitId": "other"},
    "modelMetrics": {
        "modelQuality": {"statistics": {"contentType": "application/json", "s3Uri": "s3://b/stats.json"}}
    },
    "driftCheckBaselines": {"bias": {"configFile": {"s3Uri": "s3://b/bias.json"}}},
    "certifyForMarketplace": True,
    "domain": "COMPUTER_VISION",
    "task": "CLASSIFICATION",
    "samplePayloadUrl": "s3://b/payload.tar.gz",
    "skipModelValidation": "All",
    "securityConfig": {"kmsKeyId": "alias/other"},
}


def test_every_immutable_field_has_a_change_case() -> None:
    assert set(CHANGED) == set(IMMUTABLE_FIELDS)


def _another(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if value == "All":
        return "None"
    if isinstance(value, str):
        return value + "-2"
    if isinstance(value, list):
        return [_another(value[0]), *value[1:]]
    first = next(iter(value))  # a dict: change its first member, recursively
    return {**value, first: _another(value[first])}


def _package_with(field: str) -> dict[str, Any]:
    """The plain sample, reshaped so that `field` can be set without breaking the one-of."""
    obj = sample(PACKAGE)
    if field in ("modelPackageGroupName", "modelPackageName"):
        del obj["spec"]["modelPackageGroupRef"]
        obj["spec"][field] = "original"
    return obj


@pytest.mark.parametrize("field", IMMUTABLE_FIELDS)
def test_immutable_field_cannot_change_be_added_or_removed(field: str) -> None:
    message = f"{field} is immutable"
    old = _package_with(field)
    if field not in old["spec"]:
        added = copy.deepcopy(old)
        added["spec"][field] = CHANGED[field]
        assert causes(added) == [] or field in ("modelPackageName", "modelPackageGroupName"), causes(added)
        rejected(added, message, f"spec.{field}", old=old)
        old = added
    changed = copy.deepcopy(old)
    changed["spec"][field] = (
        CHANGED[field] if old["spec"][field] != CHANGED[field] else _another(CHANGED[field])
    )
    rejected(changed, message, f"spec.{field}", old=old)
    removed = copy.deepcopy(old)
    del removed["spec"][field]
    rejected(removed, message, f"spec.{field}", old=old)
    assert not [c for c in causes(old, old=old) if "immutable" in c["message"]]
    assert not [c for c in causes(changed) if "immutable" in c["message"]], "only checked on update"


@pytest.mark.parametrize(
    "field,value",
    [
        ("modelApprovalStatus", "Approved"),
        ("approvalDescription", "looked fine"),
        ("customerMetadataProperties", {"stage": "prod"}),
        ("sourceUri", "s3://b/source"),
        ("tags", [{"key": "team", "value": "search"}]),
        ("deletionPolicy", "Retain"),
    ],
)
def test_updatable_fields_can_change(field: str, value: Any) -> None:
    old = sample(PACKAGE)
    new = copy.deepcopy(old)
    new["spec"][field] = value
    assert causes(new, old=old) == []


def test_inference_specification_can_change() -> None:
    old = sample(PACKAGE)
    new = copy.deepcopy(old)
    new["spec"]["inferenceSpecification"]["containers"][0]["modelDataUrl"] = "s3://b/new/model.tar.gz"
    assert causes(new, old=old) == []


NEO = {"name": "neo", "containers": [{"image": "neo-image", "modelDataUrl": "s3://b/neo.tar.gz"}]}


def test_additional_inference_specifications_are_append_only() -> None:
    old = sample(PACKAGE)
    added = copy.deepcopy(old)
    added["spec"]["additionalInferenceSpecifications"] = [NEO]
    assert causes(added, old=old) == []
    more = copy.deepcopy(added)
    more["spec"]["additionalInferenceSpecifications"].append({**NEO, "name": "neo-arm"})
    assert causes(more, old=added) == []

    removed = copy.deepcopy(more)
    del removed["spec"]["additionalInferenceSpecifications"][0]
    rejected(
        removed,
        "additionalInferenceSpecifications is append-only",
        "spec.additionalInferenceSpecifications",
        old=more,
    )
    cleared = copy.deepcopy(more)
    del cleared["spec"]["additionalInferenceSpecifications"]
    rejected(
        cleared,
        "additionalInferenceSpecifications is append-only",
        "spec.additionalInferenceSpecifications",
        old=more,
    )
    changed = copy.deepcopy(more)
    changed["spec"]["additionalInferenceSpecifications"][1]["description"] = "edited"
    rejected(changed, "cannot be changed once added", "spec.additionalInferenceSpecifications[1]", old=more)


def test_group_name_and_description_are_immutable_tags_are_not() -> None:
    old = sample("modelpackagegroup.yaml")
    new = copy.deepcopy(old)
    new["spec"]["modelPackageGroupDescription"] = "other"
    rejected(new, "modelPackageGroupDescription is immutable", "spec.modelPackageGroupDescription", old=old)
    new = copy.deepcopy(old)
    new["spec"]["modelPackageGroupName"] = "churn"
    rejected(new, "modelPackageGroupName is immutable", "spec.modelPackageGroupName", old=old)
    new = copy.deepcopy(old)
    new["spec"]["tags"] = []
    assert causes(new, old=old) == []


def test_model_spec_is_mutable() -> None:
    old = sample("model-pipeline.yaml")
    new = copy.deepcopy(old)
    new["spec"]["containers"][1]["image"] = "other:2"
    new["spec"]["executionRoleArn"] = "arn:aws:iam::123456789012:role/Other"
    assert causes(new, old=old) == []


# --- Schema keywords the apiserver checks before the rules ----------------------------------


def test_schema_violations_name_the_field() -> None:
    obj = sample(ARTIFACTS)
    container = obj["spec"]["inferenceSpecification"]["containers"][0]
    container["image"] = "has space"
    container["containerHostname"] = "x" * 64
    obj["spec"]["modelApprovalStatus"] = "Maybe"
    obj["spec"]["artifacts"].append(copy.deepcopy(obj["spec"]["artifacts"][0]))
    obj["spec"]["artifacts"][0]["files"][0]["path"] = "../escape"
    found = {(c["reason"], c["field"]) for c in causes(obj)}
    assert ("FieldValueInvalid", "spec.inferenceSpecification.containers[0].image") in found
    assert ("FieldValueTooLong", "spec.inferenceSpecification.containers[0].containerHostname") in found
    assert ("FieldValueNotSupported", "spec.modelApprovalStatus") in found
    assert ("FieldValueDuplicate", "spec.artifacts[1]") in found
    assert ("FieldValueInvalid", "spec.artifacts[0].files[0].path") in found


def test_required_and_type_errors() -> None:
    obj = sample("model-pipeline.yaml")
    obj["spec"]["vpcConfig"] = {"subnets": "subnet-1"}
    obj["spec"]["enableNetworkIsolation"] = "yes"
    found = {(c["reason"], c["field"]) for c in causes(obj)}
    assert ("FieldValueRequired", "spec.vpcConfig.securityGroupIds") in found
    assert ("FieldValueTypeInvalid", "spec.vpcConfig.subnets") in found
    assert ("FieldValueTypeInvalid", "spec.enableNetworkIsolation") in found
    del obj["spec"]
    assert ("FieldValueRequired", "spec") in {(c["reason"], c["field"]) for c in causes(obj)}


def test_customer_metadata_leaves_room_for_the_operator_marker() -> None:
    from model_registry_operator.registry.base import OWNER_UID_KEY

    obj = sample(PACKAGE)
    for key in (OWNER_UID_KEY, "registry.mlops.dev/identity"):
        obj["spec"]["customerMetadataProperties"] = {key: "someone-else"}
        rejected(obj, "the operator keeps those", "spec.customerMetadataProperties")
    obj["spec"]["customerMetadataProperties"] = {f"k{i}": "v" for i in range(50)}
    rejected(obj, "at most 49 entries", "spec.customerMetadataProperties")
    obj["spec"]["customerMetadataProperties"] = {f"k{i}": "v" for i in range(49)}
    assert causes(obj) == []


@pytest.mark.parametrize("name", ["modelpackagegroup.yaml", "model-pipeline.yaml"])
def test_tags_leave_room_for_the_operator_owner_tag(name: str) -> None:
    from model_registry_operator.registry.base import OWNER_UID_KEY

    obj = sample(name)
    for key in (OWNER_UID_KEY, "registry.mlops.dev/identity"):
        obj["spec"]["tags"] = [{"key": "team", "value": "a"}, {"key": key, "value": "someone-else"}]
        rejected(obj, "the operator keeps those to recognise the SageMaker objects it manages", "spec.tags")
    obj["spec"]["tags"] = [{"key": f"k{i}", "value": "v"} for i in range(50)]
    rejected(obj, "at most 49 entries", "spec.tags")
    obj["spec"]["tags"] = [{"key": f"k{i}", "value": "v"} for i in range(49)]
    assert causes(obj) == []


def test_artifacts_of_a_registered_version_cannot_change() -> None:
    old = sample(ARTIFACTS)
    changed = copy.deepcopy(old)
    changed["spec"]["artifacts"][0]["files"][0]["sha256"] = "0" * 64
    rejected(changed, "artifacts is immutable", "spec.artifacts", old=old)
    removed = copy.deepcopy(old)
    del removed["spec"]["artifacts"]
    for container in removed["spec"]["inferenceSpecification"]["containers"]:
        container.pop("modelDataArtifact", None)
        container["modelDataUrl"] = "s3://models/churn/model.tar.gz"
    rejected(removed, "artifacts is immutable", "spec.artifacts", old=old)
    assert causes(copy.deepcopy(old), old=old) == []  # an unchanged object passes


MODEL_NAME_IMMUTABLE = "modelName is immutable: it names the model in SageMaker; create a new Model instead"


def test_model_name_cannot_be_set_changed_or_removed_after_creation() -> None:
    # unset means metadata.name, itself fixed: setting it later would rename the model too
    unset = sample("model-pipeline.yaml")
    unset["spec"].pop("modelName", None)
    assert causes(unset) == [] and causes(copy.deepcopy(unset), old=unset) == []
    named = copy.deepcopy(unset)
    named["spec"]["modelName"] = "churn-pipeline"
    assert causes(named) == [], "a new object may name its model"
    rejected(named, MODEL_NAME_IMMUTABLE, "spec.modelName", old=unset)
    renamed = copy.deepcopy(named)
    renamed["spec"]["modelName"] = "churn-pipeline-2"
    rejected(renamed, MODEL_NAME_IMMUTABLE, "spec.modelName", old=named)
    rejected(unset, MODEL_NAME_IMMUTABLE, "spec.modelName", old=named)
    assert causes(copy.deepcopy(named), old=named) == []


def test_a_version_to_adopt_is_refused_at_admission_when_it_makes_no_sense() -> None:
    obj = sample(PACKAGE)
    obj["spec"]["modelPackageVersion"] = 3
    assert causes(obj) == []
    for bad in (0, -1):
        obj["spec"]["modelPackageVersion"] = bad
        rejected(obj, "should be greater than or equal to 1", "spec.modelPackageVersion")
    unversioned = sample(PACKAGE)
    del unversioned["spec"]["modelPackageGroupRef"]
    unversioned["spec"].update(modelPackageName="churn-standalone", modelPackageVersion=3)
    rejected(
        unversioned, "use it with modelPackageGroupRef or modelPackageGroupName", "spec.modelPackageVersion"
    )
    no_group = sample(PACKAGE)
    del no_group["spec"]["modelPackageGroupRef"]
    no_group["spec"]["modelPackageVersion"] = 3
    rejected(no_group, "exactly one of", "spec")
    with_artifacts = sample(ARTIFACTS)
    with_artifacts["spec"]["modelPackageVersion"] = 3
    rejected(with_artifacts, "remove spec.artifacts", "spec.modelPackageVersion")

    old = sample(PACKAGE)
    old["spec"]["modelPackageVersion"] = 3
    changed = copy.deepcopy(old)
    changed["spec"]["modelPackageVersion"] = 4
    rejected(changed, "modelPackageVersion is immutable", "spec.modelPackageVersion", old=old)
    added = sample(PACKAGE)
    added["spec"]["modelPackageVersion"] = 3
    rejected(added, "modelPackageVersion is immutable", "spec.modelPackageVersion", old=sample(PACKAGE))


# --- Lifecycle stage and model card ------------------------------------------------------------

CARD = "modelpackage-model-card.yaml"


def test_model_card_sample_is_admitted_and_can_change() -> None:
    obj = sample(CARD)
    assert causes(obj) == []
    changed = copy.deepcopy(obj)
    changed["spec"]["modelLifeCycle"] = {"stage": "Production", "stageStatus": "Approved"}
    changed["spec"]["modelCard"]["modelCardStatus"] = "Approved"
    changed["spec"]["modelCard"]["modelCardContent"]["intended_uses"]["risk_rating"] = "Medium"
    assert causes(changed, old=obj) == []  # UpdateModelPackage changes both: not immutable


@pytest.mark.parametrize("value", ["In Review!", "in_review", "-x", "x" * 64, ""])
def test_unknown_stage_status_characters_are_refused_at_admission(value: str) -> None:
    obj = sample(CARD)
    obj["spec"]["modelLifeCycle"]["stageStatus"] = value
    found = causes(obj)
    assert any(c["field"] == "spec.modelLifeCycle.stageStatus" for c in found), found


def test_stage_and_stage_status_are_required() -> None:
    obj = sample(CARD)
    del obj["spec"]["modelLifeCycle"]["stageStatus"]
    found = causes(obj)
    assert any(
        c["field"] == "spec.modelLifeCycle.stageStatus" and "Required" in c["message"] for c in found
    ), found


@pytest.mark.parametrize("value", ['{"intended_uses": {}}', ["a"], 42])
def test_model_card_content_that_is_not_an_object_is_refused_at_admission(value: Any) -> None:
    obj = sample(CARD)
    obj["spec"]["modelCard"]["modelCardContent"] = value
    found = causes(obj)
    assert any(
        c["field"] == "spec.modelCard.modelCardContent" and "must be of type object" in c["message"]
        for c in found
    ), found


def test_model_card_content_keeps_any_json_object() -> None:
    """An open object: nothing the model card schema adds later is pruned by the apiserver."""
    obj = sample(CARD)
    obj["spec"]["modelCard"]["modelCardContent"]["a_future_section"] = {"nested": [1, {"x": None}]}
    assert crd_validation.prune(crd("ModelPackage"), obj) == obj
    assert causes(obj) == []


# --- spec.region -------------------------------------------------------------------------------

REGION_IMMUTABLE = "region is immutable"


@pytest.mark.parametrize("name", ["modelpackagegroup.yaml", PACKAGE, "model-pipeline.yaml"])
def test_region_cannot_be_set_changed_or_removed_after_creation(name: str) -> None:
    unset = sample(name)
    unset["spec"].pop("region", None)
    chosen = copy.deepcopy(unset)
    chosen["spec"]["region"] = "eu-west-1"
    assert causes(chosen) == [], "a new object chooses its region"
    rejected(chosen, REGION_IMMUTABLE, "spec.region", old=unset)  # added later
    moved = copy.deepcopy(chosen)
    moved["spec"]["region"] = "us-west-2"
    rejected(moved, REGION_IMMUTABLE, "spec.region", old=chosen)  # changed
    rejected(unset, REGION_IMMUTABLE, "spec.region", old=chosen)  # removed
    assert causes(copy.deepcopy(chosen), old=chosen) == []
    assert causes(copy.deepcopy(unset), old=unset) == []


@pytest.mark.parametrize(
    "region", ["us-east-2", "eu-central-1", "ap-southeast-3", "us-gov-west-1", "cn-north-1"]
)
def test_region_names_are_admitted(region: str) -> None:
    obj = sample("modelpackagegroup.yaml")
    obj["spec"]["region"] = region
    assert causes(obj) == []


@pytest.mark.parametrize("region", ["Europe", "eu_west_1", "eu-west", "EU-WEST-1", "us-east-2 ", ""])
def test_other_region_values_are_refused_naming_the_field(region: str) -> None:
    obj = sample("modelpackagegroup.yaml")
    obj["spec"]["region"] = region
    assert "spec.region" in {c["field"] for c in causes(obj)}
