"""What the three controllers share: the reconcile result, object identity, reference
lookups, per-object locks, the per-group listing cache and SageMaker request shaping.

The reconcile functions are pure with respect to Kubernetes: they take the parsed spec,
the object's identity, its current status, the registry and a lookup for referenced
objects, and return a `Result`. The kopf handlers (in each kind's module) only apply it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ReconcileError, RetryableError
from ..registry.base import owner_tag, tag_changes
from ..settings import Settings
from .conditions import Outcome, build_conditions

NORMAL, WARNING = "Normal", "Warning"


@dataclass(frozen=True)
class Meta:
    name: str
    namespace: str
    uid: str
    generation: int | None
    created: datetime.datetime | None = None  # metadata.creationTimestamp
    annotations: dict[str, str] = field(default_factory=dict)
    deleted: datetime.datetime | None = None  # metadata.deletionTimestamp

    @classmethod
    def from_body(cls, body: Any) -> Meta:
        meta = body["metadata"]
        return cls(
            meta["name"],
            meta.get("namespace") or "",
            meta["uid"],
            meta.get("generation"),
            _timestamp(meta.get("creationTimestamp")),
            dict(meta.get("annotations") or {}),
            _timestamp(meta.get("deletionTimestamp")),
        )


def _timestamp(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Context:
    """Everything a reconcile needs besides the object: built once at operator start."""

    registry: Any  # registry.base.Registry
    settings: Settings
    listings: GroupListings
    locks: ObjectLocks = field(default_factory=lambda: ObjectLocks())
    # consecutive retryable failures per object UID, as (generation, count): the backoff
    # exponent (kopf's own retry count also counts ordinary waits, which must not slow the
    # next error's retry); a new generation starts again from zero
    failures: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    # artifacts.copy_artifacts bound to an S3 client, or None when not available
    copy_artifacts: Callable[..., list[dict[str, Any]]] | None = None
    executor: Any = None  # for the blocking reconciles; None: the event loop's default
    # writes a status merge patch from a reconcile thread (progress of a long copy):
    # (plural, namespace, name, status); None: the kubernetes client's (wiring.py)
    status_writer: Callable[[str, str, str, dict[str, Any]], None] | None = None
    wall_clock: Callable[[], float] = time.time  # when audits are due (see audit_due)
    # per object UID, the wall-clock time of its last resync that got through: the next one
    # audits if its turn came in between, however late or early kopf's timer fired
    resynced: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: Any, settings: Settings, **kwargs: Any) -> Context:
        return cls(
            registry, settings, GroupListings(registry.list_packages, settings.resync_seconds), **kwargs
        )

    def attempt(self, meta: Meta) -> int:
        """How many reconciles of this object's current generation failed in a row."""
        generation, count = self.failures.get(meta.uid, (meta.generation, 0))
        return count if generation == meta.generation else 0

    def record(self, meta: Meta, failed: bool) -> None:
        if failed:
            self.failures[meta.uid] = (meta.generation, self.attempt(meta) + 1)
        else:
            self.failures.pop(meta.uid, None)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str  # CamelCase
    message: str


@dataclass
class Result:
    """The status to write, the Events to post, and when to look again (None: on the next
    change or resync)."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    retry: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)  # to set on the object
    # A wait expected to end within seconds (a group being created, SageMaker completing a
    # version): the handler may wait in memory and write status once, instead of writing
    # an intermediate status and being called again.
    short: bool = False
    failed: bool = False  # a retryable error: the next attempt backs off further


class Lookup(Protocol):
    """Referenced objects in the cluster, as {"metadata", "spec", "status"} dicts."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...


class DictLookup:
    """A Lookup over a plain dict {(kind, namespace, name): body}: for tests and tools."""

    def __init__(self, objects: dict[tuple[str, str, str], dict[str, Any]] | None = None):
        self.objects = dict(objects or {})

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))


class Stop(Exception):
    """The reconcile ends before any SageMaker call: `outcome` is what to report, `delay`
    when to look again (None: on the next change). Raised by the preamble every reconcile
    starts with: parsing the spec, resolving the objects it references."""

    def __init__(self, outcome: Outcome, delay: float | None = None, short: bool = False):
        super().__init__(outcome.message)
        self.outcome, self.delay, self.short = outcome, delay, short

    def result(self, meta: Meta, previous: dict[str, Any] | None, fields: dict[str, Any]) -> Result:
        return finish(self.outcome, meta, previous, fields, retry=self.delay, short=self.short)


class Waiting(Stop):
    """A reconcile cannot go on until something else happens (a referenced object, an
    approval): `outcome` is the Reconciling condition to report, `delay` when to look again."""

    def __init__(self, outcome: Outcome, delay: float, short: bool = False):
        super().__init__(outcome, delay, short)


def finish(
    outcome: Outcome,
    meta: Meta,
    previous: dict[str, Any] | None,
    fields: dict[str, Any],
    events: list[Event] | None = None,
    retry: float | None = None,
    short: bool = False,
) -> Result:
    """Assemble the full status: kind fields, observedGeneration and the three conditions.
    Every Stalled outcome is also reported as a Warning Event."""
    events = list(events or [])
    if outcome.state == "Stalled":
        was = (previous or {}).get("conditions") or []
        already = any(
            c.get("type") == "Stalled"
            and c.get("status") == "True"
            and c.get("reason") == outcome.reason
            and c.get("message") == outcome.message
            for c in was
            if isinstance(c, dict)
        )
        if not already:  # one Event per distinct stall, not one per resync
            events.append(Event(WARNING, outcome.reason, outcome.message))
    status = {k: v for k, v in fields.items() if v is not None}
    status["observedGeneration"] = meta.generation
    status["conditions"] = build_conditions(outcome, meta.generation, (previous or {}).get("conditions"))
    if retry is not None and outcome.state == "Reconciling":
        retry = max(retry, patience(status["conditions"]))
    return Result(status, events, retry, short=short and retry is not None)


# The longer an object has been Reconciling (an approval, a long validation, a group whose
# versions others keep), the less often it is looked at: a quarter of the time waited so far,
# at most every two minutes. Every kopf retry is an API write, so a fixed 3 s poll of an
# approval that takes a week would be 200,000 writes; this is about 5,000.
PATIENCE_SHARE = 0.25
PATIENCE_CAP = 120.0


def patience(conditions: list[dict[str, Any]], now: datetime.datetime | None = None) -> float:
    return patience_after(true_for(conditions, "Reconciling", now) or 0.0)


def patience_after(waited: float) -> float:
    return min(PATIENCE_CAP, max(0.0, waited) * PATIENCE_SHARE)


def true_for(
    conditions: list[dict[str, Any]], ctype: str, now: datetime.datetime | None = None
) -> float | None:
    """Seconds since condition `ctype` became True; None when it is not True."""
    since = next(
        (
            c.get("lastTransitionTime")
            for c in conditions
            if c.get("type") == ctype and c.get("status") == "True"
        ),
        None,
    )
    if not since:
        return None
    try:
        started = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return max(0.0, ((now or datetime.datetime.now(datetime.UTC)) - started).total_seconds())


RETRY_CAP = 60.0
# Objects failing together (1000 versions throttled at once) spread their retries over this
# share of the delay instead of all coming back in the same second.
RETRY_JITTER = 0.2


def audit_due(uid: str, now: float, since: float, period: float) -> bool:
    """Whether this object's turn to be described in full came after `since` (its previous
    resync) and by `now` (period 0: never). Each object's turn comes once per period at an
    offset drawn from its UID, so a thousand objects' audits spread evenly over the period
    instead of coming together; several turns missed (an operator down for days) are one audit."""
    if period <= 0:
        return False
    offset = int(hashlib.sha256(uid.encode()).hexdigest()[:12], 16) / 16**12 * period
    return (now + offset) // period != (since + offset) // period


def backoff(attempt: int, base: float = 1.0, cap: float = RETRY_CAP) -> float:
    """Exponential backoff for retryable SageMaker errors: 1, 2, 4, ... up to a minute."""
    return min(cap, base * 2 ** max(0, attempt))


def retry_delay(
    err: RetryableError, attempt: int, cap: float = RETRY_CAP, jitter: Callable[[], float] = random.random
) -> float:
    """When to try again after `err`: the backoff, but never sooner than the error's class
    asks (throttling 15 s: botocore has already retried in the same second), capped, plus
    up to RETRY_JITTER more."""
    return min(cap, max(err.delay, backoff(attempt, cap=cap))) * (1 + RETRY_JITTER * jitter())


def error_result(
    err: ReconcileError,
    meta: Meta,
    previous: dict[str, Any] | None,
    fields: dict[str, Any],
    attempt: int = 0,
    stall_after: int | None = None,
) -> Result:
    """A retryable error is Reconciling with a backoff. With `stall_after`, that many failed
    reconciles in a row are Stalled instead (a person should look), still retried with the
    backoff, so that the cause going away still converges."""
    if isinstance(err, RetryableError):
        delay = retry_delay(err, attempt)
        if stall_after is not None and attempt + 1 >= stall_after:
            # no delay in the message: it stays the same on every retry (one Event, no rewrite)
            outcome = Outcome.stalled(
                err.reason,
                f"{err.message.rstrip('.')}. This went on for {stall_after} "
                "reconciles in a row and needs a look; the operator keeps retrying in the "
                "background.",
            )
        else:
            # the delay without its jitter: the same message on every retry at the cap, so
            # a throttled crowd does not rewrite its status each time
            stated = retry_delay(err, attempt, jitter=lambda: 0.0)
            outcome = Outcome.reconciling(err.reason, f"{err.message} Retrying in {stated:.0f}s.")
        result = finish(outcome, meta, previous, fields, retry=delay)
        result.failed = True
        return result
    return finish(Outcome.stalled(err.reason, err.message), meta, previous, fields)


def deletion_policy(
    raw_spec: dict[str, Any] | None, status: dict[str, Any] | None, settings: Settings
) -> str:
    """spec.deletionPolicy, else the one recorded in status at the first reconcile, else the
    operator's default: objects made while the default was Retain stay Retain when it changes
    (a helm upgrade without the old values must not delete production models)."""
    return (
        (raw_spec or {}).get("deletionPolicy")
        or (status or {}).get("deletionPolicy")
        or settings.deletion_policy
    )


def sync_owned_tags(
    ctx: Context,
    arn: str,
    current: dict[str, str],
    desired: dict[str, str],
    uid: str,
    spec_changed: bool,
    what: str,
) -> list[Event]:
    """Make the tags of a group or model this object owns the spec's plus the owner tag; an
    Event when the spec's part changed (the owner tag is added quietly)."""
    retagged = any(tag_changes(current, desired))
    ctx.registry.sync_tags(arn, {**desired, **owner_tag(uid)}, current)
    if not retagged:
        return []
    return [
        Event(NORMAL, "Updated" if spec_changed else "DriftCorrected", f"Set the tags of {what} to the spec.")
    ]


def carried(previous: dict[str, Any] | None, *keys: str) -> dict[str, Any]:
    """Status fields kept from the previous status until observed again."""
    previous = previous or {}
    return {k: previous[k] for k in keys if previous.get(k) is not None}


def rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


# Members of the create requests (from botocore's SageMaker model; tests/unit/
# test_controller_common.py checks them against it). Listed here rather than read from
# botocore at run time: its SageMaker model is ~18 MB of Python objects, already loaded
# once by the boto3 client.
CREATE_MEMBERS: dict[str, frozenset[str]] = {
    "CreateModelPackageGroup": frozenset(
        {"ManagedConfiguration", "ModelPackageGroupDescription", "ModelPackageGroupName", "Tags"}
    ),
    "CreateModelPackage": frozenset(
        {
            "AdditionalInferenceSpecifications",
            "CertifyForMarketplace",
            "ClientToken",
            "CustomerMetadataProperties",
            "Domain",
            "DriftCheckBaselines",
            "InferenceSpecification",
            "ManagedStorageType",
            "MetadataProperties",
            "ModelApprovalStatus",
            "ModelCard",
            "ModelLifeCycle",
            "ModelMetrics",
            "ModelPackageDescription",
            "ModelPackageGroupName",
            "ModelPackageName",
            "ModelPackageRegistrationType",
            "SamplePayloadUrl",
            "SecurityConfig",
            "SkipModelValidation",
            "SourceAlgorithmSpecification",
            "SourceUri",
            "Tags",
            "Task",
            "ValidationSpecification",
        }
    ),
    "CreateModel": frozenset(
        {
            "Containers",
            "EnableNetworkIsolation",
            "ExecutionRoleArn",
            "InferenceExecutionConfig",
            "ModelName",
            "PrimaryContainer",
            "Tags",
            "VpcConfig",
        }
    ),
}


def request_for(operation: str, shape: dict[str, Any]) -> dict[str, Any]:
    """Only the members `operation` accepts, without empty values (the API types describe
    the whole object; e.g. ApprovalDescription exists on UpdateModelPackage, not on create)."""
    members = CREATE_MEMBERS[operation]
    return {k: v for k, v in shape.items() if k in members and v not in (None, [], {})}


def stable_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_subset(desired: Any, observed: Any) -> bool:
    """True when every value the spec sets is present and equal in what SageMaker returns
    (SageMaker adds defaults and server-side fields; those are not drift)."""
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(is_subset(v, observed.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(is_subset(d, o) for d, o in zip(desired, observed))
        )
    return desired == observed


def group_name_of(name_or_arn: str) -> str:
    """`arn:aws:sagemaker:r:a:model-package-group/churn` -> `churn`."""
    return (
        name_or_arn.rsplit("model-package-group/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
    )


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


class GroupListings:
    """ListModelPackages results per group, shared by every package of that group.

    A resync reads a listing less than 0.9 resync periods old: the resync timers of a
    group's packages tick within a short spread of each other, the first lists and the rest
    reuse it, so 1000 packages in 10 groups cost ~10 calls per resync instead of 1000
    describes. A package waiting for its version to complete asks for a listing at most
    `max_age` seconds old: the packages waiting together share one call per group.
    Concurrent callers for one group wait for a single fetch (single flight).
    """

    def __init__(
        self,
        list_packages: Callable[[str], list[dict[str, Any]]],
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._list = list_packages
        self.period = period
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    def _lock(self, group: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(group, threading.Lock())

    def get(self, group: str, max_age: float | None = None) -> dict[str, dict[str, Any]]:
        """{ModelPackageArn: ModelPackageSummary}, at most `max_age` seconds old (default:
        0.9 resync periods). `group` is a name or an ARN, kept apart: an ARN may name another
        account's group of the same name."""
        with self._lock(group):
            now = self._clock()
            entry = self._entries.get(group)
            if entry is not None:
                fetched_at, items = entry
                if now - fetched_at <= (max_age if max_age is not None else self.period * 0.9):
                    return items
            items = {s["ModelPackageArn"]: s for s in self._list(group)}
            self._entries[group] = (now, items)
            return items

    def remember(self, group: str, summary: dict[str, Any]) -> None:
        """Fold our own write into the cached listing so the next read does not undo it."""
        with self._lock(group):
            entry = self._entries.get(group)
            if entry is not None:
                items = dict(entry[1])
                items[summary["ModelPackageArn"]] = {**items.get(summary["ModelPackageArn"], {}), **summary}
                self._entries[group] = (entry[0], items)

    def forget(self, group: str) -> None:
        with self._lock(group):
            self._entries.pop(group, None)


def typed_spec(kind: str, raw_spec: dict[str, Any]) -> Any:
    """The typed spec; an invalid one is Stop(Stalled/InvalidSpec) naming the field, and
    never reaches SageMaker. (api is imported late: it is another module.)"""
    from pydantic import ValidationError

    from ..api import format_validation_error, parse_spec

    try:
        return parse_spec(kind, dict(raw_spec or {}))
    except ValidationError as err:
        raise Stop(
            Outcome.stalled(
                "InvalidSpec", f"The {kind} spec is invalid, fix it: {format_validation_error(err)}"
            )
        ) from None


def to_api(model: Any) -> dict[str, Any]:
    from ..api import to_api as convert

    return convert(model)
