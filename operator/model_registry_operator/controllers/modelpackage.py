"""ModelPackage -> a SageMaker model package version (or an unversioned package).

One reconcile for create, update, resume and resync:
1. parse the spec (an invalid one is Stalled/InvalidSpec with no SageMaker call);
2. resolve the group (wait, Reconciling/WaitingForGroup, until a referenced group is Ready);
3. observe: the version this object made (status.arn, or looked up by its identity mark in
   CustomerMetadataProperties before any create, in the registry's identity index: a crash
   between CreateModelPackage and the status write, or a re-apply, never makes a second
   version), through the shared per-group listing on resync and while waiting for
   completion, through DescribeModelPackage on changes;
4. create it when absent (deterministic ClientToken from the identity and request), or wait through
   Pending/InProgress, or report Failed as Stalled with SageMaker's reason;
5. apply what differs with UpdateModelPackage: approval (only when the spec sets it),
   approval description, customer metadata (removed keys removed), additional inference
   specifications (append-only) and the other updatable members (inference specification,
   source URI, lifecycle stage, model card: its content compared as parsed JSON).

Every approval change is recorded in status.approvalHistory (at most 20, newest last) with
who made it: for one applied from the spec, the field manager that last set
spec.modelApprovalStatus (metadata.managedFields); for one observed in SageMaker, its
LastModifiedBy (a listing summary has none: the version is described once, when the listing
shows an approval other than the one recorded).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from ..accounts import arn_account, arn_region
from ..api import ModelPackageSpec
from ..api.common import api_member_name
from ..api.modelpackage import APPROVAL_HISTORY_MAX, GROUP_CHOICE, IMMUTABLE_FIELDS
from ..artifacts.sizes import size_text
from ..errors import TerminalError
from ..identity import MARKER_KEYS, Claim, Identity, Ownership
from ..reasons import FIXED_IN_ARTIFACTS, EventReason, Reason
from ..registry import client_token_for
from ..registry.base import Shape
from ..registry.requests import group_name_of, is_subset, request_for, tag_map, to_api
from ..timing import (
    SOURCE_STALL_AFTER,
    WAIT_FOR_ADOPTED_VERSION_DELAY,
    WAIT_FOR_GROUP_DELAY,
    WAIT_FOR_VERSION_DELAY,
    WAIT_FOR_VERSION_DELETION_DELAY,
)
from .call import Call, Event, Meta, Result, Stop, Waiting, rfc3339
from .conditions import Outcome, is_ready
from .context import Context
from .kind import Kind
from .tags import adopted, older_than

FIELDS = (
    "arn",
    "modelPackageVersion",
    "modelPackageGroupName",
    "modelPackageStatus",
    "modelApprovalStatus",
    "approvalDescription",
    "approvalHistory",
    "lastApprovalChangedBy",
    "artifacts",
    "creationTime",
    "lastModifiedTime",
)
# SageMaker's approval of a new version when CreateModelPackage does not set one.
DEFAULT_APPROVAL = "PendingManualApproval"
WAITING_STATES = ("Pending", "InProgress")
# CreateModelPackage members no API changes later: an adopted version that differs from one
# its spec sets is SpecMismatch.
ADOPTED_IMMUTABLE_MEMBERS = tuple(
    api_member_name(field) for field in IMMUTABLE_FIELDS if field not in GROUP_CHOICE
)
# UpdateModelPackage members compared with DescribeModelPackage and re-applied when they differ.
OTHER_UPDATABLE = ("InferenceSpecification", "SourceUri", "ModelCard", "ModelLifeCycle")


def resolve_group(call: Call, spec: ModelPackageSpec, region: str | None = None) -> str | None:
    """How SageMaker is told the group of a versioned package (None: an unversioned one): a
    referenced group by its name, the one its own controller lists it by; a named group as
    the spec gives it, since an ARN may name a group shared from another account, which its
    bare name would look for in the operator's own. A referenced group in another region
    than the package's (`region`) is Stalled, naming both."""
    if spec.modelPackageGroupRef is None:
        return spec.modelPackageGroupName or None
    ref = spec.modelPackageGroupRef.name
    status, namespace = call.previous, call.meta.namespace
    if status.get("arn") and status.get("modelPackageGroupName"):
        # registered: the version is what it is whatever its group object is doing now
        # (retrying, being deleted and waiting for its versions to go first)
        return str(status["modelPackageGroupName"])
    group = call.lookup.get("ModelPackageGroup", namespace, ref)
    if group is not None and group.get("deleting"):
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_GROUP,
                f"ModelPackageGroup {ref} is being deleted: no version can be registered in it; "
                "point spec.modelPackageGroupRef at another group, or delete this ModelPackage.",
            ),
            WAIT_FOR_GROUP_DELAY,
            woken=True,
        )
    if group is None:
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_GROUP,
                f"ModelPackageGroup {ref} does not exist in namespace {namespace}; create it "
                "or correct spec.modelPackageGroupRef.name.",
            ),
            WAIT_FOR_GROUP_DELAY,
            woken=True,
        )
    group_status = group.get("status") or {}
    if not is_ready(group_status) or not group_status.get("arn"):
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_GROUP, f"Waiting for ModelPackageGroup {ref} to become Ready."
            ),
            WAIT_FOR_GROUP_DELAY,
            short=True,
            woken=True,
        )
    group_region = arn_region(group_status["arn"])
    if region is not None and group_region is not None and group_region != region:
        raise Stop(
            Outcome.stalled(
                Reason.INVALID_SPEC,
                f"spec.modelPackageGroupRef: ModelPackageGroup {ref} is in region {group_region}, but this "
                f"ModelPackage is in region {region} (spec.region, else the operator's); a version is registered "
                f"in its group's region. Create this ModelPackage again with spec.region: {group_region}, or "
                f"reference a group in {region}.",
            )
        )
    return group_name_of(group_status["arn"])


def owner_of(package: Shape, meta: Meta, ctx: Context) -> Ownership:
    """Whose the version is, by the marks in its customer metadata."""
    return ctx.ownership(package.get("CustomerMetadataProperties") or {}, meta)


def desired_request(spec: ModelPackageSpec, meta: Meta, group: str | None, ctx: Context) -> Shape:
    """The whole package in API shape, with the identity mark in the customer metadata of a
    version this object registers (an adopted one is not marked: it is not the operator's)."""
    request = to_api(spec)
    if group is not None:
        request["ModelPackageGroupName"] = group
    marks = ctx.identity(meta).marks() if spec.modelPackageVersion is None else {}
    request["CustomerMetadataProperties"] = {**(spec.customerMetadataProperties or {}), **marks}
    return request


def observed_fields(observed: Shape, full: bool) -> dict[str, Any]:
    fields = {
        "arn": observed.get("ModelPackageArn"),
        "modelPackageVersion": observed.get("ModelPackageVersion"),
        "modelPackageGroupName": observed.get("ModelPackageGroupName"),
        "modelPackageStatus": observed.get("ModelPackageStatus"),
        "modelApprovalStatus": observed.get("ModelApprovalStatus"),
        "creationTime": rfc3339(observed.get("CreationTime")),
    }
    if full:  # not in a ListModelPackages summary
        fields["approvalDescription"] = observed.get("ApprovalDescription")
        fields["lastModifiedTime"] = rfc3339(observed.get("LastModifiedTime"))
    return {k: v for k, v in fields.items() if v is not None}


def failure_reason(observed: Shape) -> str:
    details = observed.get("ModelPackageStatusDetails") or {}
    reasons = [
        f"{item.get('Name')}: {item.get('FailureReason')}"
        for key in ("ValidationStatuses", "ImageScanStatuses")
        for item in details.get(key) or []
        if item.get("FailureReason")
    ]
    return "; ".join(reasons) or "SageMaker gave no reason"


def updates_for(
    spec: ModelPackageSpec, desired: Shape, observed: Shape, full: bool, status: dict[str, Any]
) -> Shape:
    """The UpdateModelPackage members that would make SageMaker equal to the spec.

    With only a listing summary (`full` False), approval is compared with SageMaker and the
    approval description with the last one applied; the rest needs a describe."""
    update: Shape = {}
    if spec.modelApprovalStatus and observed.get("ModelApprovalStatus") != spec.modelApprovalStatus:
        update["ModelApprovalStatus"] = spec.modelApprovalStatus
    if spec.approvalDescription is not None:
        current = observed.get("ApprovalDescription") if full else status.get("approvalDescription")
        if current != spec.approvalDescription:
            update["ApprovalDescription"] = spec.approvalDescription
            if spec.modelApprovalStatus:  # SageMaker records the description with an approval
                update["ModelApprovalStatus"] = spec.modelApprovalStatus
    if not full:
        return update
    wanted = desired["CustomerMetadataProperties"]
    metadata = observed.get("CustomerMetadataProperties") or {}
    # the identity mark is added to a version an earlier release marked (never changed once
    # set); the legacy UID mark stays: neither is the spec's to remove
    if any(metadata.get(k) != v and not (k in MARKER_KEYS and k in metadata) for k, v in wanted.items()):
        update["CustomerMetadataProperties"] = {
            k: v for k, v in wanted.items() if not (k in MARKER_KEYS and k in metadata)
        }
    removed = sorted(k for k in metadata if k not in wanted and k not in MARKER_KEYS)
    if removed and spec.modelPackageVersion is None:  # an adopted version's other keys are not ours
        update["CustomerMetadataPropertiesToRemove"] = removed
    existing = {spec_.get("Name") for spec_ in observed.get("AdditionalInferenceSpecifications") or []}
    added = [
        spec_
        for spec_ in desired.get("AdditionalInferenceSpecifications") or []
        if spec_.get("Name") not in existing
    ]
    if added:
        update["AdditionalInferenceSpecificationsToAdd"] = added
    for member in OTHER_UPDATABLE:
        if member in desired and not same_member(member, desired[member], observed.get(member)):
            update[member] = desired[member]
    return update


def same_member(member: str, desired: Any, observed: Any) -> bool:
    """SageMaker has what the spec sets: a model card's content compared as parsed JSON (key
    order and whitespace are not a difference), the rest as a subset (`is_subset`)."""
    if member != "ModelCard":
        return is_subset(desired, observed)
    card = observed if isinstance(observed, dict) else {}
    if "ModelCardStatus" in desired and desired["ModelCardStatus"] != card.get("ModelCardStatus"):
        return False
    return "ModelCardContent" not in desired or _parsed(desired["ModelCardContent"]) == _parsed(
        card.get("ModelCardContent")
    )


_UNPARSABLE = object()


def _parsed(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return _UNPARSABLE


def describe_update(update: Shape) -> str:
    names = {
        "ModelApprovalStatus": "approval",
        "ApprovalDescription": "approval description",
        "CustomerMetadataProperties": "customer metadata",
        "CustomerMetadataPropertiesToRemove": "customer metadata",
        "AdditionalInferenceSpecificationsToAdd": "additional inference specifications",
        "ModelCard": "model card",
        "ModelLifeCycle": "lifecycle stage",
        "SourceUri": "source URI",
        "InferenceSpecification": "inference specification",
    }
    parts = dict.fromkeys(names.get(k, k[0].lower() + k[1:]) for k in update)
    return ", ".join(parts)


def reconcile(call: Call, spec: ModelPackageSpec, ctx: Context) -> Result:
    """1. resolve the group (wait, Reconciling/WaitingForGroup, until a referenced group is Ready);
    2. observe the version this object made;
    3. register it when absent (artifacts copied first), or wait through Pending/InProgress,
       or report Failed as Stalled with SageMaker's reason;
    4. apply what differs with UpdateModelPackage, and the tags;
    5. report an approval changed in SageMaker when the spec leaves approval to others."""
    group = resolve_group(call, spec, ctx.region)
    adopting = spec.modelPackageVersion is not None
    desired = desired_request(spec, call.meta, group, ctx)
    # a resync reads the shared group listing, which carries approval and status only; an
    # audit describes the version, so customer metadata, additional inference
    # specifications, the approval description and tags changed in SageMaker are put back too
    cheap = call.resync and not call.audit
    observed: Shape | None
    if adopting and group is not None:
        observed, full = observe_adopted(spec, call, ctx, group, cheap)
    else:
        observed, full = observe(spec, call, ctx, group, cheap)
    if observed is None:
        return register(call, spec, ctx, group, desired)
    observed, full, changed_by = note_approval_changed_elsewhere(call, ctx, observed, full)
    call.fields.update(observed_fields(observed, full))
    if adopting and full:
        check_immutable_members(spec, desired, observed)
    wait_for_completion(call, ctx, observed, full)
    fill_artifact_urls(desired, spec, call.fields.get("artifacts"), observed if full else None)
    update = apply_updates(call, spec, ctx, group, desired, observed, full, changed_by)
    # a change that left the tags alone (an approval) lists none
    tags_done = not call.resync and call.done_as_now("tags")
    tags_done = tags_done or (not spec.tags and recovered(call, observed))
    if full and not tags_done and (spec.tags or (call.spec_changed and not adopting)):
        sync_tags(call, ctx, desired, keep_others=adopting)
    if not update and not spec.modelApprovalStatus:
        report_approval_changed_elsewhere(call, changed_by)
    how = "adopted" if adopting else "registered"
    return call.finish(Outcome.ready(Reason.SYNCED, f"{call.fields['arn']} is {how} and matches the spec."))


def recovered(call: Call, observed: Shape) -> bool:
    """The version was found (not recorded in status) and made by this object's own create
    from this very spec, before a crash kept it out of status: made since the object was
    created (tags.older_than, as for the Adopted Event), and the spec never changed. Its tags
    are as its create left them: none to read back unless the spec sets some."""
    made, created = observed.get("CreationTime"), call.meta.created
    return (
        call.previous.get("arn") is None
        and call.meta.generation == 1
        and isinstance(made, datetime.datetime)
        and created is not None
        and not older_than(made, created)
    )


def register(call: Call, spec: ModelPackageSpec, ctx: Context, group: str | None, desired: Shape) -> Result:
    arn = create(call, spec, ctx, group, desired)
    if group:  # a version's initial approval (an unversioned package has none)
        record_approval(
            call,
            desired.get("ModelApprovalStatus") or DEFAULT_APPROVAL,
            spec.approvalDescription,  # applied right after the create (CreateModelPackage has no member for it)
            now(),
            registrant(call, spec),
        )
    group_name = group_name_of(group) if group else None  # as SageMaker reports it
    call.fields.update(
        arn=arn,
        modelPackageStatus="Pending",
        modelPackageGroupName=group_name,
        modelPackageVersion=_version_of(arn) if group else None,
    )
    if group:  # a listing fetched just before the create must not make it look lost
        ctx.listings.created(
            group,
            {
                "ModelPackageArn": arn,
                "ModelPackageStatus": "Pending",
                "ModelPackageVersion": call.fields["modelPackageVersion"],
                "ModelPackageGroupName": group_name,
            },
        )
    outcome = Outcome.reconciling(Reason.CREATING, f"Registered {arn}; waiting for SageMaker to complete it.")
    return call.finish(outcome, retry=WAIT_FOR_VERSION_DELAY, short=True)


def wait_for_completion(call: Call, ctx: Context, observed: Shape, full: bool) -> None:
    """Stop unless SageMaker reports the version Completed (or a state past it)."""
    arn = call.fields["arn"]
    package_status = observed.get("ModelPackageStatus")
    if package_status in WAITING_STATES:
        outcome = Outcome.reconciling(Reason(package_status), f"SageMaker reports {arn} as {package_status}.")
        raise Stop(outcome, WAIT_FOR_VERSION_DELAY, short=True)
    if package_status == "Failed":
        if not full:  # a listing summary carries no reason
            observed = ctx.registry.describe_package(arn) or observed
        raise Stop(
            Outcome.stalled(
                Reason.PACKAGE_FAILED,
                f"SageMaker could not complete {arn}: "
                f"{failure_reason(observed)}. A failed version cannot be changed: fix the cause, then "
                "delete and re-create this ModelPackage to register a new version.",
            )
        )
    if package_status == "Deleting":
        raise Stop(
            Outcome.reconciling(Reason.DELETING, f"SageMaker is deleting {arn}."),
            WAIT_FOR_VERSION_DELETION_DELAY,
        )


def apply_updates(
    call: Call,
    spec: ModelPackageSpec,
    ctx: Context,
    group: str | None,
    desired: Shape,
    observed: Shape,
    full: bool,
    changed_by: str | None = None,
) -> Shape:
    """UpdateModelPackage with what differs from the spec; the update made ({}: none).
    `changed_by`: who changed the approval in SageMaker, when it was (the Event names them)."""
    fields = call.fields
    update = updates_for(spec, desired, observed, full, call.previous)
    if not update:
        return update
    ctx.registry.update_package({"ModelPackageArn": fields["arn"], **update})
    approver = approver_of(call)
    if call.previous.get("modelPackageStatus") not in WAITING_STATES:
        call.events.extend(
            update_events(update, observed, call.spec_changed, fields["arn"], approver, changed_by)
        )
        if "ModelApprovalStatus" in update or "ApprovalDescription" in update:
            record_approval(
                call,
                update.get("ModelApprovalStatus") or observed.get("ModelApprovalStatus"),
                update.get("ApprovalDescription", fields.get("approvalDescription")),
                now(),
                approver,
            )
    # else: completing its own create (members CreateModelPackage does not take, such as the
    # approval description): part of the Created, neither a change nor drift
    fields.update(
        modelApprovalStatus=update.get("ModelApprovalStatus", fields.get("modelApprovalStatus")),
        approvalDescription=update.get("ApprovalDescription", fields.get("approvalDescription")),
    )
    if group:
        ctx.listings.remember(
            group,
            {"ModelPackageArn": fields["arn"], "ModelApprovalStatus": fields.get("modelApprovalStatus")},
        )
    return update


def sync_tags(call: Call, ctx: Context, desired: Shape, keep_others: bool) -> None:
    """The version's tags as the spec's; `keep_others`: an adopted version's other tags stay."""
    arn = call.fields["arn"]
    wanted = tag_map(desired.get("Tags"))
    current = ctx.registry.list_tags(arn) if keep_others else None
    changed = ctx.registry.sync_tags(arn, {**(current or {}), **wanted}, current)
    if changed:
        call.events.append(Event.normal(EventReason.UPDATED, f"Tags of {arn} now follow the spec."))


def recorded_approval(call: Call) -> str | None:
    """The approval last recorded: status.modelApprovalStatus, else the newest history entry's
    (a version registered without one has the default SageMaker may not report back)."""
    history = call.previous.get("approvalHistory") or []
    newest = history[-1].get("modelApprovalStatus") if history and isinstance(history[-1], dict) else None
    return call.previous.get("modelApprovalStatus") or newest


def report_approval_changed_elsewhere(call: Call, changed_by: str | None) -> None:
    was, current = recorded_approval(call), call.fields.get("modelApprovalStatus")
    # None: SageMaker does not report the default of a version registered without one
    if current is not None and was not in (None, current):
        by = f" by {changed_by}" if changed_by else ""
        call.events.append(
            Event.normal(
                EventReason.APPROVAL_CHANGED,
                f"Approval of {call.fields['arn']} changed in SageMaker from {was} to {current}{by}.",
            )
        )


# --- the approval audit trail (status.approvalHistory) ---------------------------------------


def now() -> str:
    return rfc3339(datetime.datetime.now(datetime.UTC)) or ""


def record_approval(
    call: Call, approval: str | None, description: str | None, time: str | None, changed_by: str | None
) -> None:
    """Append an entry to status.approvalHistory (the newest 20 are kept)."""
    entry = {
        "modelApprovalStatus": approval,
        "approvalDescription": description,
        "time": time or now(),
        "changedBy": changed_by,
    }
    history = [*(call.fields.get("approvalHistory") or []), {k: v for k, v in entry.items() if v is not None}]
    call.fields["approvalHistory"] = history[-APPROVAL_HISTORY_MAX:]
    call.fields["lastApprovalChangedBy"] = changed_by


def approver_of(call: Call) -> str | None:
    """The field manager that last set spec.modelApprovalStatus (or, without one, the
    approval description): who a change applied from the spec is attributed to."""
    managers = call.meta.managers
    return managers.get("modelApprovalStatus") or managers.get("approvalDescription")


def registrant(call: Call, spec: ModelPackageSpec) -> str | None:
    """Who a new version's initial approval is attributed to: the manager of
    spec.modelApprovalStatus, or when the spec leaves approval out (SageMaker's default),
    the one that set the group the version is registered in."""
    if spec.modelApprovalStatus:
        return approver_of(call)
    managers = call.meta.managers
    return next(
        (managers[f] for f in ("modelPackageGroupRef", "modelPackageGroupName") if f in managers), None
    )


def modified_by(package: Shape, created: bool = False) -> str | None:
    """Who last changed a version in SageMaker (DescribeModelPackage's LastModifiedBy; with
    `created`, else CreatedBy): its IAM identity's ARN, else its Studio user profile."""
    for member in ("LastModifiedBy", "CreatedBy") if created else ("LastModifiedBy",):
        user = package.get(member) or {}
        who = (user.get("IamIdentity") or {}).get("Arn") or user.get("UserProfileName")
        if who:
            return str(who)
    return None


def note_approval_changed_elsewhere(
    call: Call, ctx: Context, observed: Shape, full: bool
) -> tuple[Shape, bool, str | None]:
    """An approval in SageMaker other than the one last recorded was changed there: it goes
    into the history with who changed it. A listing summary has no LastModifiedBy, so the
    version is then described (once per change: the next status records the new approval).
    Returns (observed, full, who changed it or None)."""
    was, current = recorded_approval(call), observed.get("ModelApprovalStatus")
    if was is None or current in (None, was):
        return observed, full, None
    if not full:
        described = ctx.registry.describe_package(call.fields["arn"])
        if described is not None:
            observed, full = described, True
            current = observed.get("ModelApprovalStatus") or current
    changed_by = modified_by(observed) if full else None
    record_approval(
        call,
        current,
        observed.get("ApprovalDescription") if full else None,
        rfc3339(observed.get("LastModifiedTime")) if full else None,
        changed_by,
    )
    return observed, full, changed_by


def observe(
    spec: ModelPackageSpec, call: Call, ctx: Context, group: str | None, cheap: bool
) -> tuple[Shape | None, bool]:
    """(what SageMaker has for this object or None, whether it is a full description).

    The version this object made: status.arn, or looked up by its identity (or legacy UID)
    mark in CustomerMetadataProperties before any create, in the registry's identity index (a
    crash between CreateModelPackage and the status write never makes a second version, nor a
    re-apply); through the shared per-group listing when
    `cheap` (a resync) and while waiting for completion, through DescribeModelPackage on changes."""
    meta, status = call.meta, call.previous
    arn = status.get("arn")
    if arn is None:
        if group is None:
            found = ctx.registry.describe_package(spec.modelPackageName or "")
            if found is None:
                return None, True
            owner = owner_of(found, meta, ctx)
            if not owner.mine:
                whose = (
                    "was not made by this object"
                    if owner.claim is Claim.UNMARKED
                    else (f"is managed by {owner.owner_text()}")
                )
                raise TerminalError(
                    Reason.ALREADY_EXISTS,
                    f"A model package named {spec.modelPackageName} already exists in SageMaker and "
                    f"{whose}; choose another modelPackageName.",
                )
        else:
            found = ctx.registry.find_package(group, ctx.marks(meta), lambda: recorded_versions(call, ctx))
            if found is None:
                return None, True
        what = f"Model package {found.get('ModelPackageArn')}"
        adopted(call, ctx, what, owner_of(found, meta, ctx), found.get("CreationTime"))
        return found, True
    if group is not None and cheap:
        summary = ctx.listings.get(group).get(arn)
        if summary is not None:
            return summary, False
    elif group is not None and status.get("modelPackageStatus") in (*WAITING_STATES, None):
        # being completed: a listing begun since, shared by every fresh version of the account
        fresh = ctx.listings.fresh(group, arn)
        if isinstance(fresh, float):
            state = status.get("modelPackageStatus") or "Pending"
            message = f"Waiting for SageMaker to complete {arn} ({state})."
            raise Stop(Outcome.reconciling(Reason(state), message), fresh, short=True)
        if fresh is not None:
            return fresh, False
    found = ctx.registry.describe_package(arn)
    if found is None and group is not None:
        # Deleted behind our back. A crash may have kept an earlier re-registration's ARN out
        # of status: look for it by owner before registering again, not by ClientToken alone,
        # whose idempotency window may have passed.
        found = ctx.registry.find_package(group, ctx.marks(meta), lambda: recorded_versions(call, ctx))
    return found, True


def observe_adopted(
    spec: ModelPackageSpec, call: Call, ctx: Context, group: str, cheap: bool
) -> tuple[Shape, bool]:
    """Version spec.modelPackageVersion of `group`, registered elsewhere: found in the group's
    listing, shared by every object waiting in that group and read at most every few seconds;
    Reconciling/WaitingForVersion until it exists. Never None: nothing is ever registered."""
    number = spec.modelPackageVersion
    arn = call.previous.get("arn")
    if arn is None:
        listing = ctx.listings.get(group, max_age=WAIT_FOR_ADOPTED_VERSION_DELAY)
        summary = next((s for s in listing.values() if s.get("ModelPackageVersion") == number), None)
        if summary is None:
            raise Waiting(
                Outcome.reconciling(
                    Reason.WAITING_FOR_VERSION,
                    f"Waiting for version {number} of model package group {group_name_of(group)} to be "
                    "registered (by a pipeline, a training job or a notebook); this object adopts it then "
                    "and never registers one itself.",
                ),
                WAIT_FOR_ADOPTED_VERSION_DELAY,
                patient=False,
            )
        arn = summary["ModelPackageArn"]
        described = ctx.registry.describe_package(arn)
        found = described or summary
        # the approval it had when adopted, by who last changed it (or registered it)
        record_approval(
            call,
            found.get("ModelApprovalStatus"),
            found.get("ApprovalDescription"),
            rfc3339(found.get("LastModifiedTime") or found.get("CreationTime")),
            modified_by(found, created=True),
        )
        call.events.append(
            Event.normal(
                EventReason.ADOPTED,
                f"Adopted version {number} of model package group {group_name_of(group)} ({arn}), registered "
                "outside this cluster: this object manages the members its spec sets and observes the rest.",
            )
        )
        return (described, True) if described is not None else (summary, False)
    observed, full = observe(spec, call, ctx, group, cheap)
    if observed is None:
        raise Stop(
            Outcome.stalled(
                Reason.VERSION_GONE,
                f"Version {number} of model package group {group_name_of(group)} ({arn}) no longer exists in "
                "SageMaker: it was deleted outside this cluster, and a version number is never used again. "
                "Delete this ModelPackage, or adopt another version with a new one.",
            )
        )
    return observed, full


def check_immutable_members(spec: ModelPackageSpec, desired: Shape, observed: Shape) -> None:
    """An adopted version's members that no API can change must be as the spec sets them."""
    differing = [
        member
        for member in ADOPTED_IMMUTABLE_MEMBERS
        if member in desired and not is_subset(desired[member], observed.get(member))
    ]
    if differing:
        fields = ", ".join(f"spec.{m[0].lower()}{m[1:]}" for m in differing)
        raise Stop(
            Outcome.stalled(
                Reason.SPEC_MISMATCH,
                f"Version {spec.modelPackageVersion} differs from {fields}, which SageMaker cannot change on a "
                "registered version: remove the field from the spec (it is then only observed) or set it to "
                "what the version has.",
            )
        )


def create(call: Call, spec: ModelPackageSpec, ctx: Context, group: str | None, desired: Shape) -> str:
    """Copy the artifacts, then CreateModelPackage with a ClientToken derived from the identity
    and the request (the same request gives the same ARN, from any process or object UID)."""
    lost = call.previous.get("arn")  # registered before, since deleted in SageMaker
    if spec.artifacts:
        call.fields["artifacts"] = copy_artifacts(spec, call, ctx)
        fill_artifact_urls(desired, spec, call.fields["artifacts"])
    request = request_for("CreateModelPackage", desired)
    # CreateModelPackage refuses Tags for a version in a group ("uses the tags associated with
    # the model group ... you cannot supply a tag argument"): they are added once it exists.
    later_tags = request.pop("Tags", None) if group else None
    # A new token only to deliberately register again a version deleted behind our back.
    request["ClientToken"] = client_token_for(str(ctx.identity(call.meta)), lost or "", request)
    arn = ctx.registry.create_package(request)
    if later_tags:
        ctx.registry.sync_tags(arn, tag_map(later_tags))
    if lost:
        call.events.append(
            Event.normal(
                EventReason.DRIFT_CORRECTED, f"{lost} was deleted in SageMaker; registered it again as {arn}."
            )
        )
    else:
        call.events.append(Event.normal(EventReason.CREATED, f"Registered {arn} in SageMaker."))
    return arn


def fill_artifact_urls(
    desired: Shape,
    spec: ModelPackageSpec,
    artifacts: list[dict[str, Any]] | None,
    observed: Shape | None = None,
) -> None:
    """Give each container that names a modelDataArtifact the copied archive's URI as its
    ModelDataUrl: from the recorded copies, else (status lost in a crash) from SageMaker's
    own container at the same position. Without it an UpdateModelPackage carrying the
    inference specification would erase the model data."""
    urls = {artifact["name"]: artifact["uri"] for artifact in artifacts or []}
    spec_containers = spec.inferenceSpecification.containers if spec.inferenceSpecification else []
    observed_containers = ((observed or {}).get("InferenceSpecification") or {}).get("Containers") or []
    wanted = (desired.get("InferenceSpecification") or {}).get("Containers") or []
    for index, (container, spec_container) in enumerate(zip(wanted, spec_containers)):
        name = getattr(spec_container, "modelDataArtifact", None)
        if name is None:
            continue
        known = observed_containers[index].get("ModelDataUrl") if index < len(observed_containers) else None
        url = urls.get(name) or known
        if url:
            container["ModelDataUrl"] = url


def copy_artifacts(spec: ModelPackageSpec, call: Call, ctx: Context) -> list[dict[str, Any]]:
    artifacts = spec.artifacts or []
    declared = {artifact.name for artifact in artifacts}
    containers = spec.inferenceSpecification.containers if spec.inferenceSpecification else []
    for index, container in enumerate(containers):
        name = getattr(container, "modelDataArtifact", None)
        if name and name not in declared:
            raise TerminalError(
                Reason.UNKNOWN_ARTIFACT,
                f"spec.inferenceSpecification.containers[{index}].modelDataArtifact "
                f"names {name}, which spec.artifacts does not declare.",
            )
    if ctx.copy_artifacts is None or not ctx.settings.artifact_bucket:
        raise TerminalError(
            Reason.ARTIFACT_BUCKET_NOT_CONFIGURED,
            "spec.artifacts needs an artifact bucket: start the operator with --artifact-bucket or "
            "MRO_ARTIFACT_BUCKET, or name one in the namespace's registry.mlops.dev/artifact-bucket annotation "
            "(the only way for a namespace whose objects are in another account: registry.mlops.dev/aws-role-arn).",
        )
    meta = call.meta
    prefix = "/".join(p for p in (ctx.settings.artifact_prefix, meta.namespace, meta.name, meta.uid) if p)
    progress = call.progress

    def report(name: str, done: int, total: int | None) -> None:
        if progress is not None:
            progress(Outcome.reconciling(Reason.COPYING_ARTIFACTS, copy_message(name, done, total)))

    try:
        if progress is None:
            return ctx.copy_artifacts(artifacts, key_prefix=prefix)
        return ctx.copy_artifacts(artifacts, key_prefix=prefix, progress=report)
    except TerminalError as err:
        if err.reason in FIXED_IN_ARTIFACTS:  # the fix is in spec.artifacts, which cannot be edited
            raise TerminalError(err.reason, f"{err.message.rstrip('.')}. {ARTIFACTS_REMEDY}") from None
        raise


ARTIFACTS_REMEDY = (
    "Nothing was registered; spec.artifacts cannot be edited, so to correct it delete this "
    "ModelPackage and create it again (or under another name)."
)


def copy_message(name: str, done: int, total: int | None) -> str:
    """`Copying artifact model: 512 MiB of 2.0 GiB (25%).`"""
    if not total:
        return f"Copying artifact {name}: {size_text(done)} so far."
    percent = min(100, done * 100 // total)
    return f"Copying artifact {name}: {size_text(done)} of {size_text(total)} ({percent}%)."


def only_marks(member: str, value: Any, observed: Shape) -> bool:
    """The update of customer metadata only adds the identity mark (a version an earlier
    release marked, or adopted): no drift and no change the spec made, so no Event."""
    if member != "CustomerMetadataProperties":
        return False
    current = observed.get("CustomerMetadataProperties") or {}
    return {k: v for k, v in value.items() if k not in MARKER_KEYS} == {
        k: v for k, v in current.items() if k not in MARKER_KEYS
    }


def update_events(
    update: Shape,
    observed: Shape,
    spec_changed: bool,
    arn: str,
    approver: str | None = None,
    changed_by: str | None = None,
) -> list[Event]:
    """`approver`: the field manager of spec.modelApprovalStatus; `changed_by`: who changed
    the approval in SageMaker (LastModifiedBy)."""
    events = []
    approval, was = update.get("ModelApprovalStatus"), observed.get("ModelApprovalStatus")
    as_set = f" as spec.modelApprovalStatus, set by {approver}, says" if approver else " as the spec says"
    if approval is not None and approval != was:
        if spec_changed:
            message = f"Set the approval of {arn} to {approval} (was {was}){as_set}."
            events.append(Event.normal(EventReason.APPROVAL_CHANGED, message))
        else:
            by = f" by {changed_by}" if changed_by else ""
            message = f"The approval of {arn} was changed to {was} in SageMaker{by}; set it back to {approval}{as_set}."
            events.append(Event.normal(EventReason.DRIFT_CORRECTED, message))
    rest = {k: v for k, v in update.items() if k != "ModelApprovalStatus" and not only_marks(k, v, observed)}
    if rest:
        what = describe_update(rest)
        if spec_changed:
            events.append(Event.normal(EventReason.UPDATED, f"Updated the {what} of {arn}."))
        else:
            message = f"The {what} of {arn} differed from the spec; re-applied it."
            events.append(Event.normal(EventReason.DRIFT_CORRECTED, message))
    return events


def delete(call: Call, ctx: Context) -> Result:
    """Delete the version unless deletionPolicy is Retain; one made just before a crash, kept
    out of status, is found by its owner marker."""
    arn = call.previous.get("arn")
    if call.fields["deletionPolicy"] == "Retain":
        if arn is None:
            return call.unchanged()  # never registered: nothing is kept
        return call.unchanged(
            Event.normal(EventReason.RETAINED, f"deletionPolicy is Retain: {arn} is kept in SageMaker.")
        )
    if arn is None:  # maybe created just before a crash, before status was written
        arn = _find_unrecorded(call, ctx)
    elif not call.raw_spec.get("modelPackageName"):
        recorded = ctx.registry.describe_package(arn)
        if recorded is None:
            # the recorded version is gone: a re-registration a crash kept out of status
            # (see observe) would otherwise be left behind, and keep its group from going
            arn = _find_unrecorded(call, ctx)
    if arn is None:
        return call.unchanged()
    ctx.registry.delete_package(arn)
    return call.unchanged(Event.normal(EventReason.DELETED, f"Deleted {arn} in SageMaker."))


def _find_unrecorded(call: Call, ctx: Context) -> str | None:
    raw_spec, meta = call.raw_spec, call.meta
    if raw_spec.get("modelPackageName"):
        found = ctx.registry.describe_package(raw_spec["modelPackageName"])
        return found["ModelPackageArn"] if found and owner_of(found, meta, ctx).mine else None
    group = raw_spec.get("modelPackageGroupName")  # a name or an ARN: SageMaker takes both
    ref = (raw_spec.get("modelPackageGroupRef") or {}).get("name")
    if ref:
        referenced = call.lookup.get("ModelPackageGroup", meta.namespace, ref) or {}
        arn = (referenced.get("status") or {}).get("arn")
        group = group_name_of(arn or (referenced.get("spec") or {}).get("modelPackageGroupName") or ref)
    if not group:
        return None
    found = ctx.registry.find_package(group, ctx.marks(meta), lambda: recorded_versions(call, ctx))
    return found["ModelPackageArn"] if found else None


@runtime_checkable
class Scan(Protocol):
    """A Lookup that can also list every indexed object of a kind (wiring.IndexLookup)."""

    def each(self, kind: str) -> Iterable[tuple[str, str, dict[str, Any]]]: ...


def recorded_versions(call: Call, ctx: Context) -> dict[str, str]:
    """{version ARN: identity} of the versions the other ModelPackages of this cluster
    registered and record in their status, from the operator's in-memory index (no API call):
    each carries its object's marks, so the identity index need not describe it to know it is
    not this object's. Adopted versions (spec.modelPackageVersion) are left out: they may
    carry any mark. Asked only when a lookup meets versions whose marks are unknown."""
    if not isinstance(call.lookup, Scan):
        return {}
    me = (call.meta.namespace, call.meta.name)
    recorded: dict[str, str] = {}
    for namespace, name, obj in call.lookup.each("ModelPackage"):
        arn = (obj.get("status") or {}).get("arn")
        adopted_elsewhere = (obj.get("spec") or {}).get("modelPackageVersion") is not None
        if not arn or (namespace, name) == me or adopted_elsewhere:
            continue
        recorded[str(arn)] = str(Identity(ctx.settings.instance, namespace, name))
    return recorded


def _version_of(arn: str) -> int | None:
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


CONTROLLER = Kind(
    "ModelPackage",
    ModelPackageSpec,
    FIELDS,
    reconcile,
    delete,
    stall_after={Reason.SOURCE_UNREACHABLE: SOURCE_STALL_AFTER},
    # an adopted version is not the operator's: kept unless the spec says Delete
    default_policy=lambda raw_spec: "Retain" if raw_spec.get("modelPackageVersion") is not None else None,
    references=lambda raw_spec: [
        ("ModelPackageGroup", ref["name"])
        for ref in [raw_spec.get("modelPackageGroupRef")]
        if isinstance(ref, dict) and isinstance(ref.get("name"), str)
    ],
    # a version registered in a group another account shares (modelPackageGroupName: its ARN)
    # is in that account, whichever account the namespace maps to
    spec_account=lambda raw_spec: arn_account(raw_spec.get("modelPackageGroupName")),
)
