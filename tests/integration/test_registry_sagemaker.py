"""SageMakerRegistry with boto3 over HTTP against the corrected moto endpoint (`aws` fixture)."""

from __future__ import annotations

import threading

import botocore.session
import pytest
from botocore.retries.standard import ExponentialBackoff

from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.registry import (
    OWNER_UID_KEY,
    SageMakerRegistry,
    client_token_for,
    default_config,
)

INFERENCE = {
    "Containers": [{"Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


@pytest.fixture
def env(aws, monkeypatch):
    """boto3's own configuration pointing at the harness, as the operator process gets it."""
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # botocore's real backoff (up to seconds) would only slow the suite down: the retry
    # count, not the waiting, is what these tests check.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    return aws


def make_registry(attempts: int = 3) -> SageMakerRegistry:
    return SageMakerRegistry(
        session=botocore.session.Session(), config=default_config(total_max_attempts=attempts)
    )


@pytest.fixture
def registry(env) -> SageMakerRegistry:
    return make_registry()


def new_group(registry: SageMakerRegistry, name: str = "churn", **extra) -> str:
    return registry.create_group({"ModelPackageGroupName": name, **extra})


def new_package(registry: SageMakerRegistry, group: str = "churn", uid: str | None = None, **extra) -> str:
    request = {"ModelPackageGroupName": group, "InferenceSpecification": INFERENCE, **extra}
    if uid:
        request["CustomerMetadataProperties"] = {OWNER_UID_KEY: uid}
    return registry.create_package(request)


# configuration


def test_endpoint_and_region_come_from_boto3_configuration(env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # would fail if used
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", env.endpoint_url)
    monkeypatch.setenv("AWS_REGION", env.region)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    registry = make_registry()
    assert registry.endpoint_url == env.endpoint_url
    assert registry.region == env.region
    arn = new_group(registry)
    assert f":{env.region}:" in arn


def test_retry_settings_come_from_boto3_configuration(env, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    registry = SageMakerRegistry(session=botocore.session.Session())
    env.faults.throttle("DescribeModel", count=5)
    with pytest.raises(RetryableError):
        registry.describe_model("churn")
    assert env.count("DescribeModel") == 2


def test_missing_region_is_a_clear_terminal_error(env, monkeypatch):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(TerminalError) as info:
        make_registry()
    assert info.value.reason == "MissingRegion" and "AWS_REGION" in info.value.message


# groups


def test_group_create_describe_by_name_and_arn(registry):
    assert registry.describe_group("churn") is None
    arn = new_group(registry, ModelPackageGroupDescription="Churn models")
    by_name = registry.describe_group("churn")
    assert by_name["ModelPackageGroupArn"] == arn
    assert by_name["ModelPackageGroupDescription"] == "Churn models"
    assert "ResponseMetadata" not in by_name
    assert registry.describe_group(arn)["ModelPackageGroupName"] == "churn"


def test_group_delete_and_delete_of_an_absent_group(registry):
    new_group(registry)
    registry.delete_group("churn")
    after = registry.describe_group("churn")
    assert after is None or after["ModelPackageGroupStatus"] == "Deleting"
    registry.delete_group("never-made")  # absent is not an error


# packages


def test_package_create_describe_update(registry):
    new_group(registry)
    arn = new_package(registry, ModelApprovalStatus="PendingManualApproval", ModelPackageDescription="v1")
    package = registry.describe_package(arn)
    assert package["ModelPackageArn"] == arn
    assert package["ModelPackageGroupName"] == "churn"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"

    registry.update_package(
        {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved", "ApprovalDescription": "ok"}
    )
    package = registry.describe_package(arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "ok"
    assert package["ModelPackageDescription"] == "v1"  # an update keeps what it does not name


def test_describe_and_delete_of_absent_packages(registry):
    new_group(registry)
    assert registry.describe_package("arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/7") is None
    arn = new_package(registry)
    registry.delete_package(arn)
    gone = registry.describe_package(arn)
    assert gone is None or gone["ModelPackageStatus"] == "Deleting"
    registry.delete_package(arn)  # already gone: not an error


def test_update_of_an_absent_package_is_terminal_not_found(registry):
    new_group(registry)
    with pytest.raises(TerminalError) as info:
        registry.update_package(
            {
                "ModelPackageArn": "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/9",
                "ModelApprovalStatus": "Approved",
            }
        )
    assert info.value.reason == "NotFound"


def test_list_packages_reads_every_page_with_status_and_approval(registry):
    new_group(registry)
    new_group(registry, "other")
    arns = [new_package(registry, ModelApprovalStatus="PendingManualApproval") for _ in range(105)]
    new_package(registry, "other")
    before = registry.calls["ListModelPackages"]
    summaries = registry.list_packages("churn")
    assert [s["ModelPackageArn"] for s in summaries] == arns  # oldest first, no other group
    assert registry.calls["ListModelPackages"] - before == 2  # 100 per page
    assert {(s["ModelPackageStatus"], s["ModelApprovalStatus"]) for s in summaries} == {
        ("Completed", "PendingManualApproval")
    }


def test_a_missing_group_has_no_packages(registry):
    assert registry.list_packages("nowhere") == []
    assert registry.find_package("nowhere", {OWNER_UID_KEY: "uid-1"}) is None


def test_find_package_after_a_restart(registry):
    new_group(registry)
    for index in range(3):
        new_package(registry, uid=f"someone-else-{index}")
    mine = new_package(registry, uid="uid-1")
    new_package(registry, uid="uid-2")

    restarted = make_registry()  # a new process remembers nothing
    found = restarted.find_package("churn", {OWNER_UID_KEY: "uid-1"})
    assert found["ModelPackageArn"] == mine
    assert found["CustomerMetadataProperties"][OWNER_UID_KEY] == "uid-1"
    # newest first: only uid-2's version was described before reaching ours
    assert restarted.calls["ListModelPackages"] == 1
    assert restarted.calls["DescribeModelPackage"] == 2

    # what was seen is not described again; a version nobody owns costs one list
    assert restarted.find_package("churn", {OWNER_UID_KEY: "uid-9"}) is None
    assert restarted.calls["DescribeModelPackage"] == 5
    assert restarted.find_package("churn", {OWNER_UID_KEY: "uid-9"}) is None
    assert restarted.calls["DescribeModelPackage"] == 5


def test_find_package_costs_one_describe_for_what_this_process_created(registry):
    new_group(registry)
    arn = new_package(registry, uid="uid-1")
    before = dict(registry.calls)
    assert registry.find_package("churn", {OWNER_UID_KEY: "uid-1"})["ModelPackageArn"] == arn
    assert registry.calls["DescribeModelPackage"] - before.get("DescribeModelPackage", 0) == 1
    assert registry.calls["ListModelPackages"] == before.get("ListModelPackages", 0)


def test_find_package_finds_a_version_by_identity_whatever_the_uid(registry):
    """A re-applied object (a new UID) finds the version its identity registered before."""
    new_group(registry)
    identity = {IDENTITY_KEY: "default/ml/churn-v1"}
    arn = registry.create_package(
        {
            "ModelPackageGroupName": "churn",
            "InferenceSpecification": INFERENCE,
            "CustomerMetadataProperties": identity,
        }
    )
    new_package(registry, uid="someone-else")
    restarted = make_registry()
    found = restarted.find_package("churn", {**identity, OWNER_UID_KEY: "a-new-uid"})
    assert found is not None and found["ModelPackageArn"] == arn
    assert restarted.find_package("churn", {IDENTITY_KEY: "other/ml/churn-v1"}) is None


def test_find_package_forgets_a_deleted_version(registry):
    new_group(registry)
    arn = new_package(registry, uid="uid-1")
    registry.delete_package(arn)
    found = registry.find_package("churn", {OWNER_UID_KEY: "uid-1"})
    assert found is None or found["ModelPackageStatus"] == "Deleting"


def test_create_package_is_idempotent_through_the_client_token(registry):
    new_group(registry)
    first = new_package(registry, uid="uid-1")
    again = new_package(registry, uid="uid-1")  # e.g. the operator restarted before status was written
    assert again == first
    assert len(registry.list_packages("churn")) == 1
    assert registry.calls["CreateModelPackage"] == 2


def test_explicit_client_token_wins(registry):
    new_group(registry)
    token = client_token_for("uid-1", salt=2)
    first = new_package(registry, uid="uid-1", ClientToken=token)
    second = new_package(registry, uid="uid-1")  # derived token for salt "" differs
    assert first != second
    assert len(registry.list_packages("churn")) == 2


# models


def test_model_create_describe_delete(registry):
    assert registry.describe_model("churn") is None
    arn = registry.create_model(
        {
            "ModelName": "churn",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/sagemaker",
            "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"},
        }
    )
    model = registry.describe_model("churn")
    assert model["ModelArn"] == arn
    assert model["PrimaryContainer"]["Image"].endswith("sklearn:1.2")
    registry.delete_model("churn")
    assert registry.describe_model("churn") is None
    registry.delete_model("churn")  # absent is not an error


def test_creating_an_existing_model_says_so(registry):
    request = {"ModelName": "churn", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/sagemaker"}
    arn = registry.create_model(request)
    with pytest.raises(RetryableError) as info:
        registry.create_model(request)
    assert info.value.reason == "CreateUnconfirmed"
    assert registry.describe_model("churn")["ModelArn"] == arn


# tags


def test_sync_tags_adds_changes_and_removes(registry):
    arn = new_group(registry, Tags=[{"Key": "team", "Value": "ml"}, {"Key": "stale", "Value": "x"}])
    assert registry.list_tags(arn) == {"team": "ml", "stale": "x"}
    assert registry.sync_tags(arn, {"team": "risk", "cost-center": "42"}) is True
    assert registry.list_tags(arn) == {"team": "risk", "cost-center": "42"}
    calls = dict(registry.calls)
    assert registry.sync_tags(arn, {"team": "risk", "cost-center": "42"}) is False
    assert (
        registry.calls["AddTags"] == calls["AddTags"] and registry.calls["DeleteTags"] == calls["DeleteTags"]
    )


def test_sync_tags_leaves_reserved_keys_alone(registry):
    arn = new_group(
        registry, Tags=[{"Key": "sagemaker:project-name", "Value": "p"}, {"Key": "team", "Value": "ml"}]
    )
    assert registry.sync_tags(arn, {}) is True
    assert registry.list_tags(arn) == {"sagemaker:project-name": "p"}


def test_owner_tags_given_at_creation_are_kept_by_sync_tags(registry):
    owner = {"Key": OWNER_UID_KEY, "Value": "uid-a"}
    group = new_group(registry, Tags=[{"Key": "team", "Value": "ml"}, owner])
    model = registry.create_model(
        {
            "ModelName": "churn",
            "PrimaryContainer": {"Image": INFERENCE["Containers"][0]["Image"]},
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/sm",
            "Tags": [owner],
        }
    )
    for arn in (group, model):
        assert registry.list_tags(arn)[OWNER_UID_KEY] == "uid-a"
        assert (
            registry.sync_tags(arn, {"team": "risk", OWNER_UID_KEY: "uid-b"}) is True
        )  # another UID: not set
        assert registry.sync_tags(arn, {}) is True  # nor removed with the others
        assert registry.list_tags(arn) == {OWNER_UID_KEY: "uid-a"}


def test_sync_tags_on_a_model_package(registry):
    new_group(registry)
    arn = new_package(registry)  # a version takes no Tags at creation: they are added after
    assert registry.sync_tags(arn, {"stage": "dev", "team": "ml"}) is True
    assert registry.sync_tags(arn, {"stage": "prod"}) is True
    assert registry.list_tags(arn) == {"stage": "prod"}


def test_sync_tags_batches_more_than_fifty_keys(registry):
    arn = new_group(registry)
    desired = {f"k{index}": str(index) for index in range(120)}
    assert registry.sync_tags(arn, desired) is True
    assert registry.list_tags(arn) == desired
    assert registry.calls["AddTags"] == 3


# failures


def test_throttling_is_retried_by_botocore(env, registry):
    env.faults.throttle("CreateModelPackageGroup", count=2)
    arn = new_group(registry)
    assert registry.describe_group("churn")["ModelPackageGroupArn"] == arn
    assert env.count("CreateModelPackageGroup") == 3  # two throttled, one served
    assert registry.calls["CreateModelPackageGroup"] == 1
    assert registry.attempts["CreateModelPackageGroup"] == 3


def test_throttling_beyond_the_retries_is_retryable(env, registry):
    env.faults.throttle("DescribeModelPackageGroup", count=10)
    with pytest.raises(RetryableError) as info:
        registry.describe_group("churn")
    assert info.value.reason == "Throttled"
    assert "ThrottlingException" in info.value.message and "Rate exceeded" in info.value.message
    assert env.count("DescribeModelPackageGroup") == 3


def test_server_errors_are_retryable(env, registry):
    env.faults.error("CreateModel", status=500, count=10)
    with pytest.raises(RetryableError) as info:
        registry.create_model({"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r"})
    assert info.value.reason == "SageMakerUnavailable"
    assert "InternalFailure" in info.value.message


def test_a_describe_that_fails_is_not_mistaken_for_absent(env, registry):
    new_group(registry)
    env.faults.error("DescribeModelPackageGroup", status=503, count=10)
    with pytest.raises(RetryableError):
        registry.describe_group("churn")
    env.faults.error("DeleteModelPackageGroup", status=500, count=10)
    with pytest.raises(RetryableError):
        registry.delete_group("churn")


def test_validation_is_terminal_with_the_api_message(registry):
    new_group(registry)
    with pytest.raises(TerminalError) as info:
        registry.create_package(
            {
                "ModelPackageGroupName": "churn",
                "ModelPackageName": "loose",
                "InferenceSpecification": INFERENCE,
            }
        )
    assert info.value.reason == "ValidationError"
    assert "Both ModelPackageName and ModelPackageGroupName are provided" in info.value.message


def test_package_in_a_missing_group_is_terminal_not_found(registry):
    with pytest.raises(TerminalError) as info:
        new_package(registry, group="nowhere")
    assert info.value.reason == "NotFound"
    assert "does not exist" in info.value.message


def test_client_side_validation_names_the_field(registry):
    with pytest.raises(TerminalError) as info:
        registry.create_group({"ModelPackageGroupName": "churn", "Unknown": 1})
    assert info.value.reason == "ValidationError" and "Unknown" in info.value.message


def test_unreachable_endpoint_is_retryable(env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    registry = make_registry(attempts=2)
    with pytest.raises(RetryableError) as info:
        registry.describe_model("churn")
    assert info.value.reason == "SageMakerUnreachable"
    assert registry.attempts["DescribeModel"] == 2


def test_one_client_serves_many_threads(env, registry):
    errors: list[BaseException] = []

    def create(index: int) -> None:
        try:
            new_group(registry, f"group-{index}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(index,)) for index in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert registry.calls["CreateModelPackageGroup"] == 24
    assert env.count("CreateModelPackageGroup") == 24
    assert registry.metrics()["calls"]["CreateModelPackageGroup"] == 24


def test_registry_for_shares_one_registry_per_region(env, monkeypatch):
    from model_registry_operator.registry import registry_for, sagemaker

    monkeypatch.setattr(sagemaker, "_registries", {})  # leave no shared registry behind
    assert registry_for() is registry_for(env.region)
    assert registry_for("eu-west-1") is not registry_for(env.region)
    assert registry_for("eu-west-1").region == "eu-west-1"


def test_find_package_finds_a_version_another_lookup_described_meanwhile(registry):
    """Two objects' lookups in one group at once: the other one describes (and remembers) this
    object's version after this lookup checked its memory and before it lists the group."""
    new_group(registry)
    mine = new_package(registry, uid="uid-1")
    restarted = make_registry()
    original = restarted._list_packages

    def listing_after_the_other_lookup(group, newest_first=False):
        restarted._list_packages = original
        restarted.find_package(group, {OWNER_UID_KEY: "uid-other"})  # describes every version
        return original(group, newest_first)

    restarted._list_packages = listing_after_the_other_lookup
    found = restarted.find_package("churn", {OWNER_UID_KEY: "uid-1"})
    assert found is not None and found["ModelPackageArn"] == mine
