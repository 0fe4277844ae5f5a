"""Status conditions in the kstatus shape (Ready / Reconciling / Stalled).

A reconcile ends in exactly one of three states, and the three conditions are always
written together so that kubectl, Argo CD and Flux agree on what they read:

    Ready        Ready=True,  Reconciling=False, Stalled=False
    Reconciling  Ready=False, Reconciling=True,  Stalled=False
    Stalled      Ready=False, Reconciling=False, Stalled=True

`lastTransitionTime` only moves when a condition's `status` flips, so a periodic resync
that finds nothing new leaves the conditions byte-for-byte unchanged (and kopf sends no
patch).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..reasons import Reason

State = Literal["Ready", "Reconciling", "Stalled"]
READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
CONDITION_TYPES: tuple[State, ...] = (READY, RECONCILING, STALLED)


@dataclass(frozen=True)
class Outcome:
    """Where one reconcile ended: the state, a CamelCase reason and an actionable sentence."""

    state: State
    reason: Reason
    message: str

    @classmethod
    def ready(cls, reason: Reason, message: str) -> Outcome:
        return cls(READY, reason, message)

    @classmethod
    def reconciling(cls, reason: Reason, message: str) -> Outcome:
        return cls(RECONCILING, reason, message)

    @classmethod
    def stalled(cls, reason: Reason, message: str) -> Outcome:
        return cls(STALLED, reason, message)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_conditions(
    outcome: Outcome,
    generation: int | None,
    previous: list[dict[str, Any]] | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """The three conditions for `outcome`, keeping lastTransitionTime where status did not flip."""
    now = now or now_rfc3339()
    before = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    conditions = []
    for ctype in CONDITION_TYPES:
        is_true = ctype == outcome.state
        status = "True" if is_true else "False"
        old = before.get(ctype) or {}
        transitioned = not old or old.get("status") != status
        conditions.append(
            {
                "type": ctype,
                "status": status,
                # The non-matching conditions carry the same reason and message: "why am I
                # not Ready?" is answered on the Ready condition itself, as kstatus suggests.
                "reason": str(outcome.reason),  # the word, not the enum member
                "message": outcome.message,
                "lastTransitionTime": now if transitioned else old.get("lastTransitionTime", now),
                "observedGeneration": generation,
            }
        )
    return conditions


def condition(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def is_ready(status: dict[str, Any] | None, generation: int | None = None) -> bool:
    """Ready=True, and (when a generation is given) for that generation."""
    c = condition(status, READY)
    if c is None or c.get("status") != "True":
        return False
    return generation is None or (status or {}).get("observedGeneration") == generation
