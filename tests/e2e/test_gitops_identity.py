"""GitOps identity, through the real operator process: objects deleted with Retain and applied
again, a cluster rebuilt from Git, versions registered by a pipeline and adopted by number, and
an upgrade from the release that marked SageMaker objects with the Kubernetes UID.

An object's identity is `<instance>/<namespace>/<name>` (MRO_INSTANCE, default `default`);
whatever the operator creates carries it (tag `registry.mlops.dev/identity` on groups and
models, the same key in a version's CustomerMetadataProperties)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import (
    IMAGE,
    REPO,
    ROLE,
    OperatorProcess,
    condition,
    is_ready,
    package_spec,
    resource,
    wait_condition,
    wait_ready,
    wait_until,
)
from harness.kube import KubeApiError, KubeCluster

pytestmark = pytest.mark.e2e
IDENTITY_KEY = "registry.mlops.dev/identity"
UID_KEY = "registry.mlops.dev/uid"  # the previous release's mark
PLURALS = {"ModelPackageGroup": "mpg", "ModelPackage": "mp", "Model": "mdl"}
CREATES = ("CreateModelPackageGroup", "CreateModelPackage", "CreateModel")
DELETES = ("DeleteModelPackageGroup", "DeleteModelPackage", "DeleteModel")


def tags_of(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def versions(sm, group: str) -> list[dict[str, Any]]:
    return sm.list_model_packages(ModelPackageGroupName=group, MaxResults=100)["ModelPackageSummaryList"]


def counts(aws, operations=CREATES + DELETES) -> dict[str, int]:
    """Creates and deletes SageMaker carried out (a create it refused, "already exists", made
    nothing: a new Model tries to create before it describes)."""
    return {op: sum(1 for r in aws.requests(op) if r.status < 300) for op in operations}


def reasons_of(kube, obj: dict[str, Any]) -> list[str]:
    """The reasons of the Events of this very object (by UID: not those of an earlier one of
    the same name)."""
    return [e.get("reason") for e in kube.events_for(obj)]


def gitops_manifests() -> list[dict[str, Any]]:
    """What Git holds: a group, two versions and a Model serving the first, all Retain."""
    return [
        resource(
            "ModelPackageGroup",
            "churn",
            {"deletionPolicy": "Retain", "tags": [{"key": "team", "value": "risk"}]},
        ),
        resource(
            "ModelPackage",
            "churn-v1",
            package_spec(
                "churn",
                deletionPolicy="Retain",
                modelApprovalStatus="Approved",
                customerMetadataProperties={"stage": "prod"},
            ),
        ),
        resource(
            "ModelPackage",
            "churn-v2",
            package_spec("churn", deletionPolicy="Retain", modelApprovalStatus="PendingManualApproval"),
        ),
        resource(
            "Model",
            "churn",
            {
                "primaryContainer": {"modelPackageRef": {"name": "churn-v1"}},
                "executionRoleArn": ROLE,
                "deletionPolicy": "Retain",
            },
        ),
    ]


def apply_all(kube, namespace: str) -> list[dict[str, Any]]:
    return [kube.create(obj, namespace=namespace) for obj in gitops_manifests()]


def wait_all_ready_never_stalled(
    kube, namespace: str, objects: list[dict[str, Any]], operator: OperatorProcess
) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait for every object to be Ready, failing at once if any is ever Stalled (AlreadyExists
    above all) on the way; {(kind, name): the object}."""
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]

    def check():
        found = {(kind, name): kube.get(PLURALS[kind], name, namespace=namespace) for kind, name in keys}
        for (kind, name), obj in found.items():
            stalled = condition(obj, "Stalled")
            if stalled.get("status") == "True":
                pytest.fail(f"{kind} {name} is Stalled/{stalled.get('reason')}: {stalled.get('message')}")
            if "AlreadyExists" in reasons_of(kube, obj):
                pytest.fail(f"{kind} {name} had an AlreadyExists Event")
        return found if all(is_ready(obj) for obj in found.values()) else None

    return wait_until(check, "every object Ready, none Stalled", operator=operator, interval=0.3)


def arns_of(found: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {key: obj["status"]["arn"] for key, obj in found.items()}


def wait_adopted_events(kube, found: dict[tuple[str, str], dict[str, Any]], operator) -> None:
    for (kind, name), obj in found.items():
        wait_until(
            lambda: "Adopted" in reasons_of(kube, obj),
            f"an Adopted Event on the re-applied {kind} {name}",
            operator=operator,
            timeout=15,
        )
        reasons = reasons_of(kube, obj)
        assert not {"Created", "AlreadyExists", "DriftCorrected", "Replaced"} & set(reasons), (
            kind,
            name,
            reasons,
        )


def sleep_past_creation_second() -> None:
    """Kubernetes' creationTimestamp has whole seconds: an object applied again within the
    second SageMaker made its group cannot tell that group is older than itself (no Adopted
    Event then, by design). The flows below take longer anyway; this only makes sure."""
    time.sleep(1.1)


# ----------------------------------------------------------------- second clusters, operators


@pytest.fixture
def clusters(tmp_path) -> Iterator[Callable[[], KubeCluster]]:
    """Fresh emulated API servers (empty store, so new UIDs), the CRDs installed."""
    started: list[KubeCluster] = []

    def start() -> KubeCluster:
        cluster = KubeCluster.start_emulator(tmp_path / f"cluster-{len(started)}" / "kubeconfig")
        started.append(cluster)
        cluster.apply_crds_from(REPO / "crds")
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture
def operators(operator_env, tmp_path, request) -> Iterator[Callable[..., OperatorProcess]]:
    """More operator processes, each on its own cluster, all against the same SageMaker."""
    started: list[OperatorProcess] = []

    def start(cluster: KubeCluster, instance: str | None = None) -> OperatorProcess:
        env = {**operator_env, **cluster.env}
        if instance is not None:
            env["MRO_INSTANCE"] = instance
        log = tmp_path / f"operator-{len(started) + 2}-{instance or 'default'}.log"
        process = OperatorProcess(env, log, ["-A"]).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for process in started:
            print(f"=== {process.log_path.name}\n{process.log()[-15000:]}")


def skip_unless_emulated(kube) -> None:
    if not kube.emulated:
        pytest.skip("needs fresh emulated API servers")


# ----------------------------------------------------------------- 1. delete all, apply again


def test_deleted_with_retain_and_applied_again_takes_everything_back(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    first = wait_all_ready_never_stalled(kube, ns, apply_all(kube, ns), operator)
    arns = arns_of(first)
    before = counts(aws)
    assert before == {
        "CreateModelPackageGroup": 1,
        "CreateModelPackage": 2,
        "CreateModel": 1,
        "DeleteModelPackageGroup": 0,
        "DeleteModelPackage": 0,
        "DeleteModel": 0,
    }

    for kind, name in (("Model", "churn"), ("ModelPackage", "churn-v2"), ("ModelPackage", "churn-v1")):
        kube.delete(PLURALS[kind], name, namespace=ns)
    kube.delete("mpg", "churn", namespace=ns)
    for (kind, name), _ in first.items():
        kube.wait_gone(PLURALS[kind], name, namespace=ns, timeout=30)
    sleep_past_creation_second()

    again = wait_all_ready_never_stalled(kube, ns, apply_all(kube, ns), operator)
    assert arns_of(again) == arns
    wait_adopted_events(kube, again, operator)
    assert counts(aws) == before, "no new group, version or model, nothing deleted"
    assert len(versions(sm, "churn")) == 2
    group_arn = arns[("ModelPackageGroup", "churn")]
    assert tags_of(sm, group_arn) == {"team": "risk", IDENTITY_KEY: f"default/{ns}/churn"}
    model = sm.describe_model(ModelName="churn")
    assert model["PrimaryContainer"]["ModelPackageName"] == arns[("ModelPackage", "churn-v1")]
    assert tags_of(sm, model["ModelArn"]) == {IDENTITY_KEY: f"default/{ns}/churn"}
    v1 = sm.describe_model_package(ModelPackageName=arns[("ModelPackage", "churn-v1")])
    assert v1["CustomerMetadataProperties"] == {"stage": "prod", IDENTITY_KEY: f"default/{ns}/churn-v1"}
    assert again[("ModelPackage", "churn-v2")]["status"]["modelApprovalStatus"] == "PendingManualApproval"
    print(f"\nre-applied: same ARNs {sorted(arns.values())}; calls {counts(aws)}")


# ----------------------------------------------------------------- 2. a rebuilt cluster


def test_a_rebuilt_cluster_takes_everything_back_and_another_instance_is_refused(
    kube, kube_namespace, operator, aws, clusters, operators
):
    skip_unless_emulated(kube)
    ns, sm = kube_namespace, aws.client("sagemaker")
    arns = arns_of(wait_all_ready_never_stalled(kube, ns, apply_all(kube, ns), operator))
    before = counts(aws)
    operator.stop()  # the old cluster is gone, its operator with it
    sleep_past_creation_second()

    # rebuilt from Git: an empty API server, new UIDs, the same namespace and manifests
    rebuilt = clusters()
    rebuilt.create_namespace(ns)
    second = operators(rebuilt)
    again = wait_all_ready_never_stalled(rebuilt, ns, apply_all(rebuilt, ns), second)
    assert arns_of(again) == arns
    assert {obj["metadata"]["uid"] for obj in again.values()}.isdisjoint(
        {kube.get(PLURALS[k], n, namespace=ns)["metadata"]["uid"] for k, n in again}
    )
    wait_adopted_events(rebuilt, again, second)
    assert counts(aws) == before, "no new group, version or model, nothing deleted"
    assert len(versions(sm, "churn")) == 2

    # a second cluster sharing the account, with its own instance name: the same names are refused
    other = clusters()
    other.create_namespace(ns)
    third = operators(other, instance="blue")
    tags_added, tags_deleted = aws.count("AddTags"), aws.count("DeleteTags")
    other.create(gitops_manifests()[0], namespace=ns)
    v1_arn = arns[("ModelPackage", "churn-v1")]
    other.create(
        resource(
            "Model", "churn", {"primaryContainer": {"modelPackageName": v1_arn}, "executionRoleArn": ROLE}
        ),
        namespace=ns,
    )
    for plural, what in (("mpg", "Model package group churn"), ("mdl", "SageMaker model churn")):
        stalled = wait_condition(other, plural, "churn", ns, "Stalled", "AlreadyExists", third)
        message = condition(stalled, "Stalled")["message"]
        assert (
            what in message and f"the Kubernetes object {ns}/churn of operator instance default" in message
        ), message
        assert "arn" not in stalled["status"]
        print(f"\ninstance blue, {plural}/churn: {message}")
    # a resync period later (3 s), nothing was written for the refused objects
    time.sleep(3.5)
    assert (aws.count("AddTags"), aws.count("DeleteTags")) == (tags_added, tags_deleted)
    assert counts(aws) == before
    assert tags_of(sm, arns[("ModelPackageGroup", "churn")])[IDENTITY_KEY] == f"default/{ns}/churn"
    assert tags_of(sm, sm.describe_model(ModelName="churn")["ModelArn"]) == {
        IDENTITY_KEY: f"default/{ns}/churn"
    }
    # the rebuilt cluster's objects are still its own
    assert (
        wait_ready(rebuilt, "mpg", "churn", ns, second)["status"]["arn"]
        == arns[("ModelPackageGroup", "churn")]
    )
    assert wait_ready(rebuilt, "mdl", "churn", ns, second)["status"]["arn"] == arns[("Model", "churn")]


# ----------------------------------------------------------------- 3. versions a pipeline registered


INFERENCE = {
    "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://models/churn/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


def register_as_a_pipeline(sm, run: int) -> str:
    return sm.create_model_package(
        ModelPackageGroupName="churn",
        ModelPackageDescription=f"training run {run}",
        InferenceSpecification=INFERENCE,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"pipeline": "train-churn", "run": str(run)},
    )["ModelPackageArn"]


def test_versions_a_pipeline_registered_are_adopted_approved_and_kept(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    wait_ready(kube, "mpg", "churn", ns, operator)
    # an object for the version the pipeline will register fourth: waits for it meanwhile
    kube.create(
        resource(
            "ModelPackage",
            "churn-v4",
            {"modelPackageGroupName": "churn", "modelPackageVersion": 4, "modelApprovalStatus": "Approved"},
        ),
        namespace=ns,
    )
    waiting_since = time.monotonic()
    waiting = wait_condition(kube, "mp", "churn-v4", ns, "Reconciling", "WaitingForVersion", operator)
    assert "version 4 of model package group churn" in condition(waiting, "Reconciling")["message"]

    registered = [register_as_a_pipeline(sm, run) for run in (1, 2, 3)]
    untouched = {
        arn: sm.describe_model_package(ModelPackageName=arn) for arn in (registered[0], registered[2])
    }
    kube.create(
        resource(
            "ModelPackage",
            "churn-v2",
            {
                "modelPackageGroupRef": {"name": "churn"},
                "modelPackageVersion": 2,
                "modelApprovalStatus": "Approved",
                "approvalDescription": "approved in pull request 42",
                "customerMetadataProperties": {"reviewed-by": "ana"},
            },
        ),
        namespace=ns,
    )
    adopted = wait_ready(kube, "mp", "churn-v2", ns, operator)
    assert adopted["status"]["arn"] == registered[1]
    assert adopted["status"]["modelPackageVersion"] == 2
    assert adopted["status"]["modelApprovalStatus"] == "Approved"
    assert adopted["status"]["deletionPolicy"] == "Retain"
    described = sm.describe_model_package(ModelPackageName=registered[1])
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Approved",
        "approved in pull request 42",
    )
    assert described["CustomerMetadataProperties"] == {
        "pipeline": "train-churn",
        "run": "2",
        "reviewed-by": "ana",
    }
    wait_until(
        lambda: "Adopted" in reasons_of(kube, adopted), "an Adopted Event on churn-v2", operator=operator
    )
    for arn, before in untouched.items():
        after = sm.describe_model_package(ModelPackageName=arn)
        for member in ("ModelApprovalStatus", "CustomerMetadataProperties", "LastModifiedTime"):
            assert after.get(member) == before.get(member), (arn, member)
        assert after["ModelApprovalStatus"] == "PendingManualApproval"
    assert len(versions(sm, "churn")) == 3
    assert aws.count("CreateModelPackage") == 3  # the pipeline's, none by the operator

    # version 4 registered after its object waited a while (a stretched retry would be late)
    still = kube.get("mp", "churn-v4", namespace=ns)
    assert condition(still, "Reconciling").get("reason") == "WaitingForVersion"
    time.sleep(max(0.0, 10 - (time.monotonic() - waiting_since)))
    arn4 = register_as_a_pipeline(sm, 4)
    registered_at = time.monotonic()
    ready4 = wait_until(
        lambda: (lambda o: o if is_ready(o) else None)(kube.get("mp", "churn-v4", namespace=ns)),
        "churn-v4 Ready once version 4 is registered",
        operator=operator,
        interval=0.05,
    )
    seconds = time.monotonic() - registered_at
    waited = registered_at - waiting_since
    print(f"\nversion 4: Ready {seconds:.2f} s after its registration (its object had waited {waited:.1f} s)")
    assert seconds < 10
    assert ready4["status"]["arn"] == arn4 and ready4["status"]["modelApprovalStatus"] == "Approved"
    assert sm.describe_model_package(ModelPackageName=arn4)["ModelApprovalStatus"] == "Approved"
    assert len(versions(sm, "churn")) == 4 and aws.count("CreateModelPackage") == 4

    # deleting the objects keeps the versions (an adopted version is Retain unless the spec says Delete)
    for name in ("churn-v2", "churn-v4"):
        kube.delete("mp", name, namespace=ns)
    for name, obj in (("churn-v2", adopted), ("churn-v4", ready4)):
        kube.wait_gone("mp", name, namespace=ns, timeout=30)
        # kopf posts Events from a queue of its own: the object may be gone before its last Event
        wait_until(
            lambda o=obj: "Retained" in reasons_of(kube, o), f"a Retained Event on {name}", operator=operator
        )
    assert sorted(v["ModelPackageArn"] for v in versions(sm, "churn")) == sorted([*registered, arn4])
    assert aws.count("DeleteModelPackage") == 0


def test_a_version_number_below_one_is_refused_at_admission(kube, kube_namespace, crds):
    spec = {"modelPackageGroupRef": {"name": "churn"}, "modelPackageVersion": 0}
    with pytest.raises(KubeApiError) as refused:
        kube.create(resource("ModelPackage", "churn-v0", spec), namespace=kube_namespace)
    assert refused.value.status == 422
    assert "spec.modelPackageVersion" in [c.get("field") for c in refused.value.causes], refused.value.causes
    assert kube.find("mp", "churn-v0", namespace=kube_namespace) is None


# ----------------------------------------------------------------- 4. upgrade from the UID marks


def test_objects_the_previous_release_marked_with_uids_are_kept_after_an_upgrade(
    kube, kube_namespace, operator, aws
):
    """The previous release ran (objects applied, SageMaker objects marked with their UIDs,
    status.arn recorded; churn-v2's status lost in a crash right after its create), then the
    operator was upgraded: it takes them all as its own, adds the identity mark, makes nothing."""
    ns, sm = kube_namespace, aws.client("sagemaker")
    operator.stop()  # the previous release, stopped for the upgrade
    group = kube.create(
        resource("ModelPackageGroup", "churn", {"tags": [{"key": "team", "value": "risk"}]}), namespace=ns
    )
    v1 = kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn", modelApprovalStatus="Approved")),
        namespace=ns,
    )
    v2 = kube.create(resource("ModelPackage", "churn-v2", package_spec("churn")), namespace=ns)
    model = kube.create(
        resource(
            "Model",
            "churn",
            {"primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}, "executionRoleArn": ROLE},
        ),
        namespace=ns,
    )
    uid = {
        obj["metadata"]["name"] + "/" + obj["kind"]: obj["metadata"]["uid"] for obj in (group, v1, v2, model)
    }

    # what the previous release made in SageMaker
    group_arn = sm.create_model_package_group(
        ModelPackageGroupName="churn",
        Tags=[{"Key": "team", "Value": "risk"}, {"Key": UID_KEY, "Value": uid["churn/ModelPackageGroup"]}],
    )["ModelPackageGroupArn"]
    v1_arn = sm.create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification=INFERENCE,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={UID_KEY: uid["churn-v1/ModelPackage"]},
    )["ModelPackageArn"]
    v2_arn = sm.create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification=INFERENCE,
        CustomerMetadataProperties={UID_KEY: uid["churn-v2/ModelPackage"]},
    )["ModelPackageArn"]
    model_arn = sm.create_model(
        ModelName="churn",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"ModelPackageName": v1_arn},
        Tags=[{"Key": UID_KEY, "Value": uid["churn/Model"]}],
    )["ModelArn"]
    # and the status it recorded (churn-v2's was lost)
    kube.patch_status(
        "mpg", "churn", {"arn": group_arn, "modelPackageGroupStatus": "Completed"}, namespace=ns
    )
    kube.patch_status(
        "mp",
        "churn-v1",
        {
            "arn": v1_arn,
            "modelPackageVersion": 1,
            "modelPackageGroupName": "churn",
            "modelPackageStatus": "Completed",
            "modelApprovalStatus": "Approved",
        },
        namespace=ns,
    )
    kube.patch_status(
        "mdl", "churn", {"arn": model_arn, "containers": [{"modelPackageName": v1_arn}]}, namespace=ns
    )
    before = counts(aws)
    assert before["CreateModelPackage"] == 2

    operator.start()  # the upgraded release
    found = wait_all_ready_never_stalled(kube, ns, [group, v1, v2, model], operator)
    assert arns_of(found) == {
        ("ModelPackageGroup", "churn"): group_arn,
        ("ModelPackage", "churn-v1"): v1_arn,
        ("ModelPackage", "churn-v2"): v2_arn,
        ("Model", "churn"): model_arn,
    }
    assert counts(aws) == before, "no new group, version or model, nothing deleted"
    assert len(versions(sm, "churn")) == 2
    identity = f"default/{ns}"
    wait_until(
        lambda: (
            tags_of(sm, group_arn).get(IDENTITY_KEY) == f"{identity}/churn"
            and tags_of(sm, model_arn).get(IDENTITY_KEY) == f"{identity}/churn"
            and all(
                sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"].get(
                    IDENTITY_KEY
                )
                == f"{identity}/{name}"
                for arn, name in ((v1_arn, "churn-v1"), (v2_arn, "churn-v2"))
            )
        ),
        "the identity mark added to the group, both versions and the model",
        operator=operator,
    )
    assert tags_of(sm, group_arn) == {
        "team": "risk",
        UID_KEY: uid["churn/ModelPackageGroup"],
        IDENTITY_KEY: f"{identity}/churn",
    }
    assert tags_of(sm, model_arn) == {UID_KEY: uid["churn/Model"], IDENTITY_KEY: f"{identity}/churn"}
    assert sm.describe_model_package(ModelPackageName=v2_arn)["CustomerMetadataProperties"] == {
        UID_KEY: uid["churn-v2/ModelPackage"],
        IDENTITY_KEY: f"{identity}/churn-v2",
    }
    # quietly: nothing changed hands, nothing drifted
    for obj in found.values():
        reasons = reasons_of(kube, obj)
        assert not {"Adopted", "AlreadyExists", "Created", "DriftCorrected", "Replaced", "Updated"} & set(
            reasons
        ), (
            obj["kind"],
            obj["metadata"]["name"],
            reasons,
        )
    print(f"\nupgrade: calls {counts(aws)}; ready in place, identity marks added")
    # still Ready and unchanged after a few resyncs
    time.sleep(3.5)
    assert counts(aws) == before
    for kind, name in found:
        assert is_ready(kube.get(PLURALS[kind], name, namespace=ns)), (kind, name)
