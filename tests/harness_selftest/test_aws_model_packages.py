"""Corrections to moto's model registry (see harness/aws/corrections/model_packages.py).

Each test exercises one documented AWS behaviour that moto 5.2.5 gets wrong; all of them
talk to the server with boto3 over HTTP.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
INFERENCE = {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"}]}


def _code(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def _version(sm, group="churn", **kwargs) -> str:
    return sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=INFERENCE, **kwargs)[
        "ModelPackageArn"
    ]


@pytest.fixture
def sm(aws):
    client = aws.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName="churn")
    return client


# -- delete ------------------------------------------------------------------------------


def test_delete_model_package_removes_the_version(sm, aws):
    first, second = _version(sm), _version(sm)
    sm.delete_model_package(ModelPackageName=first)
    listed = sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [second]
    code, message = _code(lambda: sm.describe_model_package(ModelPackageName=first))
    assert code == "ValidationException" and first in message and "does not exist" in message


def test_delete_missing_model_package_is_a_validation_error(sm):
    code, _ = _code(lambda: sm.delete_model_package(ModelPackageName="churn/9"))
    assert code == "ValidationException"


def test_version_numbers_are_never_reused_after_a_delete(sm):
    first, second = _version(sm), _version(sm)
    sm.delete_model_package(ModelPackageName=second)
    third = _version(sm)
    assert third.endswith("/churn/3")
    assert sm.describe_model_package(ModelPackageName=third)["ModelPackageVersion"] == 3
    sm.delete_model_package(ModelPackageName=first)
    assert _version(sm).endswith("/churn/4")


def test_delete_empty_model_package_group(sm):
    arn = sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    sm.delete_model_package_group(ModelPackageGroupName=arn)  # by ARN
    code, message = _code(lambda: sm.describe_model_package_group(ModelPackageGroupName="churn"))
    assert code == "ValidationException" and "does not exist" in message


def test_group_with_versions_cannot_be_deleted(sm):
    version = _version(sm)
    code, message = _code(lambda: sm.delete_model_package_group(ModelPackageGroupName="churn"))
    assert code == "ConflictException" and "churn" in message
    sm.describe_model_package_group(ModelPackageGroupName="churn")  # still there
    sm.delete_model_package(ModelPackageName=version)
    sm.delete_model_package_group(ModelPackageGroupName="churn")


def test_delete_missing_group_is_a_validation_error(aws):
    code, _ = _code(lambda: aws.client("sagemaker").delete_model_package_group(ModelPackageGroupName="nope"))
    assert code == "ValidationException"


# -- update ------------------------------------------------------------------------------


def test_update_changes_only_the_members_passed(sm):
    arn = _version(
        sm,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"team": "ml", "owner": "ana"},
    )
    before = sm.describe_model_package(ModelPackageName=arn)
    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="good enough"
    )
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"owner": "bo"})
    after = sm.describe_model_package(ModelPackageName=arn)
    assert after["ModelApprovalStatus"] == "Approved"
    assert after["ApprovalDescription"] == "good enough"  # kept by the second update
    assert after["CustomerMetadataProperties"] == {"team": "ml", "owner": "bo"}  # merged
    assert after["InferenceSpecification"] == before["InferenceSpecification"]
    assert after["LastModifiedTime"] >= before["CreationTime"]
    assert "LastModifiedTime" not in before


def test_customer_metadata_properties_to_remove_works_alone(sm):
    arn = _version(sm, CustomerMetadataProperties={"a": "1", "b": "2"})
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["a", "zz"])
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {"b": "2"}
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["b"])
    assert "CustomerMetadataProperties" not in sm.describe_model_package(ModelPackageName=arn)


def test_remove_on_a_package_without_metadata_is_harmless(sm):
    arn = _version(sm)
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["x"])
    assert "CustomerMetadataProperties" not in sm.describe_model_package(ModelPackageName=arn)


def _spec(name: str) -> dict:
    return {"Name": name, "Containers": [{"Image": IMAGE}]}


def test_additional_inference_specifications_are_appended(sm):
    arn = _version(sm, AdditionalInferenceSpecifications=[_spec("neo")])
    sm.update_model_package(ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[_spec("gpu")])
    sm.update_model_package(ModelPackageArn=arn, ApprovalDescription="unrelated")
    specs = sm.describe_model_package(ModelPackageName=arn)["AdditionalInferenceSpecifications"]
    assert [s["Name"] for s in specs] == ["neo", "gpu"]


def test_additional_inference_specification_names_must_be_unique(sm):
    arn = _version(sm, AdditionalInferenceSpecifications=[_spec("neo")])
    code, message = _code(
        lambda: sm.update_model_package(
            ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[_spec("neo")]
        )
    )
    assert code == "ValidationException" and "neo" in message
    code, _ = _code(
        lambda: sm.update_model_package(
            ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[_spec("x"), _spec("x")]
        )
    )
    assert code == "ValidationException"
    specs = sm.describe_model_package(ModelPackageName=arn)["AdditionalInferenceSpecifications"]
    assert [s["Name"] for s in specs] == ["neo"]  # a refused update changes nothing


def test_no_more_than_15_additional_inference_specifications(sm):
    arn = _version(sm, AdditionalInferenceSpecifications=[_spec(f"s{i}") for i in range(10)])
    sm.update_model_package(
        ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[_spec(f"t{i}") for i in range(5)]
    )
    code, message = _code(
        lambda: sm.update_model_package(
            ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[_spec("one-too-many")]
        )
    )
    assert code == "ValidationException" and "15" in message
    specs = sm.describe_model_package(ModelPackageName=arn)["AdditionalInferenceSpecifications"]
    assert len(specs) == 15


def test_other_updatable_members_are_kept(sm):
    arn = _version(sm)
    new_inference = {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/v2.tar.gz"}]}
    sm.update_model_package(
        ModelPackageArn=arn,
        InferenceSpecification=new_inference,
        SourceUri="s3://src/model",
        ModelLifeCycle={"Stage": "Staging", "StageStatus": "Approved"},
    )
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == "s3://bucket/v2.tar.gz"
    assert described["SourceUri"] == "s3://src/model"
    assert described["ModelLifeCycle"] == {"Stage": "Staging", "StageStatus": "Approved"}


def test_update_of_a_missing_package_is_a_validation_error(sm):
    arn = _version(sm)
    sm.delete_model_package(ModelPackageName=arn)
    code, _ = _code(lambda: sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved"))
    assert code == "ValidationException"


# -- create: idempotency and duplicates ----------------------------------------------------


def test_same_client_token_returns_the_same_version(sm, aws):
    first = _version(sm, ClientToken="uid-1234")
    again = _version(sm, ClientToken="uid-1234")
    other = _version(sm, ClientToken="uid-5678")
    assert again == first and other != first
    listed = sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    assert len(listed) == 2


def test_existing_group_name_is_refused(sm):
    _version(sm)
    code, message = _code(lambda: sm.create_model_package_group(ModelPackageGroupName="churn"))
    assert code == "ValidationException" and "already exists" in message
    # the group and its version survive
    assert len(sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]) == 1


def test_existing_unversioned_package_name_is_refused(aws):
    sm = aws.client("sagemaker")
    sm.create_model_package(
        ModelPackageName="solo", InferenceSpecification=INFERENCE, ModelPackageDescription="first"
    )
    code, message = _code(
        lambda: sm.create_model_package(
            ModelPackageName="solo", InferenceSpecification=INFERENCE, ModelPackageDescription="second"
        )
    )
    assert code == "ValidationException" and "already exists" in message
    assert sm.describe_model_package(ModelPackageName="solo")["ModelPackageDescription"] == "first"


def test_create_into_a_missing_group_is_a_validation_error(aws):
    code, _ = _code(lambda: _version(aws.client("sagemaker"), group="nope"))
    assert code == "ValidationException"


# -- names and ARNs -----------------------------------------------------------------------


def test_group_accepted_by_name_or_arn(sm):
    arn = sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    assert sm.describe_model_package_group(ModelPackageGroupName=arn)["ModelPackageGroupName"] == "churn"
    version = _version(sm, group=arn)
    assert version.endswith("/churn/1")
    listed = sm.list_model_packages(ModelPackageGroupName=arn)["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [version]


def test_package_described_by_arn_or_group_and_version(sm):
    _version(sm)
    second = _version(sm)
    assert sm.describe_model_package(ModelPackageName="churn/2")["ModelPackageArn"] == second
    assert sm.describe_model_package(ModelPackageName=second)["ModelPackageVersion"] == 2
    # a group name alone names no package
    code, _ = _code(lambda: sm.describe_model_package(ModelPackageName="churn"))
    assert code == "ValidationException"


def test_unversioned_package_described_by_name(aws):
    sm = aws.client("sagemaker")
    arn = sm.create_model_package(ModelPackageName="solo", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    assert sm.describe_model_package(ModelPackageName="solo")["ModelPackageArn"] == arn


def test_list_model_packages_paginates(sm):
    arns = [_version(sm) for _ in range(5)]
    seen, token, pages = [], None, 0
    while True:
        page = sm.list_model_packages(
            ModelPackageGroupName="churn", MaxResults=2, **({"NextToken": token} if token else {})
        )
        seen += [p["ModelPackageArn"] for p in page["ModelPackageSummaryList"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert seen == arns and pages == 3
    paginator = sm.get_paginator("list_model_packages")
    listed = [
        p["ModelPackageVersion"]
        for page in paginator.paginate(ModelPackageGroupName="churn", PaginationConfig={"PageSize": 2})
        for p in page["ModelPackageSummaryList"]
    ]
    assert listed == [1, 2, 3, 4, 5]
