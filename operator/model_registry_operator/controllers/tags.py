"""Tags of the groups and models an object owns: the spec's, plus the identity mark."""

from __future__ import annotations

import datetime
from typing import Any

from ..identity import Claim, Ownership
from ..reasons import EventReason
from ..registry.base import tag_changes
from .call import Call, Event
from .context import Context


def sync_owned_tags(
    ctx: Context, call: Call, arn: str, current: dict[str, str], desired: dict[str, str], what: str
) -> None:
    """Make the tags of a group or model this object owns the spec's plus the identity mark
    (added quietly when missing: a group or model adopted or marked by an earlier release);
    an Event when the spec's part changed."""
    retagged = any(tag_changes(current, desired))
    ctx.registry.sync_tags(arn, {**desired, **ctx.identity(call.meta).marks()}, current)
    if retagged:
        reason = EventReason.UPDATED if call.spec_changed else EventReason.DRIFT_CORRECTED
        call.events.append(Event.normal(reason, f"Set the tags of {what} to the spec."))


def adopted(call: Call, ctx: Context, what: str, owner: Ownership, made: Any) -> None:
    """The Event when an object with no record of it takes a SageMaker object in: one nobody
    marked (made by hand, in Studio), or one its identity marks and that is older than the
    object (it was deleted with Retain and applied again, or its cluster was rebuilt). Quiet
    for one made since (its own create, before a crash kept it out of status) or marked with
    this object's own UID by an earlier release: nothing changed hands. `made`: SageMaker's
    CreationTime of it."""
    identity = ctx.identity(call.meta)
    if owner.claim is Claim.UNMARKED:
        message = (
            f"{what} already existed in SageMaker without an owner mark; this object manages it from "
            f"now on and marked it as {identity}."
        )
    elif owner.marked and older_than(made, call.meta.created):
        message = (
            f"{what} carries this object's identity {identity} (it was deleted with Retain and applied "
            "again, or its cluster rebuilt): this object manages it again."
        )
    else:
        return
    call.events.append(Event.normal(EventReason.ADOPTED, message))


def older_than(made: Any, created: datetime.datetime | None) -> bool:
    """Whether SageMaker made it before the Kubernetes object was created (unknown: no)."""
    if not isinstance(made, datetime.datetime) or created is None:
        return False
    aware: datetime.datetime = made if made.tzinfo is not None else made.replace(tzinfo=datetime.UTC)
    return aware < created
