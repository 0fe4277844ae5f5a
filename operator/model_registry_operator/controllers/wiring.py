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
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf

from .. import GROUP, VERSION
from ..api.common import KOPF_STATUS
from ..errors import RetryableError
from ..metrics import OperatorMetrics
from .common import Context, Meta, Result, error_result
from .conditions import Outcome, build_conditions

log = logging.getLogger(__name__)
INDEXES = {"ModelPackageGroup": "modelpackagegroup_index", "ModelPackage": "modelpackage_index"}
# Longest in-memory wait per handler call before the status says Reconciling and kopf
# calls again; longer waits (an approval, a backoff) always go through kopf.
INLINE_WAIT_SECONDS = 10.0
CHANGE_HANDLERS = ("reconcile-create", "reconcile-update", "reconcile-resume")
PLURALS = {"ModelPackageGroup": "modelpackagegroups", "ModelPackage": "modelpackages", "Model": "models"}


class IndexLookup:
    """Referenced objects from kopf's in-memory indexes: no API call per lookup."""

    def __init__(self, indexes: dict[str, Any]):
        self._indexes = indexes

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        index = self._indexes.get(INDEXES.get(kind, ""))
        if index is None:
            return None
        for value in index.get((namespace, name), []):
            return value
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
            _request_timeout=10,
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
            except Exception as exc:  # progress is informative: never fail the reconcile for it
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
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
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
        raise kopf.TemporaryError(message, delay=result.retry)


def settled(body: Any) -> bool:
    """The last reconcile of this generation finished (Ready or Stalled)."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
        return False
    return not any(
        c.get("type") == "Reconciling" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def call_reconcile(
    fn: Callable[..., Result],
    raw_spec: dict[str, Any],
    meta: Meta,
    status: dict[str, Any],
    ctx: Context,
    **args: Any,
) -> Result:
    """`fn(...)`, with an unexpected exception (a bug, a full disk) turned into Reconciling/
    InternalError with backoff and the traceback in the log: the object's status says what
    happened instead of kopf retrying silently. The message names only the exception type,
    since its text may carry URLs or other details meant for the log."""
    try:
        return fn(raw_spec, meta, status, ctx, **args)
    except Exception as exc:
        log.exception("reconcile of %s %s/%s failed unexpectedly", fn.__module__, meta.namespace, meta.name)
        fields = {k: v for k, v in (status or {}).items() if k not in ("conditions", "observedGeneration")}
        error = RetryableError(
            "InternalError",
            f"The operator failed unexpectedly ({type(exc).__name__}); its log has the details.",
        )
        return error_result(error, meta, status, fields, args.get("attempt", 0))


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


def register_kind(
    reg: kopf.OperatorRegistry,
    ctx: Context,
    kind: str,
    reconcile: Callable[..., Result],
    delete: Callable[..., Result],
    metrics: OperatorMetrics,
) -> None:
    plural = PLURALS[kind]
    resource = (GROUP, VERSION, plural)
    handling: set[str] = set()  # UIDs a change or delete handler is working on right now
    log = logging.getLogger(f"model_registry_operator.{kind}")
    write_status = ctx.status_writer or KubernetesStatusWriter()  # register_all shares one

    def reconcile_once(
        fn: Callable[..., Result],
        body: Any,
        status: dict[str, Any],
        kwargs: dict[str, Any],
        resync: bool,
        blocking: bool,
        progress: StatusProgress | None,
    ) -> Result | None:
        meta = Meta.from_body(body)
        lock = ctx.locks.get(meta.uid)
        if not lock.acquire(blocking=blocking):
            return None  # a resync while a change is being handled: that handler covers it
        try:
            args: dict[str, Any] = {"attempt": ctx.attempt(meta)}
            if resync:
                args["resync"] = True
            if "lookup" in fn.__code__.co_varnames:
                args["lookup"] = IndexLookup(kwargs)
            if progress is not None and "progress" in fn.__code__.co_varnames:
                args["progress"] = progress
            started = time.monotonic()
            result = call_reconcile(fn, dict(body.get("spec") or {}), meta, status, ctx, **args)
            metrics.reconciled(
                kind,
                result.status,
                time.monotonic() - started,
                failed=result.failed,
                deleted=fn is delete and result.retry is None and not result.failed,
            )
            ctx.record(meta, result.failed)
            return result
        finally:
            lock.release()

    async def run(
        fn: Callable[..., Result],
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
        if resync and (uid in handling or change_pending(body)):
            metrics.looked_at(uid)  # still this replica's, its condition stands
            return  # the change handler (and its retries) own the object until it is done
        if not resync:
            handling.add(uid)
        progress = StatusProgress(write_status, plural, body, previous)
        try:
            result = await reconcile_until_done(
                fn, body, previous, kwargs, resync or cheap, blocking, progress
            )
        finally:
            handling.discard(uid)
            # the reconcile thread is done: no progress write can race kopf's patch below
            written = progress.close()
        if result is None:
            return
        meta = body["metadata"]
        for event in result.events:
            log.info("%s %s/%s: %s", event.reason, meta.get("namespace"), meta.get("name"), event.message)
        metrics.written(kind, uid, result.status)
        apply_result(result, body, patch, written)

    async def reconcile_until_done(
        fn: Callable[..., Result],
        body: Any,
        status: dict[str, Any],
        kwargs: dict[str, Any],
        resync: bool,
        blocking: bool,
        progress: StatusProgress | None = None,
    ) -> Result | None:
        loop = asyncio.get_running_loop()
        events: list = []
        waited = 0.0
        while True:
            result = await loop.run_in_executor(
                ctx.executor, reconcile_once, fn, body, status, kwargs, resync, blocking, progress
            )
            if result is None:
                return None
            events.extend(result.events)
            if not result.short or result.retry is None or waited + result.retry > INLINE_WAIT_SECONDS:
                result.events = events
                return result
            await asyncio.sleep(result.retry)
            waited += result.retry
            status = result.status

    create_id, update_id, resume_id = CHANGE_HANDLERS

    @kopf.on.resume(*resource, id=resume_id, registry=reg)
    @kopf.on.create(*resource, id=create_id, registry=reg)
    @kopf.on.update(*resource, id=update_id, field="spec", registry=reg)
    async def on_change(body: Any, patch: Any, reason: Any = None, **kwargs: Any) -> None:
        # At operator start, an object already in sync for its generation is checked the
        # cheap way a resync does (shared listings), not with one describe per object.
        cheap = str(reason) == "resume" and settled(body)
        await run(reconcile, body, patch, kwargs, cheap=cheap)

    @kopf.timer(
        *resource,
        id="resync",
        interval=ctx.settings.resync_seconds,
        initial_delay=ctx.settings.resync_seconds,
        registry=reg,
    )
    async def on_resync(body: Any, patch: Any, **kwargs: Any) -> None:
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        await run(reconcile, body, patch, kwargs, resync=True, blocking=False)

    @kopf.on.delete(*resource, id="delete", registry=reg)
    async def on_delete(body: Any, patch: Any, **kwargs: Any) -> None:
        await run(delete, body, patch, kwargs)  # raises while SageMaker is not done
        ctx.locks.forget(body["metadata"]["uid"])
        ctx.failures.pop(body["metadata"]["uid"], None)
        ctx.resynced.pop(body["metadata"]["uid"], None)
        metrics.gone(body["metadata"]["uid"])

    @kopf.on.event(*resource, id="metrics", registry=reg)
    def on_event(type: str | None, body: Any, **_: Any) -> None:
        # also gone without the delete handler (a finalizer removed by hand)
        if type == "DELETED":
            metrics.gone(body["metadata"]["uid"])

    if kind in INDEXES:

        def index(namespace: str, name: str, spec: Any, status: Any, meta: Any, **_: Any) -> dict[Any, Any]:
            deleting = bool(meta.get("deletionTimestamp"))
            return {(namespace, name): {"spec": dict(spec), "status": dict(status), "deleting": deleting}}

        index.__name__ = INDEXES[kind]
        kopf.index(*resource, id=INDEXES[kind], registry=reg)(index)


def register_all(reg: kopf.OperatorRegistry, ctx: Context, metrics: OperatorMetrics | None = None) -> None:
    """`metrics`: where to count; None: a registry of its own that nothing serves."""
    from prometheus_client import CollectorRegistry

    from . import model, modelpackage, modelpackagegroup

    if ctx.status_writer is None:
        ctx.status_writer = KubernetesStatusWriter()
    metrics = metrics or OperatorMetrics(CollectorRegistry())
    register_kind(
        reg, ctx, "ModelPackageGroup", modelpackagegroup.reconcile, modelpackagegroup.delete, metrics
    )
    register_kind(reg, ctx, "ModelPackage", modelpackage.reconcile, modelpackage.delete, metrics)
    register_kind(reg, ctx, "Model", model.reconcile, model.delete, metrics)
