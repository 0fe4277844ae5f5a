"""The identity index and the fresh-version feed of SageMakerRegistry over HTTP against the
corrected moto endpoint, counting the SageMaker requests each lookup costs."""

from __future__ import annotations

import threading

import botocore.session
import pytest
from botocore.retries.standard import ExponentialBackoff

from model_registry_operator.controllers.listings import RecentVersions
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.registry import OWNER_UID_KEY, SageMakerRegistry, default_config

INFERENCE = {
    "Containers": [{"Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


@pytest.fixture
def env(aws, monkeypatch):
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    return aws


def make_registry() -> SageMakerRegistry:
    """A registry as a (new) operator process has it: it remembers nothing."""
    return SageMakerRegistry(session=botocore.session.Session(), config=default_config(total_max_attempts=3))


def marks(name: str, uid: str = "") -> dict[str, str]:
    found = {IDENTITY_KEY: f"default/ml/{name}"}
    if uid:
        found[OWNER_UID_KEY] = uid
    return found


def register(registry: SageMakerRegistry, name: str, group: str = "churn", **extra) -> str:
    """What the ModelPackage controller does for a new object: look up, then create."""
    assert registry.find_package(group, marks(name, f"uid-{name}")) is None
    metadata = {IDENTITY_KEY: f"default/ml/{name}"}
    return registry.create_package(
        {
            "ModelPackageGroupName": group,
            "InferenceSpecification": INFERENCE,
            "CustomerMetadataProperties": metadata,
            **extra,
        }
    )


def calls(aws, *operations: str) -> dict[str, int]:
    return {op: aws.count(op) for op in operations}


LOOKUPS = ("ListModelPackages", "DescribeModelPackage")


def test_a_group_this_process_created_costs_one_create_per_package(env):
    registry = make_registry()
    registry.create_group({"ModelPackageGroupName": "churn"})
    for number in range(25):
        register(registry, f"churn-v{number}")
    assert calls(env, *LOOKUPS, "CreateModelPackage") == {
        "ListModelPackages": 0,
        "DescribeModelPackage": 0,
        "CreateModelPackage": 25,
    }


def test_after_a_restart_a_group_is_listed_once_and_each_version_described_once(env):
    first = make_registry()
    first.create_group({"ModelPackageGroupName": "churn"})
    sm = env.client("sagemaker")
    for run in range(120):  # a pipeline's versions: more than a page
        sm.create_model_package(
            ModelPackageGroupName="churn",
            InferenceSpecification=INFERENCE,
            CustomerMetadataProperties={"pipeline": "train", "run": str(run)},
        )
    mine = register(first, "churn-v1")
    before = calls(env, *LOOKUPS)

    restarted = make_registry()
    found: list[object] = []
    start = threading.Barrier(16)

    def look(number: int) -> None:
        start.wait()
        # a worker per object: 15 new ones and the re-applied churn-v1 (a new UID)
        name = "churn-v1" if number == 0 else f"churn-new-{number}"
        found.append(restarted.find_package("churn", marks(name, f"new-uid-{number}")))

    threads = [threading.Thread(target=look, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    hits = [f for f in found if f is not None]
    assert [h["ModelPackageArn"] for h in hits] == [mine]  # type: ignore[index]
    cost = {op: env.count(op) - before[op] for op in LOOKUPS}
    assert cost == {"ListModelPackages": 2, "DescribeModelPackage": 121}, "one listing, one describe each"

    assert restarted.find_package("churn", marks("churn-v99")) is None
    assert {op: env.count(op) - before[op] for op in LOOKUPS} == cost, "built: no call"


def test_versions_other_objects_record_are_not_described_after_a_restart(env):
    first = make_registry()
    first.create_group({"ModelPackageGroupName": "churn"})
    recorded = {register(first, f"churn-v{n}"): f"default/ml/churn-v{n}" for n in range(30)}
    lost = register(first, "churn-lost")  # created just before a crash: in no status
    before = calls(env, *LOOKUPS)

    restarted = make_registry()
    found = restarted.find_package("churn", marks("churn-lost", "uid-churn-lost"), lambda: recorded)
    assert found is not None and found["ModelPackageArn"] == lost
    assert restarted.find_package("churn", marks("churn-new"), lambda: recorded) is None
    assert {op: env.count(op) - before[op] for op in LOOKUPS} == {
        "ListModelPackages": 1,
        "DescribeModelPackage": 1,
    }


def test_the_client_token_comes_from_the_identity_and_the_request(env):
    registry = make_registry()
    registry.create_group({"ModelPackageGroupName": "churn"})
    request = {
        "ModelPackageGroupName": "churn",
        "InferenceSpecification": INFERENCE,
        "CustomerMetadataProperties": {IDENTITY_KEY: "default/ml/churn-v1"},
    }
    first = registry.create_package(dict(request))
    # a crash before the status write, another process, a new UID: the same request, the same ARN
    assert make_registry().create_package(dict(request)) == first
    # a changed request is a new call (SageMaker may refuse a token reused with other parameters)
    changed = make_registry().create_package({**request, "ModelApprovalStatus": "Approved"})
    assert changed != first


def test_a_deleted_version_is_not_found_again(env):
    registry = make_registry()
    registry.create_group({"ModelPackageGroupName": "churn"})
    arn = register(registry, "churn-v1")
    registry.delete_package(arn)
    assert registry.find_package("churn", marks("churn-v1")) is None


def test_fresh_versions_of_many_groups_are_read_with_one_listing_per_hundred(env):
    registry = make_registry()
    for number in range(3):
        registry.create_group({"ModelPackageGroupName": f"group-{number}"})
    recent = RecentVersions(registry.recent_packages)
    arns = [register(registry, f"package-{n}", group=f"group-{n % 3}") for n in range(150)]
    for arn in arns:
        recent.created(arn)
    before = env.count("ListModelPackages")
    recent._run()  # the round the waiting versions' timers would make
    assert env.count("ListModelPackages") - before == 2
    assert {recent.status(arn)["ModelPackageStatus"] for arn in arns} == {"Completed"}  # type: ignore[index]
    assert env.count("ListModelPackages") - before == 2
