"""ModelPackage -> a SageMaker model package version (or an unversioned package).

One reconcile for create, update, resume and resync:
1. parse the spec (an invalid one is Stalled/InvalidSpec with no SageMaker call);
2. resolve the group (wait, Reconciling/WaitingForGroup, until a referenced group is Ready);
3. observe: the version this object made (status.arn, or looked up by the owner UID marker
   in CustomerMetadataProperties before any create: a crash between CreateModelPackage and
   the status write never makes a second version), through the shared per-group listing
   on resync and while waiting for completion, through DescribeModelPackage on changes;
4. create it when absent (deterministic ClientToken from the UID), or wait through
   Pending/InProgress, or report Failed as Stalled with SageMaker's reason;
5. apply what differs with UpdateModelPackage: approval (only when the spec sets it),
   approval description, customer metadata (removed keys removed), additional inference
   specifications (append-only) and the other updatable members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ReconcileError, TerminalError
from ..registry.base import OWNER_UID_KEY
from .common import (
    NORMAL,
    Context,
    Event,
    Lookup,
    Meta,
    Result,
    Stop,
    Waiting,
    audit_due,
    carried,
    deletion_policy,
    error_result,
    finish,
    group_name_of,
    is_subset,
    request_for,
    rfc3339,
    to_api,
    typed_spec,
)
from .conditions import Outcome, is_ready

KIND = "ModelPackage"
FIELDS = (
    "arn",
    "modelPackageVersion",
    "modelPackageGroupName",
    "modelPackageStatus",
    "modelApprovalStatus",
    "approvalDescription",
    "artifacts",
    "creationTime",
    "lastModifiedTime",
)
WAIT_FOR_GROUP_DELAY = 2.0
IN_PROGRESS_DELAY = 1.0
# Listings older than this are not trusted to tell that a fresh version completed.
COMPLETION_MAX_AGE = 1.0
# Versions older than the object cannot be its own; the margin absorbs clock skew
# between the Kubernetes control plane and SageMaker.
CLOCK_SKEW_MARGIN_SECONDS = 600
WAITING_STATES = ("Pending", "InProgress")
# Failed reconciles in a row (each already retrying every source request) after which an
# unreachable artifact source is Stalled: a person should look; retries go on meanwhile.
SOURCE_STALL_AFTER = 3
MiB, GiB = 1024**2, 1024**3
# UpdateModelPackage members compared with DescribeModelPackage and re-applied when they differ.
OTHER_UPDATABLE = ("InferenceSpecification", "SourceUri", "ModelCard", "ModelLifeCycle")


def resolve_group(spec: Any, meta: Meta, lookup: Lookup, status: dict[str, Any]) -> str | None:
    """How SageMaker is told the group of a versioned package (None: an unversioned one): a
    referenced group by its name, the one its own controller lists it by; a named group as
    the spec gives it, since an ARN may name a group shared from another account, which its
    bare name would look for in the operator's own."""
    if spec.modelPackageGroupRef is not None:
        ref = spec.modelPackageGroupRef.name
        if status.get("arn") and status.get("modelPackageGroupName"):
            # registered: the version is what it is whatever its group object is doing now
            # (retrying, being deleted and waiting for its versions to go first)
            return status["modelPackageGroupName"]
        group = lookup.get("ModelPackageGroup", meta.namespace, ref)
        if group is not None and group.get("deleting"):
            raise Waiting(
                Outcome.reconciling(
                    "WaitingForGroup",
                    f"ModelPackageGroup {ref} is being deleted: no version can be registered in it; "
                    "point spec.modelPackageGroupRef at another group, or delete this ModelPackage.",
                ),
                WAIT_FOR_GROUP_DELAY,
            )
        if group is None:
            raise Waiting(
                Outcome.reconciling(
                    "WaitingForGroup",
                    f"ModelPackageGroup {ref} does not exist in namespace {meta.namespace}; create it "
                    "or correct spec.modelPackageGroupRef.name.",
                ),
                WAIT_FOR_GROUP_DELAY,
            )
        group_status = group.get("status") or {}
        if not is_ready(group_status) or not group_status.get("arn"):
            raise Waiting(
                Outcome.reconciling(
                    "WaitingForGroup", f"Waiting for ModelPackageGroup {ref} to become Ready."
                ),
                WAIT_FOR_GROUP_DELAY,
                short=True,
            )
        return group_name_of(group_status["arn"])
    return spec.modelPackageGroupName or None


def made_by(package: dict[str, Any], meta: Meta) -> bool:
    """The package carries this object's owner marker (an unversioned package's name may
    already be someone else's)."""
    return (package.get("CustomerMetadataProperties") or {}).get(OWNER_UID_KEY) == meta.uid


def desired_request(spec: Any, meta: Meta, group: str | None) -> dict[str, Any]:
    """The whole package in API shape, with the owner marker in the customer metadata."""
    request = to_api(spec)
    if group is not None:
        request["ModelPackageGroupName"] = group
    request["CustomerMetadataProperties"] = {
        **(spec.customerMetadataProperties or {}),
        OWNER_UID_KEY: meta.uid,
    }
    return request


def observed_fields(observed: dict[str, Any], full: bool) -> dict[str, Any]:
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


def failure_reason(observed: dict[str, Any]) -> str:
    details = observed.get("ModelPackageStatusDetails") or {}
    reasons = [
        f"{item.get('Name')}: {item.get('FailureReason')}"
        for key in ("ValidationStatuses", "ImageScanStatuses")
        for item in details.get(key) or []
        if item.get("FailureReason")
    ]
    return "; ".join(reasons) or "SageMaker gave no reason"


def updates_for(
    spec: Any, desired: dict[str, Any], observed: dict[str, Any], full: bool, status: dict[str, Any]
) -> dict[str, Any]:
    """The UpdateModelPackage members that would make SageMaker equal to the spec.

    With only a listing summary (`full` False), approval is compared with SageMaker and the
    approval description with the last one applied; the rest needs a describe."""
    update: dict[str, Any] = {}
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
    current = observed.get("CustomerMetadataProperties") or {}
    if any(current.get(k) != v for k, v in wanted.items()):
        update["CustomerMetadataProperties"] = wanted
    removed = sorted(k for k in current if k not in wanted)
    if removed:
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
        if member in desired and not is_subset(desired[member], observed.get(member)):
            update[member] = desired[member]
    return update


def describe_update(update: dict[str, Any]) -> str:
    names = {
        "ModelApprovalStatus": "approval",
        "ApprovalDescription": "approval description",
        "CustomerMetadataProperties": "customer metadata",
        "CustomerMetadataPropertiesToRemove": "customer metadata",
        "AdditionalInferenceSpecificationsToAdd": "additional inference specifications",
    }
    parts = dict.fromkeys(names.get(k, k[0].lower() + k[1:]) for k in update)
    return ", ".join(parts)


def reconcile(
    raw_spec: dict[str, Any],
    meta: Meta,
    status: dict[str, Any] | None,
    ctx: Context,
    lookup: Lookup,
    *,
    resync: bool = False,
    attempt: int = 0,
    progress: Callable[[Outcome], None] | None = None,
) -> Result:
    """`progress`, when given, is told how a long step (an artifact copy) is going, every few
    seconds at most, from this thread; the kopf layer writes it into the Reconciling condition."""
    status = dict(status or {})
    fields = carried(status, *FIELDS)
    fields["deletionPolicy"] = deletion_policy(raw_spec, status, ctx.settings)
    try:
        spec = typed_spec(KIND, raw_spec)
        group = resolve_group(spec, meta, lookup, status)
    except Stop as stop:
        return stop.result(meta, status, fields)
    desired = desired_request(spec, meta, group)
    spec_changed = status.get("observedGeneration") != meta.generation
    events: list[Event] = []
    # a resync reads the shared group listing, which carries approval and status only; an
    # audit describes the version, so customer metadata, additional inference
    # specifications, the approval description and tags changed in SageMaker are put back too
    now = ctx.wall_clock()
    since = ctx.resynced.get(meta.uid, now - ctx.settings.resync_seconds)
    audit = resync and audit_due(meta.uid, now, since, ctx.settings.audit_seconds)
    try:
        observed, full = observe(spec, meta, status, ctx, group, resync and not audit)
        if observed is None:
            arn = create(spec, meta, status, ctx, group, desired, fields, events, progress)
            group_name = group_name_of(group) if group else None  # as SageMaker reports it
            fields.update(
                arn=arn,
                modelPackageStatus="Pending",
                modelPackageGroupName=group_name,
                modelPackageVersion=_version_of(arn) if group else None,
            )
            if group:  # a listing fetched just before the create must not make it look lost
                ctx.listings.remember(
                    group,
                    {
                        "ModelPackageArn": arn,
                        "ModelPackageStatus": "Pending",
                        "ModelPackageVersion": fields["modelPackageVersion"],
                        "ModelPackageGroupName": group_name,
                    },
                )
            outcome = Outcome.reconciling(
                "Creating", f"Registered {arn}; waiting for SageMaker to complete it."
            )
            return finish(outcome, meta, status, fields, events, retry=IN_PROGRESS_DELAY, short=True)
        fields.update(observed_fields(observed, full))
        package_status = observed.get("ModelPackageStatus")
        if package_status in WAITING_STATES:
            outcome = Outcome.reconciling(
                package_status, f"SageMaker reports {fields['arn']} as {package_status}."
            )
            return finish(outcome, meta, status, fields, events, retry=IN_PROGRESS_DELAY, short=True)
        if package_status == "Failed":
            if not full:  # a listing summary carries no reason
                observed = ctx.registry.describe_package(fields["arn"]) or observed
            outcome = Outcome.stalled(
                "PackageFailed",
                f"SageMaker could not complete {fields['arn']}: "
                f"{failure_reason(observed)}. A failed version cannot be changed: fix the cause, then "
                "delete and re-create this ModelPackage to register a new version.",
            )
            return finish(outcome, meta, status, fields, events)
        if package_status == "Deleting":
            outcome = Outcome.reconciling("Deleting", f"SageMaker is deleting {fields['arn']}.")
            return finish(outcome, meta, status, fields, events, retry=IN_PROGRESS_DELAY * 5)
        fill_artifact_urls(desired, spec, fields.get("artifacts"), observed if full else None)
        update = updates_for(spec, desired, observed, full, status)
        if update:
            ctx.registry.update_package({"ModelPackageArn": fields["arn"], **update})
            events.extend(update_events(update, observed, spec_changed, fields["arn"]))
            fields.update(
                modelApprovalStatus=update.get("ModelApprovalStatus", fields.get("modelApprovalStatus")),
                approvalDescription=update.get("ApprovalDescription", fields.get("approvalDescription")),
            )
            if group:
                ctx.listings.remember(
                    group,
                    {
                        "ModelPackageArn": fields["arn"],
                        "ModelApprovalStatus": fields.get("modelApprovalStatus"),
                    },
                )
        if (
            full
            and (spec.tags or spec_changed)
            and ctx.registry.sync_tags(fields["arn"], tag_map(desired.get("Tags")))
        ):
            events.append(Event(NORMAL, "Updated", f"Tags of {fields['arn']} now follow the spec."))
        if (
            not update
            and not spec.modelApprovalStatus
            and status.get("modelApprovalStatus") not in (None, fields.get("modelApprovalStatus"))
        ):
            events.append(
                Event(
                    NORMAL,
                    "ApprovalChanged",
                    f"Approval of {fields['arn']} changed in SageMaker "
                    f"from {status['modelApprovalStatus']} to {fields.get('modelApprovalStatus')}.",
                )
            )
    except ReconcileError as err:
        stall_after = SOURCE_STALL_AFTER if err.reason == "SourceUnreachable" else None
        return error_result(err, meta, status, fields, attempt, stall_after=stall_after)
    if resync:
        ctx.resynced[meta.uid] = now  # a failed audit is tried again by the next resync
    outcome = Outcome.ready("Synced", f"{fields['arn']} is registered and matches the spec.")
    return finish(outcome, meta, status, fields, events)


def observe(
    spec: Any, meta: Meta, status: dict[str, Any], ctx: Context, group: str | None, resync: bool
) -> tuple[dict[str, Any] | None, bool]:
    """(what SageMaker has for this object or None, whether it is a full description)."""
    arn = status.get("arn")
    if arn is None:
        if group is None:
            found = ctx.registry.describe_package(spec.modelPackageName)
            if found is not None and not made_by(found, meta):
                raise TerminalError(
                    "AlreadyExists",
                    f"A model package named {spec.modelPackageName} already exists "
                    "in SageMaker and was not made by this object; choose another modelPackageName.",
                )
            return found, True
        return ctx.registry.find_package_by_owner(group, meta.uid, created_after=_created_after(meta)), True
    if group is not None and (resync or status.get("modelPackageStatus") in WAITING_STATES + (None,)):
        max_age = None if resync else COMPLETION_MAX_AGE
        summary = ctx.listings.get(group, max_age=max_age).get(arn)
        if summary is not None:
            return summary, False
    found = ctx.registry.describe_package(arn)
    if found is None and group is not None:
        # Deleted behind our back. A crash may have kept an earlier re-registration's ARN out
        # of status: look for it by owner before registering again, not by ClientToken alone,
        # whose idempotency window may have passed.
        found = ctx.registry.find_package_by_owner(group, meta.uid, created_after=_created_after(meta))
    return found, True


def create(
    spec: Any,
    meta: Meta,
    status: dict[str, Any],
    ctx: Context,
    group: str | None,
    desired: dict[str, Any],
    fields: dict[str, Any],
    events: list[Event],
    progress: Callable[[Outcome], None] | None = None,
) -> str:
    from ..registry import client_token_for

    lost = status.get("arn")  # registered before, since deleted in SageMaker
    if spec.artifacts:
        fields["artifacts"] = copy_artifacts(spec, meta, ctx, progress)
        fill_artifact_urls(desired, spec, fields["artifacts"])
    request = request_for("CreateModelPackage", desired)
    # CreateModelPackage refuses Tags for a version in a group ("uses the tags associated with
    # the model group ... you cannot supply a tag argument"): they are added once it exists.
    later_tags = request.pop("Tags", None) if group else None
    # A new token only to deliberately register again a version deleted behind our back.
    request["ClientToken"] = client_token_for(meta.uid, lost or "")
    arn = ctx.registry.create_package(request)
    if later_tags:
        ctx.registry.sync_tags(arn, tag_map(later_tags))
    if lost:
        events.append(
            Event(NORMAL, "DriftCorrected", f"{lost} was deleted in SageMaker; registered it again as {arn}.")
        )
    else:
        events.append(Event(NORMAL, "Created", f"Registered {arn} in SageMaker."))
    return arn


def tag_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def fill_artifact_urls(
    desired: dict[str, Any],
    spec: Any,
    artifacts: list[dict[str, Any]] | None,
    observed: dict[str, Any] | None = None,
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


def copy_artifacts(
    spec: Any, meta: Meta, ctx: Context, progress: Callable[[Outcome], None] | None = None
) -> list[dict[str, Any]]:
    declared = {artifact.name for artifact in spec.artifacts}
    containers = spec.inferenceSpecification.containers if spec.inferenceSpecification else []
    for index, container in enumerate(containers):
        name = getattr(container, "modelDataArtifact", None)
        if name and name not in declared:
            raise TerminalError(
                "UnknownArtifact",
                f"spec.inferenceSpecification.containers[{index}].modelDataArtifact "
                f"names {name}, which spec.artifacts does not declare.",
            )
    if ctx.copy_artifacts is None or not ctx.settings.artifact_bucket:
        raise TerminalError(
            "ArtifactBucketNotConfigured",
            "spec.artifacts needs an artifact bucket: start the "
            "operator with --artifact-bucket or MRO_ARTIFACT_BUCKET.",
        )
    prefix = "/".join(p for p in (ctx.settings.artifact_prefix, meta.namespace, meta.name, meta.uid) if p)

    def report(name: str, done: int, total: int | None) -> None:
        progress(Outcome.reconciling("CopyingArtifacts", copy_message(name, done, total)))

    try:
        if progress is None:
            return ctx.copy_artifacts(spec.artifacts, key_prefix=prefix)
        return ctx.copy_artifacts(spec.artifacts, key_prefix=prefix, progress=report)
    except TerminalError as err:
        if err.reason in SOURCE_FIXES:  # the fix is in spec.artifacts, which cannot be edited
            raise TerminalError(err.reason, f"{err.message.rstrip('.')}. {ARTIFACTS_REMEDY}") from None
        raise


# Artifact errors a person fixes by correcting spec.artifacts (CEL keeps it unchangeable: it
# is the version's model data), which means a new object; nothing was registered yet.
SOURCE_FIXES = (
    "ChecksumMismatch",
    "SourceNotFound",
    "SourceForbidden",
    "ForbiddenSource",
    "InvalidSource",
    "ArtifactTooLarge",
)
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


def size_text(size: int) -> str:
    if size >= GiB:
        return f"{size / GiB:.1f} GiB"
    if size >= MiB:
        return f"{size // MiB} MiB"
    if size >= 1024:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def update_events(
    update: dict[str, Any], observed: dict[str, Any], spec_changed: bool, arn: str
) -> list[Event]:
    events = []
    if "ModelApprovalStatus" in update and update["ModelApprovalStatus"] != observed.get(
        "ModelApprovalStatus"
    ):
        was = observed.get("ModelApprovalStatus")
        if spec_changed:
            events.append(
                Event(
                    NORMAL,
                    "ApprovalChanged",
                    f"Set the approval of {arn} to {update['ModelApprovalStatus']} (was {was}).",
                )
            )
        else:
            events.append(
                Event(
                    NORMAL,
                    "DriftCorrected",
                    f"The approval of {arn} was changed to {was} in SageMaker; "
                    f"set it back to {update['ModelApprovalStatus']} as the spec says.",
                )
            )
    rest = {k: v for k, v in update.items() if k != "ModelApprovalStatus"}
    if rest:
        what = describe_update(rest)
        if spec_changed:
            events.append(Event(NORMAL, "Updated", f"Updated the {what} of {arn}."))
        else:
            events.append(
                Event(NORMAL, "DriftCorrected", f"The {what} of {arn} differed from the spec; re-applied it.")
            )
    return events


def delete(
    raw_spec: dict[str, Any],
    meta: Meta,
    status: dict[str, Any] | None,
    ctx: Context,
    lookup: Lookup,
    *,
    attempt: int = 0,
) -> Result:
    """retry None: done, the finalizer may go."""
    status = dict(status or {})
    raw_spec = raw_spec or {}
    policy = deletion_policy(raw_spec, status, ctx.settings)
    arn = status.get("arn")
    if policy == "Retain":
        what = arn or "the model package"
        return Result(
            status, [Event(NORMAL, "Retained", f"deletionPolicy is Retain: {what} is kept in SageMaker.")]
        )
    try:
        if arn is None:  # maybe created just before a crash, before status was written
            arn = _find_unrecorded(raw_spec, meta, ctx, lookup)
        elif not raw_spec.get("modelPackageName") and ctx.registry.describe_package(arn) is None:
            # the recorded version is gone: a re-registration a crash kept out of status
            # (see observe) would otherwise be left behind, and keep its group from going
            arn = _find_unrecorded(raw_spec, meta, ctx, lookup)
        if arn is not None:
            ctx.registry.delete_package(arn)
    except ReconcileError as err:
        result = error_result(err, meta, status, carried(status, *FIELDS), attempt)
        result.retry = result.retry or 30.0  # a terminal error is still retried, slowly
        return result
    if arn is None:
        return Result(status, [])
    return Result(status, [Event(NORMAL, "Deleted", f"Deleted {arn} in SageMaker.")])


def _find_unrecorded(raw_spec: dict[str, Any], meta: Meta, ctx: Context, lookup: Lookup) -> str | None:
    if raw_spec.get("modelPackageName"):
        found = ctx.registry.describe_package(raw_spec["modelPackageName"])
        return found["ModelPackageArn"] if found and made_by(found, meta) else None
    group = raw_spec.get("modelPackageGroupName")  # a name or an ARN: SageMaker takes both
    ref = (raw_spec.get("modelPackageGroupRef") or {}).get("name")
    if ref:
        referenced = lookup.get("ModelPackageGroup", meta.namespace, ref)
        arn = ((referenced or {}).get("status") or {}).get("arn")
        group = group_name_of(
            arn or ((referenced or {}).get("spec") or {}).get("modelPackageGroupName") or ref
        )
    if not group:
        return None
    found = ctx.registry.find_package_by_owner(group, meta.uid, created_after=_created_after(meta))
    return found["ModelPackageArn"] if found else None


def _created_after(meta: Meta):
    import datetime

    if meta.created is None:
        return None
    return meta.created - datetime.timedelta(seconds=CLOCK_SKEW_MARGIN_SECONDS)


def _version_of(arn: str) -> int | None:
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
