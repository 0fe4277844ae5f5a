from fakes import FakeRegistry
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.common import Context, Meta
from model_registry_operator.errors import RetryableError
from model_registry_operator.settings import Settings

META = Meta("churn", "ml", "uid-1", 1)


def context(**settings):
    return Context.create(FakeRegistry(), Settings(**settings))


def conditions(result):
    return {c["type"]: (c["status"], c["reason"]) for c in result.status["conditions"]}


def test_creates_the_group_with_tags_and_reports_ready():
    ctx = context()
    result = mpg.reconcile({"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    assert conditions(result)["Ready"] == ("True", "Synced")
    assert result.status["arn"].endswith("model-package-group/churn")
    assert result.status["modelPackageGroupStatus"] == "Completed"
    assert result.status["observedGeneration"] == 1 and result.retry is None
    assert ctx.registry.tags[result.status["arn"]] == {"team": "risk"}
    assert [e.reason for e in result.events] == ["Created"]


def test_tags_follow_the_spec_without_recreating():
    ctx = context()
    first = mpg.reconcile({"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    changed = Meta("churn", "ml", "uid-1", 2)
    second = mpg.reconcile({"tags": [{"key": "owner", "value": "ana"}]}, changed, first.status, ctx)
    assert ctx.registry.tags[first.status["arn"]] == {"owner": "ana"}
    assert ctx.registry.calls["create_group"] == 1
    assert [e.reason for e in second.events] == ["Updated"]
    assert second.status["observedGeneration"] == 2


def test_invalid_spec_is_stalled_naming_the_field_without_calls():
    ctx = context()
    result = mpg.reconcile({"modelPackageGroupName": "bad_name!"}, META, {}, ctx)
    assert conditions(result)["Stalled"] == ("True", "InvalidSpec")
    assert "spec.modelPackageGroupName" in result.status["conditions"][0]["message"]
    assert sum(ctx.registry.calls.values()) == 0
    assert [e.type for e in result.events] == ["Warning"]
    # the same stall again posts no second Event
    again = mpg.reconcile({"modelPackageGroupName": "bad_name!"}, META, result.status, ctx)
    assert again.events == []


def test_throttling_is_reconciling_with_backoff():
    ctx = context()
    ctx.registry.fail_next("describe_group", RetryableError("ThrottlingException", "Rate exceeded."))
    result = mpg.reconcile({}, META, {}, ctx, attempt=3)
    assert conditions(result)["Reconciling"] == ("True", "ThrottlingException")
    assert result.retry == 8


def test_delete_waits_for_versions_then_deletes():
    ctx = context()
    created = mpg.reconcile({}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    waiting = mpg.delete({}, META, created.status, ctx)
    assert waiting.retry and conditions(waiting)["Reconciling"] == ("True", "WaitingForVersions")
    assert "1 model package version" in waiting.status["conditions"][0]["message"]
    assert "churn" in ctx.registry.groups
    ctx.registry.packages.clear()
    done = mpg.delete({}, META, created.status, ctx)
    assert done.retry is None and "churn" not in ctx.registry.groups
    assert [e.reason for e in done.events] == ["Deleted"]


def test_retain_leaves_sagemaker_untouched():
    ctx = context(deletion_policy="Retain")
    created = mpg.reconcile({}, META, {}, ctx)
    calls = sum(ctx.registry.calls.values())
    done = mpg.delete({}, META, created.status, ctx)
    assert done.retry is None and "churn" in ctx.registry.groups
    assert sum(ctx.registry.calls.values()) == calls
    # the spec's own policy wins over the operator default
    ctx2 = context(deletion_policy="Retain")
    mpg.reconcile({}, META, {}, ctx2)
    mpg.delete({"deletionPolicy": "Delete"}, META, {}, ctx2)
    assert "churn" not in ctx2.registry.groups


def test_resync_shares_the_packages_listing_and_recreates_a_lost_group():
    ctx = context()
    created = mpg.reconcile({}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    ctx.listings.get("churn")  # the packages' resync listed the group already
    before = ctx.registry.calls.copy()
    resynced = mpg.reconcile({}, META, created.status, ctx, resync=True)
    assert ctx.registry.calls - before == {"list_tags": 1}  # no describe, no listing of its own
    assert resynced.status == created.status and resynced.events == []

    ctx.registry.packages.clear()
    ctx.registry.groups.clear()
    ctx.listings.forget("churn")
    again = mpg.reconcile({}, META, created.status, ctx, resync=True)
    assert "churn" in ctx.registry.groups
    assert [e.reason for e in again.events] == ["DriftCorrected"]


def test_tags_changed_in_sagemaker_are_set_back_on_resync():
    ctx = context()
    created = mpg.reconcile({"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    ctx.registry.tags[created.status["arn"]] = {"team": "someone-else", "extra": "x"}
    resynced = mpg.reconcile({"tags": [{"key": "team", "value": "risk"}]}, META, created.status, ctx, resync=True)
    assert ctx.registry.tags[created.status["arn"]] == {"team": "risk"}
    assert [e.reason for e in resynced.events] == ["DriftCorrected"]
