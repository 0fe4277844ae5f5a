"""The thin kopf layer: call the kind's reconcile, write status, post Events, and ask
kopf to come back (kopf.TemporaryError) when the result says when.

- Every create, update and resume runs the same reconcile; a timer re-runs it every
  resync period unless a change handler still owns the object.
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
- Metrics (metrics.py) are taken here, where each reconcile's result is known: a count and
  a duration per reconcile, and the condition each object is written with, until it is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from .. import GROUP, VERSION
from ..api.common import KOPF_STATUS
from ..metrics import OperatorMetrics
from ..settings import Settings
from ..timing import INLINE_WAIT_SECONDS, STATUS_WRITE_TIMEOUT, audit_due
from .call import Call, Event, Meta, Result
from .conditions import READY, Outcome, build_conditions, condition
from .context import Context
from .kind import Kind

log = logging.getLogger(__name__)
# the kinds others reference, indexed in memory by (namespace, name)
INDEXES = {"ModelPackageGroup": "modelpackagegroup_index", "ModelPackage": "modelpackage_index"}
CHANGE_HANDLERS = ("reconcile-create", "reconcile-update", "reconcile-resume")


class ComeBackLater(kopf.TemporaryError):
    """How a handler asks kopf to call again in `delay` seconds: an expected wait or a
    retry the object's status already explains. main.py logs it below ERROR by this type."""


class IndexLookup:
    """Referenced objects from kopf's in-memory indexes: no API call per lookup."""

    def __init__(self, indexes: dict[str, Any]):
        self._indexes = indexes

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        index = self._indexes.get(INDEXES.get(kind, ""))
        if index is None:
            return None
        for value in index.get((namespace, name), []):
            entry: dict[str, Any] = value
            return entry
        return None


StatusWriter = Callable[[str, str, str, dict[str, Any]], None]  # (plural, namespace, name, status)


class KubernetesStatusWriter:
    """Merge-patches the status subresource with the kubernetes client: blocking and safe to
    call from the reconcile threads (kopf's own client lives on the event loop). Built on
    first use, from the kubeconfig or in-cluster account kopf's login uses too."""

    def __init__(self) -> None:
        self._api: Any = None
        self._guard = threading.Lock()

    def _client(self) -> Any:
        with self._guard:
            if self._api is None:
                import kubernetes

                config = kubernetes.client.Configuration()
                try:
                    kubernetes.config.load_incluster_config(client_configuration=config)
                except kubernetes.config.ConfigException:
                    kubernetes.config.load_kube_config(client_configuration=config)
                client = kubernetes.client.ApiClient(config)
                client.user_agent = "model-registry-operator"
                self._api = kubernetes.client.CustomObjectsApi(client)
            return self._api

    def __call__(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._client().patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
            _content_type="application/merge-patch+json",
            _request_timeout=STATUS_WRITE_TIMEOUT,
        )


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
    if result.retry is not None:
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
        raise ComeBackLater(message, delay=result.retry)


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
    progress = (status.get(KOPF_STATUS) or {}).get("progress") or {}
    # kopf keys progress by handler id; an update handler on a field has a suffixed id
    # ("reconcile-update/spec")
    return any(key.split("/")[0] in CHANGE_HANDLERS for key in progress)


class ObjectLocks:
    """One lock per object UID: a change handler and a resync timer never reconcile the
    same object at once (they run in different executor threads)."""

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
    # writes a status merge patch from a reconcile thread (progress of a long copy);
    # None: the kubernetes client's
    status_writer: StatusWriter | None = None
    locks: ObjectLocks = field(default_factory=ObjectLocks)
    # consecutive retryable failures per object UID, as (generation, count): the backoff
    # exponent (kopf's own retry count also counts ordinary waits, which must not slow the
    # next error's retry); a new generation starts again from zero
    failures: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    wall_clock: Callable[[], float] = time.time  # when audits are due
    # per object UID, the wall-clock time of its last resync that got through (Ready): the
    # next one audits if its turn came in between, however late or early kopf's timer fired
    resynced: dict[str, float] = field(default_factory=dict)

    def attempt(self, meta: Meta) -> int:
        """How many reconciles of this object's current generation failed in a row."""
        generation, count = self.failures.get(meta.uid, (meta.generation, 0))
        return count if generation == meta.generation else 0

    def record(self, meta: Meta, failed: bool) -> None:
        if failed:
            self.failures[meta.uid] = (meta.generation, self.attempt(meta) + 1)
        else:
            self.failures.pop(meta.uid, None)

    def audit_turn(self, uid: str, settings: Settings) -> bool:
        """Whether this resync of the object is its audit (see timing.audit_due)."""
        now = self.wall_clock()
        since = self.resynced.get(uid, now - settings.resync_seconds)
        return audit_due(uid, now, since, settings.audit_seconds)

    def resynced_with(self, uid: str, result: Result) -> None:
        """A resync that got through (Ready) ends the object's audit turn; a failed audit is
        tried again by the next resync."""
        if (condition(result.status, READY) or {}).get("status") == "True":
            self.resynced[uid] = self.wall_clock()

    def forget(self, uid: str) -> None:
        self.locks.forget(uid)
        self.failures.pop(uid, None)
        self.resynced.pop(uid, None)


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
        self.handling: set[str] = set()  # UIDs a change or delete handler is working on right now
        self.log = logging.getLogger(f"model_registry_operator.{kind.name}")

    def register(self, reg: kopf.OperatorRegistry) -> None:
        resource = (GROUP, VERSION, self.kind.plural)
        create_id, update_id, resume_id = CHANGE_HANDLERS
        on_change = kopf.on.resume(*resource, id=resume_id, registry=reg)(self.on_change)
        on_change = kopf.on.create(*resource, id=create_id, registry=reg)(on_change)
        kopf.on.update(*resource, id=update_id, field="spec", registry=reg)(on_change)
        interval = self.ctx.settings.resync_seconds
        kopf.timer(*resource, id="resync", interval=interval, initial_delay=interval, registry=reg)(
            self.on_resync
        )
        kopf.on.delete(*resource, id="delete", registry=reg)(self.on_delete)
        kopf.on.event(*resource, id="metrics", registry=reg)(self.on_event)
        if self.kind.name in INDEXES:
            kopf.index(*resource, id=INDEXES[self.kind.name], registry=reg)(index_entry)

    async def on_change(self, body: Any, patch: Any, reason: Any = None, **kwargs: Any) -> None:
        # At operator start, an object already in sync for its generation is checked the
        # cheap way a resync does (shared listings), not with one describe per object.
        cheap = str(reason) == "resume" and settled(body)
        await self.run(self.kind.reconcile, body, patch, kwargs, cheap=cheap)

    async def on_resync(self, body: Any, patch: Any, **kwargs: Any) -> None:
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        await self.run(self.kind.reconcile, body, patch, kwargs, resync=True, blocking=False)

    async def on_delete(self, body: Any, patch: Any, **kwargs: Any) -> None:
        await self.run(self.kind.delete, body, patch, kwargs)  # raises while SageMaker is not done
        uid = body["metadata"]["uid"]
        self.runtime.forget(uid)
        self.metrics.gone(uid)

    def on_event(self, type: str | None, body: Any, **_: Any) -> None:
        # also gone without the delete handler (a finalizer removed by hand)
        if type == "DELETED":
            self.metrics.gone(body["metadata"]["uid"])

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
        if resync and (uid in self.handling or change_pending(body)):
            self.metrics.looked_at(uid)  # still this replica's, its condition stands
            return  # the change handler (and its retries) own the object until it is done
        if not resync:
            self.handling.add(uid)
        progress = StatusProgress(self.write, self.kind.plural, body, previous)
        handled = Handled(fn, body, IndexLookup(kwargs), resync or cheap, blocking, progress)
        try:
            result = await self.reconcile_until_done(handled, previous)
        finally:
            self.handling.discard(uid)
            # the reconcile thread is done: no progress write can race kopf's patch below
            written = progress.close()
        if result is None:
            return
        meta = body["metadata"]
        for event in result.events:
            self.log.info(
                "%s %s/%s: %s", event.reason, meta.get("namespace"), meta.get("name"), event.message
            )
        self.metrics.written(self.kind.name, uid, result.status)
        apply_result(result, body, patch, written)

    async def reconcile_until_done(self, handled: Handled, status: dict[str, Any]) -> Result | None:
        loop = asyncio.get_running_loop()
        events: list[Event] = []
        waited = 0.0
        while True:
            result = await loop.run_in_executor(self.runtime.executor, self.reconcile_once, handled, status)
            if result is None:
                return None
            events.extend(result.events)
            if not result.short or result.retry is None or waited + result.retry > INLINE_WAIT_SECONDS:
                result.events = events
                return result
            await asyncio.sleep(result.retry)
            waited += result.retry
            status = result.status

    def reconcile_once(self, handled: Handled, status: dict[str, Any]) -> Result | None:
        """One reconcile or delete, from `status` (the one read, or the last inline wait's)."""
        meta = Meta.from_body(handled.body)
        runtime, resync = self.runtime, handled.resync
        lock = runtime.locks.get(meta.uid)
        if not lock.acquire(blocking=handled.blocking):
            return None  # a resync while a change is being handled: that handler covers it
        try:
            call = Call(
                meta,
                dict(handled.body.get("spec") or {}),
                dict(status or {}),
                handled.lookup,
                attempt=runtime.attempt(meta),
                resync=resync,
                # a resync's turn to describe in full (customer metadata, ... changed in SageMaker)
                audit=resync and runtime.audit_turn(meta.uid, self.ctx.settings),
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
            if resync:
                runtime.resynced_with(meta.uid, result)
            return result
        finally:
            lock.release()


def index_entry(
    namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """What a referencing object needs of a group or package: no API call per lookup."""
    deleting = bool(meta.get("deletionTimestamp"))
    return {(namespace, name): {"spec": dict(spec), "status": dict(status), "deleting": deleting}}


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
        runtime.status_writer = KubernetesStatusWriter()
    metrics = metrics or OperatorMetrics(CollectorRegistry())
    for kind in (modelpackagegroup.CONTROLLER, modelpackage.CONTROLLER, model.CONTROLLER):
        KindHandlers(kind, ctx, runtime, metrics, runtime.status_writer).register(reg)
    return runtime
