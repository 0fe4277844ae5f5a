"""The operator-wide resync loop (controllers/resyncs.py) and one object's turn in it
(wiring.KindHandlers.resync): what replaces a kopf timer per object when the operator works alone."""

import asyncio
import logging

import kopf
import pytest
from prometheus_client import CollectorRegistry

from fakes import FakeRegistry
from model_registry_operator.controllers import modelpackagegroup
from model_registry_operator.controllers.call import Result
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.context import Context
from model_registry_operator.controllers.resyncs import ResyncLoop
from model_registry_operator.controllers.wiring import KindHandlers, Runtime, register_all
from model_registry_operator.metrics import OperatorMetrics
from model_registry_operator.settings import Settings
from model_registry_operator.timing import RESYNC_READ_RETRY, resync_phase

READY = {"conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None), "observedGeneration": 1}


def test_an_object_is_scheduled_once_a_phase_of_the_period_after_it_is_first_seen():
    now = [1000.0]
    loop = ResyncLoop(300.0, clock=lambda: now[0])
    loop.seen("ModelPackage", "ml", "p", "u1")
    loop.seen("ModelPackage", "ml", "p", "u1")  # every later watch event of it: still one turn
    assert len(loop) == 1
    first = 300.0 * resync_phase("u1")
    now[0] += first - 0.01
    assert loop.due() == []
    now[0] += 0.02
    assert loop.due() == [("ModelPackage", "ml", "p", "u1")]
    assert loop.due() == []  # handed out once; scheduled again when its turn reports back


def test_objects_seen_together_are_due_spread_over_the_period():
    now = [0.0]
    loop = ResyncLoop(300.0, clock=lambda: now[0])
    for i in range(1000):
        loop.seen("ModelPackage", "ml", f"p{i}", f"uid-{i}")
    per_tenth = []
    for tenth in range(1, 11):
        now[0] = 150.0 + 30.0 * tenth
        per_tenth.append(len(loop.due()))
    assert sum(per_tenth) == 1000 and all(40 <= n <= 160 for n in per_tenth), per_tenth


def test_a_deleted_object_is_not_resynced():
    now = [0.0]
    loop = ResyncLoop(10.0, clock=lambda: now[0])
    loop.seen("Model", "ml", "m", "u1")
    loop.gone("u1")
    now[0] = 100.0
    assert loop.due() == [] and len(loop) == 0


def run_loop(loop, resync, seconds):
    async def scenario():
        loop.start(resync)
        await asyncio.sleep(seconds)
        await loop.stop()

    asyncio.run(scenario())


def test_each_turn_schedules_the_next_as_its_resync_says():
    """After a turn the next comes one period later, or after the delay a failed reconcile asked
    for; a turn that finds the object gone or replaced forgets it; a turn that raises is said in
    one line (no traceback) and the others go on."""
    turns: dict[str, int] = {}

    async def resync(kind, namespace, name, uid):
        turns[uid] = turns.get(uid, 0) + 1
        if uid == "broken":
            raise ZeroDivisionError("a bug")
        return {"periodic": 0.3, "retrying": 0.05, "gone": None}[uid]

    loop = ResyncLoop(0.3, tick=0.01)
    for uid in ("periodic", "retrying", "gone", "broken"):
        loop.seen("ModelPackage", "ml", uid, uid)
    run_loop(loop, resync, 1.2)
    assert turns["gone"] == 1 and len(loop) == 3
    assert 2 <= turns["periodic"] <= 4  # first at 0.15-0.45 s, then every 0.3 s
    assert turns["retrying"] >= 8  # every 0.05 s after its first
    assert 2 <= turns["broken"] <= 4  # tried again a period later


def test_a_broken_turn_is_one_line_without_a_traceback(caplog):
    async def resync(kind, namespace, name, uid):
        raise RuntimeError("boom")

    now = [0.0]
    loop = ResyncLoop(10.0, clock=lambda: now[0], tick=0.01)
    loop.seen("Model", "ml", "m", "u1")
    now[0] = 15.0  # due once: the next turn is 10 s later, on a clock that stands still
    with caplog.at_level(logging.ERROR):
        run_loop(loop, resync, 0.1)
    assert [r.getMessage() for r in caplog.records] == [
        "resync of Model ml/m failed: boom (tried again next period)"
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_at_most_the_concurrency_of_turns_run_at_once():
    running, most = [0], [0]

    async def resync(kind, namespace, name, uid):
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.05)
        running[0] -= 1
        return 100.0

    loop = ResyncLoop(0.0, concurrency=3, tick=0.01)
    for i in range(20):
        loop.seen("ModelPackage", "ml", f"p{i}", f"u{i}")
    run_loop(loop, resync, 0.6)
    assert most[0] == 3


# --- one object's turn (KindHandlers.resync) -------------------------------------------------------


def group(status=None, deleting=False, generation=1, uid="g1"):
    meta = {"name": "g", "namespace": "ml", "uid": uid, "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    return {"metadata": meta, "spec": {}, "status": READY if status is None else status}


def turn_of(answer, outcome=None):
    """(what the turn returned, the reconciles it ran, the status writes it made)."""
    reconciled, writes = [], []

    def read(plural, namespace, name):
        if isinstance(answer, Exception):
            raise answer
        return answer

    runtime = Runtime(status_writer=lambda *args: writes.append(args), object_reader=read)
    handlers = KindHandlers(
        modelpackagegroup.CONTROLLER,
        Context.create(FakeRegistry(), Settings(resync_seconds=120.0)),
        runtime,
        OperatorMetrics(CollectorRegistry()),
        runtime.status_writer,
    )

    async def reconcile_until_done(handled, status, woken=None):
        reconciled.append((handled.resync, handled.blocking))
        return outcome(status) if outcome else Result(dict(status), [], None)

    handlers.reconcile_until_done = reconcile_until_done
    returned = asyncio.run(handlers.resync("ml", "g", "g1"))
    return returned, reconciled, writes


def test_a_turn_reconciles_the_object_read_afresh_the_cheap_way_and_writes_only_a_change():
    returned, reconciled, writes = turn_of(group())
    assert returned == 120.0 and reconciled == [(True, False)] and writes == []

    drifted = {**READY, "modelPackageGroupStatus": "Completed"}

    def found(status):
        return Result({**status, "modelPackageGroupStatus": "Deleting"}, [], None)

    returned, _, writes = turn_of(group(drifted), found)
    assert returned == 120.0
    assert writes == [("modelpackagegroups", "ml", "g", {"modelPackageGroupStatus": "Deleting"})]


def test_a_turn_that_failed_comes_back_after_the_retry_it_asked_for():
    def failed(status):
        return Result(dict(status), [], 12.5, failed=True)

    assert turn_of(group(), failed)[0] == 12.5


def test_a_turn_that_finds_a_wait_a_change_ends_comes_back_a_period_later():
    """The resync is the only timer of such a wait (Result.woken): the change wakes it."""

    def waiting(status):
        return Result(dict(status), [], 2.0, woken=True)

    assert turn_of(group(), waiting)[0] == 120.0


@pytest.mark.parametrize(
    "answer",
    [
        None,  # gone
        group(uid="other"),  # deleted and created again under the same name: its own turn
    ],
)
def test_a_turn_of_an_object_gone_or_replaced_forgets_it(answer):
    returned, reconciled, writes = turn_of(answer)
    assert returned is None and reconciled == [] and writes == []


@pytest.mark.parametrize(
    "answer",
    [
        group(deleting=True),  # its delete handler owns it
        group(generation=2),  # a spec change not handled yet: its change handler owns it
        group({**READY, "kopf": {"progress": {"reconcile-update/spec": {"delayed": "2026-12-04T00:00:00"}}}}),
    ],
)
def test_a_turn_leaves_an_object_its_handlers_own_alone(answer):
    returned, reconciled, writes = turn_of(answer)
    assert returned == 120.0 and reconciled == [] and writes == []


def test_a_turn_whose_read_failed_comes_back_sooner():
    returned, reconciled, _ = turn_of(ConnectionRefusedError("the API server is away"))
    assert returned == RESYNC_READ_RETRY and reconciled == []


# --- which one resyncs: the loop or kopf's timer --------------------------------------------------


def registered(runtime):
    reg = kopf.OperatorRegistry()
    register_all(reg, Context.create(FakeRegistry(), Settings()), runtime=runtime)
    return reg


def test_with_the_loop_kopf_keeps_no_timer_and_so_no_body_per_object():
    reg = registered(Runtime(resyncs=ResyncLoop(300.0)))
    assert list(reg._spawning.get_all_handlers()) == []
    assert len(list(registered(Runtime())._spawning.get_all_handlers())) == 3  # one timer per kind


def test_watch_events_schedule_and_forget_objects():
    runtime = Runtime(resyncs=ResyncLoop(300.0))
    registered(runtime)
    handlers = runtime.kinds["ModelPackageGroup"]
    indexes = {"modelpackage_dependents": {}, "modelpackagegroup_index": {}}

    async def scenario():
        await handlers.on_event("ADDED", group(), **indexes, logger=None)
        assert len(runtime.resyncs) == 1 and set(runtime.indexes) == set(indexes)
        await handlers.on_event("DELETED", group(), **indexes, logger=None)
        assert len(runtime.resyncs) == 0
        await runtime.resyncs.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("shards", "peering", "loop"),
    [(1, None, True), (1, "mro", False), (2, None, False)],
)
def test_the_loop_resyncs_only_when_the_operator_works_alone(shards, peering, loop):
    """kopf pauses a standby peer's timers (a pause is not visible outside kopf), and a sharded
    replica's timer keeps the finalizer on the objects it does not own: both keep kopf's timer."""
    from model_registry_operator.main import resync_loop

    found = resync_loop(Settings(shards=shards, resync_seconds=60.0), peering)
    assert (found is not None) == loop
    assert found is None or found.interval == 60.0
