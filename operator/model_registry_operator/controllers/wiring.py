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
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import kopf

from .. import GROUP, VERSION
from .common import Context, Meta, Result

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


def apply_result(result: Result, body: Any, patch: Any, previous: dict[str, Any]) -> None:
    for key in previous:
        if key not in result.status:
            patch.status[key] = None
    for key, value in result.status.items():
        if previous.get(key) != value:
            patch.status[key] = value
    for key, value in result.annotations.items():
        if (body.get("metadata", {}).get("annotations") or {}).get(key) != value:
            patch.metadata.setdefault("annotations", {})[key] = value
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if result.retry is not None:
        message = next((c.get("message") for c in result.status.get("conditions") or []
                        if c.get("status") == "True"), None) or "Not done yet."
        raise kopf.TemporaryError(message, delay=result.retry)


def settled(body: Any) -> bool:
    """The last reconcile of this generation finished (Ready or Stalled)."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
        return False
    return not any(c.get("type") == "Reconciling" and c.get("status") == "True"
                   for c in status.get("conditions") or [])


def change_pending(body: Any) -> bool:
    """A change handler owns the object: kopf records an unfinished one (waiting for its
    retry) in its progress annotation, and a spec newer than the status is about to be
    handled. Otherwise (Ready, Stalled, or Reconciling after a failed resync) the resync
    timer is what looks again."""
    meta = body.get("metadata", {})
    if (body.get("status") or {}).get("observedGeneration") != meta.get("generation"):
        return True
    annotations = meta.get("annotations") or {}
    return any(f"{GROUP}/{handler}" in annotations for handler in CHANGE_HANDLERS)


def register_kind(reg: kopf.OperatorRegistry, ctx: Context, kind: str,
                  reconcile: Callable[..., Result], delete: Callable[..., Result]) -> None:
    plural = PLURALS[kind]
    resource = (GROUP, VERSION, plural)
    handling: set[str] = set()  # UIDs a change or delete handler is working on right now
    log = logging.getLogger(f"model_registry_operator.{kind}")

    def reconcile_once(fn: Callable[..., Result], body: Any, status: dict[str, Any],
                       kwargs: dict[str, Any], resync: bool, blocking: bool) -> Result | None:
        meta = Meta.from_body(body)
        lock = ctx.locks.get(meta.uid)
        if not lock.acquire(blocking=blocking):
            return None  # a resync while a change is being handled: that handler covers it
        try:
            args: dict[str, Any] = {"attempt": ctx.failures.get(meta.uid, 0)}
            if resync:
                args["resync"] = True
            if "lookup" in fn.__code__.co_varnames:
                args["lookup"] = IndexLookup(kwargs)
            result = fn(dict(body.get("spec") or {}), meta, status, ctx, **args)
            if result.failed:
                ctx.failures[meta.uid] = ctx.failures.get(meta.uid, 0) + 1
            else:
                ctx.failures.pop(meta.uid, None)
            return result
        finally:
            lock.release()

    async def run(fn: Callable[..., Result], body: Any, patch: Any, kwargs: dict[str, Any],
                  resync: bool = False, blocking: bool = True, cheap: bool = False) -> None:
        """Reconcile in a worker thread; ride out short waits in memory (no intermediate
        status write, no kopf retry round trip), then write the outcome once."""
        previous = dict(body.get("status") or {})
        uid = body["metadata"]["uid"]
        if resync and (uid in handling or change_pending(body)):
            return  # the change handler (and its retries) own the object until it is done
        if not resync:
            handling.add(uid)
        try:
            result = await reconcile_until_done(fn, body, previous, kwargs, resync or cheap, blocking)
        finally:
            handling.discard(uid)
        if result is None:
            return
        meta = body["metadata"]
        for event in result.events:
            log.info("%s %s/%s: %s", event.reason, meta.get("namespace"), meta.get("name"), event.message)
        apply_result(result, body, patch, previous)

    async def reconcile_until_done(fn: Callable[..., Result], body: Any, status: dict[str, Any],
                                   kwargs: dict[str, Any], resync: bool, blocking: bool) -> Result | None:
        loop = asyncio.get_running_loop()
        events: list = []
        waited = 0.0
        while True:
            result = await loop.run_in_executor(ctx.executor, reconcile_once, fn, body, status, kwargs,
                                                resync, blocking)
            if result is None:
                return None
            events.extend(result.events)
            if not result.short or result.retry is None or waited + result.retry > INLINE_WAIT_SECONDS:
                result.events = events
                return result
            await asyncio.sleep(result.retry)
            waited += result.retry
            status = result.status

    resume_id, create_id, update_id = CHANGE_HANDLERS

    @kopf.on.resume(*resource, id=resume_id, registry=reg)
    @kopf.on.create(*resource, id=create_id, registry=reg)
    @kopf.on.update(*resource, id=update_id, field="spec", registry=reg)
    async def on_change(body: Any, patch: Any, reason: Any = None, **kwargs: Any) -> None:
        # At operator start, an object already in sync for its generation is checked the
        # cheap way a resync does (shared listings), not with one describe per object.
        cheap = str(reason) == "resume" and settled(body)
        await run(reconcile, body, patch, kwargs, cheap=cheap)

    @kopf.timer(*resource, id="resync", interval=ctx.settings.resync_seconds,
                initial_delay=ctx.settings.resync_seconds, registry=reg)
    async def on_resync(body: Any, patch: Any, **kwargs: Any) -> None:
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        await run(reconcile, body, patch, kwargs, resync=True, blocking=False)

    @kopf.on.delete(*resource, id="delete", registry=reg)
    async def on_delete(body: Any, patch: Any, **kwargs: Any) -> None:
        await run(delete, body, patch, kwargs)  # raises while SageMaker is not done
        ctx.locks.forget(body["metadata"]["uid"])
        ctx.failures.pop(body["metadata"]["uid"], None)

    if kind in INDEXES:
        def index(namespace: str, name: str, spec: Any, status: Any, **_: Any) -> dict[Any, Any]:
            return {(namespace, name): {"spec": dict(spec), "status": dict(status)}}

        index.__name__ = INDEXES[kind]
        kopf.index(*resource, id=INDEXES[kind], registry=reg)(index)


def register_all(reg: kopf.OperatorRegistry, ctx: Context) -> None:
    from . import model, modelpackage, modelpackagegroup

    register_kind(reg, ctx, "ModelPackageGroup", modelpackagegroup.reconcile, modelpackagegroup.delete)
    register_kind(reg, ctx, "ModelPackage", modelpackage.reconcile, modelpackage.delete)
    register_kind(reg, ctx, "Model", model.reconcile, model.delete)
