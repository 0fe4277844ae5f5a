"""Model -> a SageMaker model (what endpoints and batch transform use).

Containers may reference a ModelPackage (`modelPackageRef`); its status.arn becomes the
container's ModelPackageName, and with requireApprovedPackage (the default) the Model waits
until that package is Approved. SageMaker has no UpdateModel: the resolved CreateModel
request (tags aside, which have their own API) is hashed into status.specHash, and a
different hash replaces the model: delete, then create with the same name.

The model's name is its identity, account-wide while objects are namespaced: the model
carries an owner tag (registry.base.OWNER_UID_KEY = the object's UID), also found after a
crash before status was written. A model tagged by another object is Stalled/AlreadyExists
and never touched. An untagged one is this object's when its status.arn names it (or, with
a spec hash recorded and no ARN yet, the spec's name): the tag is added quietly. Otherwise
it is someone else's (made by hand or by an operator version before owner tags): adopted
and tagged when it is what the spec asks for, reported AlreadyExists otherwise, and never
deleted. The tags listed for tag sync are the ones the owner is read from: no extra call.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import GROUP
from ..errors import ReconcileError
from ..registry.base import OWNER_UID_KEY, not_deletable, other_owner, with_owner_tag
from .common import (
    NORMAL,
    WARNING,
    Context,
    Event,
    Lookup,
    Meta,
    Result,
    Stop,
    Waiting,
    carried,
    deletion_policy,
    error_result,
    finish,
    is_subset,
    request_for,
    rfc3339,
    stable_hash,
    sync_owned_tags,
    to_api,
    typed_spec,
)
from .conditions import Outcome, is_ready

KIND = "Model"
FIELDS = ("arn", "creationTime", "containers", "specHash")
# Where operator versions before status.specHash kept the hash: read for the objects they
# created, never written (the inline waits reuse the object's metadata as first read, so
# a hash written there is seen stale until the next event).
SPEC_HASH_ANNOTATION = f"{GROUP}/model-spec-hash"
WAIT_FOR_PACKAGE_DELAY = 3.0


def resolve_package(ref: str, path: str, require_approved: bool, meta: Meta, lookup: Lookup) -> str:
    package = lookup.get("ModelPackage", meta.namespace, ref)
    if package is None:
        raise Waiting(
            Outcome.reconciling(
                "WaitingForPackage",
                f"ModelPackage {ref} ({path}.modelPackageRef) does not "
                f"exist in namespace {meta.namespace}; create it or correct the reference.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
        )
    status = package.get("status") or {}
    if not status.get("arn") or not is_ready(status):
        raise Waiting(
            Outcome.reconciling("WaitingForPackage", f"Waiting for ModelPackage {ref} to become Ready."),
            WAIT_FOR_PACKAGE_DELAY,
            short=True,
        )
    if require_approved and status.get("modelApprovalStatus") != "Approved":
        raise Waiting(
            Outcome.reconciling(
                "WaitingForApproval",
                f"Waiting for ModelPackage {ref} to be Approved (it is "
                f"{status.get('modelApprovalStatus') or 'not approved'}); approve it or set spec.requireApprovedPackage "
                "to false.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
        )
    return status["arn"]


def resolved_request(spec: Any, meta: Meta, lookup: Lookup) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the CreateModel request with references resolved, the status fields naming them)."""
    request = to_api(spec)
    request["ModelName"] = spec.modelName or meta.name
    require_approved = spec.requireApprovedPackage is not False
    if spec.primaryContainer is not None:
        containers = [("spec.primaryContainer", spec.primaryContainer, request["PrimaryContainer"])]
    else:
        containers = [
            (f"spec.containers[{index}]", container, request["Containers"][index])
            for index, container in enumerate(spec.containers or [])
        ]
    resolved = []  # status.containers: one entry per container, in order
    for path, container, container_request in containers:
        entry = {"containerHostname": container.containerHostname}
        if container.modelPackageRef is not None:
            arn = resolve_package(container.modelPackageRef.name, path, require_approved, meta, lookup)
            container_request["ModelPackageName"] = arn
            entry["modelPackageName"] = arn
        elif container.modelPackageName:
            entry["modelPackageName"] = container.modelPackageName
        resolved.append({k: v for k, v in entry.items() if v})
    return request_for("CreateModel", request), {"containers": resolved}


def model_name_of(arn: str | None) -> str | None:
    """`arn:aws:sagemaker:r:a:model/churn` -> `churn`."""
    return arn.rsplit(":model/", 1)[-1] if arn and ":model/" in arn else None


def recorded_hash(status: dict[str, Any], meta: Meta) -> str | None:
    """The spec hash of the model this object created, if it has a record of creating one."""
    return status.get("specHash") or meta.annotations.get(SPEC_HASH_ANNOTATION)


def matches(request: dict[str, Any], observed: dict[str, Any]) -> bool:
    """The described model is what `request` (tags aside) would create: every member sent
    is present and equal; members SageMaker adds (defaults, ARNs) do not count."""
    desired = {k: v for k, v in request.items() if k not in ("ModelName", "Tags")}
    observed = copy.deepcopy(observed)
    desired_containers = [request.get("PrimaryContainer") or {}, *(request.get("Containers") or [])]
    observed_containers = [observed.get("PrimaryContainer") or {}, *(observed.get("Containers") or [])]
    for want, seen in zip(desired_containers, observed_containers):
        # a package named by name may be described by its ARN (...:model-package/<name>)
        name, arn = want.get("ModelPackageName"), seen.get("ModelPackageName")
        if name and arn and not name.startswith("arn:") and arn.endswith(f":model-package/{name}"):
            seen["ModelPackageName"] = name
    return is_subset(desired, observed)


def reconcile(
    raw_spec: dict[str, Any],
    meta: Meta,
    status: dict[str, Any] | None,
    ctx: Context,
    lookup: Lookup,
    *,
    resync: bool = False,
    attempt: int = 0,
) -> Result:
    # `resync` changes nothing here: DescribeModel is already the cheapest observation.
    status = dict(status or {})
    fields = carried(status, *FIELDS)
    fields["deletionPolicy"] = deletion_policy(raw_spec, status, ctx.settings)
    try:
        spec = typed_spec(KIND, raw_spec)
        request, resolved = resolved_request(spec, meta, lookup)
    except Stop as stop:
        return stop.result(meta, status, fields)
    name = request["ModelName"]
    tags = {tag["Key"]: tag["Value"] for tag in request.get("Tags") or []}
    spec_hash = stable_hash({k: v for k, v in request.items() if k != "Tags"})
    spec_changed = status.get("observedGeneration") != meta.generation
    # spec.modelName is immutable at admission; an object whose name changed anyway (a CRD
    # without the rule) owns the old model, which goes once the new one can be made.
    old_name = model_name_of(fields.get("arn"))
    renamed = old_name is not None and old_name != name
    recorded = None if renamed else recorded_hash(status, meta)
    owned = recorded is not None or old_name == name
    events: list[Event] = []
    try:
        observed = ctx.registry.describe_model(name)
        current_tags: dict[str, str] = {}
        if observed is not None:
            # one ListTags tells the owner and the tags to sync
            current_tags = ctx.registry.list_tags(observed["ModelArn"])
            other = other_owner(current_tags, meta.uid)
            if other:
                return refused(
                    f"SageMaker model {name} is managed by another Kubernetes object (UID {other}); model "
                    "names are account-wide, so this object leaves it alone. Create this Model again with "
                    "another spec.modelName, or delete the other object and its model.",
                    renamed,
                    meta,
                    status,
                    fields,
                )
            owned = owned or OWNER_UID_KEY in current_tags
        if observed is not None and recorded != spec_hash:
            if not (recorded is None and matches(request, observed)):
                if not owned:
                    return refused(
                        f"A SageMaker model named {name} already exists and was not created by this "
                        "object; delete it in SageMaker, or create this Model again with another "
                        "spec.modelName.",
                        renamed,
                        meta,
                        status,
                        fields,
                    )
                ctx.registry.delete_model(name)
                observed = None
                events.append(
                    Event(
                        NORMAL,
                        "Replaced",
                        f"The spec of model {name} changed and SageMaker cannot "
                        "update a model: deleted it and created it again.",
                    )
                )
            elif not owned:
                events.append(
                    Event(
                        NORMAL,
                        "Adopted",
                        f"Model {name} already existed in SageMaker as the spec asks; "
                        f"this object manages it from now on and tagged it {OWNER_UID_KEY}={meta.uid}.",
                    )
                )
        if renamed:
            retained = fields["deletionPolicy"] == "Retain"
            outcome = None if retained else delete_if_owned(old_name, True, meta, ctx)
            deleted = outcome is not None and outcome.reason == "Deleted"
            events.append(
                Event(
                    NORMAL,
                    "Replaced",
                    f"spec.modelName changed from {old_name} to {name}: "
                    f"{'deleted' if deleted else 'kept'} model {old_name} in SageMaker and made {name}.",
                )
            )
            if outcome is not None and not deleted:
                events.append(outcome)
        created_arn = None
        if observed is None:
            created_arn = ctx.registry.create_model(with_owner_tag(request, meta.uid))
            if not events:
                if owned:
                    events.append(
                        Event(
                            NORMAL,
                            "DriftCorrected",
                            f"Model {name} was missing in SageMaker; created it again.",
                        )
                    )
                else:
                    events.append(Event(NORMAL, "Created", f"Created model {name} in SageMaker."))
            observed = ctx.registry.describe_model(name)
        else:
            events.extend(
                sync_owned_tags(
                    ctx, observed["ModelArn"], current_tags, tags, meta.uid, spec_changed, f"model {name}"
                )
            )
    except ReconcileError as err:
        return error_result(err, meta, status, fields, attempt)
    # status.specHash and status.arn are the record that this object made the model
    fields = dict(resolved, specHash=spec_hash, deletionPolicy=fields["deletionPolicy"])
    if observed is None:
        fields["arn"] = created_arn
        return finish(
            Outcome.reconciling("Creating", f"Waiting for model {name} to appear in SageMaker."),
            meta,
            status,
            fields,
            events,
            retry=WAIT_FOR_PACKAGE_DELAY,
            short=True,
        )
    fields.update(arn=observed.get("ModelArn"), creationTime=rfc3339(observed.get("CreationTime")))
    return finish(
        Outcome.ready("Synced", f"Model {name} exists in SageMaker and matches the spec."),
        meta,
        status,
        fields,
        events,
    )


def refused(
    message: str, renamed: bool, meta: Meta, status: dict[str, Any], fields: dict[str, Any]
) -> Result:
    """Stalled/AlreadyExists: the model of this name is not this object's. The status keeps
    no record of it (an old name's model, still this object's, stays recorded)."""
    fields.pop("specHash", None)
    if not renamed:
        fields.pop("arn", None)
        fields.pop("creationTime", None)
    return finish(Outcome.stalled("AlreadyExists", message), meta, status, fields)


def delete_if_owned(name: str, recorded: bool, meta: Meta, ctx: Context) -> Event | None:
    """Delete model `name` if it is this object's: its owner tag names this object, or it has
    none and the status records it (`recorded`). The Event saying what was done; None when
    there is nothing to delete and never was."""
    observed = ctx.registry.describe_model(name)
    if observed is not None:
        why = not_deletable(ctx.registry.list_tags(observed["ModelArn"]), meta.uid, recorded)
        if why:
            return Event(WARNING, "NotOwned", f"Model {name} in SageMaker {why}: left it untouched.")
    elif not recorded:
        return None  # never created (it waited for approval all its life)
    # recorded but not described: created, not yet visible; absent is not an error
    ctx.registry.delete_model(name)
    return Event(NORMAL, "Deleted", f"Deleted model {name} in SageMaker.")


def delete(
    raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context, *, attempt: int = 0
) -> Result:
    status = dict(status or {})
    name = model_name_of(status.get("arn"))
    # status.arn, or a spec hash (created, not yet seen by a describe): this object made it;
    # without either, only the owner tag can say so (a crash before the status was written)
    recorded = name is not None or recorded_hash(status, meta) is not None
    name = name or (raw_spec or {}).get("modelName") or meta.name
    if deletion_policy(raw_spec, status, ctx.settings) == "Retain":
        kept = [Event(NORMAL, "Retained", f"deletionPolicy is Retain: model {name} is kept in SageMaker.")]
        return Result(status, kept if recorded else [])
    try:
        outcome = delete_if_owned(name, recorded, meta, ctx)
    except ReconcileError as err:
        result = error_result(err, meta, status, carried(status, *FIELDS), attempt)
        result.retry = result.retry or 30.0
        return result
    return Result(status, [outcome] if outcome else [])
