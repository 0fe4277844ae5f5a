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
"""

from __future__ import annotations

import datetime
from typing import Any

from ..errors import ReconcileError
from ..registry.base import OWNER_UID_KEY, not_deletable, other_owner, with_owner_tag
from .common import (
    NORMAL,
    WARNING,
    Context,
    Event,
    Meta,
    Result,
    Stop,
    carried,
    deletion_policy,
    error_result,
    finish,
    patience_after,
    request_for,
    rfc3339,
    sync_owned_tags,
    to_api,
    true_for,
    typed_spec,
)
from .conditions import RECONCILING, STALLED, Outcome, condition

KIND = "ModelPackageGroup"
FIELDS = ("arn", "modelPackageGroupStatus", "creationTime")
PENDING_DELAY = 2.0
VERSIONS_DELAY = 5.0
# A deleted group whose versions are still there after this long (two resync periods, at
# most five minutes) is Stalled: the versions its ModelPackage objects delete go within
# seconds, so what remains was retained or made outside the cluster and may never go.
VERSIONS_PATIENCE_CAP = 300.0
VERSIONS_NAMED = 3  # remaining versions named in the Stalled message


def group_name(raw_spec: dict[str, Any], meta: Meta) -> str:
    return (raw_spec or {}).get("modelPackageGroupName") or meta.name


def reconcile(
    raw_spec: dict[str, Any],
    meta: Meta,
    status: dict[str, Any] | None,
    ctx: Context,
    *,
    resync: bool = False,
    attempt: int = 0,
) -> Result:
    fields = carried(status, *FIELDS)
    fields["deletionPolicy"] = deletion_policy(raw_spec, status, ctx.settings)
    try:
        spec = typed_spec(KIND, raw_spec)
    except Stop as stop:
        return stop.result(meta, status, fields)
    name = spec.modelPackageGroupName or meta.name
    desired_tags = {tag.key: tag.value for tag in spec.tags or []}
    spec_changed = (status or {}).get("observedGeneration") != meta.generation
    events: list[Event] = []
    try:
        observed = None
        if resync and fields.get("modelPackageGroupStatus") == "Completed" and fields.get("arn"):
            # The packages' shared listing proves the group still exists at no extra cost;
            # only an empty (or failing) listing needs a describe.
            try:
                listed = ctx.listings.get(name)
            except ReconcileError:  # e.g. the group is gone: describe says what happened
                listed = None
            if listed:
                observed = {
                    "ModelPackageGroupArn": fields["arn"],
                    "ModelPackageGroupStatus": "Completed",
                    "CreationTime": fields.get("creationTime"),
                }
        if observed is None:
            observed = ctx.registry.describe_group(name)
        if observed is None:
            request = request_for("CreateModelPackageGroup", {**to_api(spec), "ModelPackageGroupName": name})
            ctx.registry.create_group(with_owner_tag(request, meta.uid))
            if fields.get("arn"):
                events.append(
                    Event(
                        NORMAL,
                        "DriftCorrected",
                        f"Model package group {name} was missing in SageMaker; created it again.",
                    )
                )
            else:
                events.append(Event(NORMAL, "Created", f"Created model package group {name} in SageMaker."))
            observed = ctx.registry.describe_group(name)
        else:
            # one ListTags per group and check tells the owner and the tags to sync;
            # AddTags/DeleteTags only when they differ
            current = ctx.registry.list_tags(observed["ModelPackageGroupArn"])
            other = other_owner(current, meta.uid)
            if other:
                return finish(
                    Outcome.stalled("AlreadyExists", managed_elsewhere(name, other)), meta, status, {}
                )
            if OWNER_UID_KEY not in current and not fields.get("arn"):
                events.append(
                    Event(
                        NORMAL,
                        "Adopted",
                        f"Model package group {name} already existed in SageMaker "
                        f"without an owner tag; this object manages it from now on and tagged it "
                        f"{OWNER_UID_KEY}={meta.uid}.",
                    )
                )
            events.extend(
                sync_owned_tags(
                    ctx,
                    observed["ModelPackageGroupArn"],
                    current,
                    desired_tags,
                    meta.uid,
                    spec_changed,
                    f"model package group {name}",
                )
            )
    except ReconcileError as err:
        return error_result(err, meta, status, fields, attempt)
    if observed is None:  # created, but not visible yet
        return finish(
            Outcome.reconciling(
                "Creating", f"Waiting for model package group {name} to appear in SageMaker."
            ),
            meta,
            status,
            fields,
            events,
            retry=PENDING_DELAY,
            short=True,
        )
    fields.update(
        arn=observed.get("ModelPackageGroupArn"),
        modelPackageGroupStatus=observed.get("ModelPackageGroupStatus"),
        creationTime=rfc3339(observed.get("CreationTime")),
    )
    group_status = observed.get("ModelPackageGroupStatus") or "Completed"
    if group_status == "Completed":
        outcome = Outcome.ready(
            "Synced", f"Model package group {name} exists in SageMaker and matches the spec."
        )
        return finish(outcome, meta, status, fields, events)
    if group_status in ("Failed", "DeleteFailed"):
        outcome = Outcome.stalled(
            "GroupFailed",
            f"SageMaker reports model package group {name} as {group_status}; "
            "check it in SageMaker, then delete and re-create this object.",
        )
        return finish(outcome, meta, status, fields, events)
    outcome = Outcome.reconciling(group_status, f"Model package group {name} is {group_status} in SageMaker.")
    return finish(outcome, meta, status, fields, events, retry=PENDING_DELAY, short=True)


def delete(
    raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context, *, attempt: int = 0
) -> Result:
    """retry None: done, the finalizer may go. Otherwise a status to show while waiting."""
    name = group_name(raw_spec, meta)
    fields = carried(status, *FIELDS)
    fields["deletionPolicy"] = policy = deletion_policy(raw_spec, status, ctx.settings)
    if policy == "Retain":
        return Result(
            status or {},
            [
                Event(
                    NORMAL,
                    "Retained",
                    f"deletionPolicy is Retain: model package group {name} is kept in SageMaker.",
                )
            ],
        )
    try:
        observed = ctx.registry.describe_group(name)
        if observed is None:
            ctx.listings.forget(name)
            return Result(status or {}, [])
        tags = ctx.registry.list_tags(observed["ModelPackageGroupArn"])
        why = not_deletable(tags, meta.uid, recorded=bool(fields.get("arn")))
        if why:
            return Result(
                status or {},
                [
                    Event(
                        WARNING,
                        "NotOwned",
                        f"Model package group {name} in SageMaker {why}: left it untouched.",
                    )
                ],
            )
        versions = ctx.registry.list_packages(name)
        if versions:
            return wait_for_versions(name, versions, meta, status, fields, versions_patience(ctx.settings))
        ctx.registry.delete_group(name)
    except ReconcileError as err:
        result = error_result(err, meta, status, fields, attempt)
        result.retry = result.retry or VERSIONS_DELAY * 6  # a terminal error is still retried, slowly
        return result
    ctx.listings.forget(name)
    return Result(
        status or {}, [Event(NORMAL, "Deleted", f"Deleted model package group {name} in SageMaker.")]
    )


def managed_elsewhere(name: str, other: str) -> str:
    return (
        f"Model package group {name} in SageMaker is managed by another Kubernetes object (UID {other}); "
        "group names are account-wide, so this object leaves it alone. Create this object again with another "
        "spec.modelPackageGroupName, or delete the other object and its group."
    )


def versions_patience(settings: Any) -> float:
    return min(VERSIONS_PATIENCE_CAP, 2 * settings.resync_seconds)


def wait_for_versions(
    name: str,
    versions: list[dict[str, Any]],
    meta: Meta,
    status: dict[str, Any] | None,
    fields: dict[str, Any],
    bound: float,
) -> Result:
    """Reconciling/WaitingForVersions, then, once that has lasted `bound` seconds,
    Stalled/VersionsRemain naming them; retried ever more slowly either way, so the group
    goes as soon as they do."""
    conditions = (status or {}).get("conditions") or []
    stalled, reconciling = condition(status, STALLED) or {}, condition(status, RECONCILING) or {}
    already_stalled = stalled.get("status") == "True" and stalled.get("reason") == "VersionsRemain"
    if meta.deleted is not None:
        # since the deletion was asked for: a retryable error in between (throttling) does
        # not start the wait again, and the Stalled condition is not posted twice
        waited = max(0.0, (datetime.datetime.now(datetime.UTC) - meta.deleted).total_seconds())
    elif already_stalled:
        waited = bound + (true_for(conditions, STALLED) or 0.0)
    elif reconciling.get("reason") == "WaitingForVersions":
        waited = true_for(conditions, RECONCILING) or 0.0
    else:
        waited = 0.0
    if waited <= bound and not already_stalled:
        outcome = Outcome.reconciling(
            "WaitingForVersions",
            f"Waiting for the {len(versions)} model package version(s) in group {name} to be deleted "
            "before deleting the group; delete their ModelPackage objects (or the versions in SageMaker).",
        )
        return finish(outcome, meta, status, fields, retry=VERSIONS_DELAY)
    ordered = sorted(
        versions, key=lambda v: (v.get("ModelPackageVersion") or 0, v.get("ModelPackageArn") or "")
    )
    named = ", ".join(v.get("ModelPackageArn") or "?" for v in ordered[:VERSIONS_NAMED])
    if len(ordered) > VERSIONS_NAMED:
        named += f" and {len(ordered) - VERSIONS_NAMED} more"
    # no waiting time in the message: it stays the same on every retry (one Event, no rewrite)
    outcome = Outcome.stalled(
        "VersionsRemain",
        f"Model package group {name} cannot be deleted: {len(ordered)} model package version(s) remain in it "
        f"({named}) after {bound:.0f}s; versions whose ModelPackage had deletionPolicy Retain, or made outside "
        "this cluster, are never deleted by the operator. Delete them in SageMaker, or set this group's "
        "spec.deletionPolicy to Retain to keep the group; the operator keeps checking.",
    )
    return finish(outcome, meta, status, fields, retry=max(VERSIONS_DELAY, patience_after(waited)))
