"""A Model whose container names a package by ARN (`modelPackageName`), here another account's
shared through its group's resource policy: requireApprovedPackage reads its approval in
SageMaker (no Kubernetes object stands for it), nothing assumes the operator's account."""

from __future__ import annotations

import pytest

from controller_calls import reconcile
from fakes import FakeRegistry, sagemaker_error
from model_registry_operator.controllers import model as mdl
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.context import Context
from model_registry_operator.settings import Settings

REGISTRY_ACCOUNT = "111111111111"
SHARED = f"arn:aws:sagemaker:us-east-2:{REGISTRY_ACCOUNT}:model-package/churn/3"
ROLE = "arn:aws:iam::222222222222:role/SageMakerExecution"
SPEC = {"executionRoleArn": ROLE, "primaryContainer": {"modelPackageName": SHARED}}


def meta(generation=1):
    return Meta("churn", "ml-prod", "uid-m", generation)


def state(result):
    return next(
        (c["type"], c["reason"], c["message"]) for c in result.status["conditions"] if c["status"] == "True"
    )


def share(registry: FakeRegistry, approval: str | None = "Approved", arn: str = SHARED) -> None:
    """The registry account's version, as DescribeModelPackage by ARN returns it to this account."""
    registry.packages[arn] = {
        "ModelPackageArn": arn,
        "ModelPackageGroupName": "churn",
        "ModelPackageVersion": 3,
        "ModelPackageStatus": "Completed",
        **({"ModelApprovalStatus": approval} if approval else {}),
    }


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


def test_waits_for_the_shared_packages_approval_then_creates_the_model(ctx):
    share(ctx.registry, "PendingManualApproval")
    waiting = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx)
    kind, reason, message = state(waiting)
    assert (kind, reason) == ("Reconciling", "WaitingForApproval") and waiting.retry
    assert SHARED in message and "spec.primaryContainer.modelPackageName" in message
    assert "PendingManualApproval" in message and "requireApprovedPackage" in message
    assert ctx.registry.calls["create_model"] == 0

    ctx.registry.packages[SHARED]["ModelApprovalStatus"] = "Approved"
    ready = reconcile(mdl.CONTROLLER, SPEC, meta(), waiting.status, ctx)
    assert state(ready)[:2] == ("Ready", "Synced")
    assert ctx.registry.models["churn"]["PrimaryContainer"] == {"ModelPackageName": SHARED}
    assert ready.status["containers"] == [{"modelPackageName": SHARED}]
    assert ctx.registry.requests[0] == ("describe_package", {})


def test_once_made_the_package_is_not_read_again_and_a_rejection_keeps_the_model(ctx):
    share(ctx.registry)
    made = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx)
    ctx.registry.packages[SHARED]["ModelApprovalStatus"] = "Rejected"
    ctx.registry.calls.clear()
    resync = reconcile(mdl.CONTROLLER, SPEC, meta(), made.status, ctx, resync=True)
    assert state(resync)[:2] == ("Ready", "Synced") and resync.events == []
    assert ctx.registry.calls["describe_package"] == 0 and "churn" in ctx.registry.models
    # a changed spec makes a new model: the package must be approved again
    changed = reconcile(mdl.CONTROLLER, {**SPEC, "enableNetworkIsolation": True}, meta(2), made.status, ctx)
    assert state(changed)[:2] == ("Reconciling", "WaitingForApproval")


def test_a_package_that_does_not_exist_or_is_not_shared_is_waited_for(ctx):
    waiting = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx)
    kind, reason, message = state(waiting)
    assert (kind, reason) == ("Reconciling", "WaitingForPackage") and waiting.retry
    assert SHARED in message and "does not share it" in message


def test_a_refused_describe_is_stalled_naming_the_resource_policy(ctx):
    denied = (
        "User: arn:aws:sts::222222222222:assumed-role/prod/mro is not authorized to perform: "
        f"sagemaker:DescribeModelPackage on resource: {SHARED} because no resource-based policy allows it"
    )
    ctx.registry.fail_next("describe_package", sagemaker_error("AccessDeniedException", denied))
    result = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx)
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "AccessDenied")
    assert "resource policy" in message and "sagemaker:DescribeModelPackage" in message and denied in message


def test_not_required_means_not_read(ctx):
    result = reconcile(mdl.CONTROLLER, {**SPEC, "requireApprovedPackage": False}, meta(), {}, ctx)
    assert state(result)[:2] == ("Ready", "Synced") and ctx.registry.calls["describe_package"] == 0


def test_an_unversioned_package_has_no_approval_to_wait_for(ctx):
    unversioned = f"arn:aws:sagemaker:us-east-2:{REGISTRY_ACCOUNT}:model-package/churn-standalone"
    ctx.registry.packages[unversioned] = {
        "ModelPackageArn": unversioned,
        "ModelPackageName": "churn-standalone",
    }
    spec = {**SPEC, "primaryContainer": {"modelPackageName": unversioned}}
    assert state(reconcile(mdl.CONTROLLER, spec, meta(), {}, ctx))[:2] == ("Ready", "Synced")


def test_every_container_naming_a_package_is_checked(ctx):
    share(ctx.registry)
    other = SHARED.replace("/3", "/4")
    share(ctx.registry, "Rejected", arn=other)
    spec = {
        "executionRoleArn": ROLE,
        "containers": [{"modelPackageName": SHARED}, {"modelPackageName": other}],
    }
    kind, reason, message = state(reconcile(mdl.CONTROLLER, spec, meta(), {}, ctx))
    assert (kind, reason) == ("Reconciling", "WaitingForApproval")
    assert "spec.containers[1].modelPackageName" in message and "Rejected" in message
