"""SageMakerRegistry's group resource policy methods (Get/Put/DeleteModelPackageGroupPolicy)
with boto3 over HTTP against the corrected moto endpoint (`aws` fixture)."""

from __future__ import annotations

import json

import botocore.session
import pytest

from model_registry_operator.errors import TerminalError
from model_registry_operator.reasons import Reason
from model_registry_operator.registry import SageMakerRegistry, default_config

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ProductionReads",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"],
            "Resource": "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn",
        }
    ],
}


@pytest.fixture
def registry(aws, monkeypatch) -> SageMakerRegistry:
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return SageMakerRegistry(session=botocore.session.Session(), config=default_config(total_max_attempts=1))


def test_put_get_replace_delete(registry):
    registry.create_group({"ModelPackageGroupName": "churn"})
    assert registry.get_group_policy("churn") is None  # SageMaker: "Cannot find resource policy ..."
    text = json.dumps(POLICY, indent=2)
    registry.put_group_policy("churn", text)
    assert registry.get_group_policy("churn") == text  # returned as put
    other = json.dumps({**POLICY, "Statement": [{**POLICY["Statement"][0], "Sid": "Other"}]})
    registry.put_group_policy("churn", other)
    assert registry.get_group_policy("churn") == other
    registry.delete_group_policy("churn")
    assert registry.get_group_policy("churn") is None
    registry.delete_group_policy("churn")  # no policy: nothing to do, not an error
    assert registry.calls["PutModelPackageGroupPolicy"] == 2
    assert registry.calls["GetModelPackageGroupPolicy"] == 4
    assert registry.calls["DeleteModelPackageGroupPolicy"] == 2


def test_a_missing_group_has_no_policy_and_cannot_get_one(registry):
    assert registry.get_group_policy("absent") is None
    registry.delete_group_policy("absent")
    with pytest.raises(TerminalError) as refused:
        registry.put_group_policy("absent", json.dumps(POLICY))
    assert refused.value.reason == Reason.NOT_FOUND
    assert "Cannot find Model Package Group" in refused.value.message


def test_deleting_the_group_deletes_its_policy(registry):
    registry.create_group({"ModelPackageGroupName": "churn"})
    registry.put_group_policy("churn", json.dumps(POLICY))
    registry.delete_group("churn")
    registry.create_group({"ModelPackageGroupName": "churn"})
    assert registry.get_group_policy("churn") is None


def test_a_malformed_policy_is_a_validation_error_with_the_api_message(registry):
    registry.create_group({"ModelPackageGroupName": "churn"})
    malformed = {**POLICY, "Statement": [{**POLICY["Statement"][0], "Effect": "Permit"}]}
    with pytest.raises(TerminalError) as refused:
        registry.put_group_policy("churn", json.dumps(malformed))
    assert refused.value.reason == Reason.VALIDATION_ERROR
    assert "PutModelPackageGroupPolicy failed with ValidationException: Invalid policy provided" in (
        refused.value.message
    )
    assert registry.get_group_policy("churn") is None
