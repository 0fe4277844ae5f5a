"""ModelPackageGroup -> SageMaker model package group.

Create when absent, keep tags equal to the spec, report the group's status; on delete,
wait until the group has no versions left (SageMaker refuses to delete a non-empty group),
then delete it, unless deletionPolicy is Retain.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import ReconcileError
from .common import (NORMAL, Context, Event, Meta, Result, carried, error_result, finish, parse_spec,
                     rfc3339, request_for, spec_error, to_api)
from .conditions import Outcome

KIND = "ModelPackageGroup"
FIELDS = ("arn", "modelPackageGroupStatus", "creationTime")
PENDING_DELAY = 2.0
VERSIONS_DELAY = 5.0


def group_name(raw_spec: dict[str, Any], meta: Meta) -> str:
    return (raw_spec or {}).get("modelPackageGroupName") or meta.name


def reconcile(raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context,
              *, resync: bool = False, attempt: int = 0) -> Result:
    fields = carried(status, *FIELDS)
    try:
        spec = parse_spec(KIND, raw_spec)
    except ValidationError as err:
        return finish(spec_error(KIND, err), meta, status, fields)
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
                observed = {"ModelPackageGroupArn": fields["arn"], "ModelPackageGroupStatus": "Completed",
                            "CreationTime": fields.get("creationTime")}
        if observed is None:
            observed = ctx.registry.describe_group(name)
        if observed is None:
            request = request_for("CreateModelPackageGroup", {**to_api(spec), "ModelPackageGroupName": name})
            ctx.registry.create_group(request)
            if fields.get("arn"):
                events.append(Event(NORMAL, "DriftCorrected",
                                    f"Model package group {name} was missing in SageMaker; created it again."))
            else:
                events.append(Event(NORMAL, "Created", f"Created model package group {name} in SageMaker."))
            observed = ctx.registry.describe_group(name)
        elif ctx.registry.sync_tags(observed["ModelPackageGroupArn"], desired_tags):
            # one ListTags per group and check; AddTags/DeleteTags only when they differ
            reason = "Updated" if spec_changed else "DriftCorrected"
            events.append(Event(NORMAL, reason, f"Set the tags of model package group {name} to the spec."))
    except ReconcileError as err:
        return error_result(err, meta, status, fields, attempt)
    if observed is None:  # created, but not visible yet
        return finish(Outcome.reconciling("Creating", f"Waiting for model package group {name} to appear in SageMaker."),
                      meta, status, fields, events, retry=PENDING_DELAY, short=True)
    fields.update(arn=observed.get("ModelPackageGroupArn"),
                  modelPackageGroupStatus=observed.get("ModelPackageGroupStatus"),
                  creationTime=rfc3339(observed.get("CreationTime")))
    group_status = observed.get("ModelPackageGroupStatus") or "Completed"
    if group_status == "Completed":
        outcome = Outcome.ready("Synced", f"Model package group {name} exists in SageMaker and matches the spec.")
        return finish(outcome, meta, status, fields, events)
    if group_status in ("Failed", "DeleteFailed"):
        outcome = Outcome.stalled("GroupFailed", f"SageMaker reports model package group {name} as {group_status}; "
                                  "check it in SageMaker, then delete and re-create this object.")
        return finish(outcome, meta, status, fields, events)
    outcome = Outcome.reconciling(group_status, f"Model package group {name} is {group_status} in SageMaker.")
    return finish(outcome, meta, status, fields, events, retry=PENDING_DELAY, short=True)


def delete(raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context,
           *, attempt: int = 0) -> Result:
    """retry None: done, the finalizer may go. Otherwise a status to show while waiting."""
    name = group_name(raw_spec, meta)
    fields = carried(status, *FIELDS)
    policy = (raw_spec or {}).get("deletionPolicy") or ctx.settings.deletion_policy
    if policy == "Retain":
        return Result(status or {}, [Event(NORMAL, "Retained",
                                            f"deletionPolicy is Retain: model package group {name} is kept in SageMaker.")])
    try:
        versions = ctx.registry.list_packages(name) if ctx.registry.describe_group(name) else []
        if versions:
            outcome = Outcome.reconciling(
                "WaitingForVersions",
                f"Waiting for the {len(versions)} model package version(s) in group {name} to be deleted "
                "before deleting the group; delete their ModelPackage objects (or the versions in SageMaker).")
            return finish(outcome, meta, status, fields, retry=VERSIONS_DELAY)
        ctx.registry.delete_group(name)
    except ReconcileError as err:
        result = error_result(err, meta, status, fields, attempt)
        result.retry = result.retry or VERSIONS_DELAY * 6  # a terminal error is still retried, slowly
        return result
    ctx.listings.forget(name)
    return Result(status or {}, [Event(NORMAL, "Deleted", f"Deleted model package group {name} in SageMaker.")])
