"""Model -> a SageMaker model (what endpoints and batch transform use).

Containers may reference a ModelPackage (`modelPackageRef`); its status.arn becomes the
container's ModelPackageName, and with requireApprovedPackage (the default) the Model waits
until that package is Approved. SageMaker has no UpdateModel: the resolved CreateModel
request (tags aside, which have their own API) is hashed into an annotation on the object,
and a different hash replaces the model: delete, then create with the same name.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .. import GROUP
from ..errors import ReconcileError
from .common import (NORMAL, Context, Event, Lookup, Meta, Result, carried, error_result, finish, parse_spec,
                     request_for, rfc3339, spec_error, stable_hash, to_api)
from .conditions import Outcome, is_ready

KIND = "Model"
FIELDS = ("arn", "creationTime", "containers")
# Hash of the resolved CreateModel request the SageMaker model was created from. An
# annotation, not a status field: status is pruned to the API types' schema.
SPEC_HASH_ANNOTATION = f"{GROUP}/model-spec-hash"
WAIT_FOR_PACKAGE_DELAY = 3.0


class Waiting(Exception):
    def __init__(self, outcome: Outcome, delay: float, short: bool = False):
        super().__init__(outcome.message)
        self.outcome, self.delay, self.short = outcome, delay, short


def resolve_package(ref: str, path: str, require_approved: bool, meta: Meta, lookup: Lookup) -> str:
    package = lookup.get("ModelPackage", meta.namespace, ref)
    if package is None:
        raise Waiting(Outcome.reconciling("WaitingForPackage", f"ModelPackage {ref} ({path}.modelPackageRef) does not "
                                          f"exist in namespace {meta.namespace}; create it or correct the reference."),
                      WAIT_FOR_PACKAGE_DELAY)
    status = package.get("status") or {}
    if not status.get("arn") or not is_ready(status):
        raise Waiting(Outcome.reconciling("WaitingForPackage", f"Waiting for ModelPackage {ref} to become Ready."),
                      WAIT_FOR_PACKAGE_DELAY, short=True)
    if require_approved and status.get("modelApprovalStatus") != "Approved":
        raise Waiting(Outcome.reconciling(
            "WaitingForApproval", f"Waiting for ModelPackage {ref} to be Approved (it is "
            f"{status.get('modelApprovalStatus') or 'not approved'}); approve it or set spec.requireApprovedPackage "
            "to false."), WAIT_FOR_PACKAGE_DELAY)
    return status["arn"]


def resolved_request(spec: Any, meta: Meta, lookup: Lookup) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the CreateModel request with references resolved, the status fields naming them)."""
    request = to_api(spec)
    request["ModelName"] = spec.modelName or meta.name
    require_approved = spec.requireApprovedPackage is not False
    if spec.primaryContainer is not None:
        containers = [("spec.primaryContainer", spec.primaryContainer, request["PrimaryContainer"])]
    else:
        containers = [(f"spec.containers[{index}]", container, request["Containers"][index])
                      for index, container in enumerate(spec.containers or [])]
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


def reconcile(raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context, lookup: Lookup,
              *, resync: bool = False, attempt: int = 0) -> Result:
    # `resync` changes nothing here: DescribeModel is already the cheapest observation.
    status = dict(status or {})
    fields = carried(status, *FIELDS)
    try:
        spec = parse_spec(KIND, raw_spec)
    except ValidationError as err:
        return finish(spec_error(KIND, err), meta, status, fields)
    try:
        request, resolved = resolved_request(spec, meta, lookup)
    except Waiting as wait:
        return finish(wait.outcome, meta, status, fields, retry=wait.delay, short=wait.short)
    name = request["ModelName"]
    tags = {tag["Key"]: tag["Value"] for tag in request.get("Tags") or []}
    spec_hash = stable_hash({k: v for k, v in request.items() if k != "Tags"})
    spec_changed = status.get("observedGeneration") != meta.generation
    events: list[Event] = []
    try:
        observed = ctx.registry.describe_model(name)
        if observed is not None and meta.annotations.get(SPEC_HASH_ANNOTATION) not in (None, spec_hash):
            ctx.registry.delete_model(name)
            observed = None
            events.append(Event(NORMAL, "Replaced", f"The spec of model {name} changed and SageMaker cannot update a "
                                "model: deleted it and created it again."))
        if observed is None:
            ctx.registry.create_model(request)
            if not events:
                if fields.get("arn"):
                    events.append(Event(NORMAL, "DriftCorrected",
                                        f"Model {name} was missing in SageMaker; created it again."))
                else:
                    events.append(Event(NORMAL, "Created", f"Created model {name} in SageMaker."))
            observed = ctx.registry.describe_model(name)
        elif ctx.registry.sync_tags(observed["ModelArn"], tags):
            reason = "Updated" if spec_changed else "DriftCorrected"
            events.append(Event(NORMAL, reason, f"Set the tags of model {name} to the spec."))
    except ReconcileError as err:
        return error_result(err, meta, status, fields, attempt)
    fields = dict(resolved)
    if observed is None:
        result = finish(Outcome.reconciling("Creating", f"Waiting for model {name} to appear in SageMaker."),
                        meta, status, fields, events, retry=WAIT_FOR_PACKAGE_DELAY, short=True)
    else:
        fields.update(arn=observed.get("ModelArn"), creationTime=rfc3339(observed.get("CreationTime")))
        result = finish(Outcome.ready("Synced", f"Model {name} exists in SageMaker and matches the spec."),
                        meta, status, fields, events)
    result.annotations[SPEC_HASH_ANNOTATION] = spec_hash
    return result


def delete(raw_spec: dict[str, Any], meta: Meta, status: dict[str, Any] | None, ctx: Context,
           *, attempt: int = 0) -> Result:
    status = dict(status or {})
    name = (raw_spec or {}).get("modelName") or meta.name
    if ((raw_spec or {}).get("deletionPolicy") or ctx.settings.deletion_policy) == "Retain":
        return Result(status, [Event(NORMAL, "Retained", f"deletionPolicy is Retain: model {name} is kept in SageMaker.")])
    if not status.get("arn") and SPEC_HASH_ANNOTATION not in meta.annotations:
        # never created by this object (e.g. it waited for approval all its life): a model
        # with this name in SageMaker belongs to someone else
        return Result(status, [])
    try:
        ctx.registry.delete_model(name)
    except ReconcileError as err:
        result = error_result(err, meta, status, carried(status, *FIELDS), attempt)
        result.retry = result.retry or 30.0
        return result
    return Result(status, [Event(NORMAL, "Deleted", f"Deleted model {name} in SageMaker.")])
