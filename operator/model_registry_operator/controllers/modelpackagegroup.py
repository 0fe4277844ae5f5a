"""ModelPackageGroup -> SageMaker model package group.

Create when absent, keep tags equal to the spec, report the group's status; on delete,
wait until the group has no versions left (SageMaker refuses to delete a non-empty group),
then delete it, unless deletionPolicy is Retain. Versions that outlast a bounded wait are
reported Stalled/VersionsRemain by name; the group still goes once they are gone.

Group names are account-wide, objects namespaced: the group carries an owner tag
(registry.base.OWNER_UID_KEY = the object's UID). A group tagged by another object is
Stalled/AlreadyExists and never touched; an untagged one (made by hand, in Studio, or by an
operator version before owner tags) is adopted and tagged, quietly when status.arn already
records it. The tags listed for tag sync are the ones the owner is read from: no extra call.

The group's resource policy (spec.resourcePolicy, e.g. sharing it with other accounts) is the
spec's once the spec sets one: put when the group has none or another (compared as parsed
JSON), read again on every reconcile and resync of a group whose spec sets one (groups are
few: one GetModelPackageGroupPolicy each per resync period), so a change made in SageMaker is
put back. status.resourcePolicy records that the operator set it: removing the field then
deletes the policy. A group whose spec never set one is not read, and a policy someone else
put on it (an adopted group) is left alone.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from ..api import ModelPackageGroupSpec
from ..api.common import json_text
from ..errors import ReconcileError, TerminalError
from ..identity import Claim, Ownership
from ..reasons import EventReason, Reason
from ..registry.base import Shape, not_deletable, with_marks
from ..registry.requests import request_for, tag_map, to_api
from ..timing import (
    WAIT_FOR_GROUP_TO_APPEAR_DELAY,
    WAIT_FOR_VERSIONS_DELAY,
    patience_after,
    true_for,
    versions_patience,
)
from .call import Call, Event, Result, Stop, rfc3339
from .conditions import RECONCILING, STALLED, Outcome, condition
from .context import Context
from .kind import Kind
from .tags import adopted, sync_owned_tags

FIELDS = ("arn", "modelPackageGroupStatus", "creationTime", "resourcePolicy")
APPLIED = "Applied"  # status.resourcePolicy: the operator put spec.resourcePolicy on the group
GROUP_STATES = frozenset({Reason.PENDING, Reason.IN_PROGRESS, Reason.DELETING})
VERSIONS_NAMED = 3  # remaining versions named in the Stalled message


def group_name(call: Call) -> str:
    return call.raw_spec.get("modelPackageGroupName") or call.meta.name


def reconcile(call: Call, spec: ModelPackageGroupSpec, ctx: Context) -> Result:
    """Observe the group, create it when absent, claim it and sync its tags, report its status."""
    name = spec.modelPackageGroupName or call.meta.name
    observed = observe(call, name, ctx)
    if observed is None:
        observed = create(call, spec, name, ctx)
    else:
        claim_and_sync_tags(call, spec, name, observed, ctx)
    if observed is None:  # created, but not visible yet
        raise Stop(
            Outcome.reconciling(
                Reason.CREATING, f"Waiting for model package group {name} to appear in SageMaker."
            ),
            WAIT_FOR_GROUP_TO_APPEAR_DELAY,
            short=True,
        )
    if (observed.get("ModelPackageGroupStatus") or "Completed") == "Completed":
        record(call, observed)  # a refused policy stalls with the group recorded
        sync_policy(call, spec, name, ctx)
    return report(call, name, observed)


def observe(call: Call, name: str, ctx: Context) -> Shape | None:
    """On a resync of a completed group, the packages' shared listing proves the group still
    exists at no extra cost; only an empty (or failing) listing needs a describe."""
    fields = call.fields
    if call.resync and fields.get("modelPackageGroupStatus") == "Completed" and fields.get("arn"):
        try:
            listed = ctx.listings.get(name)
        except ReconcileError:  # e.g. the group is gone: describe says what happened
            listed = None
        if listed:
            return {
                "ModelPackageGroupArn": fields["arn"],
                "ModelPackageGroupStatus": "Completed",
                "CreationTime": fields.get("creationTime"),
            }
    return ctx.registry.describe_group(name)


def create(call: Call, spec: ModelPackageGroupSpec, name: str, ctx: Context) -> Shape | None:
    request = request_for("CreateModelPackageGroup", {**to_api(spec), "ModelPackageGroupName": name})
    ctx.registry.create_group(with_marks(request, ctx.identity(call.meta).marks()))
    if call.fields.get("arn"):
        call.events.append(
            Event.normal(
                EventReason.DRIFT_CORRECTED,
                f"Model package group {name} was missing in SageMaker; created it again.",
            )
        )
    else:
        call.events.append(
            Event.normal(EventReason.CREATED, f"Created model package group {name} in SageMaker.")
        )
    return ctx.registry.describe_group(name)


def claim_and_sync_tags(
    call: Call, spec: ModelPackageGroupSpec, name: str, observed: Shape, ctx: Context
) -> None:
    """One ListTags per group and check tells the owner and the tags to sync; AddTags or
    DeleteTags only when they differ. Another object's group is Stalled/AlreadyExists."""
    arn = observed["ModelPackageGroupArn"]
    current = ctx.registry.list_tags(arn)
    owner = ctx.ownership(current, call.meta)
    if owner.claim is Claim.OTHERS:
        call.fields = {}
        raise Stop(Outcome.stalled(Reason.ALREADY_EXISTS, managed_elsewhere(name, owner)))
    if not call.fields.get("arn"):
        adopted(call, ctx, f"Model package group {name}", owner, observed.get("CreationTime"))
    desired = tag_map(to_api(spec).get("Tags"))
    sync_owned_tags(ctx, call, arn, current, desired, f"model package group {name}")


def sync_policy(call: Call, spec: ModelPackageGroupSpec, name: str, ctx: Context) -> None:
    """Make the group's resource policy spec.resourcePolicy: one GetModelPackageGroupPolicy, and
    a Put only when the group has no policy or a different one. Without the field, the policy
    this object set (status.resourcePolicy) is deleted; any other is left alone. A policy
    SageMaker refuses is Stalled with its message (ValidationError for a malformed document)."""
    desired = spec.resourcePolicy
    if desired is None:
        if call.fields.get("resourcePolicy") == APPLIED:
            ctx.registry.delete_group_policy(name)
            call.fields["resourcePolicy"] = None
            call.events.append(
                Event.normal(
                    EventReason.UPDATED,
                    f"spec.resourcePolicy was removed: deleted the resource policy of model package group {name}.",
                )
            )
        return
    current = ctx.registry.get_group_policy(name)
    if current is not None and same_policy(current, desired):
        call.fields["resourcePolicy"] = APPLIED
        return
    try:
        ctx.registry.put_group_policy(name, json_text(desired))
    except TerminalError as err:
        raise Stop(
            Outcome.stalled(
                err.reason,
                f"spec.resourcePolicy of model package group {name} was not applied: {err.message}",
            )
        ) from None
    call.fields["resourcePolicy"] = APPLIED
    if call.spec_changed:
        what = "no resource policy" if current is None else "another resource policy"
        call.events.append(
            Event.normal(
                EventReason.UPDATED,
                f"Set the resource policy of model package group {name} to spec.resourcePolicy (it had {what}).",
            )
        )
    else:
        what = "was deleted" if current is None else "was changed"
        call.events.append(
            Event.normal(
                EventReason.DRIFT_CORRECTED,
                f"The resource policy of model package group {name} {what} in SageMaker; put "
                "spec.resourcePolicy back.",
            )
        )


def same_policy(text: str, desired: Mapping[str, Any]) -> bool:
    """Whether SageMaker's policy text is the document as parsed JSON: key order and whitespace
    never count. IAM's own equivalences are not applied: a single statement object and a list
    of it, a string and a one-element list of Action or Resource, an account ID and its root
    ARN as Principal all differ here. SageMaker is expected to return the text as put; were it to
    return a normalised form, each reconcile would put the document again (an Event each)."""
    try:
        return bool(json.loads(text) == desired)
    except ValueError:
        return False


def record(call: Call, observed: Shape) -> None:
    call.fields.update(
        arn=observed.get("ModelPackageGroupArn"),
        modelPackageGroupStatus=observed.get("ModelPackageGroupStatus"),
        creationTime=rfc3339(observed.get("CreationTime")),
    )


def report(call: Call, name: str, observed: Shape) -> Result:
    record(call, observed)
    group_status = observed.get("ModelPackageGroupStatus") or "Completed"
    if group_status == "Completed":
        return call.finish(
            Outcome.ready(
                Reason.SYNCED, f"Model package group {name} exists in SageMaker and matches the spec."
            )
        )
    if group_status in ("Failed", "DeleteFailed"):
        return call.finish(
            Outcome.stalled(
                Reason.GROUP_FAILED,
                f"SageMaker reports model package group {name} as {group_status}; "
                "check it in SageMaker, then delete and re-create this object.",
            )
        )
    # SageMaker's own word (Pending, InProgress, Deleting); a status it adds later: InProgress
    reason = Reason(group_status) if group_status in GROUP_STATES else Reason.IN_PROGRESS
    outcome = Outcome.reconciling(reason, f"Model package group {name} is {group_status} in SageMaker.")
    return call.finish(outcome, retry=WAIT_FOR_GROUP_TO_APPEAR_DELAY, short=True)


def delete(call: Call, ctx: Context) -> Result:
    """Delete the group once it has no versions left (SageMaker refuses to delete a non-empty
    group), unless deletionPolicy is Retain or the group is not this object's."""
    name = group_name(call)
    if call.fields["deletionPolicy"] == "Retain":
        if not call.fields.get("arn"):
            return call.unchanged()  # never made or taken in: nothing is kept
        return call.unchanged(
            Event.normal(
                EventReason.RETAINED,
                f"deletionPolicy is Retain: model package group {name} is kept in SageMaker.",
            )
        )
    observed = ctx.registry.describe_group(name)
    if observed is None:
        ctx.listings.forget(name)
        return call.unchanged()
    tags = ctx.registry.list_tags(observed["ModelPackageGroupArn"])
    why = not_deletable(ctx.ownership(tags, call.meta), recorded=bool(call.fields.get("arn")))
    if why:
        return call.unchanged(
            Event.warning(
                EventReason.NOT_OWNED, f"Model package group {name} in SageMaker {why}: left it untouched."
            )
        )
    versions = ctx.registry.list_packages(name)
    if versions:
        return wait_for_versions(call, name, versions, versions_patience(ctx.settings.resync_seconds))
    ctx.registry.delete_group(name)
    ctx.listings.forget(name)
    return call.unchanged(
        Event.normal(EventReason.DELETED, f"Deleted model package group {name} in SageMaker.")
    )


def named_versions(versions: list[Shape]) -> str:
    """The first VERSIONS_NAMED versions' ARNs, oldest first, and how many more."""
    ordered = sorted(
        versions, key=lambda v: (v.get("ModelPackageVersion") or 0, v.get("ModelPackageArn") or "")
    )
    named = ", ".join(v.get("ModelPackageArn") or "?" for v in ordered[:VERSIONS_NAMED])
    if len(ordered) > VERSIONS_NAMED:
        named += f" and {len(ordered) - VERSIONS_NAMED} more"
    return named


def managed_elsewhere(name: str, owner: Ownership) -> str:
    return (
        f"Model package group {name} in SageMaker is managed by {owner.owner_text()}; group names are "
        "account-wide, so this object leaves it alone. Create this object again with another "
        "spec.modelPackageGroupName, or delete the other object and its group (or, for an object of a "
        "cluster that is gone, delete the group's registry.mlops.dev/identity tag in SageMaker)."
    )


def wait_for_versions(call: Call, name: str, versions: list[Shape], bound: float) -> Result:
    """Reconciling/WaitingForVersions, then, once that has lasted `bound` seconds,
    Stalled/VersionsRemain naming them; retried ever more slowly either way, so the group
    goes as soon as they do."""
    status = call.previous
    conditions = status.get("conditions") or []
    stalled, reconciling = condition(status, STALLED) or {}, condition(status, RECONCILING) or {}
    already_stalled = stalled.get("status") == "True" and stalled.get("reason") == Reason.VERSIONS_REMAIN
    if call.meta.deleted is not None:
        # since the deletion was asked for: a retryable error in between (throttling) does
        # not start the wait again, and the Stalled condition is not posted twice
        waited = max(0.0, (datetime.datetime.now(datetime.UTC) - call.meta.deleted).total_seconds())
    elif already_stalled:
        waited = bound + (true_for(conditions, STALLED) or 0.0)
    elif reconciling.get("reason") == Reason.WAITING_FOR_VERSIONS:
        waited = true_for(conditions, RECONCILING) or 0.0
    else:
        waited = 0.0
    named = named_versions(versions)
    if waited <= bound and not already_stalled:
        outcome = Outcome.reconciling(
            Reason.WAITING_FOR_VERSIONS,
            f"Waiting for the {len(versions)} model package version(s) in group {name} ({named}) to be "
            "deleted before deleting the group; delete their ModelPackage objects (or the versions in "
            "SageMaker).",
        )
        return call.finish(outcome, retry=WAIT_FOR_VERSIONS_DELAY)
    # no waiting time in the message: it stays the same on every retry (one Event, no rewrite)
    outcome = Outcome.stalled(
        Reason.VERSIONS_REMAIN,
        f"Model package group {name} cannot be deleted: {len(versions)} model package version(s) remain in it "
        f"({named}) after {bound:.0f}s; versions whose ModelPackage had deletionPolicy Retain, or made outside "
        "this cluster, are never deleted by the operator. Delete them in SageMaker, or set this group's "
        "spec.deletionPolicy to Retain to keep the group; the operator keeps checking.",
    )
    return call.finish(outcome, retry=max(WAIT_FOR_VERSIONS_DELAY, patience_after(waited)))


CONTROLLER = Kind("ModelPackageGroup", ModelPackageGroupSpec, FIELDS, reconcile, delete)
