"""CreatedBy / LastModifiedBy (UserContext) of model packages name the caller's IAM identity
(see harness/aws/corrections/model_packages.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest

INFERENCE = {
    "Containers": [
        {
            "Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2",
            "ModelDataUrl": "s3://bucket/model.tar.gz",
        }
    ]
}
ANA = "arn:aws:iam::123456789012:user/ana"
BOB = "arn:aws:sts::123456789012:assumed-role/ModelRiskAuditor/bob"
PIPELINE = "arn:aws:sts::123456789012:assumed-role/Pipeline/run-17"


@pytest.fixture
def version(aws) -> str:
    sm = aws.client("sagemaker", identity=PIPELINE)
    sm.create_model_package_group(ModelPackageGroupName="churn")
    return sm.create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification=INFERENCE,
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]


def test_created_by_is_the_creators_iam_identity(aws, version):
    described = aws.client("sagemaker").describe_model_package(ModelPackageName=version)
    assert described["CreatedBy"] == {
        "IamIdentity": {"Arn": PIPELINE, "PrincipalId": described["CreatedBy"]["IamIdentity"]["PrincipalId"]}
    }
    assert described["CreatedBy"]["IamIdentity"]["PrincipalId"].startswith("AROA")
    assert described["CreatedBy"]["IamIdentity"]["PrincipalId"].endswith(":run-17")
    assert "LastModifiedBy" not in described and "UserProfileName" not in described["CreatedBy"]


def test_last_modified_by_follows_whoever_updated_last(aws, version):
    ana = aws.client("sagemaker", identity=ANA)
    bob = aws.client("sagemaker", identity=BOB)
    ana.update_model_package(ModelPackageArn=version, ModelApprovalStatus="Approved")
    first = ana.describe_model_package(ModelPackageName=version)
    assert first["LastModifiedBy"]["IamIdentity"]["Arn"] == ANA
    assert first["LastModifiedBy"]["IamIdentity"]["PrincipalId"].startswith("AIDA")
    assert first["CreatedBy"]["IamIdentity"]["Arn"] == PIPELINE  # an update leaves CreatedBy

    bob.update_model_package(ModelPackageArn=version, ModelApprovalStatus="Rejected")
    second = ana.describe_model_package(ModelPackageName=version)
    assert second["LastModifiedBy"]["IamIdentity"]["Arn"] == BOB
    assert second["LastModifiedBy"]["IamIdentity"]["PrincipalId"].endswith(":bob")
    assert second["LastModifiedTime"] >= first["LastModifiedTime"]


def test_configured_principal_and_studio_profile_are_answered(aws, version):
    aws.set_identity(
        "AKIASTUDIOANA0000001", ANA, principal_id="AIDAEXAMPLEANA", user_profile_name="ana", domain_id="d-123"
    )
    studio = boto3.client(
        "sagemaker",
        region_name=aws.region,
        endpoint_url=aws.endpoint_url,
        aws_access_key_id="AKIASTUDIOANA0000001",
        aws_secret_access_key="testing",
    )
    studio.update_model_package(ModelPackageArn=version, ApprovalDescription="ok")
    by = studio.describe_model_package(ModelPackageName=version)["LastModifiedBy"]
    assert by == {
        "UserProfileName": "ana",
        "DomainId": "d-123",
        "IamIdentity": {"Arn": ANA, "PrincipalId": "AIDAEXAMPLEANA"},
    }


def test_an_unconfigured_key_is_who_sts_says_it_is(aws, version):
    sm = aws.client("sagemaker")  # the dummy keys
    sm.update_model_package(ModelPackageArn=version, ModelApprovalStatus="Approved")
    caller = aws.client("sts").get_caller_identity()
    by = sm.describe_model_package(ModelPackageName=version)["LastModifiedBy"]["IamIdentity"]
    assert by == {"Arn": caller["Arn"], "PrincipalId": caller["UserId"]}


def test_a_listing_summary_has_no_user_context(aws, version):
    [summary] = aws.client("sagemaker").list_model_packages(ModelPackageGroupName="churn")[
        "ModelPackageSummaryList"
    ]
    assert "CreatedBy" not in summary and "LastModifiedBy" not in summary
    assert summary["ModelPackageArn"] == version


def test_identities_through_the_control_api(aws, version):
    request = urllib.request.Request(
        f"{aws.endpoint_url}/_harness/identities",
        data=json.dumps({"accessKeyId": "AKIAREMOTE0000000001", "arn": ANA}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["IamIdentity"]["Arn"] == ANA
    bad = urllib.request.Request(
        f"{aws.endpoint_url}/_harness/identities",
        data=json.dumps({"accessKeyId": "short", "arn": ANA}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad)
    assert error.value.code == 400
    with urllib.request.urlopen(f"{aws.endpoint_url}/_harness/identities") as response:
        assert "AKIAREMOTE0000000001" in json.load(response)["identities"]
    aws.reset()
    with urllib.request.urlopen(f"{aws.endpoint_url}/_harness/identities") as response:
        assert json.load(response)["identities"] == {}
