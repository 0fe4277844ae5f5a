"""Tags of the groups and models an object owns: the spec's, plus the owner tag."""

from __future__ import annotations

from ..reasons import EventReason
from ..registry.base import owner_tag, tag_changes
from .call import Call, Event
from .context import Context


def sync_owned_tags(
    ctx: Context, call: Call, arn: str, current: dict[str, str], desired: dict[str, str], what: str
) -> None:
    """Make the tags of a group or model this object owns the spec's plus the owner tag; an
    Event when the spec's part changed (the owner tag is added quietly)."""
    retagged = any(tag_changes(current, desired))
    ctx.registry.sync_tags(arn, {**desired, **owner_tag(call.meta.uid)}, current)
    if retagged:
        reason = EventReason.UPDATED if call.spec_changed else EventReason.DRIFT_CORRECTED
        call.events.append(Event.normal(reason, f"Set the tags of {what} to the spec."))
