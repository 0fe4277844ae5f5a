import collections
import copy
import itertools
import json

import pytest

from controller_calls import DictLookup, delete, reconcile
from fakes import FakeRegistry
from model_registry_operator.controllers import modelpackage as mp
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.context import Context
from model_registry_operator.controllers.listings import GroupListings
from model_registry_operator.controllers.wiring import Runtime
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.registry.base import OWNER_UID_KEY
from model_registry_operator.settings import Settings
from model_registry_operator.timing import RETRY_JITTER, SOURCE_STALL_AFTER, audit_due

IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
SPEC = {
    "modelPackageGroupRef": {"name": "churn"},
    "inferenceSpecification": {
        "containers": [{"image": IMAGE, "modelDataUrl": "s3://models/churn/model.tar.gz"}],
        "supportedContentTypes": ["text/csv"],
        "supportedResponseMIMETypes": ["text/csv"],
    },
    "customerMetadataProperties": {"team": "risk", "stage": "dev"},
}


def meta(generation=1, uid="uid-p1"):
    return Meta("churn-v1", "ml", uid, generation)


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


@pytest.fixture
def lookup(ctx):
    group = reconcile(mpg.CONTROLLER, {}, Meta("churn", "ml", "uid-g", 1), {}, ctx)
    return DictLookup({("ModelPackageGroup", "ml", "churn"): {"spec": {}, "status": group.status}})


def spec(**changes):
    value = copy.deepcopy(SPEC)
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def reasons(result):
    return [e.reason for e in result.events]


def state(result):
    return next((c["type"], c["reason"]) for c in result.status["conditions"] if c["status"] == "True")


def converge(ctx, lookup, raw, status=None, generation=1, uid="uid-p1", limit=5):
    """Run reconcile as kopf would (again while it asks to retry); all results."""
    results = []
    status = status or {}
    for _ in range(limit):
        result = reconcile(mp.CONTROLLER, raw, meta(generation, uid), status, ctx, lookup)
        results.append(result)
        status = result.status
        if result.retry is None:
            break
    return results


def test_waits_for_the_referenced_group(ctx):
    absent = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, DictLookup())
    assert state(absent) == ("Reconciling", "WaitingForGroup") and absent.retry
    assert "churn does not exist" in absent.status["conditions"][0]["message"]
    not_ready = DictLookup({("ModelPackageGroup", "ml", "churn"): {"spec": {}, "status": {}}})
    waiting = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, not_ready)
    assert state(waiting) == ("Reconciling", "WaitingForGroup")
    # each ended by a change of the group, which wakes the package: no retry timer (Result.woken);
    # not Ready yet (usually for a second) is first ridden out in memory
    assert absent.woken and waiting.woken and waiting.short
    assert sum(ctx.registry.calls.values()) == 0


def test_a_wait_for_the_group_is_ended_by_its_resync_when_no_wake_came(ctx, lookup):
    """The group's change wakes a waiting package (wiring.py): the wait has no timer of its own
    (Result.woken). Should that wake be missed, the package's periodic resync registers it."""
    waiting = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, DictLookup())
    assert state(waiting) == ("Reconciling", "WaitingForGroup") and waiting.woken
    resynced = reconcile(mp.CONTROLLER, spec(), meta(), waiting.status, ctx, lookup, resync=True)
    assert state(resynced) in {("Reconciling", "Creating"), ("Ready", "Synced")}
    assert len(ctx.registry.packages) == 1 and resynced.status["arn"]


def test_creates_a_version_with_owner_marker_and_token(ctx, lookup):
    results = converge(ctx, lookup, spec())
    final = results[-1]
    assert state(results[0]) == ("Reconciling", "Creating")
    assert state(final) == ("Ready", "Synced")
    assert final.status["modelPackageVersion"] == 1
    assert final.status["modelPackageGroupName"] == "churn"
    assert final.status["modelPackageStatus"] == "Completed"
    assert final.status["modelApprovalStatus"] == "PendingManualApproval"
    (package,) = ctx.registry.packages.values()
    assert package["CustomerMetadataProperties"] == {
        "team": "risk",
        "stage": "dev",
        IDENTITY_KEY: "default/ml/churn-v1",
    }
    create = next(r for op, r in ctx.registry.requests if op == "create_package")
    assert create["ClientToken"] and "ApprovalDescription" not in create
    assert reasons(results[0]) == ["Created"]
    # calls to Ready: one owner lookup, one create, one listing
    assert ctx.registry.calls["find_package"] == 1
    assert ctx.registry.calls["create_package"] == 1
    assert ctx.registry.calls["describe_package"] == 0


def test_crash_after_create_finds_the_version_instead_of_creating_another(ctx, lookup):
    reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)  # created, but the status write was "lost"
    results = converge(ctx, lookup, spec(), status={})
    assert state(results[-1]) == ("Ready", "Synced")
    assert len(ctx.registry.packages) == 1 and ctx.registry.calls["create_package"] == 1


def test_waits_through_in_progress_and_reports_failed(ctx, lookup):
    ctx.registry.package_status = "InProgress"
    first = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)
    second = reconcile(mp.CONTROLLER, spec(), meta(), first.status, ctx, lookup)
    assert state(second) == ("Reconciling", "InProgress") and second.retry
    package = next(iter(ctx.registry.packages.values()))
    package["ModelPackageStatus"] = "Failed"
    package["ModelPackageStatusDetails"] = {
        "ValidationStatuses": [{"Name": "v", "Status": "Failed", "FailureReason": "image not found"}]
    }
    ctx.listings.forget("churn")
    failed = reconcile(mp.CONTROLLER, spec(), meta(), second.status, ctx, lookup)
    assert state(failed) == ("Stalled", "PackageFailed")
    assert "image not found" in failed.status["conditions"][0]["message"]
    assert failed.retry is None and [e.type for e in failed.events] == ["Warning"]


def test_approval_is_enforced_and_changes_are_events(ctx, lookup):
    created = converge(ctx, lookup, spec(modelApprovalStatus="PendingManualApproval"))[-1]
    approved = reconcile(
        mp.CONTROLLER,
        spec(modelApprovalStatus="Approved", approvalDescription="ok by QA"),
        meta(2),
        created.status,
        ctx,
        lookup,
    )
    package = next(iter(ctx.registry.packages.values()))
    assert package["ModelApprovalStatus"] == "Approved" and package["ApprovalDescription"] == "ok by QA"
    assert approved.status["modelApprovalStatus"] == "Approved"
    assert approved.status["approvalDescription"] == "ok by QA"
    assert "ApprovalChanged" in reasons(approved) and state(approved) == ("Ready", "Synced")
    rejected = reconcile(
        mp.CONTROLLER, spec(modelApprovalStatus="Rejected"), meta(3), approved.status, ctx, lookup
    )
    assert package_of(ctx)["ModelApprovalStatus"] == "Rejected"
    assert rejected.status["modelApprovalStatus"] == "Rejected"


STUDIO_USER = {"UserProfileName": "ana", "DomainId": "d-1"}
AUDITOR_ROLE = {"IamIdentity": {"Arn": "arn:aws:sts::123456789012:assumed-role/ModelRiskAuditor/bob"}}


def package_of(ctx):
    return next(iter(ctx.registry.packages.values()))


def test_omitted_approval_is_only_observed(ctx, lookup):
    created = converge(ctx, lookup, spec())[-1]
    package_of(ctx)["ModelApprovalStatus"] = "Approved"  # approved in Studio
    updates = ctx.registry.calls["update_package"]
    observed = reconcile(mp.CONTROLLER, spec(), meta(), created.status, ctx, lookup)
    assert observed.status["modelApprovalStatus"] == "Approved"
    assert ctx.registry.calls["update_package"] == updates
    assert reasons(observed) == ["ApprovalChanged"]


def test_drift_on_resync_is_found_by_the_group_listing_and_described_once_to_say_who(ctx, lookup):
    created = converge(ctx, lookup, spec(modelApprovalStatus="Approved"))[-1]
    ctx.registry.changed_elsewhere(created.status["arn"], STUDIO_USER, ModelApprovalStatus="Rejected")
    ctx.listings.forget("churn")
    describes, lists = ctx.registry.calls["describe_package"], ctx.registry.calls["list_packages"]
    resynced = reconcile(
        mp.CONTROLLER, spec(modelApprovalStatus="Approved"), meta(), created.status, ctx, lookup, resync=True
    )
    assert package_of(ctx)["ModelApprovalStatus"] == "Approved"
    assert reasons(resynced) == ["DriftCorrected"]
    # the listing found it; a summary has no LastModifiedBy, so one describe says who
    assert ctx.registry.calls["list_packages"] == lists + 1
    assert ctx.registry.calls["describe_package"] == describes + 1
    assert "in SageMaker by ana" in resynced.events[0].message
    # the next resync, with nothing changed, is the listing alone again
    ctx.listings.forget("churn")
    again = reconcile(
        mp.CONTROLLER, spec(modelApprovalStatus="Approved"), meta(), resynced.status, ctx, lookup, resync=True
    )
    assert reasons(again) == [] and ctx.registry.calls["describe_package"] == describes + 1


def passing_time(ctx):
    """Listings age 2 s per read: a version registered as Pending is seen Completed later."""
    ticks = itertools.count(step=2.0)
    ctx.listings = GroupListings(
        ctx.registry.list_packages, ctx.settings.resync_seconds, clock=lambda: next(ticks)
    )
    return ctx


def test_a_version_deleted_in_sagemaker_is_registered_again(ctx, lookup):
    ready = converge(passing_time(ctx), lookup, spec())[-1]
    lost = ready.status["arn"]
    ctx.registry.delete_package(lost)
    again = converge(ctx, lookup, spec(), status=ready.status)
    assert "DriftCorrected" in reasons(again[0]) and lost in again[0].events[0].message
    assert again[-1].status["arn"] != lost and list(ctx.registry.packages) == [again[-1].status["arn"]]
    assert state(again[-1]) == ("Ready", "Synced")


def test_a_re_registration_whose_status_write_was_lost_is_found_by_owner(ctx, lookup):
    ready = converge(passing_time(ctx), lookup, spec())[-1]
    ctx.registry.delete_package(ready.status["arn"])
    reconcile(
        mp.CONTROLLER, spec(), meta(), ready.status, ctx, lookup
    )  # registered again; then the status write is lost
    ctx.registry.tokens.clear()  # and the ClientToken's idempotency window has passed
    again = converge(ctx, lookup, spec(), status=ready.status)
    assert len(ctx.registry.packages) == 1  # not a third version
    assert again[-1].status["arn"] == next(iter(ctx.registry.packages))
    assert state(again[-1]) == ("Ready", "Synced")


def test_a_group_being_deleted_keeps_its_versions_ready_and_refuses_new_ones(ctx, lookup):
    ready = converge(passing_time(ctx), lookup, spec())[-1]
    (group,) = lookup.objects.values()
    waiting_group = {"spec": {}, "status": {**group["status"], "conditions": []}, "deleting": True}
    deleting = DictLookup({("ModelPackageGroup", "ml", "churn"): waiting_group})
    registered = reconcile(
        mp.CONTROLLER, spec(), meta(), ready.status, ctx, deleting
    )  # the group waits for its versions
    assert state(registered) == ("Ready", "Synced")
    new = reconcile(mp.CONTROLLER, spec(), meta(uid="uid-p2"), {}, ctx, deleting)
    assert state(new) == ("Reconciling", "WaitingForGroup")
    assert (
        "churn is being deleted" in new.status["conditions"][0]["message"] and len(ctx.registry.packages) == 1
    )


def test_a_version_made_under_a_retain_default_is_retained_after_the_default_changes(ctx, lookup):
    ctx.settings = Settings(deletion_policy="Retain")
    ready = converge(passing_time(ctx), lookup, spec())[-1]
    assert ready.status["deletionPolicy"] == "Retain"
    ctx.settings = Settings(deletion_policy="Delete")
    done = delete(mp.CONTROLLER, spec(), meta(), ready.status, ctx, lookup)
    assert reasons(done) == ["Retained"] and len(ctx.registry.packages) == 1


def test_deleting_finds_a_re_registration_whose_status_write_was_lost(ctx, lookup):
    ready = converge(passing_time(ctx), lookup, spec())[-1]
    ctx.registry.delete_package(ready.status["arn"])
    reconcile(
        mp.CONTROLLER, spec(), meta(), ready.status, ctx, lookup
    )  # registered again; then the status write is lost
    assert len(ctx.registry.packages) == 1
    done = delete(
        mp.CONTROLLER, spec(), meta(), ready.status, ctx, lookup
    )  # status still names the first version
    assert done.retry is None and ctx.registry.packages == {}
    assert reasons(done) == ["Deleted"]


def resync_as_kopf_does(ctx, runtime, lookup, status):
    """A resync through the kopf layer's audit bookkeeping (wiring.Runtime)."""
    started = runtime.wall_clock()
    audit = runtime.audit_turn("uid-p1", ctx.settings, started)
    result = reconcile(mp.CONTROLLER, spec(), meta(), status, ctx, lookup, resync=True, audit=audit)
    runtime.resynced_with("uid-p1", result, started)
    return result


def test_metadata_drift_is_put_back_by_the_audit_not_by_every_resync(ctx, lookup):
    runtime = Runtime()
    ctx.settings = Settings(resync_seconds=300, audit_seconds=86400)
    created = converge(passing_time(ctx), lookup, spec())[-1]
    package_of(ctx)["CustomerMetadataProperties"]["stage"] = "prod"  # changed in Studio
    package_of(ctx)["CustomerMetadataProperties"]["extra"] = "x"
    turn = next(t for t in range(0, 86400, 300) if audit_due("uid-p1", float(t), float(t - 300), 86400))

    runtime.wall_clock = lambda: float(turn - 300)  # an ordinary resync: the listing only
    describes = ctx.registry.calls["describe_package"]
    ordinary = resync_as_kopf_does(ctx, runtime, lookup, created.status)
    assert ctx.registry.calls["describe_package"] == describes and reasons(ordinary) == []

    runtime.wall_clock = lambda: float(turn)  # this package's turn: described, drift put back
    audited = resync_as_kopf_does(ctx, runtime, lookup, created.status)
    assert ctx.registry.calls["describe_package"] == describes + 1
    assert package_of(ctx)["CustomerMetadataProperties"] == {
        "team": "risk",
        "stage": "dev",
        IDENTITY_KEY: "default/ml/churn-v1",
    }
    assert reasons(audited) == ["DriftCorrected"]


def test_an_audit_survives_a_late_timer_and_a_failure(ctx, lookup):
    runtime = Runtime()
    ctx.settings = Settings(resync_seconds=300, audit_seconds=86400)
    created = converge(passing_time(ctx), lookup, spec())[-1]
    turn = next(t for t in range(86400) if audit_due("uid-p1", float(t), t - 1.0, 86400))

    def resync_at(t):
        runtime.wall_clock = lambda: float(t)
        before = ctx.registry.calls["describe_package"]
        result = resync_as_kopf_does(ctx, runtime, lookup, created.status)
        return ctx.registry.calls["describe_package"] - before, result

    assert resync_at(turn - 100)[0] == 0
    # the timer comes 150 s late: a window of one resync period before now would miss the turn
    ctx.registry.fail_next("describe_package", RetryableError("Throttled", "SageMaker is throttling.", 15.0))
    described, failed = resync_at(turn + 350)
    assert described == 1 and failed.failed
    package_of(ctx)["CustomerMetadataProperties"]["stage"] = "prod"
    described, audited = resync_at(turn + 650)  # the failed audit is tried again
    assert described == 1 and reasons(audited) == ["DriftCorrected"]
    assert resync_at(turn + 950)[0] == 0  # and then not until the next turn


def test_audits_of_many_objects_spread_over_the_period_once_each():
    period, resync = 3600.0, 60.0
    turns = {
        uid: [t for t in range(0, 7200, 60) if audit_due(uid, float(t), t - resync, period)]
        for uid in (f"uid-{n}" for n in range(600))
    }
    assert all(
        len(times) == 2 and times[1] - times[0] == period for times in turns.values()
    )  # once per period
    per_resync = collections.Counter(times[0] for times in turns.values())
    assert len(per_resync) > 50 and max(per_resync.values()) < 30  # 600 audits over 60 resyncs, not at once
    assert not any(audit_due(uid, 120.0, 60.0, 0.0) for uid in turns)  # 0: off


def test_resync_of_many_packages_lists_each_group_once(ctx, lookup):
    statuses = {}
    for index in range(30):
        statuses[index] = converge(ctx, lookup, spec(), uid=f"uid-{index}")[-1].status
    before = sum(ctx.registry.calls.values())
    ctx.listings.forget("churn")
    for index in range(30):
        result = reconcile(
            mp.CONTROLLER, spec(), meta(uid=f"uid-{index}"), statuses[index], ctx, lookup, resync=True
        )
        assert state(result) == ("Ready", "Synced")
    assert sum(ctx.registry.calls.values()) - before == 1


def test_metadata_keys_removed_from_spec_are_removed(ctx, lookup):
    created = converge(ctx, lookup, spec())[-1]
    updated = reconcile(
        mp.CONTROLLER,
        spec(customerMetadataProperties={"team": "fraud"}),
        meta(2),
        created.status,
        ctx,
        lookup,
    )
    assert package_of(ctx)["CustomerMetadataProperties"] == {
        "team": "fraud",
        IDENTITY_KEY: "default/ml/churn-v1",
    }
    update = next(r for op, r in reversed(ctx.registry.requests) if op == "update_package")
    assert update["CustomerMetadataPropertiesToRemove"] == ["stage"]
    assert reasons(updated) == ["Updated"]


def test_additional_inference_specifications_are_appended(ctx, lookup):
    created = converge(ctx, lookup, spec())[-1]
    extra = [{"name": "gpu", "containers": [{"image": IMAGE}]}]
    reconcile(
        mp.CONTROLLER, spec(additionalInferenceSpecifications=extra), meta(2), created.status, ctx, lookup
    )
    update = next(r for op, r in reversed(ctx.registry.requests) if op == "update_package")
    assert [s["Name"] for s in update["AdditionalInferenceSpecificationsToAdd"]] == ["gpu"]
    reconcile(
        mp.CONTROLLER, spec(additionalInferenceSpecifications=extra), meta(2), created.status, ctx, lookup
    )
    assert len(package_of(ctx)["AdditionalInferenceSpecifications"]) == 1


def test_invalid_spec_makes_no_call(ctx, lookup):
    calls = sum(ctx.registry.calls.values())
    result = reconcile(mp.CONTROLLER, spec(modelPackageName="other"), meta(), {}, ctx, lookup)
    assert state(result) == ("Stalled", "InvalidSpec")
    assert "exactly one of" in result.status["conditions"][0]["message"]
    assert sum(ctx.registry.calls.values()) == calls


def test_terminal_error_is_stalled_with_the_api_message(ctx, lookup):
    ctx.registry.fail_next("create_package", TerminalError("ValidationError", "Image is not in ECR."))
    result = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)
    assert state(result) == ("Stalled", "ValidationError") and result.retry is None
    assert result.status["conditions"][0]["message"] == "Image is not in ECR."


def test_retryable_error_retries_without_duplicates(ctx, lookup):
    ctx.registry.fail_next("create_package", RetryableError("SageMakerUnavailable", "Service unavailable."))
    failed = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)
    # the error's class floor (10 s for SageMaker being unavailable), plus at most 20% jitter
    assert state(failed) == ("Reconciling", "SageMakerUnavailable") and 10 <= failed.retry <= 12
    final = converge(ctx, lookup, spec(), status=failed.status)[-1]
    assert state(final) == ("Ready", "Synced") and len(ctx.registry.packages) == 1


class GroupsAsked(FakeRegistry):
    """Records how each group-scoped call named the group."""

    def __init__(self):
        super().__init__()
        self.groups_asked = []

    def list_packages(self, group):
        self.groups_asked.append(("list_packages", group))
        return super().list_packages(group)

    def find_package(self, group, marks, recorded=None):
        self.groups_asked.append(("find_package", group))
        return super().find_package(group, marks, recorded)


def test_a_group_shared_from_another_account_is_addressed_by_its_arn():
    shared = "arn:aws:sagemaker:us-east-2:210987654321:model-package-group/churn"
    ctx = Context.create(GroupsAsked(), Settings())
    reconcile(
        mpg.CONTROLLER, {}, Meta("churn", "ml", "uid-g", 1), {}, ctx
    )  # a group of the same name in our own account
    ctx.registry.groups[shared] = {"ModelPackageGroupArn": shared, "ModelPackageGroupStatus": "Completed"}
    raw = spec(modelPackageGroupRef=None, modelPackageGroupName=shared)
    final = converge(ctx, DictLookup(), raw)[-1]
    assert state(final) == ("Ready", "Synced")
    assert [r["ModelPackageGroupName"] for op, r in ctx.registry.requests if op == "create_package"] == [
        shared
    ]
    assert {group for _, group in ctx.registry.groups_asked} == {shared}
    assert {op for op, _ in ctx.registry.groups_asked} == {"list_packages", "find_package"}
    assert not ctx.registry.list_packages("churn")  # nothing went to our own group of that name

    ctx.registry.groups_asked.clear()  # a crash lost the status: delete still finds the version there
    done = delete(mp.CONTROLLER, raw, meta(), {}, ctx, DictLookup())
    assert reasons(done) == ["Deleted"] and ctx.registry.groups_asked == [("find_package", shared)]


def test_unversioned_package(ctx):
    raw = spec(modelPackageGroupRef=None, modelPackageName="churn-standalone")
    final = converge(ctx, DictLookup(), raw)[-1]
    assert state(final) == ("Ready", "Synced")
    assert final.status["arn"].endswith("model-package/churn-standalone")
    assert "modelPackageVersion" not in final.status


def test_delete_honours_policy_and_finds_unrecorded_versions(ctx, lookup):
    reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)  # created; status never written
    done = delete(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)
    assert done.retry is None and not ctx.registry.packages and reasons(done) == ["Deleted"]
    created = converge(ctx, lookup, spec(deletionPolicy="Retain"), uid="uid-2")[-1]
    kept = delete(
        mp.CONTROLLER, spec(deletionPolicy="Retain"), meta(uid="uid-2"), created.status, ctx, lookup
    )
    assert kept.retry is None and len(ctx.registry.packages) == 1 and reasons(kept) == ["Retained"]


# --- artifacts: progress and unreachable sources ----------------------------------------------

GiB, MiB = 1024**3, 1024**2
COPIED = {
    "name": "model",
    "uri": "s3://bucket/model-registry/ml/churn-v1/uid-p1/model/model.tar.gz",
    "sha256": "ab" * 32,
    "size": 42,
}


def with_artifact():
    files = [{"path": "model.joblib", "source": "https://m.test/model.joblib"}]
    raw = spec(artifacts=[{"name": "model", "files": files}])
    raw["inferenceSpecification"]["containers"][0].pop("modelDataUrl")
    raw["inferenceSpecification"]["containers"][0]["modelDataArtifact"] = "model"
    return raw


@pytest.fixture
def copier(ctx):
    """ctx.copy_artifacts as a fake: reports progress, fails while `failing` is set."""

    class Copier:
        failing: Exception | None = None
        calls = 0

        def __call__(self, artifacts, *, key_prefix, progress=None):
            self.calls += 1
            if progress is not None:
                progress("model", 512 * MiB, 2 * GiB)
                progress("model", 3 * 1024, None)
            if self.failing is not None:
                raise self.failing
            return [dict(COPIED)]

    ctx.settings = Settings(artifact_bucket="bucket")
    ctx.copy_artifacts = Copier()
    return ctx.copy_artifacts


def test_copy_progress_is_reported_as_reconciling_messages(ctx, lookup, copier):
    reported = []
    result = reconcile(mp.CONTROLLER, with_artifact(), meta(), {}, ctx, lookup, progress=reported.append)
    assert [(o.state, o.reason) for o in reported] == [("Reconciling", "CopyingArtifacts")] * 2
    assert [o.message for o in reported] == [
        "Copying artifact model: 512 MiB of 2.0 GiB (25%).",
        "Copying artifact model: 3 KiB so far.",
    ]
    assert result.status["artifacts"] == [COPIED]
    (package,) = ctx.registry.packages.values()
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == COPIED["uri"]


def test_a_wrong_artifact_says_how_to_correct_it_and_registers_nothing(ctx, lookup, copier):
    copier.failing = TerminalError("ChecksumMismatch", "artifact model, file model.joblib: sha256 mismatch")
    result = reconcile(mp.CONTROLLER, with_artifact(), meta(), {}, ctx, lookup)
    assert state(result) == ("Stalled", "ChecksumMismatch") and ctx.registry.packages == {}
    message = next(c["message"] for c in result.status["conditions"] if c["type"] == "Stalled")
    assert message.startswith("artifact model, file model.joblib: sha256 mismatch. Nothing was registered")
    assert "delete this ModelPackage and create it again" in message


def test_an_unreachable_source_stalls_after_a_few_failures_and_still_converges(ctx, lookup, copier):
    runtime = Runtime()
    copier.failing = RetryableError(
        "SourceUnreachable",
        "artifact model, file model.joblib: cannot reach "
        "https://m.test/model.joblib: NewConnectionError (after 3 attempts)",
    )
    status, results = {}, []
    for _ in range(SOURCE_STALL_AFTER + 2):  # as the kopf layer runs it: again after each retry delay
        attempt = runtime.attempt(meta())
        result = reconcile(mp.CONTROLLER, with_artifact(), meta(), status, ctx, lookup, attempt=attempt)
        runtime.record(meta(), result.failed)
        results.append(result)
        status = result.status
    states = [state(r) for r in results]
    assert states[: SOURCE_STALL_AFTER - 1] == [("Reconciling", "SourceUnreachable")] * (
        SOURCE_STALL_AFTER - 1
    )
    assert states[SOURCE_STALL_AFTER - 1 :] == [("Stalled", "SourceUnreachable")] * 3
    # Stalled is still retried: never sooner than the error's 10 s, then ever more slowly (backoff 16 s)
    floors = [10, 10, 10, 10, 16]
    assert all(floor <= r.retry <= floor * (1 + RETRY_JITTER) for floor, r in zip(floors, results))
    message = results[-1].status["conditions"][2]["message"]
    assert message.startswith("artifact model, file model.joblib: cannot reach https://m.test/model.joblib")
    assert "keeps retrying" in message
    assert sum(reasons(r).count("SourceUnreachable") for r in results) == 1  # one Warning, not one per retry
    assert not ctx.registry.packages
    copier.failing = None  # the source is back
    final = converge(ctx, lookup, with_artifact(), status=status)[-1]
    assert state(final) == ("Ready", "Synced") and len(ctx.registry.packages) == 1


def test_failures_are_counted_per_generation():
    runtime = Runtime()
    runtime.record(meta(1), failed=True)
    runtime.record(meta(1), failed=True)
    assert runtime.attempt(meta(1)) == 2
    assert runtime.attempt(meta(2)) == 0  # a new spec starts again, without the old backoff
    runtime.record(meta(2), failed=True)
    assert runtime.attempt(meta(2)) == 1
    runtime.record(meta(2), failed=False)
    assert runtime.attempt(meta(2)) == 0


@pytest.mark.parametrize("status_lost", [False, True])
def test_an_inference_specification_update_keeps_the_copied_model_data(ctx, lookup, copier, status_lost):
    """UpdateModelPackage replaces InferenceSpecification whole: the ModelDataUrl of a
    modelDataArtifact container must go with it, from status or (status lost) from SageMaker."""
    ready = converge(ctx, lookup, with_artifact())[-1]
    assert state(ready) == ("Ready", "Synced")
    changed = with_artifact()
    changed["inferenceSpecification"]["supportedContentTypes"] = ["application/json"]
    status = {k: v for k, v in ready.status.items() if not (status_lost and k == "artifacts")}
    final = converge(ctx, lookup, changed, status=status, generation=2)[-1]
    assert state(final) == ("Ready", "Synced")
    spec_in_sagemaker = package_of(ctx)["InferenceSpecification"]
    assert spec_in_sagemaker["SupportedContentTypes"] == ["application/json"]  # the update did happen
    assert spec_in_sagemaker["Containers"][0]["ModelDataUrl"] == COPIED["uri"]
    assert copier.calls == 1  # the files were copied once, at creation


def test_a_spec_with_artifacts_and_no_inference_specification_is_not_a_crash(ctx, lookup, copier):
    raw = with_artifact()
    del raw["inferenceSpecification"]
    raw["sourceAlgorithmSpecification"] = {"sourceAlgorithms": [{"algorithmName": "xgboost"}]}
    results = converge(ctx, lookup, raw)
    assert state(results[-1]) in {("Ready", "Synced"), ("Stalled", "InvalidSpec")}


def test_tags_of_a_version_are_added_after_create_and_follow_the_spec(ctx, lookup):
    tagged = spec(tags=[{"key": "team", "value": "risk"}])
    ready = converge(ctx, lookup, tagged)[-1]
    assert state(ready) == ("Ready", "Synced")
    arn = ready.status["arn"]
    assert "Tags" not in package_of(ctx)  # CreateModelPackage refuses Tags for a version in a group
    assert ctx.registry.tags[arn] == {"team": "risk"}
    retagged = spec(tags=[{"key": "owner", "value": "ana"}])
    final = converge(ctx, lookup, retagged, status=ready.status, generation=2)[-1]
    assert ctx.registry.tags[arn] == {"owner": "ana"} and "Updated" in reasons(final)


def handled(status, raw):
    """`status` as kopf leaves it after handling `raw` to the end: its diff base recorded."""
    return {**status, "kopf": {"lastHandledConfiguration": json.dumps({"spec": raw})}}


def test_an_approval_change_does_not_read_tags_it_left_alone(ctx, lookup):
    tagged = spec(tags=[{"key": "team", "value": "risk"}])
    ready = converge(ctx, lookup, tagged)[-1]
    listed = ctx.registry.calls["list_tags"]
    approved = spec(tags=[{"key": "team", "value": "risk"}], modelApprovalStatus="Approved")
    final = converge(ctx, lookup, approved, status=handled(ready.status, tagged), generation=2)[-1]
    assert state(final) == ("Ready", "Synced") and ctx.registry.calls["list_tags"] == listed
    # the tags changed as well: they are applied
    retagged = spec(tags=[{"key": "team", "value": "fraud"}], modelApprovalStatus="Rejected")
    converge(ctx, lookup, retagged, status=handled(final.status, approved), generation=3)
    assert ctx.registry.tags[final.status["arn"]] == {"team": "fraud"}
    # the last reconcile did not end Ready (a tag write may have failed): they are applied again
    ctx.registry.tags[final.status["arn"]] = {}
    failed = {**final.status, "conditions": [{"type": "Ready", "status": "False"}]}
    converge(ctx, lookup, retagged, status=handled(failed, retagged), generation=3)
    assert ctx.registry.tags[final.status["arn"]] == {"team": "fraud"}


@pytest.mark.parametrize("audit", [False, True])
def test_a_resync_says_nothing_of_an_approval_sagemaker_does_not_report(ctx, lookup, audit):
    """A version registered without an approval: SageMaker may report none back (its default),
    which is not a change to announce at every resync."""
    ready = converge(ctx, lookup, spec())[-1]
    package_of(ctx).pop("ModelApprovalStatus", None)
    status = {k: v for k, v in ready.status.items() if k != "modelApprovalStatus"}  # never reported
    assert status["approvalHistory"][-1]["modelApprovalStatus"] == "PendingManualApproval"
    again = reconcile(mp.CONTROLLER, spec(), meta(), status, ctx, lookup, resync=True, audit=audit)
    assert state(again) == ("Ready", "Synced") and "ApprovalChanged" not in reasons(again)


def test_applied_again_with_a_new_uid_it_takes_its_version_back_never_a_second(ctx, lookup):
    import datetime

    retained = spec(deletionPolicy="Retain", modelApprovalStatus="Approved")
    ready = converge(ctx, lookup, retained)[-1]
    delete(mp.CONTROLLER, retained, meta(), ready.status, ctx, lookup)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    again = reconcile(mp.CONTROLLER, retained, Meta("churn-v1", "ml", "uid-new", 1, later), {}, ctx, lookup)
    assert state(again) == ("Ready", "Synced") and again.status["arn"] == ready.status["arn"]
    assert reasons(again) == ["Adopted"] and "manages it again" in again.events[0].message
    assert len(ctx.registry.packages) == 1 and ctx.registry.calls["create_package"] == 1


def test_a_version_an_earlier_release_marked_with_its_uid_gets_the_identity_quietly(ctx, lookup):
    ready = converge(ctx, lookup, spec())[-1]
    package_of(ctx)["CustomerMetadataProperties"] = {"team": "risk", "stage": "dev", OWNER_UID_KEY: "uid-p1"}
    crashed = reconcile(mp.CONTROLLER, spec(), meta(), {}, ctx, lookup)  # status lost: found by its UID
    assert state(crashed) == ("Ready", "Synced") and crashed.status["arn"] == ready.status["arn"]
    assert reasons(crashed) == []  # nothing drifted, nothing changed hands
    assert package_of(ctx)["CustomerMetadataProperties"] == {
        "team": "risk",
        "stage": "dev",
        OWNER_UID_KEY: "uid-p1",  # kept: an older release (a rollback) still finds it
        IDENTITY_KEY: "default/ml/churn-v1",
    }
    assert len(ctx.registry.packages) == 1


def test_members_create_cannot_take_are_applied_with_the_create_not_as_drift(ctx, lookup):
    results = converge(
        ctx, lookup, spec(modelApprovalStatus="Approved", approvalDescription="reviewed in PR 7")
    )
    assert state(results[-1]) == ("Ready", "Synced")
    assert package_of(ctx)["ApprovalDescription"] == "reviewed in PR 7"
    assert [reason for result in results for reason in reasons(result)] == ["Created"]


def test_a_retained_package_that_was_never_registered_claims_nothing_was_kept(ctx):
    waiting = reconcile(mp.CONTROLLER, spec(deletionPolicy="Retain"), meta(), {}, ctx, DictLookup())
    assert state(waiting) == ("Reconciling", "WaitingForGroup")
    gone = delete(mp.CONTROLLER, spec(deletionPolicy="Retain"), meta(), waiting.status, ctx, DictLookup())
    assert gone.retry is None and gone.events == []


# --- adopting a version registered elsewhere (spec.modelPackageVersion) ----------------------


def pipeline_registers(ctx, **members):
    """A version registered as SageMaker Pipelines' RegisterModel step would."""
    return ctx.registry.create_package(
        {
            "ModelPackageGroupName": "churn",
            "InferenceSpecification": {
                "Containers": [{"Image": IMAGE}],
                "SupportedContentTypes": ["text/csv"],
            },
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": {"pipeline-run": "r-17"},
            "ClientToken": f"pipeline-{len(ctx.registry.packages)}",
            **members,
        }
    )


def adopting(**changes):
    return {"modelPackageGroupRef": {"name": "churn"}, "modelPackageVersion": 2, **changes}


def test_a_version_not_registered_yet_is_waited_for_every_few_seconds_however_long(ctx, lookup):
    clock = [0.0]
    ctx.listings = GroupListings(ctx.registry.list_packages, 300, clock=lambda: clock[0])
    pipeline_registers(ctx)  # version 1: not the one adopted
    hour_ago = "2020-01-01T00:00:00Z"
    long_wait = {
        "conditions": [
            {
                "type": "Reconciling",
                "status": "True",
                "reason": "WaitingForVersion",
                "lastTransitionTime": hour_ago,
            }
        ]
    }
    waiting = reconcile(mp.CONTROLLER, adopting(), meta(), long_wait, ctx, lookup)
    assert state(waiting) == ("Reconciling", "WaitingForVersion") and waiting.retry <= 3
    assert "version 2 of model package group churn" in waiting.status["conditions"][0]["message"]
    arn = pipeline_registers(ctx)
    clock[0] += 3.1  # the group's listing is read again
    adopted = reconcile(mp.CONTROLLER, adopting(), meta(), waiting.status, ctx, lookup)
    assert state(adopted) == ("Ready", "Synced") and adopted.status["arn"] == arn
    assert adopted.status["modelPackageVersion"] == 2 and reasons(adopted) == ["Adopted"]
    assert ctx.registry.calls["create_package"] == 2  # the pipeline's two, none of the operator's


def test_an_adopted_version_is_approved_from_the_spec_and_its_other_members_are_observed(ctx, lookup):
    pipeline_registers(ctx)
    arn = pipeline_registers(ctx)
    spec_ = adopting(
        modelApprovalStatus="Approved",
        approvalDescription="approved in pull request 42",
        customerMetadataProperties={"reviewed-by": "ana"},
    )
    done = converge(ctx, lookup, spec_)[-1]
    assert state(done) == ("Ready", "Synced") and done.status["arn"] == arn
    package = ctx.registry.packages[arn]
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "approved in pull request 42"
    # the pipeline's metadata stays, the spec's is added, no owner mark: the version is not the operator's
    assert package["CustomerMetadataProperties"] == {"pipeline-run": "r-17", "reviewed-by": "ana"}
    first = next(p for a, p in ctx.registry.packages.items() if a != arn)
    assert first["ModelApprovalStatus"] == "PendingManualApproval"  # the others untouched
    assert len(ctx.registry.packages) == 2

    assert done.status["deletionPolicy"] == "Retain"  # not the operator's: kept by default
    kept = delete(mp.CONTROLLER, spec_, meta(), done.status, ctx, lookup)
    assert reasons(kept) == ["Retained"] and arn in ctx.registry.packages


def test_an_adopted_version_unlike_an_unchangeable_member_of_the_spec_is_a_spec_mismatch(ctx, lookup):
    pipeline_registers(ctx)
    pipeline_registers(ctx, ModelPackageDescription="trained on June data")
    mismatch = converge(ctx, lookup, adopting(modelPackageDescription="trained on May data"))[-1]
    assert state(mismatch) == ("Stalled", "SpecMismatch")
    assert "spec.modelPackageDescription" in mismatch.status["conditions"][2]["message"]
    assert reasons(mismatch) == ["Adopted", "SpecMismatch"]
    matching = converge(ctx, lookup, adopting(modelPackageDescription="trained on June data"))[-1]
    assert state(matching) == ("Ready", "Synced")


def test_an_adopted_version_deleted_in_sagemaker_is_stalled_not_registered_again(ctx, lookup):
    pipeline_registers(ctx)
    arn = pipeline_registers(ctx)
    done = converge(ctx, lookup, adopting())[-1]
    ctx.registry.delete_package(arn)
    gone = reconcile(mp.CONTROLLER, adopting(), meta(), done.status, ctx, lookup)
    assert state(gone) == ("Stalled", "VersionGone")
    assert ctx.registry.calls["create_package"] == 2


# --- lifecycle stage and model card ----------------------------------------------------------

CARD = {
    "model_overview": {"model_creator": "ML platform", "model_artifact": ["s3://models/churn/model.tar.gz"]},
    "intended_uses": {"purpose_of_model": "Churn risk", "risk_rating": "Low"},
}
STAGE = {"stage": "Development", "stageStatus": "InReview", "stageDescription": "offline eval done"}


def with_card(card=CARD, status="Draft", stage=STAGE):
    return spec(modelCard={"modelCardContent": card, "modelCardStatus": status}, modelLifeCycle=stage)


def test_lifecycle_and_model_card_are_created_with_the_version(ctx, lookup):
    results = converge(ctx, lookup, with_card())
    assert state(results[-1]) == ("Ready", "Synced")
    create = next(r for op, r in ctx.registry.requests if op == "create_package")
    assert json.loads(create["ModelCard"]["ModelCardContent"]) == CARD  # the object, as JSON text
    assert create["ModelCard"]["ModelCardStatus"] == "Draft"
    assert create["ModelLifeCycle"] == {
        "Stage": "Development",
        "StageStatus": "InReview",
        "StageDescription": "offline eval done",
    }
    assert ctx.registry.calls["update_package"] == 0
    assert [reason for result in results for reason in reasons(result)] == ["Created"]


def test_lifecycle_and_model_card_changes_are_applied(ctx, lookup):
    created = converge(ctx, lookup, with_card())[-1]
    card = {**CARD, "intended_uses": {"purpose_of_model": "Churn risk", "risk_rating": "Medium"}}
    stage = {"stage": "Staging", "stageStatus": "Approved"}
    changed = converge(ctx, lookup, with_card(card, "PendingReview", stage), created.status, generation=2)[-1]
    update = next(r for op, r in reversed(ctx.registry.requests) if op == "update_package")
    assert set(update) == {"ModelPackageArn", "ModelCard", "ModelLifeCycle"}
    assert json.loads(package_of(ctx)["ModelCard"]["ModelCardContent"]) == card
    assert package_of(ctx)["ModelCard"]["ModelCardStatus"] == "PendingReview"
    assert package_of(ctx)["ModelLifeCycle"] == {"Stage": "Staging", "StageStatus": "Approved"}
    assert reasons(changed) == ["Updated"]
    assert "model card" in changed.events[0].message and "lifecycle stage" in changed.events[0].message


def test_a_model_card_is_compared_as_json_not_as_text(ctx, lookup):
    created = converge(ctx, lookup, with_card())[-1]
    # SageMaker answers the same document with other key order and whitespace
    package_of(ctx)["ModelCard"]["ModelCardContent"] = json.dumps(
        dict(reversed(list(CARD.items()))), indent=2, sort_keys=True
    )
    updates = ctx.registry.calls["update_package"]
    again = reconcile(mp.CONTROLLER, with_card(), meta(), created.status, ctx, lookup)
    assert state(again) == ("Ready", "Synced") and reasons(again) == []
    assert ctx.registry.calls["update_package"] == updates


@pytest.mark.parametrize(
    "member, value",
    [
        ("ModelCard", {"ModelCardContent": json.dumps({"intended_uses": {"risk_rating": "High"}})}),
        ("ModelCard", {"ModelCardContent": json.dumps(CARD), "ModelCardStatus": "Archived"}),
        ("ModelCard", {"ModelCardContent": "not json", "ModelCardStatus": "Draft"}),
        ("ModelLifeCycle", {"Stage": "Production", "StageStatus": "Approved"}),
    ],
)
def test_lifecycle_and_model_card_drift_is_corrected(ctx, lookup, member, value):
    created = converge(ctx, lookup, with_card())[-1]
    ctx.registry.changed_elsewhere(created.status["arn"], AUDITOR_ROLE, **{member: value})
    corrected = reconcile(mp.CONTROLLER, with_card(), meta(), created.status, ctx, lookup)
    assert reasons(corrected) == ["DriftCorrected"]
    assert json.loads(package_of(ctx)["ModelCard"]["ModelCardContent"]) == CARD
    assert package_of(ctx)["ModelCard"]["ModelCardStatus"] == "Draft"
    assert package_of(ctx)["ModelLifeCycle"]["Stage"] == "Development"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"modelLifeCycle": {**STAGE, "stageStatus": "In Review!"}}, "spec.modelLifeCycle.stageStatus"),
        ({"modelLifeCycle": {"stage": "Development"}}, "spec.modelLifeCycle.stageStatus"),
        ({"modelCard": {"modelCardContent": '{"intended_uses": {}}'}}, "spec.modelCard.modelCardContent"),
        ({"modelCard": {"modelCardContent": {"x": "y" * 100_000}}}, "spec.modelCard.modelCardContent"),
        ({"modelCard": {"modelCardStatus": "Published"}}, "spec.modelCard.modelCardStatus"),
    ],
    ids=[
        "stage-status-characters",
        "stage-status-missing",
        "content-a-string",
        "content-too-large",
        "status",
    ],
)
def test_bad_lifecycle_or_model_card_is_invalid_spec_naming_the_field_with_no_call(
    ctx, lookup, changes, field
):
    calls = sum(ctx.registry.calls.values())
    result = reconcile(mp.CONTROLLER, spec(**changes), meta(), {}, ctx, lookup)
    assert state(result) == ("Stalled", "InvalidSpec")
    message = next(c["message"] for c in result.status["conditions"] if c["type"] == "Stalled")
    assert f"{field}:" in message
    assert sum(ctx.registry.calls.values()) == calls


def test_a_model_card_at_the_size_limit_is_taken_and_one_past_it_refused(ctx, lookup):
    envelope = len(json.dumps({"x": ""}, separators=(",", ":")))
    fits = {"x": "é" * (100_000 - envelope)}  # characters, not bytes, as SageMaker counts
    assert state(converge(ctx, lookup, spec(modelCard={"modelCardContent": fits}))[-1]) == ("Ready", "Synced")
    over = {"x": "é" * (100_001 - envelope)}
    refused = reconcile(
        mp.CONTROLLER, spec(modelCard={"modelCardContent": over}), meta(uid="u2"), {}, ctx, lookup
    )
    assert state(refused) == ("Stalled", "InvalidSpec")
    assert (
        "100001 characters as JSON; SageMaker takes at most 100000"
        in refused.status["conditions"][2]["message"]
    )


# --- the approval audit trail ------------------------------------------------------------------


def managed(**managers):
    """Meta of an object whose spec fields were last set by the given field managers."""
    return Meta("churn-v1", "ml", "uid-p1", managers.pop("generation", 1), managers=managers)


def history(result):
    return [(e["modelApprovalStatus"], e.get("changedBy")) for e in result.status.get("approvalHistory", [])]


def run(ctx, lookup, raw, meta_, status, **options):
    return reconcile(mp.CONTROLLER, raw, meta_, status, ctx, lookup, **options)


def test_meta_reads_the_field_manager_of_each_spec_field_from_managed_fields():
    body = {
        "metadata": {
            "name": "churn-v1",
            "uid": "u",
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "time": "2024-06-01T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {"f:modelApprovalStatus": {}, "f:modelPackageGroupRef": {".": {}}}
                    },
                },
                {  # the same value applied later by Argo CD: both own it, the newest is who set it
                    "manager": "argocd-controller",
                    "operation": "Apply",
                    "time": "2024-06-02T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:modelApprovalStatus": {}}},
                },
                {  # the operator's status writes own no spec field
                    "manager": "kopf",
                    "operation": "Update",
                    "subresource": "status",
                    "time": "2024-06-03T10:00:00Z",
                    "fieldsV1": {"f:spec": {"f:modelApprovalStatus": {}}, "f:status": {}},
                },
                {"manager": "broken", "fieldsV1": "not a dict"},
            ],
        }
    }
    assert Meta.from_body(body).managers == {
        "modelApprovalStatus": "argocd-controller",
        "modelPackageGroupRef": "kubectl-client-side-apply",
    }
    assert Meta.from_body({"metadata": {"name": "n", "uid": "u"}}).managers == {}


def test_the_initial_approval_is_recorded_at_creation_with_who_set_it(ctx, lookup):
    raw = spec(modelApprovalStatus="PendingManualApproval", approvalDescription="awaiting review")
    first = run(ctx, lookup, raw, managed(modelApprovalStatus="argocd-controller"), {})
    (entry,) = first.status["approvalHistory"]
    assert entry["modelApprovalStatus"] == "PendingManualApproval"
    assert entry["approvalDescription"] == "awaiting review" and entry["changedBy"] == "argocd-controller"
    assert entry["time"].endswith("Z")
    assert first.status["lastApprovalChangedBy"] == "argocd-controller"
    final = converge(ctx, lookup, raw, first.status)[-1]
    assert len(final.status["approvalHistory"]) == 1  # completing the create is not a change


def test_a_default_approval_is_attributed_to_who_registered_the_version(ctx, lookup):
    first = run(ctx, lookup, spec(), managed(modelPackageGroupRef="kubectl-client-side-apply"), {})
    assert history(first) == [("PendingManualApproval", "kubectl-client-side-apply")]
    unversioned = run(
        ctx, DictLookup(), spec(modelPackageGroupRef=None, modelPackageName="solo"), managed(), {}
    )
    assert "approvalHistory" not in unversioned.status  # an unversioned package has no approval


def test_an_approval_through_the_spec_is_recorded_with_its_field_manager(ctx, lookup):
    raw = spec(modelApprovalStatus="PendingManualApproval")
    created = converge(ctx, lookup, raw, limit=5)[-1]
    approved = run(
        ctx,
        lookup,
        spec(modelApprovalStatus="Approved", approvalDescription="AUC 0.91"),
        managed(modelApprovalStatus="argocd-controller", generation=2),
        created.status,
    )
    assert history(approved)[-1] == ("Approved", "argocd-controller")
    assert approved.status["approvalHistory"][-1]["approvalDescription"] == "AUC 0.91"
    assert approved.status["lastApprovalChangedBy"] == "argocd-controller"
    (event,) = [e for e in approved.events if e.reason == "ApprovalChanged"]
    assert (
        "set by argocd-controller" in event.message
        and "to Approved (was PendingManualApproval)" in event.message
    )


def test_an_approval_made_in_sagemaker_is_recorded_with_that_identity_observed_only(ctx, lookup):
    created = converge(ctx, lookup, spec())[-1]
    auditor = AUDITOR_ROLE["IamIdentity"]["Arn"]
    ctx.registry.changed_elsewhere(
        created.status["arn"], AUDITOR_ROLE, ModelApprovalStatus="Approved", ApprovalDescription="risk ok"
    )
    ctx.listings.forget("churn")
    describes, updates = ctx.registry.calls["describe_package"], ctx.registry.calls["update_package"]
    observed = run(ctx, lookup, spec(), meta(), created.status, resync=True)  # the cheap resync
    assert ctx.registry.calls["describe_package"] == describes + 1  # once, to learn who
    assert ctx.registry.calls["update_package"] == updates  # observed, not changed
    assert history(observed)[-1] == ("Approved", auditor)
    assert observed.status["approvalHistory"][-1]["approvalDescription"] == "risk ok"
    assert observed.status["lastApprovalChangedBy"] == auditor
    assert reasons(observed) == ["ApprovalChanged"] and f"by {auditor}" in observed.events[0].message
    ctx.listings.forget("churn")
    again = run(ctx, lookup, spec(), meta(), observed.status, resync=True)
    assert reasons(again) == [] and ctx.registry.calls["describe_package"] == describes + 1
    assert len(again.status["approvalHistory"]) == len(observed.status["approvalHistory"])


def test_a_studio_user_is_named_by_the_profile(ctx, lookup):
    created = converge(ctx, lookup, spec())[-1]
    ctx.registry.changed_elsewhere(created.status["arn"], STUDIO_USER, ModelApprovalStatus="Rejected")
    observed = run(ctx, lookup, spec(), meta(), created.status)
    assert history(observed)[-1] == ("Rejected", "ana")


def test_an_approval_made_in_sagemaker_is_recorded_and_corrected_when_enforced(ctx, lookup):
    raw = spec(modelApprovalStatus="Approved")
    created = converge(ctx, lookup, raw)[-1]
    auditor = AUDITOR_ROLE["IamIdentity"]["Arn"]
    ctx.registry.changed_elsewhere(created.status["arn"], AUDITOR_ROLE, ModelApprovalStatus="Rejected")
    corrected = run(ctx, lookup, raw, managed(modelApprovalStatus="argocd-controller"), created.status)
    assert package_of(ctx)["ModelApprovalStatus"] == "Approved"
    assert history(corrected)[-2:] == [("Rejected", auditor), ("Approved", "argocd-controller")]
    assert corrected.status["lastApprovalChangedBy"] == "argocd-controller"
    (event,) = corrected.events
    assert event.reason == "DriftCorrected"
    assert f"in SageMaker by {auditor}" in event.message and "set by argocd-controller" in event.message


def test_the_history_keeps_the_newest_twenty(ctx, lookup):
    created = converge(ctx, lookup, spec(modelApprovalStatus="PendingManualApproval"))[-1]
    status = created.status
    approvals = itertools.cycle(["Approved", "Rejected"])
    for generation in range(2, 25):
        approval = next(approvals)
        status = run(
            ctx,
            lookup,
            spec(modelApprovalStatus=approval, approvalDescription=f"decision {generation}"),
            managed(modelApprovalStatus="argocd-controller", generation=generation),
            status,
        ).status
        assert len(status["approvalHistory"]) <= 20
    entries = status["approvalHistory"]
    assert len(entries) == 20 and entries[-1]["approvalDescription"] == "decision 24"
    assert [e["approvalDescription"] for e in entries] == [f"decision {g}" for g in range(5, 25)]


def test_an_adopted_version_records_the_approval_it_had_and_who_gave_it(ctx, lookup):
    pipeline_registers(ctx)
    ctx.registry.identity = {"IamIdentity": {"Arn": "arn:aws:sts::123456789012:assumed-role/Pipeline/run-17"}}
    pipeline_registers(ctx)
    ctx.registry.identity = {"IamIdentity": {"Arn": "arn:aws:sts::123456789012:assumed-role/operator/mro"}}
    adopted = converge(ctx, lookup, adopting())[-1]
    assert history(adopted) == [
        ("PendingManualApproval", "arn:aws:sts::123456789012:assumed-role/Pipeline/run-17")
    ]
