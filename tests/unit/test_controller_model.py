import pytest

from controller_calls import DictLookup, delete, reconcile
from fakes import FakeRegistry
from model_registry_operator.controllers import model as mdl
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.context import Context
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.settings import Settings

OURS = {IDENTITY_KEY: "default/ml/churn"}  # the identity tag every model it makes carries

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/1"
SPEC = {"primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}, "executionRoleArn": ROLE}


def meta(generation=1, annotations=None):
    return Meta("churn", "ml", "uid-m", generation, None, dict(annotations or {}))


def package(approval, arn=PACKAGE_ARN, ready=True, namespace="ml"):
    outcome = Outcome.ready("Synced", "ok") if ready else Outcome.reconciling("Creating", "wait")
    return DictLookup(
        {
            ("ModelPackage", namespace, "churn-v1"): {
                "spec": {},
                "status": {
                    "arn": arn,
                    "modelApprovalStatus": approval,
                    "conditions": build_conditions(outcome, 1, None),
                },
            }
        }
    )


def state(result):
    return next((c["type"], c["reason"]) for c in result.status["conditions"] if c["status"] == "True")


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


def test_waits_for_the_package_then_for_approval(ctx):
    missing = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, DictLookup())
    assert state(missing) == ("Reconciling", "WaitingForPackage") and missing.retry
    not_ready = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved", ready=False))
    assert state(not_ready) == ("Reconciling", "WaitingForPackage")
    pending = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("PendingManualApproval"))
    assert state(pending) == ("Reconciling", "WaitingForApproval")
    # each ended by a change of the package, which wakes the Model: no retry timer (Result.woken);
    # not Ready yet (usually for a second) is first ridden out in memory
    assert missing.woken and not_ready.woken and pending.woken and not_ready.short
    assert "requireApprovedPackage" in pending.status["conditions"][0]["message"]
    assert sum(ctx.registry.calls.values()) == 0


def test_created_with_the_package_arn_once_approved(ctx):
    result = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(result) == ("Ready", "Synced")
    assert ctx.registry.models["churn"]["PrimaryContainer"] == {"ModelPackageName": PACKAGE_ARN}
    assert result.status["containers"] == [{"modelPackageName": PACKAGE_ARN}]
    assert result.status["arn"].endswith(":model/churn")
    assert [e.reason for e in result.events] == ["Created"]
    assert result.status["specHash"] and result.annotations == {}


def test_unapproved_package_is_fine_when_not_required(ctx):
    result = reconcile(
        mdl.CONTROLLER,
        {**SPEC, "requireApprovedPackage": False},
        meta(),
        {},
        ctx,
        package("PendingManualApproval"),
    )
    assert state(result) == ("Ready", "Synced")


def test_changed_spec_replaces_the_model(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    same = reconcile(mdl.CONTROLLER, SPEC, meta(1), first.status, ctx, package("Approved"))
    assert same.events == [] and ctx.registry.calls["create_model"] == 1
    new_arn = PACKAGE_ARN.replace("/1", "/2")
    replaced = reconcile(mdl.CONTROLLER, SPEC, meta(2), first.status, ctx, package("Approved", arn=new_arn))
    assert [e.reason for e in replaced.events] == ["Replaced"]
    assert ctx.registry.calls["delete_model"] == 1 and ctx.registry.calls["create_model"] == 2
    assert ctx.registry.models["churn"]["PrimaryContainer"]["ModelPackageName"] == new_arn
    assert replaced.status["specHash"] != first.status["specHash"]


def test_replaced_once_while_the_handler_waits_with_the_body_it_read(ctx):
    """wiring's in-memory wait calls reconcile again with the metadata it first read and the
    status the previous call returned: the record of the replacement must be in the latter."""
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    body_meta = meta(2, first.annotations)  # as the handler read it, whatever the first reconcile wrote
    describe = ctx.registry.describe_model
    calls = []

    def not_yet_visible_after_create(name):  # SageMaker's reads lag its writes
        calls.append(name)
        return None if len(calls) == 2 else describe(name)

    ctx.registry.describe_model = not_yet_visible_after_create
    new_package = package("Approved", arn=PACKAGE_ARN.replace("/1", "/2"))
    waiting = reconcile(mdl.CONTROLLER, SPEC, body_meta, first.status, ctx, new_package)
    assert state(waiting) == ("Reconciling", "Creating") and waiting.short
    done = reconcile(mdl.CONTROLLER, SPEC, body_meta, waiting.status, ctx, new_package)
    assert state(done) == ("Ready", "Synced") and done.events == []
    assert (ctx.registry.calls["delete_model"], ctx.registry.calls["create_model"]) == (1, 2)
    assert waiting.status["arn"] == done.status["arn"]  # known from CreateModel's answer already


def test_hash_in_the_old_annotation_is_read_but_not_written(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    legacy_status = {k: v for k, v in first.status.items() if k != "specHash"}
    legacy = {mdl.SPEC_HASH_ANNOTATION: first.status["specHash"]}
    same = reconcile(mdl.CONTROLLER, SPEC, meta(1, legacy), legacy_status, ctx, package("Approved"))
    assert same.events == [] and ctx.registry.calls["delete_model"] == 0
    assert same.status["specHash"] == first.status["specHash"] and same.annotations == {}
    changed = reconcile(
        mdl.CONTROLLER, SPEC, meta(2, legacy), legacy_status, ctx, package("Approved", arn=PACKAGE_ARN + "0")
    )
    assert [e.reason for e in changed.events] == ["Replaced"]
    # once in status, the status wins over the annotation left on the object
    again = reconcile(
        mdl.CONTROLLER, SPEC, meta(2, legacy), changed.status, ctx, package("Approved", arn=PACKAGE_ARN + "0")
    )
    assert again.events == [] and ctx.registry.calls["delete_model"] == 1


def test_a_renamed_model_replaces_the_old_one_instead_of_leaking_it(ctx):
    # admission refuses the change (CEL); an object renamed anyway (an older CRD) must not leak
    first = reconcile(mdl.CONTROLLER, {**SPEC, "modelName": "a"}, meta(), {}, ctx, package("Approved"))
    renamed = reconcile(
        mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), first.status, ctx, package("Approved")
    )
    assert sorted(ctx.registry.models) == ["b"]
    assert [e.reason for e in renamed.events] == ["Replaced"]
    assert "from a to b" in renamed.events[0].message
    assert state(renamed) == ("Ready", "Synced") and renamed.status["arn"].endswith(":model/b")
    delete(mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), renamed.status, ctx)
    assert ctx.registry.models == {}


def test_a_rename_keeps_the_old_model_with_retain(ctx):
    spec = {**SPEC, "deletionPolicy": "Retain"}
    first = reconcile(mdl.CONTROLLER, {**spec, "modelName": "a"}, meta(), {}, ctx, package("Approved"))
    renamed = reconcile(
        mdl.CONTROLLER, {**spec, "modelName": "b"}, meta(2), first.status, ctx, package("Approved")
    )
    assert sorted(ctx.registry.models) == ["a", "b"] and "kept model a" in renamed.events[0].message


def test_delete_before_the_rename_was_reconciled_deletes_the_model_it_made(ctx):
    first = reconcile(mdl.CONTROLLER, {**SPEC, "modelName": "a"}, meta(), {}, ctx, package("Approved"))
    ctx.registry.create_model({"ModelName": "b", "PrimaryContainer": {"Image": "x"}})  # someone else's
    delete(mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), first.status, ctx)
    assert sorted(ctx.registry.models) == ["b"]


def test_a_rename_onto_someone_elses_model_keeps_the_old_one(ctx):
    first = reconcile(mdl.CONTROLLER, {**SPEC, "modelName": "a"}, meta(), {}, ctx, package("Approved"))
    ctx.registry.create_model({"ModelName": "b", "PrimaryContainer": {"Image": "x"}})  # someone else's
    renamed = reconcile(
        mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), first.status, ctx, package("Approved")
    )
    assert state(renamed) == ("Stalled", "AlreadyExists") and sorted(ctx.registry.models) == ["a", "b"]
    delete(mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), renamed.status, ctx)
    assert sorted(ctx.registry.models) == ["b"]  # the object's own model went, the other one stays


STRANGER = {"ModelName": "churn", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "other/image:1"}}


def test_a_new_model_is_created_without_a_describe_first(ctx):
    """No record of any model: the usual case is that none of its name exists, so it is created
    at once (then described, for its creation time): two calls, not three."""
    result = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(result) == ("Ready", "Synced") and [e.reason for e in result.events] == ["Created"]
    assert ctx.registry.calls["create_model"] == 1 and ctx.registry.calls["describe_model"] == 1


def test_someone_elses_model_with_the_name_is_not_taken_over(ctx):
    ctx.registry.create_model(STRANGER)
    result = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(result) == ("Stalled", "AlreadyExists")
    message = result.status["conditions"][0]["message"]
    assert (
        "churn already exists and was not created by this object" in message
        and "another spec.modelName" in message
    )
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "AlreadyExists")]
    assert "arn" not in result.status and "specHash" not in result.status
    # its first reconcile tried to create (SageMaker refused: the name is taken), deleted nothing
    assert ctx.registry.calls["delete_model"] == 0 and ctx.registry.calls["create_model"] == 2
    again = reconcile(mdl.CONTROLLER, SPEC, meta(), result.status, ctx, package("Approved"))
    assert state(again) == ("Stalled", "AlreadyExists") and again.events == []
    delete(mdl.CONTROLLER, SPEC, meta(), again.status, ctx)
    assert ctx.registry.models["churn"]["PrimaryContainer"] == STRANGER["PrimaryContainer"]


@pytest.mark.parametrize("package_name", [PACKAGE_ARN, "churn/1"])
def test_a_model_as_the_spec_asks_is_adopted(ctx, package_name):
    """A crash between CreateModel and the status write leaves the same situation: the model
    is exactly what the spec asks for, so it is taken on, not refused."""
    # the package named (requireApprovedPackage reads its approval in SageMaker)
    ctx.registry.create_group({"ModelPackageGroupName": "churn"})
    ctx.registry.create_package({"ModelPackageGroupName": "churn", "ModelApprovalStatus": "Approved"})
    ctx.registry.create_model(
        {
            "ModelName": "churn",
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"ModelPackageName": PACKAGE_ARN, "Image": "added-by-sagemaker"},
        }
    )
    spec = {**SPEC, "primaryContainer": {"modelPackageName": package_name}}
    result = reconcile(mdl.CONTROLLER, spec, meta(), {}, ctx, DictLookup())
    assert state(result) == ("Ready", "Synced") and [e.reason for e in result.events] == ["Adopted"]
    assert result.status["specHash"] and result.status["arn"].endswith(":model/churn")
    # the model made beforehand, and this object's first create, refused (the name is taken)
    assert ctx.registry.calls["create_model"] == 2 and ctx.registry.calls["delete_model"] == 0
    delete(mdl.CONTROLLER, spec, meta(), result.status, ctx)
    assert ctx.registry.models == {}


def test_a_model_created_but_not_yet_described_is_still_deleted(ctx):
    ctx.registry.describe_model = lambda name: None
    waiting = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(waiting) == ("Reconciling", "Creating")
    delete(mdl.CONTROLLER, SPEC, meta(), waiting.status, ctx)
    assert ctx.registry.models == {}


def test_tag_changes_do_not_replace(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    tagged = {**SPEC, "tags": [{"key": "team", "value": "risk"}]}
    result = reconcile(mdl.CONTROLLER, tagged, meta(2), first.status, ctx, package("Approved"))
    assert ctx.registry.calls["create_model"] == 1
    assert ctx.registry.tags[first.status["arn"]] == {"team": "risk", **OURS}
    assert [e.reason for e in result.events] == ["Updated"]


def test_delete_and_retain(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    kept = delete(mdl.CONTROLLER, {**SPEC, "deletionPolicy": "Retain"}, meta(1), first.status, ctx)
    assert "churn" in ctx.registry.models and [e.reason for e in kept.events] == ["Retained"]
    done = delete(mdl.CONTROLLER, SPEC, meta(1), first.status, ctx)
    assert "churn" not in ctx.registry.models and [e.reason for e in done.events] == ["Deleted"]


def test_a_model_made_under_a_retain_default_is_retained_after_the_default_changes(ctx):
    ctx.settings = Settings(deletion_policy="Retain")
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(first) == ("Ready", "Synced") and first.status["deletionPolicy"] == "Retain"
    ctx.settings = Settings(deletion_policy="Delete")
    kept = delete(mdl.CONTROLLER, SPEC, meta(1), first.status, ctx)
    assert "churn" in ctx.registry.models and [e.reason for e in kept.events] == ["Retained"]


def test_never_created_model_is_not_deleted(ctx):
    ctx.registry.create_model({"ModelName": "churn", "PrimaryContainer": {"Image": "x"}})  # someone else's
    delete(mdl.CONTROLLER, SPEC, meta(), {}, ctx)
    assert "churn" in ctx.registry.models


# Ownership: model names are account-wide, objects namespaced.


def other_meta(generation=1):
    return Meta("churn", "team-b", "uid-other", generation)


def test_a_model_another_object_made_is_stalled_even_when_it_matches(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    arn = first.status["arn"]
    theirs = reconcile(
        mdl.CONTROLLER,
        {**SPEC, "tags": [{"key": "team", "value": "b"}]},
        other_meta(),
        {},
        ctx,
        package("Approved", namespace="team-b"),
    )
    assert state(theirs) == ("Stalled", "AlreadyExists")  # not "Adopted", though the spec is the same
    message = theirs.status["conditions"][0]["message"]
    assert (
        "model churn" in message and "the Kubernetes object ml/churn of operator instance default" in message
    )
    assert [(e.type, e.reason) for e in theirs.events] == [("Warning", "AlreadyExists")]
    assert "arn" not in theirs.status and "specHash" not in theirs.status
    assert ctx.registry.tags[arn] == OURS  # its tags untouched

    left = delete(mdl.CONTROLLER, SPEC, other_meta(), theirs.status, ctx)
    assert "churn" in ctx.registry.models and ctx.registry.calls["delete_model"] == 0
    assert [(e.type, e.reason) for e in left.events] == [("Warning", "NotOwned")]
    assert "the Kubernetes object ml/churn of operator instance default" in left.events[0].message
    delete(mdl.CONTROLLER, SPEC, meta(), first.status, ctx)
    assert ctx.registry.models == {}


def test_a_model_it_made_before_its_status_was_written_is_replaced_and_deleted_as_its_own(ctx):
    reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))  # then a crash: no status written
    new_package = package("Approved", arn=PACKAGE_ARN.replace("/1", "/2"))
    edited = reconcile(mdl.CONTROLLER, SPEC, meta(2), {}, ctx, new_package)
    assert state(edited) == ("Ready", "Synced") and [e.reason for e in edited.events] == ["Replaced"]
    assert ctx.registry.models["churn"]["PrimaryContainer"]["ModelPackageName"] == PACKAGE_ARN.replace(
        "/1", "/2"
    )
    same = reconcile(
        mdl.CONTROLLER, SPEC, meta(2), {}, ctx, new_package
    )  # crashed again: the model is as the spec asks
    assert state(same) == ("Ready", "Synced") and same.events == []
    done = delete(mdl.CONTROLLER, SPEC, meta(2), {}, ctx)
    assert ctx.registry.models == {} and [e.reason for e in done.events] == ["Deleted"]


def test_an_untagged_model_as_the_spec_asks_is_claimed_then_refused_to_others(ctx):
    ctx.registry.create_model(
        {
            "ModelName": "churn",
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"ModelPackageName": PACKAGE_ARN},
        }
    )
    adopted = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert [e.reason for e in adopted.events] == ["Adopted"]
    assert "marked it as default/ml/churn" in adopted.events[0].message
    assert ctx.registry.tags[adopted.status["arn"]] == OURS
    theirs = reconcile(mdl.CONTROLLER, SPEC, other_meta(), {}, ctx, package("Approved", namespace="team-b"))
    assert state(theirs) == ("Stalled", "AlreadyExists")


def test_the_owner_tag_of_a_model_made_before_owner_tags_is_added_quietly(ctx):
    tagged = {**SPEC, "tags": [{"key": "team", "value": "a"}]}
    first = reconcile(mdl.CONTROLLER, tagged, meta(), {}, ctx, package("Approved"))
    ctx.registry.tags[first.status["arn"]] = {"team": "a"}  # as an older operator version made it
    again = reconcile(mdl.CONTROLLER, tagged, meta(), first.status, ctx, package("Approved"))
    assert again.events == [] and ctx.registry.tags[first.status["arn"]] == {"team": "a", **OURS}


def test_a_rename_never_deletes_the_old_name_once_another_object_owns_it(ctx):
    first = reconcile(mdl.CONTROLLER, {**SPEC, "modelName": "a"}, meta(), {}, ctx, package("Approved"))
    ctx.registry.tags[first.status["arn"]] = {IDENTITY_KEY: "default/team-b/a"}
    renamed = reconcile(
        mdl.CONTROLLER, {**SPEC, "modelName": "b"}, meta(2), first.status, ctx, package("Approved")
    )
    assert sorted(ctx.registry.models) == ["a", "b"] and "kept model a" in renamed.events[0].message
    assert [e.reason for e in renamed.events] == ["Replaced", "NotOwned"]
    assert "the Kubernetes object team-b/a of operator instance default" in renamed.events[1].message


def test_applied_again_with_a_new_uid_it_takes_its_model_back(ctx):
    import datetime

    retained = {**SPEC, "deletionPolicy": "Retain"}
    first = reconcile(mdl.CONTROLLER, retained, meta(), {}, ctx, package("Approved"))
    first_created = ctx.registry.models["churn"]["CreationTime"]
    delete(mdl.CONTROLLER, retained, meta(), first.status, ctx)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    again_meta = Meta("churn", "ml", "uid-new", 1, later)
    again = reconcile(mdl.CONTROLLER, retained, again_meta, {}, ctx, package("Approved"))
    assert state(again) == ("Ready", "Synced") and again.status["arn"] == first.status["arn"]
    assert [e.reason for e in again.events] == ["Adopted"] and "manages it again" in again.events[0].message
    # made once; the new object's first create refused (the name is taken), then taken back
    assert ctx.registry.calls["create_model"] == 2 and ctx.registry.calls["delete_model"] == 0
    assert ctx.registry.models["churn"]["CreationTime"] == first_created


def test_a_package_rejected_or_deleted_later_keeps_the_model_and_says_so_until_approved_again(ctx):
    first = reconcile(mdl.CONTROLLER, SPEC, meta(), {}, ctx, package("Approved"))
    assert state(first) == ("Ready", "Synced")
    rejected = reconcile(mdl.CONTROLLER, SPEC, meta(), first.status, ctx, package("Rejected"))
    assert state(rejected) == ("Ready", "Synced") and "churn" in ctx.registry.models  # kept
    message = rejected.status["conditions"][0]["message"]
    assert "ModelPackage churn-v1 is now Rejected" in message and "the model is kept" in message
    assert [(e.type, e.reason) for e in rejected.events] == [("Warning", "PackageNoLongerApproved")]
    again = reconcile(mdl.CONTROLLER, SPEC, meta(), rejected.status, ctx, package("Rejected"))
    assert again.events == [] and again.status["conditions"] == rejected.status["conditions"]  # said once
    gone = reconcile(mdl.CONTROLLER, SPEC, meta(), again.status, ctx, DictLookup())
    assert (
        state(gone) == ("Ready", "Synced")
        and "ModelPackage churn-v1 was deleted" in gone.status["conditions"][0]["message"]
    )
    approved = reconcile(mdl.CONTROLLER, SPEC, meta(), rejected.status, ctx, package("Approved"))
    assert approved.status["conditions"][0]["message"] == first.status["conditions"][0]["message"]
    assert ctx.registry.calls["create_model"] == 1 and ctx.registry.calls["delete_model"] == 0
    # a changed spec still waits for an approved package: nothing is made from a rejected one
    changed = reconcile(
        mdl.CONTROLLER,
        {**SPEC, "tags": [{"key": "t", "value": "v"}]},
        meta(2),
        rejected.status,
        ctx,
        package("Rejected"),
    )
    assert state(changed) == ("Reconciling", "WaitingForApproval")
