"""SageMakerRegistry against botocore's Stubber: the exact answers real SageMaker gives that
the moto endpoint cannot produce (its messages differ), and the calls each method makes."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.stub import Stubber

from model_registry_operator.errors import TerminalError
from model_registry_operator.registry import SageMakerRegistry, default_config

GROUP_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/3"


@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    registry = SageMakerRegistry(
        "us-east-2", session=botocore.session.Session(), config=default_config(total_max_attempts=1)
    )
    with Stubber(registry._client) as stubber:
        yield registry, stubber
        stubber.assert_no_pending_responses()


def test_missing_group_is_none(stubbed):
    registry, stub = stubbed
    stub.add_client_error(
        "describe_model_package_group",
        "ValidationException",
        f"ModelPackageGroup {GROUP_ARN} does not exist.",
        expected_params={"ModelPackageGroupName": "churn"},
    )
    assert registry.describe_group("churn") is None


def test_missing_model_is_none_and_its_delete_succeeds(stubbed):
    registry, stub = stubbed
    message = 'Could not find model "arn:aws:sagemaker:us-east-2:123456789012:model/churn".'
    stub.add_client_error("describe_model", "ValidationException", message)
    stub.add_client_error("delete_model", "ValidationException", message)
    assert registry.describe_model("churn") is None
    registry.delete_model("churn")


def test_missing_package_delete_succeeds(stubbed):
    registry, stub = stubbed
    stub.add_client_error(
        "delete_model_package", "ValidationException", f"ModelPackage {PACKAGE_ARN} does not exist."
    )
    registry.delete_package(PACKAGE_ARN)


def test_other_validation_errors_on_describe_are_terminal_not_absent(stubbed):
    registry, stub = stubbed
    message = (
        "1 validation error detected: Value 'churn_' at 'modelPackageGroupName' failed to satisfy constraint"
    )
    stub.add_client_error("describe_model_package_group", "ValidationException", message)
    with pytest.raises(TerminalError) as info:
        registry.describe_group("churn_")
    assert info.value.reason == "ValidationError" and message in info.value.message


def test_group_still_holding_versions_is_not_taken_for_deleted(stubbed):
    registry, stub = stubbed
    stub.add_client_error(
        "delete_model_package_group", "ConflictException", "Model package group churn has model packages."
    )
    with pytest.raises(Exception) as info:
        registry.delete_group("churn")
    assert info.value.reason == "Conflict"


def test_list_of_a_missing_group_is_empty(stubbed):
    registry, stub = stubbed
    stub.add_client_error(
        "list_model_packages", "ValidationException", f"ModelPackageGroup {GROUP_ARN} does not exist."
    )
    assert registry.list_packages("churn") == []


def test_list_packages_asks_for_versions_of_the_group_100_at_a_time(stubbed):
    registry, stub = stubbed
    expected = {
        "ModelPackageGroupName": "churn",
        "ModelPackageType": "Versioned",
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
        "MaxResults": 100,
    }
    summary = {
        "ModelPackageArn": PACKAGE_ARN,
        "ModelPackageName": "churn",
        "CreationTime": "2026-01-01T00:00:00Z",
        "ModelPackageStatus": "Completed",
    }
    stub.add_response(
        "list_model_packages", {"ModelPackageSummaryList": [summary], "NextToken": "t"}, expected
    )
    stub.add_response(
        "list_model_packages", {"ModelPackageSummaryList": [summary]}, {**expected, "NextToken": "t"}
    )
    assert len(registry.list_packages("churn")) == 2


def test_sync_tags_sends_only_the_difference(stubbed):
    registry, stub = stubbed
    stub.add_response(
        "list_tags",
        {
            "Tags": [
                {"Key": "team", "Value": "ml"},
                {"Key": "keep", "Value": "same"},
                {"Key": "old", "Value": "x"},
                {"Key": "aws:cloudformation:stack-name", "Value": "s"},
            ]
        },
        {"ResourceArn": GROUP_ARN},
    )
    stub.add_response(
        "add_tags",
        {},
        {"ResourceArn": GROUP_ARN, "Tags": [{"Key": "team", "Value": "risk"}, {"Key": "new", "Value": "1"}]},
    )
    stub.add_response("delete_tags", {}, {"ResourceArn": GROUP_ARN, "TagKeys": ["old"]})
    assert registry.sync_tags(GROUP_ARN, {"team": "risk", "keep": "same", "new": "1"}) is True


def test_retry_settings_follow_boto3_environment(monkeypatch):
    from model_registry_operator.registry.sagemaker import _retry_settings

    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert _retry_settings(botocore.session.Session()) == {}
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    assert _retry_settings(botocore.session.Session()) == {"retry_mode": "adaptive", "total_max_attempts": 7}


def test_sync_tags_adds_the_owner_tag_but_never_changes_or_removes_it(stubbed):
    from model_registry_operator.registry import OWNER_UID_KEY

    registry, stub = stubbed
    # missing: added (a group adopted, or made by an operator version before owner tags)
    stub.add_response(
        "add_tags", {}, {"ResourceArn": GROUP_ARN, "Tags": [{"Key": OWNER_UID_KEY, "Value": "uid-a"}]}
    )
    assert registry.sync_tags(GROUP_ARN, {"team": "ml", OWNER_UID_KEY: "uid-a"}, {"team": "ml"}) is True
    # another object's: neither overwritten nor removed; the listed tags passed in: no ListTags
    stub.add_response("delete_tags", {}, {"ResourceArn": GROUP_ARN, "TagKeys": ["team"]})
    assert (
        registry.sync_tags(GROUP_ARN, {OWNER_UID_KEY: "uid-b"}, {"team": "ml", OWNER_UID_KEY: "uid-a"})
        is True
    )
    assert registry.sync_tags(GROUP_ARN, {}, {OWNER_UID_KEY: "uid-a"}) is False
    assert registry.calls["ListTags"] == 0
