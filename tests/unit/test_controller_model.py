import pytest

from fakes import FakeRegistry
from model_registry_operator.controllers import model as mdl
from model_registry_operator.controllers.common import Context, DictLookup, Meta
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/1"
SPEC = {"primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}, "executionRoleArn": ROLE}


def meta(generation=1, annotations=None):
    return Meta("churn", "ml", "uid-m", generation, None, dict(annotations or {}))


def package(approval, arn=PACKAGE_ARN, ready=True):
    outcome = Outcome.ready("Synced", "ok") if ready else Outcome.reconciling("Creating", "wait")
    return DictLookup({("ModelPackage", "ml", "churn-v1"): {"spec": {}, "status": {
        "arn": arn, "modelApprovalStatus": approval, "conditions": build_conditions(outcome, 1, None)}}})


def state(result):
    return next((c["type"], c["reason"]) for c in result.status["conditions"] if c["status"] == "True")


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


def test_waits_for_the_package_then_for_approval(ctx):
    missing = mdl.reconcile(SPEC, meta(), {}, ctx, DictLookup())
    assert state(missing) == ("Reconciling", "WaitingForPackage") and missing.retry
    pending = mdl.reconcile(SPEC, meta(), {}, ctx, package("PendingManualApproval"))
    assert state(pending) == ("Reconciling", "WaitingForApproval")
    assert "requireApprovedPackage" in pending.status["conditions"][0]["message"]
    assert sum(ctx.registry.calls.values()) == 0


def test_created_with_the_package_arn_once_approved(ctx):
    result = mdl.reconcile(SPEC, meta(), {}, ctx, package("Approved"))
    assert state(result) == ("Ready", "Synced")
    assert ctx.registry.models["churn"]["PrimaryContainer"] == {"ModelPackageName": PACKAGE_ARN}
    assert result.status["containers"] == [{"modelPackageName": PACKAGE_ARN}]
    assert result.status["arn"].endswith(":model/churn")
    assert [e.reason for e in result.events] == ["Created"]
    assert result.annotations[mdl.SPEC_HASH_ANNOTATION]


def test_unapproved_package_is_fine_when_not_required(ctx):
    result = mdl.reconcile({**SPEC, "requireApprovedPackage": False}, meta(), {}, ctx, package("PendingManualApproval"))
    assert state(result) == ("Ready", "Synced")


def test_changed_spec_replaces_the_model(ctx):
    first = mdl.reconcile(SPEC, meta(), {}, ctx, package("Approved"))
    annotations = first.annotations
    same = mdl.reconcile(SPEC, meta(1, annotations), first.status, ctx, package("Approved"))
    assert same.events == [] and ctx.registry.calls["create_model"] == 1
    new_arn = PACKAGE_ARN.replace("/1", "/2")
    replaced = mdl.reconcile(SPEC, meta(2, annotations), first.status, ctx, package("Approved", arn=new_arn))
    assert [e.reason for e in replaced.events] == ["Replaced"]
    assert ctx.registry.calls["delete_model"] == 1 and ctx.registry.calls["create_model"] == 2
    assert ctx.registry.models["churn"]["PrimaryContainer"]["ModelPackageName"] == new_arn
    assert replaced.annotations[mdl.SPEC_HASH_ANNOTATION] != annotations[mdl.SPEC_HASH_ANNOTATION]


def test_tag_changes_do_not_replace(ctx):
    first = mdl.reconcile(SPEC, meta(), {}, ctx, package("Approved"))
    tagged = {**SPEC, "tags": [{"key": "team", "value": "risk"}]}
    result = mdl.reconcile(tagged, meta(2, first.annotations), first.status, ctx, package("Approved"))
    assert ctx.registry.calls["create_model"] == 1
    assert ctx.registry.tags[first.status["arn"]] == {"team": "risk"}
    assert [e.reason for e in result.events] == ["Updated"]


def test_delete_and_retain(ctx):
    first = mdl.reconcile(SPEC, meta(), {}, ctx, package("Approved"))
    kept = mdl.delete({**SPEC, "deletionPolicy": "Retain"}, meta(1, first.annotations), first.status, ctx)
    assert "churn" in ctx.registry.models and [e.reason for e in kept.events] == ["Retained"]
    done = mdl.delete(SPEC, meta(1, first.annotations), first.status, ctx)
    assert "churn" not in ctx.registry.models and [e.reason for e in done.events] == ["Deleted"]


def test_never_created_model_is_not_deleted(ctx):
    ctx.registry.create_model({"ModelName": "churn", "PrimaryContainer": {"Image": "x"}})  # someone else's
    mdl.delete(SPEC, meta(), {}, ctx)
    assert "churn" in ctx.registry.models
