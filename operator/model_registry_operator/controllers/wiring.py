"""The thin kopf layer: call the kind's reconcile, write status, post Events, and ask
kopf to come back (kopf.TemporaryError) when the result says when.

- Every create, update and resume runs the same reconcile; the resync re-runs it every
  resync period unless a change handler still owns the object: one operator-wide loop
  (resyncs.py) when this process works alone, else a kopf timer per object.
- Handlers are async; the blocking reconcile (boto3) runs in the context's thread pool.
  A short wait (a group being created, SageMaker completing a version) is ridden out in
  memory for up to INLINE_WAIT_SECONDS, so a new package costs one status write, not one
  per intermediate state: the API server's write rate, not SageMaker, bounds throughput.
- Handlers never return a value (kopf would store it under status.<handler-id>); the
  status is written through `patch.status` as a merge patch of what changed.
- A long step inside one reconcile (an artifact copy) reports progress in the Reconciling
  condition while it runs: the reconcile thread merge-patches the status subresource
  itself (`StatusProgress`, throttled by the caller), and kopf's patch at the end is
  computed against what was written meanwhile, so the two never undo each other.
- An object waiting for another (a package for its group, a Model for its package's
  approval) is not retried on a timer: its handler is done, the object left Reconciling
  (Result.woken), and that object's change wakes it (wake_dependents): its handler's work is
  done at once outside kopf's schedule (take_over), from the dependents index's copy of it,
  in one write with kopf's own records as kopf's handler leaves them, so kopf has nothing
  left to do. Waiting costs no write, however long; the resync is the safety net.
- Metrics (metrics.py) are taken here, where each reconcile's result is known: a count and
  a duration per reconcile, and the condition each object is written with, until it is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeGuard, TypeVar, cast

import kopf

from .. import GROUP, VERSION, sharding
from ..api.common import KOPF_DIFFBASE_FIELD, KOPF_STATUS, UPDATE_FIELD
from ..kube import Conflict, KubernetesObjects
from ..metrics import OperatorMetrics
from ..reasons import Reason
from ..settings import Settings
from ..timing import (
    ANNOUNCED_SECONDS,
    APPEARED_GRACE_SECONDS,
    INLINE_WAIT_SECONDS,
    OBJECT_IO_THREADS,
    PARKED_LOOK_AGAIN_SECONDS,
    RESYNC_READ_RETRY,
    TAKE_OVER_WRITES,
    TAKE_OVERS,
    WAKE_ATTEMPTS,
    WAKE_FAILURE_ATTEMPTS,
    WAKE_FAILURE_DELAY,
    WAKE_RETRY_DELAY,
    audit_due,
    resync_phase,
    retry_delay,
)
from .call import Call, Event, Meta, Result
from .conditions import RECONCILING, Outcome, build_conditions, condition, is_ready
from .context import Context
from .kind import Kind
from .resyncs import ResyncLoop

log = logging.getLogger(__name__)
# the kinds others reference, indexed in memory by (namespace, name)
INDEXES = {"ModelPackageGroup": "modelpackagegroup_index", "ModelPackage": "modelpackage_index"}
CHANGE_HANDLERS = ("reconcile-create", "reconcile-update", "reconcile-resume")
K = TypeVar("K")
V = TypeVar("V")


class ComeBackLater(kopf.TemporaryError):
    """How a handler asks kopf to call again in `delay` seconds: an expected wait or a
    retry the object's status already explains. main.py logs it below ERROR by this type."""


class Unsettled(Exception):
    """A take-over or wake-up could not read or write its object: the API server away a moment,
    or its conditional writes refused in a row. It is tried again (KindHandlers._again)."""


class IndexLookup:
    """Referenced objects from kopf's in-memory indexes: no API call per lookup. A namespace
    ("Namespace", "", name) is {"metadata": {"name", "annotations"}} with the annotations that
    say which AWS account its objects use (accounts.py)."""

    def __init__(self, indexes: dict[str, Any], announced: Announced | None = None):
        self._indexes, self._announced = indexes, announced

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        index = self._indexes.get(NAMESPACE_INDEX if kind == "Namespace" else INDEXES.get(kind, ""))
        if index is None:
            return None
        for value in index.get((namespace, name), []):
            entry: dict[str, Any] = value
            status = self._announced.get((kind, namespace, name)) if self._announced is not None else None
            return entry if status is None else {**entry, "status": status}
        return None

    def each(self, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every indexed object of `kind` as (namespace, name, object); kopf keeps the index
        current meanwhile (each key and store is copied as it is read)."""
        index = self._indexes.get(INDEXES.get(kind, "")) or {}
        for key in list(index):
            store = index.get(key)
            for value in list(store) if store is not None else []:
                yield key[0] or "", key[1], value


class Expiring(Generic[K, V]):
    """Values kept ANNOUNCED_SECONDS after they are put: what a reconcile just found, until its
    write comes back through the watch (Announced, Found). Thread-safe; the expired ones are
    swept once per period, so values whose write never came back (failed, or gone) go too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._guard = threading.Lock()
        self._values: dict[K, tuple[float, V]] = {}  # key -> (until, value)
        self._swept = clock()

    def put(self, key: K, value: V) -> None:
        now = self._clock()
        with self._guard:
            if now - self._swept > ANNOUNCED_SECONDS:
                self._values = {k: v for k, v in self._values.items() if v[0] >= now}
                self._swept = now
            self._values[key] = (now + ANNOUNCED_SECONDS, value)

    def get(self, key: K) -> V | None:
        now = self._clock()
        with self._guard:
            found = self._values.get(key)
            if found is None:
                return None
            if found[0] < now:
                del self._values[key]
                return None
            return found[1]

    def pop(self, key: K) -> None:
        with self._guard:
            self._values.pop(key, None)


class Announced:
    """The status a group's or package's reconcile just found, per (kind, namespace, name),
    from the moment it is found until kopf's write of it comes back through the watch into
    kopf's index (at most ANNOUNCED_SECONDS). Its dependents are woken at that moment and
    read it here: a hop (the write, then the watch event) shorter than waking them from the
    watch event. It is what SageMaker said, so it is never wrong for long; a write that
    fails is retried by the handler, and the index is the truth again after the expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._statuses: Expiring[tuple[str, str, str], dict[str, Any]] = Expiring(clock)

    def put(self, key: tuple[str, str, str], status: dict[str, Any]) -> None:
        self._statuses.put(key, indexed(status))

    def get(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        return self._statuses.get(key)

    def seen(self, key: tuple[str, str, str], event_type: str | None, status: dict[str, Any]) -> None:
        """A watch event of the object: kopf's index now holds what was announced, or it is gone."""
        found = self._statuses.get(key)
        if found is not None and (event_type == "DELETED" or indexed(status) == found):
            self._statuses.pop(key)


class StatusWriter(Protocol):
    """Merge-patches an object's status; with `resource_version`, only if the object is still
    at it (kube.Conflict otherwise)."""

    def __call__(
        self, plural: str, namespace: str, name: str, status: dict[str, Any], resource_version: str = "", /
    ) -> None: ...


ObjectReader = Callable[[str, str, str], dict[str, Any] | None]  # (plural, namespace, name) -> None: gone


class StatusProgress:
    """The `progress` callback of one handler call: writes each Outcome as the three
    conditions (Reconciling=True) with observedGeneration, from the reconcile thread.

    The caller throttles (the artifact library calls back every ~2 s at most). `written` is
    the status as last written, for the final patch to be computed against; after `close`
    (the reconcile is over, kopf writes the outcome) nothing more is written."""

    def __init__(self, write: StatusWriter, plural: str, body: Any, previous: dict[str, Any]):
        meta = body["metadata"]
        self._write, self._plural = write, plural
        self._namespace, self._name = meta.get("namespace") or "", meta["name"]
        self._generation = meta.get("generation")
        self.written = dict(previous)
        self._open = True
        self._guard = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        with self._guard:
            if not self._open:
                return
            change = {
                "observedGeneration": self._generation,
                "conditions": build_conditions(outcome, self._generation, self.written.get("conditions")),
            }
            try:
                self._write(self._plural, self._namespace, self._name, change)
            except Exception as exc:  # noqa: BLE001 - progress is informative: never fail the reconcile for it
                log.warning("cannot write progress of %s/%s: %s", self._namespace, self._name, exc)
                return
            self.written.update(change)

    def close(self) -> dict[str, Any]:
        with self._guard:
            self._open = False
            return self.written


def apply_result(result: Result, body: Any, patch: Any, previous: dict[str, Any]) -> None:
    # kopf's part of the status is kopf's to write (into this same patch): never touched here
    for key in previous:
        if key not in result.status and key != KOPF_STATUS:
            patch.status[key] = None
    for key, value in result.status.items():
        if previous.get(key) != value and key != KOPF_STATUS:
            patch.status[key] = value
    for key, value in result.annotations.items():
        if (body.get("metadata", {}).get("annotations") or {}).get(key) != value:
            patch.metadata.setdefault("annotations", {})[key] = value
    for event in result.events:
        kopf.event(body, type=event.type, reason=str(event.reason), message=event.message)
    if result.timer is not None:  # a woken wait's handler is done
        message = (
            next(
                (
                    c.get("message")
                    for c in result.status.get("conditions") or []
                    if c.get("status") == "True"
                ),
                None,
            )
            or "Not done yet."
        )
        raise ComeBackLater(message, delay=result.timer)


def settled(body: Any) -> bool:
    """The last reconcile of this generation finished (Ready or Stalled)."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
        return False
    return not any(
        c.get("type") == "Reconciling" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def change_pending(body: Any) -> bool:
    """A change handler owns the object: kopf records an unfinished one (waiting for its
    retry) in its progress record (status.kopf.progress, main.py), and a spec newer than the
    status is about to be handled. Otherwise (Ready, Stalled, or Reconciling after a failed
    resync) the resync timer is what looks again."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
        return True
    # kopf keys progress by handler id; an update handler on a field has a suffixed id
    # ("reconcile-update/spec")
    return any(key.split("/")[0] in CHANGE_HANDLERS for key in handler_progress(body))


class Found:
    """What the last reconcile of each object found (its status), for ANNOUNCED_SECONDS, with
    the statuses known to be older than it: the status of each copy reconciled on the way to
    it, and what those reconciles wrote as progress. A reconcile that starts from a copy
    holding one of those starts from what was found instead: its copy is older than what
    SageMaker was found to hold (it waited for the object's lock; kopf's retry, or a second
    pass of a take-over whose write was refused, came before the write came back through the
    watch), and from it the work would be done again (a Model's create answered "already
    exists"). Statuses are compared without kopf's part, which kopf writes on its own (a
    copy's resourceVersion says nothing: kopf's own writes make new ones). A copy with any
    other status (the write came back, or another writer's) starts from its own."""

    KEPT = 8  # older statuses kept per object: a chain of reconciles within ANNOUNCED_SECONDS

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        # uid -> (what was found, the statuses older than it)
        self._entries: Expiring[str, tuple[dict[str, Any], list[dict[str, Any]]]] = Expiring(clock)

    def since(self, uid: str, status: dict[str, Any]) -> dict[str, Any]:
        """The status to start from, for a reconcile of a copy holding `status`."""
        entry = self._entries.get(uid)
        if entry is None or ours(status) not in entry[1]:
            return status
        return entry[0]

    def put(self, uid: str, found: dict[str, Any], *older: dict[str, Any]) -> None:
        """A reconcile found `found`, having started from statuses `older` (its copy's, the one
        it started from, what it wrote as progress). Chained to the last entry when it started
        from one of that entry's statuses."""
        stale = [ours(s) for s in older]
        entry = self._entries.get(uid)
        if entry is not None and any(s in entry[1] or s == entry[0] for s in stale):
            stale = [*entry[1], entry[0], *stale]
        found = ours(found)
        kept: list[dict[str, Any]] = []
        for s in stale:
            if s != found and s not in kept:
                kept.append(s)
        self._entries.put(uid, (found, kept[-self.KEPT :]))


def ours(status: dict[str, Any]) -> dict[str, Any]:
    """A status without kopf's part."""
    return {k: v for k, v in status.items() if k != KOPF_STATUS}


class ObjectLocks:
    """One lock per object UID: a change handler, a take-over or wake-up and a resync never
    reconcile the same object at once (they run in different executor threads)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)


@dataclass
class Runtime:
    """What only the kopf layer keeps between calls, shared by the three kinds."""

    executor: concurrent.futures.Executor | None = None  # None: the event loop's default
    # the status writes made outside a handler (wake-ups, take-overs, resyncs): never queued
    # behind reconciles, nor behind the reads of a burst of wake-ups (those finish sooner)
    write_executor: concurrent.futures.Executor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            OBJECT_IO_THREADS, thread_name_prefix="status-write"
        )
    )
    # the reads of objects outside a handler (read_fresh)
    read_executor: concurrent.futures.Executor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            OBJECT_IO_THREADS, thread_name_prefix="object-read"
        )
    )
    # writes a status merge patch from a reconcile thread (progress of a long copy);
    # None: the kubernetes client's
    status_writer: StatusWriter | None = None
    # reads one object afresh (a Ready object woken: the dependents index keeps little of it);
    # None: the kubernetes client's
    object_reader: ObjectReader | None = None
    locks: ObjectLocks = field(default_factory=ObjectLocks)
    found: Found = field(default_factory=Found)
    # consecutive retryable failures per object UID, as (generation, count): the backoff
    # exponent (kopf's own retry count also counts ordinary waits, which must not slow the
    # next error's retry); a new generation starts again from zero
    failures: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    wall_clock: Callable[[], float] = time.time  # when audits are due
    # per object UID, the wall-clock time of its last resync that got through (Ready): the
    # next one audits if its turn came in between, however late or early kopf's timer fired
    resynced: dict[str, float] = field(default_factory=dict)
    # every kind's handlers by kind name: a change of one object wakes the objects of other
    # kinds that wait for it
    kinds: dict[str, KindHandlers] = field(default_factory=dict)
    # per referenced object (kind, namespace, name): whether it exists and its approval, as
    # last seen: a change wakes the Models made from it (a package rejected or deleted later)
    seen: dict[tuple[str, str, str], tuple[bool, bool, str | None]] = field(default_factory=dict)
    # what a group's or package's reconcile found, until kopf's index has it
    announced: Announced = field(default_factory=Announced)
    wakes: set[asyncio.Task[None]] = field(default_factory=set)  # running, kept from the GC
    # several replicas sharing the work (sharding.py): which objects are this replica's; None: all
    shards: sharding.Sharding | None = None
    # the operator-wide resync loop (resyncs.py) when this process works alone; None: kopf timers
    resyncs: ResyncLoop | None = None
    # kopf's indexes, as handed to the handlers: what the resync loop's reconciles look up
    indexes: dict[str, Any] = field(default_factory=dict)

    def attempt(self, meta: Meta) -> int:
        """How many reconciles of this object's current generation failed in a row."""
        generation, count = self.failures.get(meta.uid, (meta.generation, 0))
        return count if generation == meta.generation else 0

    def record(self, meta: Meta, failed: bool) -> None:
        if failed:
            self.failures[meta.uid] = (meta.generation, self.attempt(meta) + 1)
        else:
            self.failures.pop(meta.uid, None)

    def audit_turn(self, uid: str, settings: Settings, now: float) -> bool:
        """Whether this resync of the object, started at `now`, is its audit (timing.audit_due)."""
        since = self.resynced.get(uid, now - settings.resync_seconds)
        return audit_due(uid, now, since, settings.audit_seconds)

    def resynced_with(self, uid: str, result: Result, started: float) -> None:
        """A resync that got through (Ready) ends the object's audit turn as of when it
        `started` (wall clock); a failed audit is tried again by the next resync."""
        if is_ready(result.status):
            self.resynced[uid] = started

    def forget(self, uid: str) -> None:
        self.locks.forget(uid)
        self.failures.pop(uid, None)
        self.resynced.pop(uid, None)

    async def resync(self, kind: str, namespace: str, name: str, uid: str) -> float | None:
        """The resync loop's turn of one object (resyncs.ResyncOne)."""
        return await self.kinds[kind].resync(namespace, name, uid)


@dataclass(frozen=True)
class Handled:
    """One handler call of kopf's, as its reconciles see it."""

    fn: Callable[[Call, Context], Result]  # the kind's reconcile or delete
    body: Any
    lookup: IndexLookup
    resync: bool  # observe the cheap way (a resync, or a resume of an object already in sync)
    blocking: bool  # wait for the object's lock (a resync does not: a change handler covers it)
    progress: StatusProgress


class KindHandlers:
    """kopf's handlers for one kind: create, update and resume run the kind's reconcile; a
    timer re-runs it every resync period unless a change handler still owns the object;
    delete runs the kind's delete until it is done."""

    def __init__(
        self, kind: Kind[Any], ctx: Context, runtime: Runtime, metrics: OperatorMetrics, write: StatusWriter
    ):
        self.kind, self.ctx, self.runtime, self.metrics, self.write = kind, ctx, runtime, metrics, write
        self.read: ObjectReader = runtime.object_reader or KubernetesObjects().read
        # UIDs a change or delete handler is working on right now -> set when what the object
        # waits for changed meanwhile: it looks again at once, also during an inline wait
        self.handling: dict[str, asyncio.Event] = {}
        # UIDs whose take-over or wake-up failed and is due again (_again): one retry each
        self.retrying: set[str] = set()
        self.shard: sharding.ShardPlan | sharding.Unsharded = sharding.UNSHARDED
        self.log = logging.getLogger(f"model_registry_operator.{kind.name}")

    def register(self, reg: kopf.OperatorRegistry) -> None:
        resource = (GROUP, VERSION, self.kind.plural)
        create_id, update_id, resume_id = CHANGE_HANDLERS
        # Sharded: every handler filtered to this replica's objects, with what kopf needs besides
        # (sharding.py); unsharded: no filter, the handlers themselves.
        shard = self.shard = sharding.plan(self.runtime.shards, self)
        on_change = shard.change(self.on_change)
        kopf.on.resume(*resource, id=resume_id, when=shard.owned, registry=reg)(on_change)
        kopf.on.create(*resource, id=create_id, when=shard.owned, registry=reg)(on_change)
        kopf.on.update(*resource, id=update_id, field=UPDATE_FIELD, when=shard.owned, registry=reg)(on_change)
        interval = self.ctx.settings.resync_seconds
        if self.runtime.resyncs is None:
            kopf.timer(
                *resource,
                id="resync",
                interval=interval,
                initial_delay=spread_resyncs(shard.initial_delay(interval)),
                when=shard.kept,
                registry=reg,
            )(shard.resync(self.on_resync))
        kopf.on.delete(*resource, id="delete", when=shard.deletable, registry=reg)(
            shard.delete(self.on_delete)
        )
        kopf.on.event(*resource, id="metrics", registry=reg)(shard.event(self.on_event))
        # index functions are async, though they never wait: kopf runs a sync handler in a thread
        # of its executor, a hop per index per watch event, most of the indexing cost in a burst
        if self.kind.name in INDEXES:
            kopf.index(*resource, id=INDEXES[self.kind.name], registry=reg)(index_entry)
        if self.kind.references is not None:
            kopf.index(*resource, id=dependents_index(self.kind.name), registry=reg)(self.dependents_entry)
        self.runtime.kinds[self.kind.name] = self

    async def on_change(self, body: Any, patch: Any, reason: Any = None, **kwargs: Any) -> None:
        # At operator start, an object already in sync for its generation is checked the
        # cheap way a resync does (shared listings), not with one describe per object.
        cheap = str(reason) == "resume" and settled(body)
        await self.run(self.kind.reconcile, body, patch, kwargs, cheap=cheap)

    async def on_resync(self, body: Any, patch: Any, **kwargs: Any) -> None:
        await self.run(self.kind.reconcile, body, patch, kwargs, resync=True, blocking=False)

    async def on_delete(self, body: Any, patch: Any, **kwargs: Any) -> None:
        await self.run(self.kind.delete, body, patch, kwargs)  # raises while SageMaker is not done
        uid = body["metadata"]["uid"]
        self.runtime.forget(uid)
        self.metrics.gone(uid)

    async def on_event(self, type: str | None, body: Any, **kwargs: Any) -> None:
        # also gone without the delete handler (a finalizer removed by hand)
        if type == "DELETED":
            self.metrics.gone(body["metadata"]["uid"])
        self.runtime.announced.seen(referenced_key(self.kind.name, body), type, body.get("status") or {})
        self.wake_dependents(type, body, kwargs)
        resyncs = self.runtime.resyncs
        if resyncs is not None:
            meta = body["metadata"]
            if type == "DELETED":
                resyncs.gone(meta["uid"])
            else:
                resyncs.seen(self.kind.name, meta.get("namespace") or "", meta["name"], meta["uid"])
            if not self.runtime.indexes:
                self.runtime.indexes.update(indexes_of(kwargs))
            resyncs.start(self.runtime.resync)

    # --- waking the objects that wait for this one ------------------------------------

    async def dependents_entry(self, namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        """Index of this kind's objects by what they reference: (kind, namespace, name) -> what
        waking the object reads of it. An object waiting for one of them whole, as the watch
        last brought it: its handler's work is done from this copy when it is woken
        (`take_over`), with no read first. Any other by its name and conditions only (Ready?):
        one entry per object, and a wake-up of a Ready one (`wake`) reads it afresh."""
        assert self.kind.references is not None
        snapshot: dict[str, Any]
        if waits(body):
            snapshot = dict(body)  # kopf's copy of the event's object, which nothing changes
        else:
            snapshot = {
                "metadata": {k: body["metadata"].get(k) for k in ("name", "namespace", "uid")},
                "status": {"conditions": (body.get("status") or {}).get("conditions") or []},
            }
        return {
            (kind, namespace, name): snapshot for kind, name in self.kind.references(body.get("spec") or {})
        }

    def wake_dependents(self, event_type: str | None, body: Any, indexes: dict[str, Any]) -> None:
        """Wake the objects waiting for this one (its group, its package) now instead of when
        their retry timer fires, however long they waited; and reconcile the Models made from
        a package whose approval or existence just changed. Only the kopf layer knows both
        ends, so it is done here."""
        meta, status = body["metadata"], body.get("status") or {}
        key = referenced_key(self.kind.name, body)
        exists = event_type != "DELETED" and not meta.get("deletionTimestamp")
        now = (exists, exists and is_ready(status), status.get("modelApprovalStatus"))
        # an object listed at start is new to this process, not changed: its dependents are
        # resumed anyway; one just created was absent before
        before = self.runtime.seen.get(key, ABSENT if event_type == "ADDED" else now)
        if event_type == "DELETED":
            self.runtime.seen.pop(key, None)
        else:
            self.runtime.seen[key] = now
        if before == now:
            # what dependents wait for is the same (a spec edit not yet reconciled, a
            # progress write): waking them would only make them wait again
            return
        # Just appeared, not Ready: what its waiting dependents wait for has not come, and a
        # take-over now would only change their message, at the cost of a reconcile each just
        # when its own reconcile needs the CPU (1000 packages applied before their 10 groups:
        # the last group was created 0.6 to 0.95 s after they were applied, now 0.14 to 0.2 s).
        # Its Ready wakes them; they are woken anyway if it is still so a while later.
        appeared = now[0] and not now[1] and not before[0]
        if self._wake(key, before, now, indexes, waiting=not appeared) and appeared:
            self._spawn(self._wake_if_still(key, now, indexes))

    def _wake(
        self,
        key: tuple[str, str, str],
        before: tuple[bool, bool, str | None],
        now: tuple[bool, bool, str | None],
        indexes: dict[str, Any],
        waiting: bool = True,
        ready: bool = True,
    ) -> bool:
        """Wake the dependents of `key` whose state calls for it: those waiting for it
        (`waiting`), the Ready ones its change concerns (`ready`); returns whether any waiting
        one was left alone."""
        left = False
        for dependent in self.runtime.kinds.values():
            index = indexes.get(dependents_index(dependent.kind.name))
            if index is None:
                continue
            for snapshot in list(index.get(key, [])):
                if waits(snapshot):
                    if not waiting:
                        left = True
                        continue
                    work = dependent.take_over(snapshot, indexes)
                elif (
                    ready
                    and (before[0], before[2]) != (now[0], now[2])
                    and is_ready(snapshot.get("status") or {})
                ):
                    # a Ready Model made from a package that was deleted, or whose approval changed
                    work = dependent.wake(snapshot, indexes)
                else:
                    continue
                self._spawn(work)
        return left

    async def _wake_if_still(
        self, key: tuple[str, str, str], now: tuple[bool, bool, str | None], indexes: dict[str, Any]
    ) -> None:
        """Wake the objects waiting for `key` if it is still as it was when it appeared."""
        await asyncio.sleep(APPEARED_GRACE_SECONDS)
        if self.runtime.seen.get(key) == now:
            self._wake(key, ABSENT, now, indexes, ready=False)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.runtime.wakes.add(task)
        task.add_done_callback(self.runtime.wakes.discard)

    def announce(self, body: Any, status: dict[str, Any], kwargs: dict[str, Any]) -> None:
        """A group's or package's reconcile found `status`: wake what waits for it now, while
        kopf writes it (Announced), not when the write comes back through the watch."""
        if self.kind.name not in INDEXES or indexed(status) == indexed(body.get("status") or {}):
            return  # nothing its dependents read changed: no write of it comes back to confirm
        self.runtime.announced.put(referenced_key(self.kind.name, body), status)
        self.wake_dependents(
            "MODIFIED", {"metadata": body["metadata"], "status": status}, self.shard.dependents(kwargs)
        )

    async def take_over(self, snapshot: dict[str, Any], indexes: dict[str, Any], attempt: int = 0) -> None:
        """Do a waiting object's handler's work now that what it waits for changed, here rather
        than by making kopf run the handler: making kopf run it early costs a write of kopf's
        retry time (kopf runs a handler only when the time in its record comes), then kopf's
        own write of the outcome, each a watch event to process; here it is one write (from
        the index's whole copy of the waiting object, dependents_entry, or one read when the
        index has less), with kopf's records written as kopf leaves them (kopf_records), so
        that the write's event leaves kopf nothing to do.

        While it runs the object is in `handling`: a second wake-up ends an inline wait at once,
        resyncs leave it alone. kopf's handler may still start meanwhile (its retry time came):
        it waits for the object's lock, and whichever writes second finds the first's work
        done. The write is conditional on the object being as it was taken over; one that
        finds it moved on and still waiting (the copy was older than the object, or kopf's
        handler ran and waits again) takes it over once more, from what is stored. One that
        cannot read or write it is tried again a moment later, from the index's copy then."""
        try:
            await self._take_over(snapshot, indexes)
        except Unsettled as exc:
            meta = dict(snapshot["metadata"])
            if "spec" in snapshot:  # the index keeps it whole: its copy then, if it still waits
                spec = dict(snapshot["spec"] or {})
                self._again(attempt, meta, exc, lambda n: self._look_again(meta, spec, indexes, 0.0, n))
            else:
                self._again(attempt, meta, exc, lambda n: self.take_over(snapshot, indexes, n))

    async def _take_over(self, snapshot: dict[str, Any], indexes: dict[str, Any]) -> None:
        known = snapshot["metadata"]
        uid = known["uid"]
        taken: dict[str, Any] | None = snapshot if "spec" in snapshot else None
        for _ in range(TAKE_OVERS):
            running = self.handling.get(uid)
            if running is not None:
                running.set()  # its handler (or a take-over) is on it: it looks again before it gives up
                return
            woken = self.handling[uid] = asyncio.Event()
            try:
                body = taken or await self._read_now(known)
                if not still_waits(body):
                    return  # gone, replaced, or no longer waiting
                result, written = await self.reconcile_outside(body, indexes, blocking=True, woken=woken)
            finally:
                if self.handling.get(uid) is woken:
                    del self.handling[uid]
            if result is None or uid in self.handling:
                return  # a change handler started meanwhile: its outcome is the newer truth
            if result.woken and not status_change(result.status, written) and not handler_progress(body):
                return  # waits as it was written, and kopf's records say done: nothing to write
            try:
                done, taken = await self._write_taken_over({**body, "status": written}, result)
            except Unsettled:
                self.post_events(body, result.events)  # what it did in SageMaker is done
                raise
            if done:
                self.tell(body, result, indexes)
            else:  # kopf's handler, or the next take-over, finds this work done and says nothing of it
                self.post_events(body, result.events)
            if taken is None:
                return

    async def _write_taken_over(
        self, body: dict[str, Any], result: Result
    ) -> tuple[bool, dict[str, Any] | None]:
        """Write a take-over's outcome with kopf's records (kopf_records), on the condition that
        the object is at the resourceVersion it was taken over at. Refused: read again; written
        again while it is as it was taken over (the same generation and kopf's records as then;
        a write of its own progress, a long copy, is the usual cause). Returns (written, the
        object as stored now when it moved on but still waits at the same generation: its
        handler's work is still to do). Unsettled: not written, for a reason other than the object
        moving on (the API server, or refused TAKE_OVER_WRITES times)."""
        taken = body
        for _ in range(TAKE_OVER_WRITES):
            change = {
                **status_change(result.status, body.get("status") or {}),
                KOPF_STATUS: kopf_records(body, result),
            }
            try:
                written = await self.write_status(
                    body, change, str(body["metadata"].get("resourceVersion") or "")
                )
            except Conflict:
                now = await self._read_now(body["metadata"])
                if now is None:
                    return False, None
                if not as_taken_over(now, taken):
                    # a new spec's handler has it, or kopf's handler ran: still its work if it waits
                    same_spec = now["metadata"].get("generation") == taken["metadata"].get("generation")
                    return False, (now if same_spec and still_waits(now) else None)
                body = now
                continue
            if not written:
                raise Unsettled("its status write failed")
            return True, None
        raise Unsettled(f"its status write was refused {TAKE_OVER_WRITES} times: the object keeps changing")

    async def _read_now(self, known: Mapping[str, Any]) -> dict[str, Any] | None:
        """The object as stored now; None: gone or replaced. Unsettled: it cannot be read."""
        try:
            body = await self.read_fresh(known.get("namespace") or "", known["name"])
        except Exception as exc:  # the API server away: tried again (_again), then its resync
            raise Unsettled(f"cannot read it: {exc}") from exc
        return body if body is not None and body["metadata"].get("uid") == known["uid"] else None

    def _again(
        self,
        attempt: int,
        meta: Mapping[str, Any],
        why: Unsettled,
        work: Callable[[int], Coroutine[Any, Any, None]],
    ) -> None:
        """Try a take-over or wake-up that could not read or write its object (`why`) again,
        after timing.retry_delay(WAKE_FAILURE_DELAY, attempt), at most WAKE_FAILURE_ATTEMPTS in
        all; then its resync, the safety net, comes for it. One retry per object at a time: a
        wake-up that fails while one is due leaves it to that one."""
        self.log.debug("reconciling %s/%s outside its handler: %s", meta.get("namespace"), meta["name"], why)
        uid = meta["uid"]
        if uid in self.retrying:
            return
        if attempt + 1 >= WAKE_FAILURE_ATTEMPTS:
            self.log.debug("%s/%s is left to its resync", meta.get("namespace"), meta["name"])
            return
        self.retrying.add(uid)

        async def later() -> None:
            try:
                await asyncio.sleep(retry_delay(WAKE_FAILURE_DELAY, attempt))
            finally:
                self.retrying.discard(uid)
            await work(attempt + 1)

        self._spawn(later())

    async def write_status(
        self, snapshot: dict[str, Any], change: dict[str, Any], resource_version: str = ""
    ) -> bool:
        """Merge-patch an object's status from outside its handler; False when that failed.
        With `resource_version`, only if the object is still at it: Conflict otherwise."""
        meta = snapshot["metadata"]
        where = (self.kind.plural, meta.get("namespace") or "", meta["name"])

        def write() -> None:
            if resource_version:
                self.write(*where, change, resource_version)
            else:
                self.write(*where, change)

        try:
            await asyncio.get_running_loop().run_in_executor(self.runtime.write_executor, write)
        except Conflict:
            raise
        except Exception as exc:  # noqa: BLE001 - what it would have said is said later
            self.log.warning("cannot write the status of %s/%s: %s", meta.get("namespace"), meta["name"], exc)
            return False
        return True

    async def wake(self, snapshot: dict[str, Any], indexes: dict[str, Any], attempt: int = 0) -> None:
        """Reconcile one Ready object outside kopf's schedule (read afresh: the index keeps
        little of it) and write what it found. kopf's own retry of it, when it comes, finds
        the work done. One that cannot be read or written is tried again a moment later."""
        try:
            await self._wake_ready(snapshot, indexes)
        except Unsettled as exc:
            self._again(attempt, snapshot["metadata"], exc, lambda n: self.wake(snapshot, indexes, n))

    async def _wake_ready(self, snapshot: dict[str, Any], indexes: dict[str, Any]) -> None:
        body = await self._read_now(snapshot["metadata"])
        if body is None or not is_ready(body.get("status") or {}):
            return  # gone, replaced, or no longer Ready: its handler is on it
        for _ in range(WAKE_ATTEMPTS):
            result, written = await self.reconcile_outside(body, indexes)
            if result is not None:
                break
            await asyncio.sleep(WAKE_RETRY_DELAY)  # its own handler holds it right now
        else:
            return
        if not await self.write_outcome(body, result, written, indexes):
            raise Unsettled("its status write failed")

    async def resync(self, namespace: str, name: str, uid: str) -> float | None:
        """One object's turn in the operator-wide resync loop (resyncs.py): read afresh,
        reconciled the cheap way a resync is unless a change handler owns it, and what it found
        written as a wake-up writes it. Returns the seconds until its next turn; None: gone or
        replaced (the new object has its own turn)."""
        interval = self.ctx.settings.resync_seconds
        try:
            body = await self.read_fresh(namespace, name)
        except Exception as exc:  # noqa: BLE001 - the API server away: said by its outage log
            self.log.debug("cannot read %s/%s for its resync: %s", namespace, name, exc)
            return min(interval, RESYNC_READ_RETRY)
        if body is None or body["metadata"].get("uid") != uid:
            return None
        if self.left_to_its_handlers(body):
            self.metrics.looked_at(uid)
            return interval
        result, written = await self.reconcile_outside(body, self.runtime.indexes, resync=True)
        if result is None:
            self.metrics.looked_at(uid)
            return interval  # a change handler holds it right now: it writes the truth
        await self.write_outcome(body, result, written, self.runtime.indexes)
        return interval if result.timer is None else result.timer

    async def reconcile_outside(
        self,
        body: dict[str, Any],
        indexes: dict[str, Any],
        resync: bool = False,
        blocking: bool = False,
        woken: asyncio.Event | None = None,
    ) -> tuple[Result | None, dict[str, Any]]:
        """Reconcile an object outside kopf's handlers (a take-over, a wake-up, a resync loop's
        turn), as `run` does inside them: (the result, None when a handler holds the object's
        lock and `blocking` is off; the status as last written, for the outcome's write)."""
        previous = dict(body.get("status") or {})
        progress = StatusProgress(self.write, self.kind.plural, body, previous)
        lookup = IndexLookup(indexes, self.runtime.announced)
        handled = Handled(self.kind.reconcile, body, lookup, resync, blocking, progress)
        try:
            result = await self.reconcile_until_done(handled, previous, woken)
        finally:
            written = progress.close()
        return result, written

    def left_to_its_handlers(self, body: Any) -> bool:
        """A resync (kopf's timer or the loop) leaves the object alone: its delete handler, or a
        change handler and its retries, own it until done."""
        meta = body.get("metadata") or {}
        return bool(meta.get("deletionTimestamp")) or meta.get("uid") in self.handling or change_pending(body)

    async def read_fresh(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the API server has it now (None: gone), read outside the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self.runtime.read_executor, self.read, self.kind.plural, namespace, name
        )

    async def write_outcome(
        self,
        body: dict[str, Any],
        result: Result,
        written: dict[str, Any],
        indexes: dict[str, Any],
    ) -> bool:
        """Write what a reconcile outside kopf's handlers found (`written`: the status as last
        written) and say it (`tell`); False: the write failed (its Events are posted all the
        same: the next reconcile starts from what this one found and says nothing of it)."""
        if body["metadata"]["uid"] in self.handling:
            return True  # a change handler started meanwhile: its outcome is the newer truth
        change = status_change(result.status, written)
        if change and not await self.write_status(body, change):
            self.post_events(body, result.events)
            return False
        self.tell(body, result, indexes)
        return True

    def tell(self, body: dict[str, Any], result: Result, indexes: dict[str, Any]) -> None:
        """Say what a reconcile outside kopf's handlers found of `body` (as read), once written,
        as kopf's handlers do after theirs (`run`): the state change, Events, metrics, and the
        objects waiting for this one woken."""
        meta = body["metadata"]
        log_state_change(self.log, meta, body.get("status") or {}, result.status)
        self.post_events(body, result.events)
        self.metrics.written(self.kind.name, meta["uid"], result.status)
        self.announce(body, result.status, indexes)

    def post_events(self, body: dict[str, Any], events: list[Event]) -> None:
        """Log and post what a reconcile did (a create, an update): said also when its status
        write was refused, for what it did in SageMaker is done."""
        meta = body["metadata"]
        for event in events:
            self.log.info("%s %s/%s: %s", event.reason, meta.get("namespace"), meta["name"], event.message)
            kopf.event(
                kopf.Body(cast(kopf.RawBody, body)),
                type=event.type,
                reason=str(event.reason),
                message=event.message,
            )

    async def run(
        self,
        fn: Callable[[Call, Context], Result],
        body: Any,
        patch: Any,
        kwargs: dict[str, Any],
        resync: bool = False,
        blocking: bool = True,
        cheap: bool = False,
    ) -> None:
        """Reconcile in a worker thread; ride out short waits in memory (no intermediate
        status write, no kopf retry round trip), then write the outcome once."""
        previous = dict(body.get("status") or {})
        uid = body["metadata"]["uid"]
        if resync and self.left_to_its_handlers(body):
            self.metrics.looked_at(uid)  # still this replica's, its condition stands
            return
        woken = None if resync else self.handling.setdefault(uid, asyncio.Event())
        progress = StatusProgress(self.write, self.kind.plural, body, previous)
        handled = Handled(
            fn, body, IndexLookup(kwargs, self.runtime.announced), resync or cheap, blocking, progress
        )
        try:
            result = await self.reconcile_until_done(handled, previous, woken)
        finally:
            if not resync:
                self.handling.pop(uid, None)
            # the reconcile thread is done: no progress write can race kopf's patch below
            written = progress.close()
        if result is None:
            return
        meta = body["metadata"]
        log_state_change(self.log, meta, previous, result.status)
        for event in result.events:
            self.log.info(
                "%s %s/%s: %s", event.reason, meta.get("namespace"), meta.get("name"), event.message
            )
        self.metrics.written(self.kind.name, uid, result.status)
        if fn == self.kind.reconcile:
            self.announce(body, result.status, kwargs)
        apply_result(result, body, patch, written)
        if result.woken and not waits(body):
            # the wait begins: a change that comes before this write reaches the index of
            # dependents finds nothing waiting to wake
            self._spawn(
                self._look_again(dict(body["metadata"]), dict(body.get("spec") or {}), indexes_of(kwargs))
            )

    async def _look_again(
        self,
        meta: Mapping[str, Any],
        spec: dict[str, Any],
        indexes: dict[str, Any],
        delay: float = PARKED_LOOK_AGAIN_SECONDS,
        attempt: int = 0,
    ) -> None:
        """Take over a wait that just began (`delay` ago) if the index of dependents has it
        waiting by now: if what it waits for came meanwhile, it goes on; if not, the take-over
        writes nothing. Also a take-over's next try (_again), from the index's copy by then."""
        await asyncio.sleep(delay)
        index = indexes.get(dependents_index(self.kind.name))
        if index is None or self.kind.references is None:
            return
        for kind, name in self.kind.references(spec):
            for snapshot in list(index.get((kind, meta.get("namespace") or "", name), [])):
                if snapshot["metadata"].get("uid") == meta["uid"] and waits(snapshot):
                    await self.take_over(snapshot, indexes, attempt)
                    return

    async def reconcile_until_done(
        self, handled: Handled, status: dict[str, Any], woken: asyncio.Event | None = None
    ) -> Result | None:
        """Reconcile until done or a long wait; `woken` (set by wake_dependents): what the
        object waits for changed, so a wait ends at once."""
        loop = asyncio.get_running_loop()
        events: list[Event] = []
        waited = 0.0
        while True:
            result = await loop.run_in_executor(self.runtime.executor, self.reconcile_once, handled, status)
            if result is None:
                return None
            events.extend(result.events)
            status = result.status
            if result.retry is not None and woken is not None and woken.is_set():
                woken.clear()  # what it waited for changed meanwhile
                continue
            if not result.short or result.retry is None or waited + result.retry > INLINE_WAIT_SECONDS:
                result.events = events
                return result
            started = loop.time()
            if woken is None:
                await asyncio.sleep(result.retry)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), result.retry)
                woken.clear()
            waited += loop.time() - started

    def reconcile_once(self, handled: Handled, status: dict[str, Any]) -> Result | None:
        """One reconcile or delete, from `status` (the one read, or the last inline wait's)."""
        meta = Meta.from_body(handled.body)
        runtime, resync = self.runtime, handled.resync
        lock = runtime.locks.get(meta.uid)
        if not lock.acquire(blocking=handled.blocking):
            return None  # a resync while a change is being handled: that handler covers it
        try:
            copied = handled.body.get("status") or {}  # Found keeps its own copy (ours)
            started_from = status = runtime.found.since(meta.uid, status)
            wall = runtime.wall_clock()
            call = Call(
                meta,
                dict(handled.body.get("spec") or {}),
                dict(status or {}),
                handled.lookup,
                attempt=runtime.attempt(meta),
                resync=resync,
                # a resync's turn to describe in full (customer metadata, ... changed in SageMaker)
                audit=resync and runtime.audit_turn(meta.uid, self.ctx.settings, wall),
                progress=handled.progress,
            )
            started = time.monotonic()
            result = handled.fn(call, self.ctx)
            deleting = handled.fn == self.kind.delete
            self.metrics.reconciled(
                self.kind.name,
                result.status,
                time.monotonic() - started,
                failed=result.failed,
                deleted=deleting and result.retry is None and not result.failed,
            )
            runtime.record(meta, result.failed)
            runtime.found.put(meta.uid, result.status, copied, started_from, handled.progress.written)
            if resync:
                runtime.resynced_with(meta.uid, result, wall)
            return result
        finally:
            lock.release()


# What dependents see of a referenced object that does not exist: (exists, Ready, approval).
ABSENT: tuple[bool, bool, str | None] = (False, False, None)
# Reasons of a wait that a change of the referenced object ends.
WOKEN_REASONS = frozenset({Reason.WAITING_FOR_GROUP, Reason.WAITING_FOR_PACKAGE, Reason.WAITING_FOR_APPROVAL})


def active(status: dict[str, Any]) -> tuple[str, str] | None:
    """(the condition that is True, its reason)."""
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("status") == "True":
            return str(c.get("type")), str(c.get("reason"))
    return None


def log_state_change(log: logging.Logger, meta: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
    """One INFO line when an object's condition or reason changes (a retry or a wait that goes
    on says nothing more: kopf's own retry lines are DEBUG, main.WaitingIsNotAnError)."""
    now = active(after)
    if now is None or now == active(before):
        return
    message = next((c.get("message") for c in after.get("conditions") or [] if c.get("type") == now[0]), "")
    log.info("%s/%s is %s/%s: %s", meta.get("namespace"), meta.get("name"), now[0], now[1], message)


def kopf_records(body: dict[str, Any], result: Result) -> dict[str, Any]:
    """kopf's part of the status as kopf's handler would leave it with `result`: done, its
    progress records purged and the handled spec recorded as kopf records it (its diff base,
    main.configure_kopf), so that kopf finds nothing left to handle; not done, its next try
    at the time the reconcile asked for. A woken wait (Result.woken) is done for kopf too."""
    if result.timer is None:
        patch = kopf.Patch()
        wrapped = kopf.Body(cast(kopf.RawBody, body))
        DIFFBASE.store(
            body=wrapped, patch=patch, essence=DIFFBASE.build(body=wrapped, extra_fields=[UPDATE_FIELD])
        )
        return {"progress": None, **patch["status"][KOPF_STATUS]}
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=result.timer)
    pending = [
        handler
        for handler, record in handler_progress(body).items()
        if isinstance(record, dict) and not (record.get("success") or record.get("failure"))
    ]
    return {"progress": {handler: {"delayed": due.isoformat(timespec="microseconds")} for handler in pending}}


def handler_progress(body: dict[str, Any]) -> dict[str, Any]:
    """kopf's progress records of the object's handlers, by handler id."""
    return dict(((body.get("status") or {}).get(KOPF_STATUS) or {}).get("progress") or {})


def as_taken_over(now: dict[str, Any], taken: dict[str, Any]) -> bool:
    """The object read `now` is still as it was when its handler's work was taken over: the
    same generation (spec) and kopf's handler records untouched (no handler ran meanwhile)."""
    return now["metadata"].get("generation") == taken["metadata"].get("generation") and handler_progress(
        now
    ) == handler_progress(taken)


# kopf's record of the last handled spec, as configured in main.configure_kopf
DIFFBASE = kopf.StatusDiffBaseStorage(field=KOPF_DIFFBASE_FIELD)


def spread_resyncs(initial: float | Callable[..., float]) -> Callable[..., float]:
    """A resync timer's first wait, scaled per object by timing.resync_phase: the objects
    applied together (a sync, an operator restart) resync spread over the period, not all at
    once a period later, where their storm would delay whatever else happens then."""

    def delay(body: Any, **kwargs: Any) -> float:
        base = initial(body=body, **kwargs) if callable(initial) else initial
        return base * resync_phase(str(body.get("metadata", {}).get("uid", "")))

    return delay


def referenced_key(kind: str, body: Any) -> tuple[str, str, str]:
    """How dependents name an object: (kind, namespace, name)."""
    meta = body["metadata"]
    return kind, meta.get("namespace") or "", meta["name"]


def dependents_index(kind: str) -> str:
    return f"{kind.lower()}_dependents"


def indexes_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """kopf's indexes among a handler's kwargs (kopf passes each by its id)."""
    return {k: v for k, v in kwargs.items() if k.endswith(("_index", "_dependents"))}


def still_waits(body: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """The object as read is there, not being deleted, and waits for an object it references."""
    return body is not None and not body["metadata"].get("deletionTimestamp") and waits(body)


def waits(snapshot: Mapping[str, Any]) -> bool:
    """The object is Reconciling, waiting for an object it references."""
    reconciling = condition(snapshot.get("status") or {}, RECONCILING) or {}
    return reconciling.get("status") == "True" and reconciling.get("reason") in WOKEN_REASONS


def status_change(status: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that makes `written` `status` (kopf's own records untouched)."""
    change: dict[str, Any] = {k: None for k in written if k not in status and k != KOPF_STATUS}
    change.update({k: v for k, v in status.items() if written.get(k) != v and k != KOPF_STATUS})
    return change


async def index_entry(
    namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """What a referencing object needs of a group or package: no API call per lookup. Only what
    lookups read (model.py, modelpackage.py): the rest (an inference specification, the approval
    history, kopf's records) would cost memory per object for nothing."""
    deleting = bool(meta.get("deletionTimestamp"))
    kept = {k: v for k, v in spec.items() if k in INDEXED_SPEC}
    return {(namespace, name): {"spec": kept, "status": indexed(status), "deleting": deleting}}


def indexed(status: Any) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k in INDEXED_STATUS}


# what lookups of a referenced group or package read of it (model.py, modelpackage.py)
INDEXED_STATUS = frozenset({"arn", "conditions", "observedGeneration", "modelApprovalStatus"})
INDEXED_SPEC = frozenset({"modelPackageGroupName", "modelPackageVersion", "region"})


def register_all(
    reg: kopf.OperatorRegistry,
    ctx: Context,
    metrics: OperatorMetrics | None = None,
    runtime: Runtime | None = None,
) -> Runtime:
    """`metrics`: where to count; None: a registry of its own that nothing serves."""
    from prometheus_client import CollectorRegistry

    from . import model, modelpackage, modelpackagegroup

    runtime = runtime or Runtime()
    if runtime.status_writer is None:
        runtime.status_writer = KubernetesObjects()
    if runtime.object_reader is None:
        writer = runtime.status_writer
        runtime.object_reader = (
            writer if isinstance(writer, KubernetesObjects) else KubernetesObjects()
        ).read
    metrics = metrics or OperatorMetrics(CollectorRegistry())
    for kind in (modelpackagegroup.CONTROLLER, modelpackage.CONTROLLER, model.CONTROLLER):
        KindHandlers(kind, ctx, runtime, metrics, runtime.status_writer).register(reg)
    resyncs = runtime.resyncs
    if resyncs is not None:

        @kopf.on.cleanup(registry=reg)
        async def stop_resyncs(**_: Any) -> None:
            await resyncs.stop()

    if ctx.accounts is not None:
        # kopf starts no handler before every index has its first listing: an object is never
        # reconciled before its namespace's annotations are known (a namespace created later
        # and not indexed yet: Context.scoped waits for it). Namespaces are cluster-scoped:
        # kopf watches them cluster-wide also with -n.
        kopf.index("v1", "namespaces", id=NAMESPACE_INDEX, registry=reg)(namespace_entry)
    return runtime


# kopf index of the namespaces' account annotations (accounts.ANNOTATIONS), for IndexLookup
NAMESPACE_INDEX = "namespace_index"


async def namespace_entry(name: str, meta: kopf.Meta, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """A namespace's annotations that say which AWS account its objects use, nothing else."""
    from ..accounts import ANNOTATIONS

    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if k in ANNOTATIONS}
    return {("", name): {"metadata": {"name": name, "annotations": annotations}}}
