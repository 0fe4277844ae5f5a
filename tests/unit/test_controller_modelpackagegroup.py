import copy
import dataclasses
import datetime

import pytest
from botocore.exceptions import ClientError

from controller_calls import delete, reconcile
from fakes import FakeRegistry
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.context import Context
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.registry import OWNER_UID_KEY, classify_error
from model_registry_operator.settings import Settings
from model_registry_operator.timing import RETRY_JITTER, THROTTLED_DELAY, WAIT_FOR_VERSIONS_DELAY

META = Meta("churn", "ml", "uid-1", 1)
OURS = {IDENTITY_KEY: "default/ml/churn"}  # the identity tag every group it makes carries


def context(**settings):
    return Context.create(FakeRegistry(), Settings(**settings))


def conditions(result):
    return {c["type"]: (c["status"], c["reason"]) for c in result.status["conditions"]}


def test_creates_the_group_with_tags_and_reports_ready():
    ctx = context()
    result = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    assert conditions(result)["Ready"] == ("True", "Synced")
    assert result.status["arn"].endswith("model-package-group/churn")
    assert result.status["modelPackageGroupStatus"] == "Completed"
    assert result.status["observedGeneration"] == 1 and result.retry is None
    assert ctx.registry.tags[result.status["arn"]] == {"team": "risk", **OURS}
    assert [e.reason for e in result.events] == ["Created"]


def test_tags_follow_the_spec_without_recreating():
    ctx = context()
    first = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    changed = Meta("churn", "ml", "uid-1", 2)
    second = reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "owner", "value": "ana"}]}, changed, first.status, ctx
    )
    assert ctx.registry.tags[first.status["arn"]] == {"owner": "ana", **OURS}
    assert ctx.registry.calls["create_group"] == 1
    assert [e.reason for e in second.events] == ["Updated"]
    assert second.status["observedGeneration"] == 2


def test_invalid_spec_is_stalled_naming_the_field_without_calls():
    ctx = context()
    result = reconcile(mpg.CONTROLLER, {"modelPackageGroupName": "bad_name!"}, META, {}, ctx)
    assert conditions(result)["Stalled"] == ("True", "InvalidSpec")
    assert "spec.modelPackageGroupName" in result.status["conditions"][0]["message"]
    assert sum(ctx.registry.calls.values()) == 0
    assert [e.type for e in result.events] == ["Warning"]
    # the same stall again posts no second Event
    again = reconcile(mpg.CONTROLLER, {"modelPackageGroupName": "bad_name!"}, META, result.status, ctx)
    assert again.events == []


def throttled():
    """What the registry raises once botocore's own retries of a throttled call are spent."""
    return classify_error(
        ClientError(
            {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded."},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "DescribeModelPackageGroup",
        )
    )


def test_throttling_is_reconciling_and_waits_at_least_the_throttling_delay():
    ctx = context()
    ctx.registry.fail_next("describe_group", throttled())
    first = reconcile(mpg.CONTROLLER, {}, META, {}, ctx, attempt=0)
    assert conditions(first)["Reconciling"] == ("True", "Throttled") and first.failed
    assert THROTTLED_DELAY <= first.retry <= THROTTLED_DELAY * (1 + RETRY_JITTER)  # not 1 s
    ctx.registry.fail_next("describe_group", throttled())
    later = reconcile(
        mpg.CONTROLLER, {}, META, first.status, ctx, attempt=5
    )  # backoff 32 s is past the floor
    assert 32 <= later.retry <= 32 * (1 + RETRY_JITTER)


def test_delete_waits_for_versions_then_deletes():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    waiting = delete(mpg.CONTROLLER, {}, META, created.status, ctx)
    assert waiting.retry and conditions(waiting)["Reconciling"] == ("True", "WaitingForVersions")
    assert "1 model package version" in waiting.status["conditions"][0]["message"]
    assert "churn" in ctx.registry.groups
    ctx.registry.packages.clear()
    done = delete(mpg.CONTROLLER, {}, META, created.status, ctx)
    assert done.retry is None and "churn" not in ctx.registry.groups
    assert [e.reason for e in done.events] == ["Deleted"]


def waited(result, seconds, ctype="Reconciling"):
    """result's status as if its `ctype` condition had been True for `seconds`."""
    status = copy.deepcopy(result.status)
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    for c in status["conditions"]:
        if c["type"] == ctype:
            c["lastTransitionTime"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return status


def test_versions_that_outlast_the_wait_are_stalled_by_name_and_the_group_still_goes_after_them():
    ctx = context()  # resync 300 s: the wait is bounded at five minutes
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    arns = [
        ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": f"t{n}"})
        for n in range(5)
    ]
    waiting = delete(mpg.CONTROLLER, {}, META, created.status, ctx)
    assert conditions(waiting)["Reconciling"] == ("True", "WaitingForVersions") and waiting.events == []
    still = delete(mpg.CONTROLLER, {}, META, waited(waiting, 290), ctx)
    assert conditions(still)["Reconciling"] == ("True", "WaitingForVersions")

    stalled = delete(mpg.CONTROLLER, {}, META, waited(waiting, 301), ctx)
    assert conditions(stalled)["Stalled"] == ("True", "VersionsRemain")
    message = stalled.status["conditions"][2]["message"]
    assert all(arn in message for arn in arns[:3]) and arns[3] not in message and "and 2 more" in message
    assert "5 model package version(s)" in message and "deletionPolicy to Retain" in message
    assert [(e.type, e.reason) for e in stalled.events] == [("Warning", "VersionsRemain")]
    assert (
        stalled.retry >= WAIT_FOR_VERSIONS_DELAY and "churn" in ctx.registry.groups
    )  # still checked, slowly

    again = delete(mpg.CONTROLLER, {}, META, waited(stalled, 600, "Stalled"), ctx)
    assert conditions(again)["Stalled"] == ("True", "VersionsRemain")
    assert (
        again.events == [] and again.status["conditions"][2]["message"] == message
    )  # one Event, same message
    assert again.retry == 120  # a quarter of the 15 minutes waited, at most two minutes

    ctx.registry.packages.clear()  # someone deleted them in SageMaker
    done = delete(mpg.CONTROLLER, {}, META, again.status, ctx)
    assert done.retry is None and "churn" not in ctx.registry.groups
    assert [e.reason for e in done.events] == ["Deleted"]


def deleting(seconds):
    """META of an object whose deletion was asked for `seconds` ago."""
    return dataclasses.replace(
        META, deleted=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    )


def test_the_versions_wait_counts_from_the_deletion_through_other_errors():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    ctx.registry.fail_next("list_packages", throttled())
    throttled_status = delete(
        mpg.CONTROLLER, {}, deleting(290), created.status, ctx
    )  # a throttled check in between
    assert conditions(throttled_status)["Reconciling"] == ("True", "Throttled")
    stalled = delete(mpg.CONTROLLER, {}, deleting(301), throttled_status.status, ctx)
    assert conditions(stalled)["Stalled"] == ("True", "VersionsRemain")
    assert [e.reason for e in stalled.events] == ["VersionsRemain"]


def test_stalled_versions_stay_stalled_whatever_the_clocks_say():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    stalled = delete(mpg.CONTROLLER, {}, deleting(400), created.status, ctx)
    assert conditions(stalled)["Stalled"] == ("True", "VersionsRemain")
    # another replica whose clock is behind, or no deletionTimestamp at hand: not back to waiting
    for meta, status in ((deleting(-30), stalled.status), (META, waited(stalled, -3, "Stalled"))):
        again = delete(mpg.CONTROLLER, {}, meta, status, ctx)
        assert conditions(again)["Stalled"] == ("True", "VersionsRemain") and again.events == []


def test_the_versions_wait_follows_the_resync_period():
    ctx = context(resync_seconds=3)  # as the end-to-end tests run the operator
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    waiting = delete(mpg.CONTROLLER, {}, META, created.status, ctx)
    assert conditions(delete(mpg.CONTROLLER, {}, META, waited(waiting, 7), ctx))["Stalled"] == (
        "True",
        "VersionsRemain",
    )


def test_retain_leaves_sagemaker_untouched():
    ctx = context(deletion_policy="Retain")
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    calls = sum(ctx.registry.calls.values())
    done = delete(mpg.CONTROLLER, {}, META, created.status, ctx)
    assert done.retry is None and "churn" in ctx.registry.groups
    assert sum(ctx.registry.calls.values()) == calls
    # the spec's own policy wins over the operator default
    ctx2 = context(deletion_policy="Retain")
    reconcile(mpg.CONTROLLER, {}, META, {}, ctx2)
    delete(mpg.CONTROLLER, {"deletionPolicy": "Delete"}, META, {}, ctx2)
    assert "churn" not in ctx2.registry.groups


def test_resync_shares_the_packages_listing_and_recreates_a_lost_group():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {}, META, {}, ctx)
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})
    ctx.listings.get("churn")  # the packages' resync listed the group already
    before = ctx.registry.calls.copy()
    resynced = reconcile(mpg.CONTROLLER, {}, META, created.status, ctx, resync=True)
    assert ctx.registry.calls - before == {"list_tags": 1}  # no describe, no listing of its own
    assert resynced.status == created.status and resynced.events == []

    ctx.registry.packages.clear()
    ctx.registry.groups.clear()
    ctx.listings.forget("churn")
    again = reconcile(mpg.CONTROLLER, {}, META, created.status, ctx, resync=True)
    assert "churn" in ctx.registry.groups
    assert [e.reason for e in again.events] == ["DriftCorrected"]


def test_tags_changed_in_sagemaker_are_set_back_on_resync():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "risk"}]}, META, {}, ctx)
    ctx.registry.tags[created.status["arn"]] = {"team": "someone-else", "extra": "x"}
    resynced = reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "team", "value": "risk"}]}, META, created.status, ctx, resync=True
    )
    assert ctx.registry.tags[created.status["arn"]] == {"team": "risk", **OURS}  # the owner tag put back too
    assert [e.reason for e in resynced.events] == ["DriftCorrected"]


# Ownership: group names are account-wide, objects namespaced (team-a/churn, team-b/churn).

OTHER = Meta("churn", "team-b", "uid-2", 1)


def test_a_group_another_object_made_is_stalled_and_never_touched():
    ctx = context()
    ours = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx)
    arn = ours.status["arn"]
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ClientToken": "t"})  # team a's version
    before = ctx.registry.calls.copy()
    theirs = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "b"}]}, OTHER, {}, ctx)
    assert conditions(theirs)["Stalled"] == ("True", "AlreadyExists")
    message = next(c["message"] for c in theirs.status["conditions"] if c["type"] == "Stalled")
    assert (
        "group churn" in message and "the Kubernetes object ml/churn of operator instance default" in message
    )
    assert [(e.type, e.reason) for e in theirs.events] == [("Warning", "AlreadyExists")]
    assert "arn" not in theirs.status and "modelPackageGroupStatus" not in theirs.status
    assert ctx.registry.tags[arn] == {"team": "a", **OURS}
    assert ctx.registry.calls - before == {"describe_group": 1, "list_tags": 1}  # no tag sync

    again = reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "team", "value": "b"}]}, OTHER, theirs.status, ctx, resync=True
    )
    assert (
        conditions(again)["Stalled"] == ("True", "AlreadyExists") and again.events == []
    )  # no rewrite, no Event
    assert (
        reconcile(
            mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, ours.status, ctx, resync=True
        ).events
        == []
    )

    before = ctx.registry.calls.copy()
    gone = delete(mpg.CONTROLLER, {"deletionPolicy": "Delete"}, OTHER, again.status, ctx)
    assert ctx.registry.calls - before == {"describe_group": 1, "list_tags": 1}  # no listing, no delete
    assert gone.retry is None and "churn" in ctx.registry.groups  # no waiting on team a's versions either
    assert [(e.type, e.reason) for e in gone.events] == [("Warning", "NotOwned")]
    assert "the Kubernetes object ml/churn of operator instance default" in gone.events[0].message
    assert ctx.registry.tags[arn] == {"team": "a", **OURS}


def test_a_group_it_made_before_its_status_was_written_is_its_own():
    ctx = context()
    reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx
    )  # then a crash: no status written
    resumed = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx)
    assert conditions(resumed)["Ready"] == ("True", "Synced") and resumed.events == []
    assert ctx.registry.tags[resumed.status["arn"]] == {
        "team": "a",
        **OURS,
    }  # tagged by CreateModelPackageGroup
    done = delete(mpg.CONTROLLER, {}, META, {}, ctx)  # also deleted without a status
    assert "churn" not in ctx.registry.groups and [e.reason for e in done.events] == ["Deleted"]


def test_an_untagged_group_is_adopted_and_claimed_then_refused_to_others():
    ctx = context()
    arn = ctx.registry.create_group(
        {"ModelPackageGroupName": "churn", "Tags": [{"Key": "made-in", "Value": "studio"}]}
    )
    adopted = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx)
    assert conditions(adopted)["Ready"] == ("True", "Synced") and adopted.status["arn"] == arn
    assert [e.reason for e in adopted.events] == ["Adopted", "Updated"]
    assert "marked it as default/ml/churn" in adopted.events[0].message
    assert ctx.registry.tags[arn] == {"team": "a", **OURS}
    assert (
        reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, adopted.status, ctx).events
        == []
    )
    assert conditions(reconcile(mpg.CONTROLLER, {}, OTHER, {}, ctx))["Stalled"] == ("True", "AlreadyExists")


def test_the_identity_tag_is_added_quietly_to_a_group_of_an_earlier_release():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx)
    ctx.registry.tags[created.status["arn"]] = {"team": "a", OWNER_UID_KEY: "uid-1"}  # its UID mark
    resynced = reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, created.status, ctx, resync=True
    )
    assert ctx.registry.tags[created.status["arn"]] == {"team": "a", OWNER_UID_KEY: "uid-1", **OURS}
    assert resynced.events == [] and resynced.status == created.status
    # another object of an earlier release, same name in another namespace: still not ours
    ctx.registry.tags[created.status["arn"]] = {"team": "a", OWNER_UID_KEY: "uid-9"}
    refused = reconcile(mpg.CONTROLLER, {}, OTHER, {}, ctx)
    assert conditions(refused)["Stalled"] == ("True", "AlreadyExists")
    assert "UID uid-9, marked by an earlier release" in refused.status["conditions"][2]["message"]


def test_the_owner_tag_of_a_group_made_before_owner_tags_is_added_quietly():
    ctx = context()
    created = reconcile(mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, {}, ctx)
    ctx.registry.tags[created.status["arn"]] = {"team": "a"}  # as an older operator version made it
    resynced = reconcile(
        mpg.CONTROLLER, {"tags": [{"key": "team", "value": "a"}]}, META, created.status, ctx, resync=True
    )
    assert ctx.registry.tags[created.status["arn"]] == {"team": "a", **OURS}
    assert resynced.events == [] and resynced.status == created.status


def test_a_group_neither_made_nor_adopted_is_not_deleted():
    ctx = context()
    ctx.registry.create_group({"ModelPackageGroupName": "churn"})  # by hand; the object never reconciled
    left = delete(mpg.CONTROLLER, {}, META, {}, ctx)
    assert left.retry is None and "churn" in ctx.registry.groups
    assert [e.reason for e in left.events] == ["NotOwned"] and "neither created nor adopted" in left.events[
        0
    ].message


@pytest.mark.parametrize("spec_policy, kept", [(None, True), ("Delete", False)])
def test_the_default_deletion_policy_is_the_one_in_force_at_creation(spec_policy, kept):
    # made while the operator's default was Retain; the default is Delete by the time it goes
    # (a helm upgrade without the old values): Retain still holds, unless the spec says otherwise
    spec = {"deletionPolicy": spec_policy} if spec_policy else {}
    ctx = context(deletion_policy="Retain")
    created = reconcile(mpg.CONTROLLER, spec, META, {}, ctx)
    assert created.status["deletionPolicy"] == (spec_policy or "Retain")
    later = context(deletion_policy="Delete")
    later.registry = ctx.registry
    again = reconcile(
        mpg.CONTROLLER, spec, META, created.status, later
    )  # resyncs under the new default keep it
    done = delete(mpg.CONTROLLER, spec, META, again.status, later)
    assert done.retry is None and ("churn" in ctx.registry.groups) is kept
    assert [e.reason for e in done.events] == (["Retained"] if kept else ["Deleted"])


def test_applied_again_with_a_new_uid_it_takes_its_group_back_and_another_instance_cannot():
    """GitOps: delete with Retain, apply the same manifest again (a new UID, created later)."""
    ctx = context()
    spec = {"deletionPolicy": "Retain", "tags": [{"key": "team", "value": "a"}]}
    created = reconcile(mpg.CONTROLLER, spec, META, {}, ctx)
    kept = delete(mpg.CONTROLLER, spec, META, created.status, ctx)
    assert [e.reason for e in kept.events] == ["Retained"] and "churn" in ctx.registry.groups

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    again = reconcile(mpg.CONTROLLER, spec, Meta("churn", "ml", "uid-new", 1, created=later), {}, ctx)
    assert conditions(again)["Ready"] == ("True", "Synced") and again.status["arn"] == created.status["arn"]
    assert [e.reason for e in again.events] == ["Adopted"] and "manages it again" in again.events[0].message
    assert ctx.registry.calls["create_group"] == 1

    # a second cluster on the same account, its operator with another instance name
    elsewhere = Context.create(ctx.registry, Settings(instance="staging"))
    refused = reconcile(mpg.CONTROLLER, spec, Meta("churn", "ml", "uid-x", 1, created=later), {}, elsewhere)
    assert conditions(refused)["Stalled"] == ("True", "AlreadyExists")
    message = refused.status["conditions"][2]["message"]
    assert "the Kubernetes object ml/churn of operator instance default" in message
    assert ctx.registry.tags[created.status["arn"]] == {"team": "a", **OURS}  # nothing written to it
