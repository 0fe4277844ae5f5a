"""One reconcile or delete of one object: what it is given (`Call`), what it returns
(`Result`), and the two early exits (`Stop`, `Waiting`).

The reconcile functions are pure with respect to Kubernetes: they read the `Call` (the
object's identity, raw spec, previous status, referenced objects), talk to the registry
through the `Context`, and return a `Result`. Only the kopf layer (wiring.py) applies it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..api.common import KOPF_STATUS, DeletionPolicy
from ..errors import ReconcileError, RetryableError
from ..reasons import EventReason, Reason
from ..timing import patience, retry_delay, stated_retry_delay
from .conditions import Outcome, build_conditions, is_ready

EventType = Literal["Normal", "Warning"]
Status = dict[str, Any]
Progress = Callable[[Outcome], None]  # how a long step is going (wiring.StatusProgress)


@dataclass(frozen=True)
class Meta:
    name: str
    namespace: str
    uid: str
    generation: int | None
    created: datetime.datetime | None = None  # metadata.creationTimestamp
    annotations: dict[str, str] = field(default_factory=dict)
    deleted: datetime.datetime | None = None  # metadata.deletionTimestamp
    # top-level spec field -> the field manager that last set it (metadata.managedFields), e.g.
    # {"modelApprovalStatus": "argocd-controller"}: who asked for what the spec says
    managers: dict[str, str] = field(default_factory=dict)

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
            spec_managers(meta.get("managedFields")),
        )


def spec_managers(managed_fields: Any) -> dict[str, str]:
    """{top-level spec field: manager} from metadata.managedFields (FieldsV1): of the entries
    that own a field (two do when server-side appliers agree on its value), the newest; an
    entry of the status subresource owns no spec field."""
    owners: dict[str, tuple[str, str]] = {}  # field -> (time, manager)
    for entry in managed_fields if isinstance(managed_fields, list) else []:
        if not isinstance(entry, dict) or entry.get("subresource") or not entry.get("manager"):
            continue
        fields = entry.get("fieldsV1")
        spec = fields.get("f:spec") if isinstance(fields, dict) else None
        if not isinstance(spec, dict):
            continue
        time = str(entry.get("time") or "")
        for key in spec:
            if key.startswith("f:") and time >= owners.get(key[2:], ("", ""))[0]:
                owners[key[2:]] = (time, str(entry["manager"]))
    return {name: manager for name, (_, manager) in owners.items()}


def _timestamp(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return aware.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: Reason | EventReason
    message: str

    @classmethod
    def normal(cls, reason: EventReason, message: str) -> Event:
        return cls("Normal", reason, message)

    @classmethod
    def warning(cls, reason: Reason | EventReason, message: str) -> Event:
        return cls("Warning", reason, message)


@dataclass
class Result:
    """The status to write, the Events to post, and when to look again (None: on the next
    change or resync)."""

    status: Status
    events: list[Event] = field(default_factory=list)
    retry: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)  # to set on the object
    # A wait expected to end within seconds (a group being created, SageMaker completing a
    # version): the handler may wait in memory and write status once, instead of writing
    # an intermediate status and being called again.
    short: bool = False
    failed: bool = False  # a retryable error: the next attempt backs off further
    # A wait that a change of a Kubernetes object ends (a package's group, a Model's package's
    # approval): that change wakes the object (wiring.KindHandlers.wake_dependents), so kopf is
    # not asked to come back: no retry, and no write, however long it waits. `retry` still
    # says the wait goes on; the periodic resync is the safety net. A wait both `short` and
    # `woken` (a referenced object not Ready yet, usually for a second) is ridden out in memory
    # first, then left to the change (it may be Stalled for days).
    woken: bool = False

    @property
    def timer(self) -> float | None:
        """When a timer (kopf's retry, the resync loop) looks again: `retry`, but for a woken
        wait, which its change ends (None: done for kopf)."""
        return None if self.woken else self.retry


class Lookup(Protocol):
    """Referenced objects in the cluster, as {"metadata", "spec", "status", "deleting"} dicts."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...


class NoLookup:
    """For kinds and calls that reference nothing."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None


class Stop(Exception):
    """The reconcile ends here: `outcome` is what to report, `delay` when to look again
    (None: on the next change), with the status fields and Events gathered so far. Raised by
    any step: parsing the spec, resolving references, waiting for SageMaker, a refusal."""

    def __init__(
        self,
        outcome: Outcome,
        delay: float | None = None,
        short: bool = False,
        patient: bool = True,
        woken: bool = False,
    ):
        super().__init__(outcome.message)
        self.outcome, self.delay, self.short, self.patient = outcome, delay, short, patient
        self.woken = woken  # a change of a Kubernetes object ends the wait (Result.woken)


class Waiting(Stop):
    """A reconcile cannot go on until something else happens (a referenced object, an
    approval): `outcome` is the Reconciling condition to report, `delay` when to look again;
    `woken`: the wait is for a Kubernetes object whose change wakes this one (wiring.py)."""

    def __init__(
        self, outcome: Outcome, delay: float, short: bool = False, patient: bool = True, woken: bool = False
    ):
        super().__init__(outcome, delay, short, patient, woken)


def carried(previous: Status | None, *keys: str) -> Status:
    """Status fields kept from the previous status until observed again."""
    previous = previous or {}
    return {k: previous[k] for k in keys if previous.get(k) is not None}


@dataclass
class Call:
    """One reconcile or delete of one object.

    Given: the object's identity, its raw spec and the status as read (`previous`), the
    objects it references, how many reconciles of this generation failed in a row, and
    whether this is a resync (observe the cheap way) or an audit (describe in full).
    Built as the steps go: the kind's status `fields` (starting as the previous status's)
    and the `events`; `finish` and `failed` turn them into the Result.
    """

    meta: Meta
    raw_spec: dict[str, Any]
    previous: Status
    lookup: Lookup = field(default_factory=NoLookup)
    attempt: int = 0
    resync: bool = False
    audit: bool = False
    progress: Progress | None = None
    fields: Status = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    @property
    def spec_changed(self) -> bool:
        """The spec is newer than the last status written: a change, not a resync's drift."""
        return self.previous.get("observedGeneration") != self.meta.generation

    def done_as_now(self, member: str) -> bool:
        """The last reconcile ended Ready, for a spec whose <member> was as it is now (kopf's
        diff base, status.kopf.lastHandledConfiguration, is the spec it last handled to the
        end): a change that did not touch the member need not read it back (drift is the
        resync's)."""
        if not is_ready(self.previous):
            return False
        recorded = (self.previous.get(KOPF_STATUS) or {}).get("lastHandledConfiguration")
        try:
            handled = json.loads(recorded) if isinstance(recorded, str) else None
        except ValueError:
            return False
        if not isinstance(handled, dict) or not isinstance(handled.get("spec"), dict):
            return False
        return bool(handled["spec"].get(member) == self.raw_spec.get(member))

    def deletion_policy(self, default: DeletionPolicy) -> DeletionPolicy:
        """spec.deletionPolicy, else the one recorded in status at the first reconcile, else
        `default` (the operator's, or the kind's for this object): objects made while the
        default was Retain stay Retain when it changes (a helm upgrade without the old values
        must not delete production models)."""
        policy: DeletionPolicy = (
            self.raw_spec.get("deletionPolicy") or self.previous.get("deletionPolicy") or default
        )
        return policy

    def finish(
        self,
        outcome: Outcome,
        retry: float | None = None,
        short: bool = False,
        patient: bool = True,
        woken: bool = False,
    ) -> Result:
        """The full status: the kind's fields, observedGeneration and the three conditions.
        Every Stalled outcome is also reported as a Warning Event, once per distinct stall.
        A Reconciling retry is stretched by timing.patience unless `patient` is False or the
        wait is `short` or `woken` (a change of a Kubernetes object ends it: Result.woken)."""
        events = list(self.events)
        if outcome.state == "Stalled" and not self._already_stalled(outcome):
            events.append(Event.warning(outcome.reason, outcome.message))
        status = {k: v for k, v in self.fields.items() if v is not None}
        status["observedGeneration"] = self.meta.generation
        status["conditions"] = build_conditions(
            outcome, self.meta.generation, self.previous.get("conditions")
        )
        waiting = retry is not None and outcome.state == "Reconciling"
        if retry is not None and waiting and patient and not short and not woken:
            # a short wait ends within seconds by itself: stretching it only delays the end
            retry = max(retry, patience(status["conditions"], uid=self.meta.uid))
        return Result(status, events, retry, short=short and retry is not None, woken=woken and waiting)

    def _already_stalled(self, outcome: Outcome) -> bool:
        return any(
            c.get("type") == "Stalled"
            and c.get("status") == "True"
            and c.get("reason") == outcome.reason
            and c.get("message") == outcome.message
            for c in self.previous.get("conditions") or []
            if isinstance(c, dict)
        )

    def failed(self, err: ReconcileError, stall_after: int | None = None) -> Result:
        """A retryable error is Reconciling with a backoff. With `stall_after`, that many
        failed reconciles in a row are Stalled instead (a person should look), still retried
        with the backoff, so that the cause going away still converges. A terminal error is
        Stalled."""
        if not isinstance(err, RetryableError):
            return self.finish(Outcome.stalled(err.reason, err.message))
        delay = retry_delay(err.delay, self.attempt)
        if stall_after is not None and self.attempt + 1 >= stall_after:
            # no delay in the message: it stays the same on every retry (one Event, no rewrite)
            outcome = Outcome.stalled(
                err.reason,
                f"{err.message.rstrip('.')}. This went on for {stall_after} "
                "reconciles in a row and needs a look; the operator keeps retrying in the "
                "background.",
            )
        else:
            stated = stated_retry_delay(err.delay, self.attempt)
            outcome = Outcome.reconciling(err.reason, f"{err.message} Retrying in {stated:.0f}s.")
        result = self.finish(outcome, retry=delay)
        result.failed = True
        return result

    def unchanged(self, *events: Event) -> Result:
        """The status as it was (a delete that is done: the object goes), with `events`."""
        return Result(self.previous, list(events))
