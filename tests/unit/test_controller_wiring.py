import asyncio
import copy
import logging

import kopf
import pytest

from fakes import FakeRegistry
from model_registry_operator import FINALIZER
from model_registry_operator.controllers.call import Event, Result
from model_registry_operator.controllers.conditions import Outcome, build_conditions, condition, is_ready
from model_registry_operator.controllers.context import Context
from model_registry_operator.controllers.wiring import (
    IndexLookup,
    StatusProgress,
    apply_result,
    change_pending,
    kopf_records,
    register_all,
    settled,
)
from model_registry_operator.main import configure_kopf
from model_registry_operator.settings import Settings


def body(status, generation=1, annotations=None):
    return kopf.Body(
        {
            "apiVersion": "registry.mlops.dev/v1alpha1",
            "kind": "ModelPackage",
            "metadata": {
                "name": "p",
                "namespace": "ml",
                "uid": "u",
                "generation": generation,
                "annotations": annotations or {},
            },
            "spec": {},
            "status": status,
        }
    )


def test_apply_result_patches_only_what_changed_and_removes_what_is_gone():
    previous = {"arn": "a", "modelPackageStatus": "Pending", "observedGeneration": 1}
    patch = kopf.Patch()
    apply_result(
        Result({"arn": "a", "observedGeneration": 1, "modelApprovalStatus": "Approved"}),
        body(previous),
        patch,
        previous,
    )
    assert dict(patch.status) == {"modelPackageStatus": None, "modelApprovalStatus": "Approved"}


def test_apply_result_asks_kopf_to_come_back_with_the_condition_message():
    conditions = build_conditions(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 1, None)
    with pytest.raises(kopf.TemporaryError) as raised:
        apply_result(Result({"conditions": conditions}, retry=2.0), body({}), kopf.Patch(), {})
    assert raised.value.delay == 2.0 and "Waiting for group g." in str(raised.value)


def test_a_woken_wait_finishes_its_handler_with_its_status_written():
    """A wait that a change of a Kubernetes object ends asks kopf for no retry (each would be a
    write): the handler is done, the status says what it waits for, and kopf's records are
    left as for a finished handler when a take-over writes it."""
    conditions = build_conditions(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 1, None)
    result = Result({"observedGeneration": 1, "conditions": conditions}, retry=2.0, woken=True)
    patch = kopf.Patch()
    apply_result(result, body({}), patch, {})  # no kopf.TemporaryError
    assert patch.status["conditions"] == conditions
    progress = {"progress": {"reconcile-create": {"retries": 1, "delayed": "2099-01-01T00:00:00+00:00"}}}
    assert kopf_records(body({"kopf": progress}), result)["progress"] is None


def test_settled_means_ready_or_stalled_for_this_generation():
    ready = {"observedGeneration": 2, "conditions": build_conditions(Outcome.ready("Synced", "ok"), 2, None)}
    stalled = {
        "observedGeneration": 2,
        "conditions": build_conditions(Outcome.stalled("InvalidSpec", "x"), 2, None),
    }
    waiting = {
        "observedGeneration": 2,
        "conditions": build_conditions(Outcome.reconciling("Creating", "x"), 2, None),
    }
    assert settled(body(ready, 2)) and settled(body(stalled, 2))
    assert not settled(body(waiting, 2))
    assert not settled(body(ready, 3))  # a newer spec is not reconciled yet
    assert not settled(body({}, 1))


def test_a_change_handler_waiting_for_its_retry_keeps_the_resync_away():
    waiting = {
        "observedGeneration": 2,
        "conditions": build_conditions(Outcome.reconciling("Throttling", "x"), 2, None),
    }
    assert not change_pending(body(waiting, 2))  # e.g. a resync that failed: the next resync retries
    assert change_pending(
        body({**waiting, "kopf": {"progress": {"reconcile-update/spec": {"retries": 1}}}}, 2)
    )
    assert not change_pending(body({**waiting, "kopf": {"progress": {}}}, 2))  # kopf purged it: done
    assert change_pending(body(waiting, 3))


@pytest.mark.parametrize("handler_id", ["reconcile-create", "reconcile-update/spec", "reconcile-resume"])
def test_change_pending_sees_each_change_handler_by_the_key_kopf_stores(handler_id):
    # The record comes from kopf's own storage, configured as main.py configures it.
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    waiting = {
        "observedGeneration": 2,
        "conditions": build_conditions(Outcome.reconciling("Throttling", "x"), 2, None),
    }
    patch = kopf.Patch()
    settings.persistence.progress_storage.store(
        key=kopf.HandlerId(handler_id), record={"retries": 1}, body=body(waiting, 2), patch=patch
    )
    assert change_pending(body({**waiting, **patch.status}, 2))


def test_handler_ids_name_the_cause_they_handle():
    reg = kopf.OperatorRegistry()
    register_all(reg, Context.create(FakeRegistry(), Settings()))
    ids = {handler.id for handler in reg._changing.get_all_handlers()}
    assert {"reconcile-create", "reconcile-update/spec", "reconcile-resume"} <= ids
    by_id = {handler.id: handler for handler in reg._changing.get_all_handlers()}
    assert by_id["reconcile-create"].reason == kopf.Reason.CREATE
    assert by_id["reconcile-update/spec"].reason == kopf.Reason.UPDATE


def test_index_lookup_reads_kopf_indexes():
    lookup = IndexLookup({"modelpackagegroup_index": {("ml", "g"): [{"status": {"arn": "x"}}]}})
    assert lookup.get("ModelPackageGroup", "ml", "g") == {"status": {"arn": "x"}}
    assert lookup.get("ModelPackageGroup", "ml", "other") is None
    assert lookup.get("ModelPackage", "ml", "g") is None


def test_kopf_is_configured_with_the_products_own_names():
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    assert settings.persistence.finalizer == FINALIZER
    assert settings.posting.reporting_component == "model-registry-operator"


def copying(percent):
    return Outcome.reconciling("CopyingArtifacts", f"Copying artifact model: {percent}%.")


def test_progress_is_written_as_reconciling_of_the_current_generation():
    writes = []
    conditions = build_conditions(Outcome.ready("Synced", "ok"), 1, None)
    ready = {"arn": "a", "observedGeneration": 1, "conditions": conditions}
    progress = StatusProgress(
        lambda *args: writes.append(args), "modelpackages", body(ready, generation=2), ready
    )
    progress(copying(10))
    progress(copying(60))
    assert [w[:3] for w in writes] == [("modelpackages", "ml", "p")] * 2
    first, second = writes[0][3], writes[1][3]
    assert set(first) == {"observedGeneration", "conditions"} and first["observedGeneration"] == 2
    reconciling = [c for c in second["conditions"] if c["type"] == "Reconciling"][0]
    assert reconciling["status"] == "True" and reconciling["message"] == "Copying artifact model: 60%."
    assert [c for c in second["conditions"] if c["type"] == "Ready"][0]["status"] == "False"
    written = progress.close()
    progress(copying(90))  # the reconcile is over: kopf writes the outcome, nothing else may
    assert len(writes) == 2 and written == {**ready, **second}


def test_a_failing_progress_write_does_not_fail_the_reconcile():
    def refuse(*_):
        raise ConnectionError("API server unavailable")

    progress = StatusProgress(refuse, "modelpackages", body({}), {})
    progress(copying(10))
    assert progress.close() == {}


def test_the_final_patch_is_computed_against_what_progress_wrote():
    """The outcome equal to the status before the copy must still overwrite the progress."""
    before = {"observedGeneration": 1, "conditions": build_conditions(copying(0), 1, None)}
    progress = StatusProgress(lambda *_: None, "modelpackages", body(before), before)
    progress(copying(50))
    patch = kopf.Patch()
    apply_result(Result(dict(before)), body(before), patch, progress.close())
    assert patch.status["conditions"] == before["conditions"]


def test_an_unexpected_exception_becomes_a_reconciling_condition_not_a_traceback(caplog):
    import dataclasses

    from controller_calls import reconcile
    from model_registry_operator.controllers import modelpackagegroup
    from model_registry_operator.controllers.call import Meta

    def broken(call, spec, ctx):
        raise AttributeError(
            "'NoneType' object has no attribute 'containers' at https://x.test/?X-Amz-Signature=s"
        )

    kind = dataclasses.replace(modelpackagegroup.CONTROLLER, reconcile_steps=broken)
    status = {"arn": "arn:aws:sagemaker:us-east-2:1:model-package/g/1", "observedGeneration": 1}
    result = reconcile(
        kind, {}, Meta("p", "ml", "u", 2), status, Context.create(FakeRegistry(), Settings()), attempt=2
    )
    active = {c["type"]: c for c in result.status["conditions"] if c["status"] == "True"}
    assert set(active) == {"Reconciling"} and active["Reconciling"]["reason"] == "InternalError"
    assert (
        "AttributeError" in active["Reconciling"]["message"]
        and "Signature" not in active["Reconciling"]["message"]
    )
    assert result.status["arn"] == status["arn"]  # what was observed before is kept
    # retried like any retryable error (a 10 s floor, then backoff by attempt), counted as a failure
    assert 10 <= result.retry <= 12 and result.failed
    assert "failed unexpectedly" in caplog.text


def handlers_for(steps, kind_name="ModelPackageGroup"):
    """A kind's kopf handlers (a group's spec may be empty) with its reconcile steps replaced
    by `steps`."""
    import dataclasses

    from prometheus_client import CollectorRegistry

    from model_registry_operator.controllers import modelpackage, modelpackagegroup
    from model_registry_operator.controllers.wiring import KindHandlers, Runtime
    from model_registry_operator.metrics import OperatorMetrics

    controller = {"ModelPackageGroup": modelpackagegroup, "ModelPackage": modelpackage}[kind_name].CONTROLLER
    kind = dataclasses.replace(controller, reconcile_steps=steps)
    ctx = Context.create(FakeRegistry(), Settings())
    return KindHandlers(kind, ctx, Runtime(), OperatorMetrics(CollectorRegistry()), lambda *_: None)


def waiting_dependent(handlers, kind_name, uid, reason):
    """(a snapshot of an object of `kind_name` waiting for `reason`, the UIDs hurried so far):
    `handlers`' dependents of that kind are a fake that records each take-over."""
    waiting = {
        "metadata": {"name": uid, "namespace": "ml", "uid": uid},
        "status": {"conditions": build_conditions(Outcome.reconciling(reason, "w"), 1, None)},
    }
    hurried: list[str] = []

    class Dependent:
        kind = type("K", (), {"name": kind_name})

        async def take_over(self, snapshot, indexes):
            hurried.append(snapshot["metadata"]["uid"])

    handlers.runtime.kinds = {kind_name: Dependent()}
    return waiting, hurried


def test_a_wake_up_ends_an_inline_wait_at_once():
    """A handler riding out a short wait in memory (a group being created) looks again as soon
    as what it waits for changes, not when its wait ends."""
    import asyncio
    import time

    from model_registry_operator.controllers.call import Stop
    from model_registry_operator.controllers.wiring import Handled

    calls = []

    def steps(call, spec, ctx):
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise Stop(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 8.0, short=True)
        return call.finish(Outcome.ready("Synced", "ok"))

    handlers = handlers_for(steps)
    obj = body({})
    handled = Handled(
        handlers.kind.reconcile,
        obj,
        IndexLookup({}),
        False,
        True,
        StatusProgress(lambda *_: None, "modelpackages", obj, {}),
    )

    async def scenario():
        woken = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, woken.set)
        return await handlers.reconcile_until_done(handled, {}, woken)

    started = time.monotonic()
    result = asyncio.run(scenario())
    assert result is not None and result.retry is None and len(calls) == 2
    assert calls[1] - started < 4.0  # woken after 0.2 s, not after the 8 s wait


def test_dependents_are_woken_only_when_what_they_wait_for_changes():
    """An edit of a package's spec (not reconciled yet) or a progress write does not wake the
    Models waiting for its approval; its approval changing does."""
    import asyncio

    handlers = handlers_for(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")), "ModelPackage"
    )
    waiting, hurried = waiting_dependent(handlers, "Model", "m1", "WaitingForApproval")
    indexes = {"model_dependents": {("ModelPackage", "ml", "p"): [waiting]}}

    def package(approval):
        status = {"conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None)}
        if approval:
            status["modelApprovalStatus"] = approval
        return {"metadata": {"name": "p", "namespace": "ml", "uid": "u", "generation": 1}, "status": status}

    async def scenario():
        handlers.wake_dependents(None, package("PendingManualApproval"), indexes)  # listed at start
        handlers.wake_dependents("MODIFIED", package("PendingManualApproval"), indexes)  # a spec edit
        await asyncio.sleep(0)
        assert hurried == []
        handlers.wake_dependents("MODIFIED", package("Approved"), indexes)
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert hurried == ["m1"]


class StoredObjects:
    """The API server's side of a status writer and reader (wiring.StatusWriter/ObjectReader):
    one object per name, a resourceVersion bumped per write, a conditional write refused with
    kube.Conflict when the object moved on, as the API server does (409)."""

    def __init__(self):
        self.objects, self.writes, self.reads = {}, [], 0
        self.away = 0  # requests that fail next, as when the API server cannot be reached

    def put(self, name, status, version):
        self.objects[name] = {
            "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "resourceVersion": version},
            "status": status,
        }
        return self.objects[name]

    def write(self, plural, namespace, name, change, resource_version="", /):
        import copy

        from model_registry_operator.kube import Conflict

        self.writes.append((name, change, resource_version))
        self.fail_if_away()
        stored = self.objects[name]
        if resource_version and resource_version != stored["metadata"]["resourceVersion"]:
            raise Conflict(name)
        merge(stored["status"], copy.deepcopy(change))
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)

    def read(self, plural, namespace, name):
        import copy

        self.reads += 1
        self.fail_if_away()
        return copy.deepcopy(self.objects.get(name))

    def fail_if_away(self):
        if self.away:
            self.away -= 1
            raise ConnectionRefusedError("the API server cannot be reached")


def merge(into, change):
    for key, value in change.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def waiting_status(delayed="2099-01-01T00:00:00+00:00"):
    status = {"conditions": build_conditions(Outcome.reconciling("WaitingForGroup", "w"), 1, None)}
    status["kopf"] = {"progress": {"reconcile-create": {"delayed": delayed, "retries": 3}}}
    return status


def taking_over(steps):
    """A kind's handlers (steps replacing its reconcile) writing to and reading from
    StoredObjects, and a waiting object stored at resourceVersion 7."""
    import dataclasses

    from prometheus_client import CollectorRegistry

    from model_registry_operator.controllers import modelpackagegroup, wiring
    from model_registry_operator.metrics import OperatorMetrics

    stored = StoredObjects()
    runtime = wiring.Runtime(status_writer=stored.write, object_reader=stored.read)
    kind = dataclasses.replace(modelpackagegroup.CONTROLLER, reconcile_steps=steps)
    ctx = Context.create(FakeRegistry(), Settings())
    handlers = wiring.KindHandlers(kind, ctx, runtime, OperatorMetrics(CollectorRegistry()), stored.write)
    waiting = stored.put("p", waiting_status(), "7")
    waiting["metadata"]["generation"] = 1
    waiting["spec"] = {}
    snapshot = {"metadata": dict(waiting["metadata"]), "status": waiting_status()}
    return handlers, stored, snapshot


def kopf_sees_nothing_to_handle(obj):
    """What kopf decides on the object's next event, with the operator's kopf settings: its
    recorded spec is the object's own (no update to handle) and no handler is pending."""
    from model_registry_operator.main import configure_kopf

    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    wrapped = kopf.Body(obj)
    storage = settings.persistence.diffbase_storage
    assert storage.fetch(body=wrapped) == storage.build(body=wrapped, extra_fields=["spec"])
    assert not ((obj["status"].get("kopf") or {}).get("progress"))


def test_a_waiting_object_woken_is_reconciled_and_written_once_leaving_kopf_nothing_to_do():
    """The take-over: one read, the reconcile, and one write conditional on the version read,
    holding the outcome and kopf's records as kopf's own handler would leave them."""
    import asyncio

    handlers, stored, snapshot = taking_over(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok"))
    )
    asyncio.run(handlers.take_over(snapshot, {}))
    assert stored.reads == 1 and [version for _, _, version in stored.writes] == ["7"]
    obj = stored.objects["p"]
    assert is_ready(obj["status"]) and "p" not in handlers.handling
    kopf_sees_nothing_to_handle(obj)


def test_a_take_over_still_waiting_moves_kopfs_next_try_to_when_the_reconcile_asks():
    import asyncio
    import datetime

    from model_registry_operator.controllers.call import Stop

    def steps(call, spec, ctx):
        raise Stop(Outcome.reconciling("WaitingForGroup", "Waiting for group g to be Ready."), 40.0)

    handlers, stored, snapshot = taking_over(steps)
    asyncio.run(handlers.take_over(snapshot, {}))
    record = stored.objects["p"]["status"]["kopf"]["progress"]["reconcile-create"]
    due = datetime.datetime.fromisoformat(record["delayed"]) - datetime.datetime.now(datetime.UTC)
    assert 30 < due.total_seconds() <= 40 and record["retries"] == 3
    assert "lastHandledConfiguration" not in stored.objects["p"]["status"]["kopf"]


def test_a_take_over_still_waiting_for_a_change_leaves_kopf_nothing_to_do():
    """Woken, and what it waits for is still not there (a group deleted again meanwhile): the
    new message is written, and kopf is not asked to come back; the next change wakes it."""
    import asyncio

    from model_registry_operator.controllers.call import Waiting

    def steps(call, spec, ctx):
        raise Waiting(Outcome.reconciling("WaitingForGroup", "Group g does not exist."), 2.0, woken=True)

    handlers, stored, snapshot = taking_over(steps)
    asyncio.run(handlers.take_over(snapshot, {}))
    obj = stored.objects["p"]
    assert obj["status"]["conditions"][1]["message"] == "Group g does not exist."
    kopf_sees_nothing_to_handle(obj)


def parked(steps, monkeypatch):
    """A package-like kind (referencing group g) whose object p has just parked a wait that a
    change ends: kopf's records say done, the index of dependents has it waiting."""
    import dataclasses

    from model_registry_operator.controllers import wiring

    monkeypatch.setattr(wiring, "PARKED_LOOK_AGAIN_SECONDS", 0.0)
    handlers, stored, snapshot = taking_over(steps)
    handlers.kind = dataclasses.replace(handlers.kind, references=lambda spec: [("ModelPackageGroup", "g")])
    waiting = build_conditions(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 1, None)
    status = {"deletionPolicy": "Delete", "observedGeneration": 1, "conditions": waiting, "kopf": {}}
    stored.objects["p"]["status"] = status
    snapshot = {**snapshot, "spec": {}, "status": status}
    indexes = {wiring.dependents_index(handlers.kind.name): {("ModelPackageGroup", "ml", "g"): [snapshot]}}
    return handlers, stored, snapshot, indexes


def test_a_wait_that_began_as_its_change_came_is_taken_over_by_its_look_again(monkeypatch):
    """The group became Ready before the package's waiting status reached the index: that wake
    found nothing waiting. The look a moment after the wait began takes it over."""
    import asyncio

    handlers, stored, snapshot, indexes = parked(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")), monkeypatch
    )
    asyncio.run(handlers._look_again(snapshot["metadata"], {}, indexes))
    assert is_ready(stored.objects["p"]["status"]) and len(stored.writes) == 1


def test_a_look_again_that_finds_the_same_wait_writes_nothing(monkeypatch):
    import asyncio

    from model_registry_operator.controllers.call import Waiting

    def steps(call, spec, ctx):
        raise Waiting(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 2.0, woken=True)

    handlers, stored, snapshot, indexes = parked(steps, monkeypatch)
    asyncio.run(handlers._look_again(snapshot["metadata"], {}, indexes))
    assert stored.writes == [] and not is_ready(stored.objects["p"]["status"])


async def until_settled(handlers):
    """Wait for the take-overs and wake-ups the handlers spawned, and theirs."""
    while handlers.runtime.wakes:
        await asyncio.gather(*handlers.runtime.wakes)


def test_a_take_over_that_cannot_write_tries_again_and_says_what_it_did_once(monkeypatch):
    """The API server away a moment as a woken package is registered: its write fails; it is
    taken over again a moment later (timing.WAKE_FAILURE_DELAY, backing off), not left waiting
    for its resync; the Event of the create is posted once."""
    from model_registry_operator.controllers import wiring

    def ready(call, spec, ctx):
        if not call.previous.get("arn"):
            call.events.append(Event.normal("Created", "registered"))
            call.fields["arn"] = "arn:p"
        return call.finish(Outcome.ready("Synced", "ok"))

    delays, posted = [], []
    monkeypatch.setattr(wiring, "retry_delay", lambda floor, attempt: delays.append((floor, attempt)) or 0.0)
    monkeypatch.setattr(kopf, "event", lambda body, **event: posted.append(event["reason"]))
    handlers, stored, snapshot, indexes = parked(ready, monkeypatch)
    stored.away = 2

    async def scenario():
        await handlers.take_over(snapshot, indexes)
        await until_settled(handlers)

    asyncio.run(scenario())
    obj = stored.objects["p"]
    assert is_ready(obj["status"]) and obj["status"]["arn"] == "arn:p"
    assert len(stored.writes) == 3 and posted == ["Created"]
    assert delays == [(wiring.WAKE_FAILURE_DELAY, 0), (wiring.WAKE_FAILURE_DELAY, 1)]
    kopf_sees_nothing_to_handle(obj)


def test_a_take_over_that_keeps_failing_is_left_to_its_resync_after_a_few_tries(monkeypatch, caplog):
    from model_registry_operator.controllers import wiring

    delays = []
    monkeypatch.setattr(wiring, "retry_delay", lambda floor, attempt: delays.append(attempt) or 0.0)
    handlers, stored, snapshot, indexes = parked(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")), monkeypatch
    )
    stored.away = 1000

    async def scenario():
        await handlers.take_over(snapshot, indexes)
        await until_settled(handlers)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert len(stored.writes) == wiring.WAKE_FAILURE_ATTEMPTS
    assert delays == list(range(wiring.WAKE_FAILURE_ATTEMPTS - 1))
    assert "ml/p is left to its resync" in caplog.text
    assert not is_ready(stored.objects["p"]["status"])


def test_a_take_over_that_cannot_read_tries_again(monkeypatch):
    """Woken from a copy without the object's spec: read first; that read fails once."""
    from model_registry_operator.controllers import wiring

    monkeypatch.setattr(wiring, "retry_delay", lambda floor, attempt: 0.0)
    handlers, stored, snapshot = taking_over(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok"))
    )
    stored.away = 1

    async def scenario():
        await handlers.take_over(snapshot, {})
        await until_settled(handlers)

    asyncio.run(scenario())
    assert stored.reads == 2  # read again
    assert is_ready(stored.objects["p"]["status"]) and len(stored.writes) == 1


def test_a_failed_take_over_whose_object_no_longer_waits_is_not_tried_again(monkeypatch):
    """Its write failed, and meanwhile kopf's handler finished it (the index of dependents has it
    Ready): nothing to do. And a second wake-up failing while a retry is due adds none."""
    from model_registry_operator.controllers import wiring

    monkeypatch.setattr(wiring, "retry_delay", lambda floor, attempt: 0.05)
    handlers, stored, snapshot, indexes = parked(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")), monkeypatch
    )
    stored.away = 2
    done = {
        **snapshot,
        "status": {"conditions": build_conditions(Outcome.ready("Synced", "by kopf"), 1, None)},
    }

    async def scenario():
        await handlers.take_over(snapshot, indexes)
        await handlers.take_over(dict(snapshot), indexes)  # woken again: its write fails too
        assert len(handlers.runtime.wakes) == 1  # one retry due, not two
        indexes[wiring.dependents_index(handlers.kind.name)][("ModelPackageGroup", "ml", "g")] = [done]
        await until_settled(handlers)

    asyncio.run(scenario())
    assert len(stored.writes) == 2 and not is_ready(stored.objects["p"]["status"])


def test_a_take_over_whose_object_moved_on_writes_again_only_what_is_still_its_work(monkeypatch):
    """Its write is refused when the object changed since it was taken over. Changed by a write
    that leaves kopf's records alone (its own progress, a label): the same outcome written on
    the version read then. Changed by kopf's handler, which still waits (it looked before the
    change it waits for): reconciled once more from what is stored, and written. Changed by
    kopf's handler, which finished: that handler's outcome stands."""
    import asyncio

    def ready(call, spec, ctx):
        calls.append(call.previous)
        if len(calls) == 1:  # written meanwhile
            call.events.append(Event.normal("Created", "made it"))
            stored.objects["p"]["metadata"]["resourceVersion"] = "8"
            if kopf_ran:
                status = stored.objects["p"]["status"]
                status["kopf"]["progress"]["reconcile-create"]["retries"] = 4
                if kopf_ran == "finished":
                    status["conditions"] = build_conditions(Outcome.ready("Synced", "by kopf"), 1, None)
        return call.finish(Outcome.ready("Synced", "ok"))

    cases = ((None, ["7", "8"], 1), ("still waiting", ["7", "8"], 2), ("finished", ["7"], 1))
    for kopf_ran, versions, reconciles in cases:
        calls: list = []
        posted: list = []
        monkeypatch.setattr(kopf, "event", lambda body, **event: posted.append(event["reason"]))
        handlers, stored, snapshot = taking_over(ready)
        asyncio.run(handlers.take_over(snapshot, {}))
        assert posted == ["Created"], kopf_ran  # what the first reconcile did, however its write went
        assert [version for _, _, version in stored.writes] == versions, kopf_ran
        assert len(calls) == reconciles, kopf_ran
        assert all(is_ready(previous) for previous in calls[1:]), kopf_ran
        message = condition(stored.objects["p"]["status"], "Ready")["message"]
        assert message == ("by kopf" if kopf_ran == "finished" else "ok"), kopf_ran
        if kopf_ran != "finished":
            kopf_sees_nothing_to_handle(stored.objects["p"])


def test_the_dependents_index_keeps_a_waiting_object_whole_and_any_other_by_its_conditions():
    import asyncio

    handlers = handlers_for(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")), "ModelPackage"
    )
    obj = {
        "metadata": {"name": "p", "namespace": "ml", "uid": "uid-p", "resourceVersion": "7"},
        "spec": {"modelPackageGroupRef": {"name": "g"}},
        "status": waiting_status(),
    }
    entry = asyncio.run(handlers.dependents_entry("ml", kopf.Body(obj)))
    assert entry == {("ModelPackageGroup", "ml", "g"): obj}
    obj["status"] = {"conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None)}
    (snapshot,) = asyncio.run(handlers.dependents_entry("ml", kopf.Body(obj))).values()
    assert snapshot == {
        "metadata": {"name": "p", "namespace": "ml", "uid": "uid-p"},
        "status": {"conditions": obj["status"]["conditions"]},
    }


def test_a_take_over_from_the_index_copy_reads_nothing_unless_the_copy_is_stale():
    """The index's whole copy of a waiting object is what its take-over reconciles and writes
    on the condition of: no read. A copy older than the object (kopf's index lags in a burst)
    has its write refused: the object is read and, still waiting, taken over again."""
    import asyncio

    reconciles: list = []

    def ready(call, spec, ctx):
        reconciles.append(call.meta.uid)
        return call.finish(Outcome.ready("Synced", "ok"))

    for copy_version, reads, versions in (("7", 0, ["7"]), ("6", 1, ["6", "7"])):
        reconciles.clear()
        handlers, stored, _ = taking_over(ready)
        copy = {
            **stored.objects["p"],
            "metadata": {**stored.objects["p"]["metadata"]},
            "status": waiting_status(),
        }
        copy["metadata"]["resourceVersion"] = copy_version
        if copy_version == "6":  # before kopf's handler last wrote its record
            copy["status"]["kopf"]["progress"]["reconcile-create"]["retries"] = 2
        asyncio.run(handlers.take_over(copy, {}))
        assert stored.reads == reads and [v for _, _, v in stored.writes] == versions
        assert len(reconciles) == len(versions)
        kopf_sees_nothing_to_handle(stored.objects["p"])


def test_a_wake_up_of_an_object_its_handler_is_on_ends_that_handlers_wait_instead():
    import asyncio

    handlers, stored, snapshot = taking_over(
        lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok"))
    )

    async def scenario():
        running = handlers.handling["uid-p"] = asyncio.Event()
        await handlers.take_over(snapshot, {})
        return running.is_set()

    assert asyncio.run(scenario()) and stored.reads == 0 and stored.writes == []


def test_resyncs_of_objects_applied_together_spread_over_the_period():
    from model_registry_operator.controllers.wiring import spread_resyncs

    first = spread_resyncs(300.0)
    delays = [first(body={"metadata": {"uid": f"uid-{i}"}}) for i in range(1000)]
    assert all(150 <= d < 450 for d in delays)
    # spread, not together: each tenth of the range holds a share of them
    tenths = {int((d - 150) // 30) for d in delays}
    assert tenths == set(range(10))
    assert first(body={"metadata": {"uid": "uid-7"}}) == delays[7]  # the same in every process
    # a timer started at once (sharding: an object this replica does not own) stays at once
    assert spread_resyncs(lambda body, **_: 0.0)(body={"metadata": {"uid": "u"}}) == 0.0


def test_what_a_reconcile_found_is_read_until_the_index_has_it():
    """Announced: a package's freshly found status overrides kopf's older index entry until a
    watch event brings that status (or the object's deletion), or ANNOUNCED_SECONDS pass."""
    from model_registry_operator.controllers.wiring import Announced
    from model_registry_operator.timing import ANNOUNCED_SECONDS

    now = [100.0]
    announced = Announced(clock=lambda: now[0])
    ready = build_conditions(Outcome.ready("Synced", "ok"), 2, None)
    old = {"arn": "a", "conditions": ready, "modelApprovalStatus": "PendingManualApproval"}
    new = {**old, "modelApprovalStatus": "Approved", "approvalHistory": [{"x": 1}]}
    index = {"modelpackage_index": {("ml", "p"): [{"spec": {}, "status": old, "deleting": False}]}}
    lookup = IndexLookup(index, announced)
    key = ("ModelPackage", "ml", "p")

    announced.put(key, new)
    found = lookup.get("ModelPackage", "ml", "p")
    assert found is not None and found["status"]["modelApprovalStatus"] == "Approved"
    assert "approvalHistory" not in found["status"]  # only what the index keeps too
    announced.seen(key, "MODIFIED", old)  # an older event still in flight
    assert lookup.get("ModelPackage", "ml", "p")["status"]["modelApprovalStatus"] == "Approved"
    announced.seen(key, "MODIFIED", new)  # kopf's write came back: the index has it now
    assert announced.get(key) is None

    announced.put(key, new)
    now[0] += ANNOUNCED_SECONDS + 1  # the write never came back: the index is the truth again
    assert lookup.get("ModelPackage", "ml", "p")["status"]["modelApprovalStatus"] == "PendingManualApproval"
    announced.put(key, new)
    announced.seen(key, "DELETED", {})
    assert announced.get(key) is None


def test_a_group_reconcile_wakes_its_waiting_packages_before_its_status_comes_back(monkeypatch):
    """The packages waiting for their group are woken when its reconcile finds it Ready, not
    when kopf's status write comes back through the watch, and read it as found (Announced);
    the watch event of that write, the same state, wakes nothing again. (The same path wakes
    the Models waiting for a package's approval.)"""
    import asyncio

    monkeypatch.setattr(kopf, "event", lambda *args, **kwargs: None)  # no kopf loop to post it
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/p"

    def steps(call, spec, ctx):
        call.fields["arn"] = arn
        return call.finish(Outcome.ready("Synced", "ok"))

    handlers = handlers_for(steps)
    waiting, hurried = waiting_dependent(handlers, "ModelPackage", "v1", "WaitingForGroup")
    creating = {
        "observedGeneration": 1,
        "conditions": build_conditions(Outcome.reconciling("Creating", "c"), 1, None),
    }
    indexes = {
        "modelpackage_dependents": {("ModelPackageGroup", "ml", "p"): [waiting]},
        "modelpackagegroup_index": {("ml", "p"): [{"spec": {}, "status": creating, "deleting": False}]},
    }
    obj = body(creating)

    async def scenario():
        handlers.wake_dependents(None, obj, indexes)  # listed at start: being created
        patch = kopf.Patch()
        await handlers.run(handlers.kind.reconcile, obj, patch, indexes)
        await asyncio.sleep(0.01)
        assert hurried == ["v1"]  # before any watch event of the write
        seen = IndexLookup(indexes, handlers.runtime.announced).get("ModelPackageGroup", "ml", "p")
        assert seen is not None and seen["status"]["arn"] == arn and is_ready(seen["status"])
        written = body({**creating, **patch.status})
        handlers.wake_dependents("MODIFIED", written, indexes)  # the write comes back
        await asyncio.sleep(0.01)
        return patch

    patch = asyncio.run(scenario())
    assert patch.status["arn"] == arn
    assert hurried == ["v1"]


def test_a_group_that_appears_not_ready_wakes_its_waiting_packages_when_ready_or_a_while_later(monkeypatch):
    """A group just applied (not Ready yet) leaves the packages waiting for it alone: a take-over
    would only change their message, a reconcile each just when the group's own reconcile needs
    the CPU. Its Ready wakes them; a group still not Ready a while after it appeared (stalled,
    slow) wakes them then, so that their message says what they wait for."""
    import asyncio

    from model_registry_operator.controllers import wiring

    monkeypatch.setattr(wiring, "APPEARED_GRACE_SECONDS", 0.5)  # far above the steps below
    creating = {
        "observedGeneration": 1,
        "conditions": build_conditions(Outcome.reconciling("Creating", "c"), 1, None),
    }
    ready = {
        "observedGeneration": 1,
        "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/p",
        "conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None),
    }
    stalled = {
        "observedGeneration": 1,
        "conditions": build_conditions(Outcome.stalled("InvalidSpec", "s"), 1, None),
    }

    async def scenario(*statuses):
        """The UIDs taken over: at once, right after each status, and after the grace."""
        handlers = handlers_for(lambda call, spec, ctx: call.finish(Outcome.ready("Synced", "ok")))
        waiting, hurried = waiting_dependent(handlers, "ModelPackage", "v1", "WaitingForGroup")
        indexes = {"modelpackage_dependents": {("ModelPackageGroup", "ml", "p"): [waiting]}}
        seen = []
        for number, status in enumerate(statuses):
            handlers.wake_dependents("MODIFIED" if number else "ADDED", body(status), indexes)
            await asyncio.sleep(0.01)
            seen.append(list(hurried))
        await asyncio.sleep(1.0)  # past the grace
        return [*seen, list(hurried)]

    # the usual: created, then Ready within the grace; woken once, by the Ready
    assert asyncio.run(scenario(creating, ready)) == [[], ["v1"], ["v1"]]
    # applied and stalled: nothing will make it Ready soon; woken once the grace is over
    assert asyncio.run(scenario(creating, stalled)) == [[], [], ["v1"]]
    # applied Ready at once (a copy of a settled object): woken at once
    assert asyncio.run(scenario(ready)) == [["v1"], ["v1"]]


def test_a_ready_object_woken_is_read_afresh_and_left_alone_when_gone_or_replaced():
    """The dependents index keeps only names, conditions and kopf's retry records: a Ready
    Model woken by its package's change is read afresh, and reconciled only if it is still the
    same object and Ready."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from model_registry_operator.controllers import model
    from model_registry_operator.controllers.wiring import KindHandlers, Runtime
    from model_registry_operator.metrics import OperatorMetrics

    ready = {"conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None)}
    snapshot = {"metadata": {"name": "m", "namespace": "ml", "uid": "m1"}, "status": ready}
    reads, writes, reconciled = [], [], []
    same = {
        "metadata": {"name": "m", "namespace": "ml", "uid": "m1", "generation": 1},
        "spec": {},
        "status": ready,
    }
    answers = iter([None, {**same, "metadata": {**same["metadata"], "uid": "other"}}, same])

    def read(plural, namespace, name):
        reads.append((plural, namespace, name))
        return next(answers)

    runtime = Runtime(status_writer=lambda *args: writes.append(args), object_reader=read)
    ctx = Context.create(FakeRegistry(), Settings())
    handlers = KindHandlers(
        model.CONTROLLER, ctx, runtime, OperatorMetrics(CollectorRegistry()), runtime.status_writer
    )

    async def reconcile_until_done(handled, status, woken=None):
        reconciled.append(handled.body)
        return Result(dict(status), [], None)

    handlers.reconcile_until_done = reconcile_until_done

    async def scenario():
        await handlers.wake(snapshot, {})  # gone meanwhile
        await handlers.wake(snapshot, {})  # deleted and created again under the same name
        assert reconciled == [] and writes == []
        await handlers.wake(snapshot, {})  # still there: reconciled from what was read

    asyncio.run(scenario())
    assert reads == [("models", "ml", "m")] * 3
    assert reconciled == [same]


def test_a_ready_object_woken_that_cannot_be_read_or_written_is_woken_again(monkeypatch):
    """A Model whose package was rejected, woken as the API server is away a moment: its
    warning is written a moment later, not at its resync."""
    from prometheus_client import CollectorRegistry

    from model_registry_operator.controllers import model, wiring
    from model_registry_operator.metrics import OperatorMetrics

    monkeypatch.setattr(wiring, "retry_delay", lambda floor, attempt: 0.0)
    stored = StoredObjects()
    ready = {"conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None)}
    stored.put("m", ready, "3")["spec"] = {}
    stored.objects["m"]["metadata"]["generation"] = 1
    runtime = wiring.Runtime(status_writer=stored.write, object_reader=stored.read)
    ctx = Context.create(FakeRegistry(), Settings())
    handlers = wiring.KindHandlers(
        model.CONTROLLER, ctx, runtime, OperatorMetrics(CollectorRegistry()), stored.write
    )

    found: list = []  # as wiring.Found: a reconcile after the one that warned says nothing more

    async def reconcile_until_done(handled, status, woken=None):
        warned = build_conditions(Outcome.ready("Synced", "package p is Rejected"), 1, None)
        events = [] if found else [Event.warning("PackageNoLongerApproved", "package p is Rejected")]
        found.append(warned)
        return Result({**status, "conditions": warned}, events, None)

    posted: list = []
    monkeypatch.setattr(kopf, "event", lambda body, **event: posted.append(event["reason"]))
    handlers.reconcile_until_done = reconcile_until_done
    snapshot = {"metadata": {"name": "m", "namespace": "ml", "uid": "uid-m"}, "status": ready}
    write = stored.write
    for failing in ("read", "write"):
        stored.objects["m"]["status"] = copy.deepcopy(ready)
        stored.away, stored.reads, stored.writes = 1 if failing == "read" else 0, 0, []
        found.clear()
        posted.clear()
        if failing == "write":
            runtime.status_writer = handlers.write = write_failing_once(write)

        async def scenario():
            await handlers.wake(snapshot, {})
            await until_settled(handlers)

        asyncio.run(scenario())
        assert condition(stored.objects["m"]["status"], "Ready")["message"] == "package p is Rejected"
        assert (stored.reads, len(stored.writes)) == (2, 1), failing  # read again, written once
        assert posted == ["PackageNoLongerApproved"], failing  # said once, however its write went


def write_failing_once(write):
    failed = []

    def once(*args):
        if not failed:
            failed.append(args)
            raise ConnectionRefusedError("the API server cannot be reached")
        return write(*args)

    return once


def test_a_reconcile_of_a_copy_older_than_what_was_found_starts_from_what_was_found():
    """Reconciles of copies of an object whose status is older than what a reconcile just found
    (a take-over and kopf's handler that waited for its lock; kopf's retry, or a take-over's
    second pass after its write was refused, before that write came back through the watch):
    each starts from what was found, not from the copy's status (from which a Model would be
    created again, answered "already exists"), whatever the copy's resourceVersion (kopf's own
    writes make new ones). A copy with another status (another writer's) starts from its own,
    and so does an old copy once ANNOUNCED_SECONDS have passed."""
    import threading
    import time

    from model_registry_operator.api.common import KOPF_STATUS
    from model_registry_operator.controllers.wiring import Found, Handled
    from model_registry_operator.timing import ANNOUNCED_SECONDS

    started: list[str | None] = []
    first_in, first_may_finish = threading.Event(), threading.Event()

    def steps(call, spec, ctx):
        started.append(call.previous.get("arn"))
        if len(started) == 1:
            first_in.set()
            first_may_finish.wait(5)
        call.fields["arn"] = f"arn:{len(started)}"
        return call.finish(Outcome.ready("Synced", "ok"))

    handlers = handlers_for(steps)
    now = [100.0]
    handlers.runtime.found = Found(clock=lambda: now[0])
    old = {"arn": "arn:copy"}
    found: list[dict] = []

    def reconcile(status, version="7"):
        obj = body(dict(status))
        obj["metadata"]["resourceVersion"] = version
        progress = StatusProgress(lambda *_: None, "modelpackagegroups", obj, dict(status))
        handled = Handled(handlers.kind.reconcile, obj, IndexLookup({}), False, True, progress)
        result = handlers.reconcile_once(handled, dict(status))
        assert result is not None
        found.append(result.status)

    second = threading.Thread(target=reconcile, args=(old,))
    first = threading.Thread(target=reconcile, args=(old,))
    first.start()
    assert first_in.wait(5)
    second.start()  # waits for the object's lock
    time.sleep(0.2)
    first_may_finish.set()
    first.join(5)
    second.join(5)
    assert started == ["arn:copy", "arn:1"]
    reconcile(old)  # kopf's retry from the same copy, before the write came back
    assert started[-1] == "arn:2"
    reconcile({**old, KOPF_STATUS: {"progress": {"reconcile": {"retries": 1}}}}, "9")  # kopf wrote meanwhile
    assert started[-1] == "arn:3"
    reconcile(found[1], "10")  # an earlier reconcile's write came back: older than arn:4
    assert started[-1] == "arn:4"
    reconcile({"arn": "arn:other"}, "11")  # another writer's status: the truth
    assert started[-1] == "arn:other"
    reconcile(old)  # not older than what was found from arn:other
    assert started[-1] == "arn:copy"
    reconcile(old)  # again: now older than arn:7, found from it
    assert started[-1] == "arn:7"
    now[0] += ANNOUNCED_SECONDS + 1
    reconcile(old)
    assert started[-1] == "arn:copy"
