"""Replicas that share the work (README "Scale"): each object is reconciled by the one replica
that holds its shard's Lease.

The model is Argo CD's sharded application controller (controller/sharding/sharding.go): an
object's shard is a stable hash of its identity modulo the shard count (`shard_of`, as Argo's
legacy distribution hashes a cluster's ID); each shard is held by one replica; the replicas
heartbeat (Argo keeps `{ShardNumber, ControllerName, HeartbeatTime}` rows in one ConfigMap, here
the members Lease), and a shard whose holder stopped heartbeating for a timeout is taken by
another replica. Unlike Argo, where a replica serves exactly one shard and a dead replica's shard
waits for its replacement pod, a replica here holds as many shards as it is given: the survivors
take a dead replica's shards within a minute.

Leases (coordination.k8s.io/v1, `ShardLeases`): `<name>-shard-<i>` for each shard, and
`<name>-shard-members` whose annotation lists each replica's last heartbeat, all in the
operator's namespace. Every SHARD_RENEW_INTERVAL a replica lists them (one request), heartbeats,
renews the shards it holds (a replace with the resourceVersion it read: a concurrent writer gets
409 and nothing changes), hands one over when it holds more than its share
ceil(shards / live replicas) while another live replica holds less, and takes a free or expired
shard when it holds less than its share (or that shard has been free or expired for
SHARD_ORPHAN_GRACE). A lease is expired when this replica has seen it unchanged for its whole
leaseDurationSeconds on its own monotonic clock (client-go's leader election does the same: no
clock is compared with another machine's). A replica owns a shard only while less than
SHARD_LEASE_DURATION - SHARD_RENEW_MARGIN has passed since it sent its last successful renewal:
it stops before anyone can take the lease. Leases of another shard count (a rollout changing
MRO_SHARDS) that are still held fence this replica: it takes nothing until they are released or
expired, so two hash functions never split the objects at once.

The lease loop runs in a thread with the kubernetes client, not on the event loop: at start and
after a takeover kopf handles thousands of objects on the loop, and a renewal late by seconds is
a lost lease (and every object of the shard handed back and forth); the thread keeps its rhythm
whatever the loop does. What the loop needs (which shards are owned) is a lock-guarded read; a
change is handed to the loop with call_soon_threadsafe.

kopf facts this is built on (kopf 1.45, _core/reactor/processing.py and friends):
1. kopf keeps each object's handler progress and last handled spec in the object itself
   (status.kopf, main.configure_kopf), shared by every replica: a replica that does not own an
   object must neither run nor record anything for it. When no change handler of a resource
   matches an object (`prematch`, which evaluates `when=`, registries.py:208 and :394), kopf is
   blind to it: no handler, no progress, no diff-base (processing.py:275-278). But when some
   handler matches the object and none the cause, kopf stores the diff-base as if the change were
   handled (processing.py:515-521): so every change handler carries the same ownership filter.
2. kopf removes its finalizer from an object no handler requires it for (processing.py:303-306)
   and from an object being deleted once nothing is left to do for it (processing.py:343-345).
   Filtered out on every replica but its owner, an object would lose the finalizer to the other
   replicas (and the owner add it back: a write war), and a deletion would skip SageMaker.
   So: the resync timer (which requires the finalizer, on.py:778) matches every object that has
   the finalizer, owned or not (a timer that matches keeps it: registries.py:160-172), and
   does nothing for an object this replica does not own; and the delete handler matches an
   object being deleted on every replica: on a replica that does not own it, it waits (kopf
   records nothing while a handler runs) until the object is gone or becomes this replica's.
3. kopf's resume handlers run once per process for the objects of its first listing
   (processing.py:216, causes.py:333); its timers are per process and per sighting. A replica
   that gains a shard therefore reconciles its objects itself: the resync timer of an object this
   replica does not own waits (parked in the handler, woken when the shard is gained) and then
   reconciles it at once; objects with kopf work pending (a change not handled yet, a retry
   recorded by the previous owner, a deletion, no finalizer yet) are "touched"
   (status.kopf.takenOver) so that kopf processes them here and continues what is recorded. A
   recorded resume in progress is per process (the new owner's kopf has no resume cause for an
   object it did not list): it is cleared, and the timer reconciles the object.
4. Indexes and on.event handlers see every object on every replica (processing.py:96, :257):
   lookups of referenced objects work across shards; waking the objects that wait for a changed
   one (wiring.wake_dependents) is done only for the dependents this replica owns.

Overlap: see README "Scale". In short: a replica stops starting work for a shard
SHARD_RENEW_MARGIN before its lease can be taken over, and hands a shard over (rebalancing,
shutdown) only after its running handlers for that shard finished (at most SHARD_DRAIN_TIMEOUT);
what can still overlap is one reconcile already running on a replica cut off from the API
server, and the work is idempotent (ClientToken and identity markers, merge patches of status).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol

import kopf

from . import FINALIZER, GROUP, timing
from .kube import KubernetesObjects, api_client
from .settings import Settings

log = logging.getLogger("model_registry_operator.sharding")

SET_LABEL = f"{GROUP}/shard-set"  # on every Lease of one operator's shard set: listed with one request
SHARDS_ANNOTATION = f"{GROUP}/shards"  # the shard count the holder hashes with
MEMBERS_ANNOTATION = f"{GROUP}/members"  # {identity: {"at": heartbeat, "shards": count}}
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
RESUME_HANDLER = "reconcile-resume"  # wiring.CHANGE_HANDLERS[2]

Handler = Callable[..., Coroutine[Any, Any, None]]


def shard_of(namespace: str | None, name: str, shards: int) -> int:
    """The shard of the object `namespace/name`: stable across processes, restarts and re-creations
    of the object (its UID changes when GitOps re-applies it; its name does not)."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(f"{namespace or ''}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def replica_identity() -> str:
    """This replica's name as a lease holder: the pod's name (POD_NAME, from the downward API in
    the Helm chart), else host name and process id."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def lease_namespace(settings: Settings) -> str:
    """MRO_SHARD_LEASE_NAMESPACE, else the service account's namespace in a pod, else default."""
    if settings.shard_lease_namespace:
        return settings.shard_lease_namespace
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _micro_time(moment: datetime.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _holder(lease: Mapping[str, Any] | None) -> str:
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _annotations(lease: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((lease or {}).get("metadata") or {}).get("annotations") or {})


# --- the Lease API -------------------------------------------------------------------------------


class LeaseConflict(Exception):
    """Another writer was first: 409 AlreadyExists on a create, Conflict on a stale resourceVersion."""


class LeaseApi(Protocol):
    """The Leases of one shard set, as plain JSON objects."""

    def list(self) -> list[dict[str, Any]]: ...

    def create(self, lease: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, lease: dict[str, Any]) -> dict[str, Any]: ...


class KubernetesLeaseApi:
    """LeaseApi with the kubernetes client (blocking: called from the lease thread)."""

    def __init__(self, namespace: str, set_name: str, user_agent: str):
        self.namespace, self.set_name, self.user_agent = namespace, set_name, user_agent
        self._api: Any = None

    def _client(self) -> Any:
        if self._api is None:
            import kubernetes

            # a failed renewal is tried again by the next round, not by urllib3 now
            self._api = kubernetes.client.CoordinationV1Api(api_client(self.user_agent, retries=False))
        return self._api

    def _call(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        import kubernetes

        try:
            response = getattr(self._client(), method)(
                *args, _preload_content=False, _request_timeout=timing.SHARD_REQUEST_TIMEOUT, **kwargs
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict(str(exc.reason)) from None
            raise
        result: dict[str, Any] = json.loads(response.data)
        return result

    def list(self) -> list[dict[str, Any]]:
        listing = self._call(
            "list_namespaced_lease", self.namespace, label_selector=f"{SET_LABEL}={self.set_name}"
        )
        return list(listing.get("items") or [])

    def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        return self._call("create_namespaced_lease", self.namespace, lease)

    def replace(self, lease: dict[str, Any]) -> dict[str, Any]:
        return self._call("replace_namespaced_lease", lease["metadata"]["name"], self.namespace, lease)


# --- which shards this replica holds (the lease thread) -------------------------------------------


@dataclasses.dataclass
class _Held:
    lease: dict[str, Any]  # as last written (its resourceVersion guards the next write)
    renewed: float  # monotonic time the request that last renewed it was sent


class ShardLeases:
    """Which shards this replica holds, kept by `tick` (one round: list, heartbeat, renew, hand
    over, take); `owns` answers from any thread. `monotonic` and `wall` are the clocks (a fake
    one in tests): expiry is only ever measured on `monotonic`."""

    def __init__(
        self,
        api: LeaseApi,
        *,
        shards: int,
        identity: str,
        name: str,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime.datetime] = _utcnow,
    ):
        self.api, self.shards, self.identity, self.name = api, shards, identity, name
        self._monotonic, self._wall = monotonic, wall
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._draining: dict[int, float] = {}  # shard -> monotonic deadline of its hand-over
        self._inflight: collections.Counter[int] = collections.Counter()  # handlers running, per shard
        self._seen: dict[str, tuple[tuple[str, str], float]] = {}  # lease -> ((holder, renewTime), since)
        self._members_seen: dict[str, tuple[str, float]] = {}  # member -> (heartbeat, since)
        self._reported: frozenset[int] = frozenset()
        self._problem: str | None = None
        self._warned = False
        self.live: frozenset[str] = frozenset({identity})  # live replicas of this shard count, as last seen
        self.fenced = False  # a lease of another shard count is held: take nothing

    def lease_name(self, shard: int) -> str:
        return f"{self.name}-shard-{shard}"

    @property
    def members_lease(self) -> str:
        return f"{self.name}-shard-members"

    # --- read from the event loop ---

    def owns(self, shard: int) -> bool:
        with self._lock:
            held = self._held.get(shard)
            return (
                held is not None
                and shard not in self._draining
                and self._monotonic() < held.renewed + timing.SHARD_LEASE_DURATION - timing.SHARD_RENEW_MARGIN
            )

    def owned(self) -> frozenset[int]:
        return frozenset(s for s in range(self.shards) if self.owns(s))

    def begin(self, shard: int) -> None:
        with self._lock:
            self._inflight[shard] += 1

    def end(self, shard: int) -> None:
        with self._lock:
            self._inflight[shard] -= 1
            if self._inflight[shard] <= 0:
                del self._inflight[shard]

    # --- one round (the lease thread) ---

    def tick(self) -> tuple[frozenset[int], frozenset[int]]:
        """One round; returns the shards gained and lost since the previous round."""
        self._warned = False
        try:
            leases = {lease["metadata"]["name"]: lease for lease in self.api.list()}
        except Exception as exc:  # noqa: BLE001 - the API server is away: owning decays by itself
            self._warn(f"cannot list the shard Leases ({exc}); the shards held are dropped if this goes on")
        else:
            self._round(leases)
        if not self._warned:
            self._problem = None  # said again if it comes back
        return self._changes()

    def _round(self, leases: dict[str, dict[str, Any]]) -> None:
        now = self._monotonic()
        shard_leases = {name: lease for name, lease in leases.items() if name != self.members_lease}
        for name, lease in shard_leases.items():
            key = (_holder(lease), str((lease.get("spec") or {}).get("renewTime") or ""))
            if name not in self._seen or self._seen[name][0] != key:
                self._seen[name] = (key, now)
        live = self._heartbeat(leases.get(self.members_lease), now)
        target = math.ceil(self.shards / len(live))
        self._renew(shard_leases, now)
        holders = collections.Counter(
            _holder(lease)
            for name, lease in shard_leases.items()
            if _holder(lease) and not self._expired(name, lease, now)
        )
        fenced = [
            name
            for name, lease in shard_leases.items()
            if _holder(lease) not in ("", self.identity)
            and _annotations(lease).get(SHARDS_ANNOTATION) != str(self.shards)
            and not self._expired(name, lease, now)
        ]
        if fenced != [] and not self.fenced:
            log.warning(
                "shard Leases of another shard count are held (%s): this replica (%d shards) takes none until "
                "they are released or expire (a rollout changing MRO_SHARDS)",
                ", ".join(sorted(fenced)),
                self.shards,
            )
        self.fenced = bool(fenced)
        # what each other live replica holds (one that holds nothing yet: 0)
        others = {member: holders.get(member, 0) for member in self.live if member != self.identity}
        self._hand_over(target, others, now)
        if not self.fenced:
            self._take(shard_leases, target, min(others.values(), default=None), now)

    def _expired(self, name: str, lease: dict[str, Any], now: float) -> bool:
        """Held, and seen unchanged by this replica for its whole duration."""
        duration = (lease.get("spec") or {}).get("leaseDurationSeconds") or timing.SHARD_LEASE_DURATION
        return bool(_holder(lease)) and now - self._seen[name][1] >= float(duration)

    def _takeable_for(self, name: str, lease: dict[str, Any] | None, now: float) -> float | None:
        """How long the lease has been free (no holder, or missing) or expired; None: held."""
        if lease is None:
            key = ("", "missing")
            if name not in self._seen or self._seen[name][0] != key:
                self._seen[name] = (key, now)
            return now - self._seen[name][1]
        if not _holder(lease):
            return now - self._seen[name][1]
        if self._expired(name, lease, now):
            duration = (lease.get("spec") or {}).get("leaseDurationSeconds") or timing.SHARD_LEASE_DURATION
            return now - self._seen[name][1] - float(duration)
        return None

    def _heartbeat(self, roster: dict[str, Any] | None, now: float) -> frozenset[str]:
        """Write this replica's heartbeat into the members Lease; the live replicas of this shard
        count (this one included)."""
        try:
            members = json.loads(_annotations(roster).get(MEMBERS_ANNOTATION) or "{}")
        except ValueError:
            members = {}
        members = (
            {m: e for m, e in members.items() if isinstance(e, dict)} if isinstance(members, dict) else {}
        )
        for member, entry in members.items():
            beat = str(entry.get("at"))
            if member not in self._members_seen or self._members_seen[member][0] != beat:
                self._members_seen[member] = (beat, now)
        for gone in set(self._members_seen) - set(members):
            del self._members_seen[gone]
        live = {
            member
            for member, entry in members.items()
            if entry.get("shards") == self.shards
            and now - self._members_seen[member][1] < timing.SHARD_MEMBER_TIMEOUT
        }
        kept = {
            member: entry
            for member, entry in members.items()
            if member != self.identity and now - self._members_seen[member][1] < timing.SHARD_MEMBER_FORGET
        }
        kept[self.identity] = {"at": _micro_time(self._wall()), "shards": self.shards}
        lease = self._lease_body(roster, self.members_lease)
        lease["metadata"].setdefault("annotations", {})[MEMBERS_ANNOTATION] = json.dumps(kept, sort_keys=True)
        try:
            self.api.create(lease) if roster is None else self.api.replace(lease)
        except LeaseConflict:
            pass  # another replica's heartbeat came first: this one goes with the next round
        except Exception as exc:  # noqa: BLE001
            self._warn(f"cannot write this replica's heartbeat to {self.members_lease} ({exc})")
        self.live = frozenset(live | {self.identity})
        return self.live

    def _renew(self, leases: dict[str, dict[str, Any]], now: float) -> None:
        for shard in sorted(self._held):
            name = self.lease_name(shard)
            lease = leases.get(name)
            if lease is None or _holder(lease) != self.identity:
                with self._lock:
                    self._held.pop(shard, None)
                    self._draining.pop(shard, None)
                log.warning(
                    "shard %d: lost (its Lease %s is now %s)",
                    shard,
                    name,
                    f"held by {_holder(lease)}" if _holder(lease) else "free",
                )
                continue
            deadline = self._draining.get(shard)
            if deadline is not None and (self._inflight[shard] <= 0 or now >= deadline):
                self._release(shard, lease)
                continue
            started = self._monotonic()
            body = self._lease_body(lease, name)
            body["spec"]["renewTime"] = _micro_time(self._wall())
            try:
                written = self.api.replace(body)
            except LeaseConflict:
                continue  # written by another meanwhile: the next listing says by whom
            except Exception as exc:  # noqa: BLE001
                self._warn(f"cannot renew the Lease {name} ({exc})")
                continue
            with self._lock:
                if shard in self._held:
                    self._held[shard] = _Held(written, started)

    def _release(self, shard: int, lease: dict[str, Any]) -> None:
        """Stop owning `shard`, then free its lease for another replica (best effort: else it expires)."""
        with self._lock:
            self._held.pop(shard, None)
            self._draining.pop(shard, None)
        body = self._lease_body(lease, self.lease_name(shard))
        body["spec"].pop("holderIdentity", None)
        body["spec"]["renewTime"] = _micro_time(self._wall())
        try:
            self.api.replace(body)
        except Exception as exc:  # noqa: BLE001 - it expires instead
            log.info("shard %d: could not release its Lease (%s); it expires instead", shard, exc)
        else:
            log.info("shard %d: released for another replica", shard)

    def _hand_over(self, target: int, others: dict[str, int], now: float) -> None:
        """Start handing one shard over when another live replica holds less than its share while
        this one holds more, or two fewer than this one: it stops owning the shard now, and
        releases it once its running handlers are done (`_renew`). One at a time."""
        active = sorted(s for s in self._held if s not in self._draining)
        if not others or not active or self._draining:
            return
        least = min(others.values())
        if not ((len(active) > target and least < target) or len(active) >= least + 2):
            return
        wanting = sorted(member for member, count in others.items() if count == least)
        shard = active[-1]
        with self._lock:
            self._draining[shard] = now + timing.SHARD_DRAIN_TIMEOUT
        log.info(
            "shard %d: handing it over (%d live replicas, at most %d shards each; %s holds fewer)",
            shard,
            len(self.live),
            target,
            wanting[0],
        )

    def _take(self, leases: dict[str, dict[str, Any]], target: int, least: int | None, now: float) -> None:
        """Take free or expired shards while below the share, unless another live replica holds
        fewer (it takes them); any replica takes one free or expired for SHARD_ORPHAN_GRACE."""
        for shard in range(self.shards):
            if shard in self._held:
                continue
            name = self.lease_name(shard)
            lease = leases.get(name)
            waited = self._takeable_for(name, lease, now)
            if waited is None:
                continue
            active = len([s for s in self._held if s not in self._draining])
            fair = active < target and (least is None or active <= least)
            if not fair and waited < timing.SHARD_ORPHAN_GRACE:
                continue
            self._acquire(shard, lease)

    def _acquire(self, shard: int, lease: dict[str, Any] | None) -> None:
        name = self.lease_name(shard)
        before = _holder(lease)
        body = self._lease_body(lease, name)
        moment = _micro_time(self._wall())
        spec = body["spec"]
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=timing.SHARD_LEASE_DURATION,
            acquireTime=moment,
            renewTime=moment,
        )
        if before and before != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body["metadata"].setdefault("annotations", {})[SHARDS_ANNOTATION] = str(self.shards)
        started = self._monotonic()
        try:
            written = self.api.create(body) if lease is None else self.api.replace(body)
        except LeaseConflict:
            return  # another replica took it first
        except Exception as exc:  # noqa: BLE001
            self._warn(f"cannot take the Lease {name} ({exc})")
            return
        with self._lock:
            self._held[shard] = _Held(written, started)
        log.info(
            "shard %d of %d: taken%s (%d live replicas)",
            shard,
            self.shards,
            f" over from {before}" if before and before != self.identity else "",
            len(self.live),
        )

    def _lease_body(self, lease: dict[str, Any] | None, name: str) -> dict[str, Any]:
        """What to write: the lease as read (its resourceVersion guards the write), or a new one."""
        if lease is not None:
            body: dict[str, Any] = json.loads(json.dumps(lease))
            body["metadata"].pop("managedFields", None)
            body.setdefault("spec", {})
            return body
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": {SET_LABEL: self.name, "app.kubernetes.io/managed-by": "model-registry-operator"},
            },
            "spec": {},
        }

    def _changes(self) -> tuple[frozenset[int], frozenset[int]]:
        owned = self.owned()
        gained, lost = owned - self._reported, self._reported - owned
        self._reported = owned
        return gained, lost

    def _warn(self, problem: str) -> None:
        if problem != self._problem:  # once per problem, not every round
            log.warning("%s", problem)
        self._problem, self._warned = problem, True

    def release_all(self) -> None:
        """At shutdown: stop owning every shard, then free their leases (the others take them at
        once instead of after they expire)."""
        with self._lock:
            held = dict(self._held)
            self._held.clear()
            self._draining.clear()
        for shard, record in sorted(held.items()):
            self._release(shard, record.lease)


# --- the kopf side --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentifiedConnectionInfo(kopf.ConnectionInfo):
    """kopf's connection with a User-Agent naming this replica (kopf sends `kopf/<version>`)."""

    user_agent: str = ""

    def as_http_headers(self) -> dict[str, str]:
        headers = dict(super().as_http_headers())
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        return headers


def holds(objects: KubernetesObjects, plural: str, namespace: str, name: str, uid: str) -> bool:
    """The object `uid` still exists with this operator's finalizer."""
    obj = objects.read(plural, namespace, name, timeout=timing.SHARD_REQUEST_TIMEOUT)
    meta = (obj or {}).get("metadata") or {}
    return bool(meta.get("uid") == uid and FINALIZER in (meta.get("finalizers") or []))


def _meta(body: Any) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def _has_finalizer(body: Any) -> bool:
    return FINALIZER in (_meta(body).get("finalizers") or [])


def _deleting(body: Any) -> bool:
    return bool(_meta(body).get("deletionTimestamp"))


class Sharding:
    """This replica's share, as the kopf layer uses it: filters, handler wrappers, the lease
    thread's lifecycle (kopf startup and cleanup)."""

    def __init__(self, leases: ShardLeases, objects: KubernetesObjects):
        self.leases, self.objects = leases, objects
        self.shards, self.identity = leases.shards, leases.identity
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owned_events: dict[int, asyncio.Event] = {}
        # every object seen, by shard: uid -> (plural, namespace, name, kopf has work pending for it)
        self._objects: dict[int, dict[str, tuple[str, str, str, bool]]] = collections.defaultdict(dict)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def create(cls, settings: Settings) -> Sharding:
        identity = replica_identity()
        agent = f"model-registry-operator/{identity}"
        api = KubernetesLeaseApi(lease_namespace(settings), settings.shard_lease_name, agent)
        leases = ShardLeases(api, shards=settings.shards, identity=identity, name=settings.shard_lease_name)
        return cls(leases, KubernetesObjects(agent, retries=False))

    def identified(self, info: Any) -> Any:
        """kopf's login result with a User-Agent naming this replica."""
        if not isinstance(info, kopf.ConnectionInfo):
            return info
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
        try:
            version = importlib.metadata.version("kopf")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return IdentifiedConnectionInfo(
            **fields, user_agent=f"kopf/{version} model-registry-operator/{self.identity}"
        )

    # --- lifecycle ---

    def register(self, reg: kopf.OperatorRegistry) -> None:
        kopf.on.startup(registry=reg)(self._on_startup)
        kopf.on.cleanup(registry=reg)(self._on_cleanup)

    async def _on_startup(self, **_: Any) -> None:
        await self.start()

    async def _on_cleanup(self, **_: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        """The first round before kopf handles any object (startup handlers come first): the
        objects of the shards taken are resumed by kopf as usual. Then the lease thread."""
        self._loop = asyncio.get_running_loop()
        gained, lost = await self._loop.run_in_executor(None, self.leases.tick)
        self._changed(gained, lost)
        log.info(
            "sharding: replica %s, %d shards, holds %s (%d live replicas)",
            self.identity,
            self.shards,
            sorted(self.leases.owned()) or "none yet",
            len(self.leases.live),
        )
        self._thread = threading.Thread(target=self._run, name="shard-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        while not self._stop.wait(timing.SHARD_RENEW_INTERVAL * random.uniform(0.9, 1.0)):
            gained, lost = self.leases.tick()
            if gained or lost:
                loop.call_soon_threadsafe(self._changed, gained, lost)

    async def stop(self) -> None:
        self._stop.set()
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            await loop.run_in_executor(None, self._thread.join, timing.SHARD_REQUEST_TIMEOUT * 4)
        await loop.run_in_executor(None, self.leases.release_all)

    def _owned_event(self, shard: int) -> asyncio.Event:
        return self._owned_events.setdefault(shard, asyncio.Event())

    def _changed(self, gained: frozenset[int], lost: frozenset[int]) -> None:
        """On the event loop: wake what waits for a shard gained; have kopf look at its objects
        with work pending."""
        for shard in sorted(lost):
            self._owned_event(shard).clear()
            log.info("shard %d: no longer this replica's; its objects are left to the new holder", shard)
        for shard in sorted(gained):
            self._owned_event(shard).set()
            pending = [(p, ns, n) for p, ns, n, todo in self._objects[shard].values() if todo]
            log.info(
                "shard %d: this replica's now: %d objects known, %d with kopf work pending",
                shard,
                len(self._objects[shard]),
                len(pending),
            )
            if pending:
                task = asyncio.get_running_loop().create_task(self._touch(shard, pending))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _touch(self, shard: int, pending: list[tuple[str, str, str]]) -> None:
        """Write status.kopf.takenOver of each object (a status write by this replica, the owner):
        the watch event makes kopf process it here and continue what its record says. Not kopf's
        own touch field (status.kopf.dummy): kopf clears that with a status patch of its own in the
        cycle that adds its finalizer, and the finalizer's JSON patch, guarded by the
        resourceVersion read before, then fails with nothing left to bring the next cycle."""
        from .api.common import KOPF_STATUS

        loop = asyncio.get_running_loop()
        for plural, namespace, name in pending:
            if not self.leases.owns(shard):
                return
            change = {KOPF_STATUS: {"takenOver": {"by": self.identity, "at": _micro_time(_utcnow())}}}
            try:
                await loop.run_in_executor(None, self.objects, plural, namespace, name, change)
            except Exception as exc:  # noqa: BLE001 - gone meanwhile, or the API server is away
                log.debug("shard %d: cannot touch %s/%s: %s", shard, namespace, name, exc)

    # --- which objects are this replica's ---

    def shard(self, body: Any) -> int:
        meta = _meta(body)
        return shard_of(meta.get("namespace"), str(meta.get("name")), self.shards)

    def owns(self, body: Any) -> bool:
        return self.leases.owns(self.shard(body))

    @contextlib.contextmanager
    def working(self, body: Any) -> Iterator[None]:
        """A handler running for this object: a hand-over of its shard waits for it."""
        shard = self.shard(body)
        self.leases.begin(shard)
        try:
            yield
        finally:
            self.leases.end(shard)

    async def until_owned(self, body: Any, stopped: Any = None, poll: float | None = None) -> bool:
        """Wait until the object's shard is this replica's (True), or `stopped` is set, or `poll`
        seconds passed (False)."""
        shard = self.shard(body)
        loop = asyncio.get_running_loop()
        deadline = None if poll is None else loop.time() + poll
        stop = asyncio.ensure_future(stopped.wait()) if stopped is not None else None
        try:
            while not self.leases.owns(shard):
                if stopped is not None and stopped:
                    return False
                event = self._owned_event(shard)
                # set while the shard is held but not owned (a renewal late, a hand-over): look again soon
                timeout = timing.SHARD_RENEW_INTERVAL if event.is_set() else None
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        return False
                    timeout = left if timeout is None else min(timeout, left)
                gained = asyncio.ensure_future(event.wait())
                waiting: set[asyncio.Future[Any]] = {gained} if stop is None else {gained, stop}
                await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                gained.cancel()
            return True
        finally:
            if stop is not None:
                stop.cancel()

    def remember(self, event_type: str | None, body: Any, plural: str) -> None:
        """Every object of every shard, as last seen, and whether kopf has work pending for it."""
        from .controllers.wiring import change_pending

        meta = _meta(body)
        uid = str(meta.get("uid"))
        known = self._objects[self.shard(body)]
        if event_type == "DELETED":
            known.pop(uid, None)
            return
        todo = not _has_finalizer(body) or _deleting(body) or change_pending(body)
        known[uid] = (plural, str(meta.get("namespace") or ""), str(meta.get("name")), todo)

    def plan(self, handlers: Any) -> ShardPlan:
        return ShardPlan(self, handlers)


class ShardPlan:
    """The filters and wrappers KindHandlers.register puts on one kind's kopf handlers."""

    def __init__(self, sharding: Sharding, handlers: Any):
        self.sharding, self.handlers = sharding, handlers

    # kopf `when=` filters (kopf fact 1 and 2 in the module docstring)

    def owned(self, body: Any, **_: Any) -> bool:
        """Create, update and resume: only the objects of this replica's shards."""
        return self.sharding.owns(body)

    def kept(self, body: Any, **_: Any) -> bool:
        """The resync timer: also every object with the finalizer (a timer that matches keeps it)."""
        return self.sharding.owns(body) or _has_finalizer(body)

    def deletable(self, body: Any, **_: Any) -> bool:
        """Delete: also an object being deleted that another replica owns (its handler waits)."""
        return self.sharding.owns(body) or (_deleting(body) and _has_finalizer(body))

    def initial_delay(self, interval: float) -> Callable[..., float]:
        """The timer of an object this replica does not own starts waiting for it at once."""

        def delay(body: Any, **_: Any) -> float:
            return interval if self.sharding.owns(body) else 0.0

        return delay

    # handler wrappers

    def change(self, fn: Handler) -> Handler:
        async def on_change(body: Any, **kwargs: Any) -> None:
            with self.sharding.working(body):
                await fn(body=body, **kwargs)

        return on_change

    def resync(self, fn: Handler) -> Handler:
        async def on_resync(body: Any, patch: Any, stopped: Any = None, **kwargs: Any) -> None:
            if not self.sharding.owns(body):
                # parked until this replica gains the object's shard: then reconciled at once
                if not await self.sharding.until_owned(body, stopped):
                    return
                if self._clear_resume(body, patch):
                    from .controllers.wiring import ComeBackLater

                    # kopf writes the patch, then calls again with the object as it is then
                    raise ComeBackLater("a previous owner's resume record is cleared", delay=1.0)
            with self.sharding.working(body):
                await fn(body=body, patch=patch, stopped=stopped, **kwargs)

        return on_resync

    @staticmethod
    def _clear_resume(body: Any, patch: Any) -> bool:
        """A resume in progress recorded by another replica's kopf: this one's kopf has no resume
        cause for the object (kopf fact 3); cleared, so that the timer's reconcile takes it on."""
        from .api.common import KOPF_STATUS
        from .controllers.wiring import handler_progress

        progress = handler_progress(body)
        if not any(key.split("/")[0] == RESUME_HANDLER for key in progress):
            return False
        cleared = {key: None for key in progress if key.split("/")[0] == RESUME_HANDLER}
        patch.status.setdefault(KOPF_STATUS, {}).setdefault("progress", {}).update(cleared)
        return True

    def delete(self, fn: Handler) -> Handler:
        plural = self.handlers.kind.plural

        async def on_delete(body: Any, **kwargs: Any) -> None:
            sharding = self.sharding
            if not sharding.owns(body):
                # kopf would drop the finalizer (kopf fact 2): hold it until the object is gone
                # (its owner deleted it) or becomes this replica's
                meta = _meta(body)
                while not await sharding.until_owned(body, poll=timing.SHARD_GONE_POLL):
                    try:
                        held = await asyncio.get_running_loop().run_in_executor(
                            None,
                            holds,
                            sharding.objects,
                            plural,
                            str(meta.get("namespace") or ""),
                            str(meta.get("name")),
                            str(meta.get("uid")),
                        )
                    except Exception:  # noqa: BLE001 - the API server is away: keep waiting
                        continue
                    if not held:
                        return  # kopf's patch after this finds the object gone (404) and skips it
            with sharding.working(body):
                await fn(body=body, **kwargs)

        return on_delete

    def event(self, fn: Handler) -> Handler:
        plural = self.handlers.kind.plural

        async def on_event(type: str | None, body: Any, **kwargs: Any) -> None:
            self.sharding.remember(type, body, plural)
            await fn(type=type, body=body, **self.dependents(kwargs))

        return on_event

    def dependents(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """kopf's kwargs with each dependents index showing only this replica's objects: the
        objects waiting for the one that changed are woken by their owner (kopf fact 4)."""
        from .controllers.wiring import dependents_index

        names = {dependents_index(kind) for kind in self.handlers.runtime.kinds}
        return {
            key: OwnedIndex(value, self.sharding) if key in names and value is not None else value
            for key, value in kwargs.items()
        }


class OwnedIndex(Mapping[Any, list[Any]]):
    """A kopf index whose entries (object snapshots) are those of this replica's shards."""

    def __init__(self, index: Mapping[Any, Any], sharding: Sharding):
        self._index, self._sharding = index, sharding

    def __getitem__(self, key: Any) -> list[Any]:
        return [snapshot for snapshot in list(self._index[key]) if self._sharding.owns(snapshot)]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)


class Unsharded:
    """One replica does all the work: no filter, the handlers themselves (today's registration)."""

    owned = kept = deletable = None

    @staticmethod
    def initial_delay(interval: float) -> float:
        return interval

    @staticmethod
    def change(fn: Handler) -> Handler:
        return fn

    resync = delete = event = change

    @staticmethod
    def dependents(kwargs: dict[str, Any]) -> dict[str, Any]:
        return kwargs


UNSHARDED = Unsharded()


def plan(sharding: Sharding | None, handlers: Any) -> ShardPlan | Unsharded:
    return UNSHARDED if sharding is None else sharding.plan(handlers)
