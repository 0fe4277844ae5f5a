"""Model -> a SageMaker model (what endpoints and batch transform use).

Containers may reference a ModelPackage (`modelPackageRef`); its status.arn becomes the
container's ModelPackageName, and with requireApprovedPackage (the default) the Model waits
until that package is Approved. SageMaker has no UpdateModel: the resolved CreateModel
request (tags aside, which have their own API) is hashed into status.specHash, and a
different hash replaces the model: delete, then create with the same name.

A model's name is account-wide while objects are namespaced: the model carries its object's
identity as a tag (identity.py), found again after a crash before status was written, a
delete with Retain and a new apply, or a rebuilt cluster (Event Adopted). A model marked
with another identity is Stalled/AlreadyExists and never touched. An unmarked one is this
object's when its status.arn names it (or, with a spec hash recorded and no ARN yet, the
spec's name): the mark is added quietly. Otherwise it is someone else's (made by hand or by
an operator version before owner marks): adopted and marked when it is what the spec asks
for, reported AlreadyExists otherwise, and never deleted. The tags listed for tag sync are
the ones the owner is read from: no extra call.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import GROUP
from ..accounts import arn_region
from ..api import ModelSpec
from ..api.model import ContainerDefinition
from ..errors import RetryableError, TerminalError
from ..identity import Claim, Ownership
from ..reasons import EventReason, Reason
from ..registry.base import Shape, not_deletable, with_marks
from ..registry.requests import is_subset, request_for, stable_hash, tag_map, to_api
from ..timing import WAIT_FOR_MODEL_TO_APPEAR_DELAY, WAIT_FOR_PACKAGE_DELAY
from .call import Call, Event, Meta, Result, Stop, Waiting, rfc3339
from .conditions import READY, Outcome, condition, is_ready
from .context import Context
from .kind import Kind
from .tags import adopted, sync_owned_tags

FIELDS = ("arn", "creationTime", "containers", "specHash")
# Where operator versions before status.specHash kept the hash: read for the objects they
# created, never written (the inline waits reuse the object's metadata as first read, so
# a hash written there is seen stale until the next event).
SPEC_HASH_ANNOTATION = f"{GROUP}/model-spec-hash"


def resolve_package(
    ref: str, path: str, require_approved: bool, call: Call, index: int
) -> tuple[str, str | None]:
    """(the package's ARN, a notice or None). Waits until the package exists, is Ready and (with
    requireApprovedPackage) Approved; but a model already made from it is kept when the
    package is later rejected or deleted (an endpoint may serve it): its recorded ARN is used
    and the notice says why the package no longer qualifies."""
    meta = call.meta
    kept = kept_package(call, index)
    package = call.lookup.get("ModelPackage", meta.namespace, ref)
    if package is None:
        if kept:
            return kept, f"ModelPackage {ref} was deleted"
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_PACKAGE,
                f"ModelPackage {ref} ({path}.modelPackageRef) does not "
                f"exist in namespace {meta.namespace}; create it or correct the reference.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
            woken=True,
        )
    status = package.get("status") or {}
    if not status.get("arn") or not is_ready(status):
        if kept:
            return kept, None  # e.g. the package is being updated: nothing to say yet
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_PACKAGE, f"Waiting for ModelPackage {ref} to become Ready."
            ),
            WAIT_FOR_PACKAGE_DELAY,
            short=True,
            woken=True,
        )
    approval = status.get("modelApprovalStatus") or "not approved"
    if require_approved and approval != "Approved":
        if kept:
            return kept, f"ModelPackage {ref} is now {approval}"
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_APPROVAL,
                f"Waiting for ModelPackage {ref} to be Approved (it is {approval}); approve it or set "
                "spec.requireApprovedPackage to false.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
            woken=True,
        )
    return str(status["arn"]), None


def kept_package(call: Call, index: int) -> str | None:
    """The package ARN the model this object made was created from, at container `index`,
    while the spec is the one it was made from; else None."""
    if call.spec_changed or not call.previous.get("arn"):
        return None
    containers = call.previous.get("containers") or []
    recorded = containers[index].get("modelPackageName") if index < len(containers) else None
    return str(recorded) if recorded else None


def check_named_package(name: str, path: str, call: Call, ctx: Context, index: int) -> None:
    """requireApprovedPackage for a package named by name or ARN (`modelPackageName`): not this
    cluster's, possibly another account's shared through its group's resource policy, so
    SageMaker is asked (DescribeModelPackage with this object's credentials) and the wait is a
    timer (no object to watch). Once a model is made from it, it is not asked again: as for a
    referenced package, the model is kept whatever happens to the package later."""
    if kept_package(call, index) == name:
        return
    try:
        package = ctx.registry.describe_package(name)
    except TerminalError as err:
        if err.reason != Reason.ACCESS_DENIED:
            raise
        raise Stop(
            Outcome.stalled(
                err.reason,
                f"Reading model package {name} ({path}.modelPackageName) was refused. For a package in another "
                "account, that account's model package group needs a resource policy allowing this account "
                f"sagemaker:DescribeModelPackage; else grant it to the operator's role. {err.message}",
            )
        ) from None
    if package is None:
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_PACKAGE,
                f"Model package {name} ({path}.modelPackageName) does not exist in SageMaker, or is in an "
                "account that does not share it with this one; create or share it, or correct the name.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
        )
    # an unversioned package has no approval (CreateModelPackage: it "does not apply")
    approval = package.get("ModelApprovalStatus")
    if package.get("ModelPackageGroupName") and approval != "Approved":
        raise Waiting(
            Outcome.reconciling(
                Reason.WAITING_FOR_APPROVAL,
                f"Waiting for model package {name} ({path}.modelPackageName) to be Approved (it is "
                f"{approval or 'not approved'}); approve it where it is registered or set "
                "spec.requireApprovedPackage to false.",
            ),
            WAIT_FOR_PACKAGE_DELAY,
        )


def resolved_request(spec: ModelSpec, call: Call, ctx: Context) -> tuple[Shape, dict[str, Any], list[str]]:
    """(the CreateModel request with references resolved, the status fields naming them,
    notices about packages that no longer qualify)."""
    request = to_api(spec)
    request["ModelName"] = spec.modelName or call.meta.name
    require_approved = spec.requireApprovedPackage is not False
    containers: list[tuple[str, ContainerDefinition, Shape]]
    if spec.primaryContainer is not None:
        containers = [("spec.primaryContainer", spec.primaryContainer, request["PrimaryContainer"])]
    else:
        containers = [
            (f"spec.containers[{index}]", container, request["Containers"][index])
            for index, container in enumerate(spec.containers or [])
        ]
    resolved = []  # status.containers: one entry per container, in order
    notices = []
    for index, (path, container, container_request) in enumerate(containers):
        entry = {"containerHostname": container.containerHostname}
        if container.modelPackageRef is not None:
            arn, notice = resolve_package(container.modelPackageRef.name, path, require_approved, call, index)
            same_region(arn, f"{path}.modelPackageRef", ctx)
            container_request["ModelPackageName"] = arn
            entry["modelPackageName"] = arn
            if notice:
                notices.append(notice)
        elif container.modelPackageName:
            same_region(container.modelPackageName, f"{path}.modelPackageName", ctx)
            if require_approved:
                check_named_package(container.modelPackageName, path, call, ctx, index)
            entry["modelPackageName"] = container.modelPackageName
        resolved.append({k: v for k, v in entry.items() if v})
    return request_for("CreateModel", request), {"containers": resolved}, notices


def same_region(package: str, path: str, ctx: Context) -> None:
    """SageMaker makes a model only from a package of its own region: a package (by ARN) in
    another is Stalled, naming both."""
    region = arn_region(package)
    if ctx.region is None or region is None or region == ctx.region:
        return
    raise Stop(
        Outcome.stalled(
            Reason.INVALID_SPEC,
            f"{path}: model package {package} is in region {region}, but this Model is in region {ctx.region} "
            "(spec.region, else the operator's) and SageMaker makes a model only from a package of its own "
            f"region. Use a package registered in {ctx.region}, or create this Model again with spec.region: {region}.",
        )
    )


def model_name_of(arn: str | None) -> str | None:
    """`arn:aws:sagemaker:r:a:model/churn` -> `churn`."""
    return arn.rsplit(":model/", 1)[-1] if arn and ":model/" in arn else None


def recorded_hash(status: dict[str, Any], meta: Meta) -> str | None:
    """The spec hash of the model this object created, if it has a record of creating one."""
    return status.get("specHash") or meta.annotations.get(SPEC_HASH_ANNOTATION)


def matches(request: Shape, observed: Shape) -> bool:
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


class Plan:
    """What this reconcile knows of the model it wants and the one it may own."""

    def __init__(self, call: Call, request: Shape):
        self.request = request
        self.name: str = request["ModelName"]
        self.spec_hash = stable_hash({k: v for k, v in request.items() if k != "Tags"})
        # spec.modelName is immutable at admission; an object whose name changed anyway (a
        # CRD without the rule) owns the old model, which goes once the new one can be made.
        self.old_name = model_name_of(call.fields.get("arn"))
        self.renamed = self.old_name is not None and self.old_name != self.name
        self.recorded = None if self.renamed else recorded_hash(call.previous, call.meta)
        self.owned = self.recorded is not None or self.old_name == self.name
        self.owner = Ownership(Claim.UNMARKED)  # until the model's tags are read
        # this object has no record of any model: the usual case is that none of this name exists
        self.first = not self.renamed and self.recorded is None and not call.fields.get("arn")


def reconcile(call: Call, spec: ModelSpec, ctx: Context) -> Result:
    """1. resolve the referenced packages (wait for them to be Ready and Approved);
    2. observe the model of this name and whose it is (another object's: Stalled);
    3. replace it when the spec changed (SageMaker has no UpdateModel), or adopt a matching one;
    4. delete the old name's model after a rename;
    5. create it when absent, else sync its tags."""
    request, resolved, notices = resolved_request(spec, call, ctx)
    plan = Plan(call, request)
    created_arn = create_first(call, plan, ctx) if plan.first else None
    observed = None if created_arn else ctx.registry.describe_model(plan.name)
    current_tags: dict[str, str] = {}
    if observed is not None:
        # one ListTags tells the owner and the tags to sync
        current_tags = ctx.registry.list_tags(observed["ModelArn"])
        check_owner(call, plan, current_tags, ctx)
        observed = replace_or_adopt(call, plan, observed, ctx)
    if plan.renamed:
        delete_old_name(call, plan, ctx)
    if observed is None:
        created_arn = created_arn or create(call, plan, ctx)
        observed = ctx.registry.describe_model(plan.name)
    else:
        sync_tags(call, plan, observed, current_tags, ctx)
    # status.specHash and status.arn are the record that this object made the model
    call.fields = dict(resolved, specHash=plan.spec_hash, deletionPolicy=call.fields["deletionPolicy"])
    if observed is None:
        call.fields["arn"] = created_arn
        raise Stop(
            Outcome.reconciling(Reason.CREATING, f"Waiting for model {plan.name} to appear in SageMaker."),
            WAIT_FOR_MODEL_TO_APPEAR_DELAY,
            short=True,
        )
    call.fields.update(arn=observed.get("ModelArn"), creationTime=rfc3339(observed.get("CreationTime")))
    return call.finish(ready(call, plan.name, notices))


def ready(call: Call, name: str, notices: list[str]) -> Outcome:
    """Ready: the model exists and matches its spec, with a word about packages it was made
    from that no longer qualify (a Warning Event when that word is new)."""
    message = f"Model {name} exists in SageMaker and matches the spec."
    if notices:
        message = (
            f"Model {name} exists in SageMaker and matches the spec; {'; '.join(notices)}: the model is "
            "kept (an endpoint may serve it). Delete this Model to delete it, or approve the package again."
        )
        said = (condition(call.previous, READY) or {}).get("message")
        if said != message:
            call.events.append(Event.warning(EventReason.PACKAGE_NO_LONGER_APPROVED, message))
    return Outcome.ready(Reason.SYNCED, message)


def check_owner(call: Call, plan: Plan, tags: dict[str, str], ctx: Context) -> None:
    plan.owner = ctx.ownership(tags, call.meta)
    if plan.owner.claim is Claim.OTHERS:
        refuse(
            call,
            plan,
            f"SageMaker model {plan.name} is managed by {plan.owner.owner_text()}; model names are "
            "account-wide, so this object leaves it alone. Create this Model again with another "
            "spec.modelName, or delete the other object and its model (or, for an object of a cluster "
            "that is gone, delete the model's registry.mlops.dev/identity tag in SageMaker).",
        )
    plan.owned = plan.owned or plan.owner.mine


def replace_or_adopt(call: Call, plan: Plan, observed: Shape, ctx: Context) -> Shape | None:
    """The model described, or None once deleted to be created again."""
    if plan.recorded == plan.spec_hash:
        return observed
    # no record of this model: made by hand, or by this identity before (a re-apply, a rebuild)
    unrecorded = plan.recorded is None and not call.previous.get("arn")
    if plan.recorded is None and matches(plan.request, observed):
        if unrecorded or not plan.owned:
            adopted(call, ctx, f"Model {plan.name}", plan.owner, observed.get("CreationTime"))
        return observed
    if not plan.owned:
        refuse(
            call,
            plan,
            f"A SageMaker model named {plan.name} already exists and was not created by this "
            "object; delete it in SageMaker, or create this Model again with another spec.modelName.",
        )
    if unrecorded:
        adopted(call, ctx, f"Model {plan.name}", plan.owner, observed.get("CreationTime"))
    ctx.registry.delete_model(plan.name)
    call.events.append(
        Event.normal(
            EventReason.REPLACED,
            f"The spec of model {plan.name} changed and SageMaker cannot "
            "update a model: deleted it and created it again.",
        )
    )
    return None


def delete_old_name(call: Call, plan: Plan, ctx: Context) -> None:
    old_name = plan.old_name or ""
    retained = call.fields["deletionPolicy"] == "Retain"
    outcome = None if retained else delete_if_owned(old_name, True, call.meta, ctx)
    deleted = outcome is not None and outcome.reason == EventReason.DELETED
    call.events.append(
        Event.normal(
            EventReason.REPLACED,
            f"spec.modelName changed from {old_name} to {plan.name}: "
            f"{'deleted' if deleted else 'kept'} model {old_name} in SageMaker and made {plan.name}.",
        )
    )
    if outcome is not None and not deleted:
        call.events.append(outcome)


def create_first(call: Call, plan: Plan, ctx: Context) -> str | None:
    """A Model with no record of any model creates it without describing first (one call of
    three saved per new Model). None: a model of this name exists (SageMaker answers "already
    exists"): whose it is, and whether it is taken back, is decided by describing it, as for
    any object with a record (re-applied after a Retain delete, a rebuilt cluster, a crash
    before its status was written)."""
    try:
        return create(call, plan, ctx)
    except RetryableError as exc:
        if exc.reason is not Reason.CREATE_UNCONFIRMED:
            raise
        return None


def create(call: Call, plan: Plan, ctx: Context) -> str:
    arn = ctx.registry.create_model(with_marks(plan.request, ctx.identity(call.meta).marks()))
    if not call.events:
        if plan.owned:
            message = f"Model {plan.name} was missing in SageMaker; created it again."
            call.events.append(Event.normal(EventReason.DRIFT_CORRECTED, message))
        else:
            call.events.append(Event.normal(EventReason.CREATED, f"Created model {plan.name} in SageMaker."))
    return arn


def sync_tags(call: Call, plan: Plan, observed: Shape, current: dict[str, str], ctx: Context) -> None:
    desired = tag_map(plan.request.get("Tags"))
    sync_owned_tags(ctx, call, observed["ModelArn"], current, desired, f"model {plan.name}")


def refuse(call: Call, plan: Plan, message: str) -> None:
    """Stalled/AlreadyExists: the model of this name is not this object's. The status keeps
    no record of it (an old name's model, still this object's, stays recorded)."""
    call.fields.pop("specHash", None)
    if not plan.renamed:
        call.fields.pop("arn", None)
        call.fields.pop("creationTime", None)
    raise Stop(Outcome.stalled(Reason.ALREADY_EXISTS, message))


def delete_if_owned(name: str, recorded: bool, meta: Meta, ctx: Context) -> Event | None:
    """Delete model `name` if it is this object's: its owner tag names this object, or it has
    none and the status records it (`recorded`). The Event saying what was done; None when
    there is nothing to delete and never was."""
    observed = ctx.registry.describe_model(name)
    if observed is not None:
        why = not_deletable(ctx.ownership(ctx.registry.list_tags(observed["ModelArn"]), meta), recorded)
        if why:
            return Event.warning(
                EventReason.NOT_OWNED, f"Model {name} in SageMaker {why}: left it untouched."
            )
    elif not recorded:
        return None  # never created (it waited for approval all its life)
    # recorded but not described: created, not yet visible; absent is not an error
    ctx.registry.delete_model(name)
    return Event.normal(EventReason.DELETED, f"Deleted model {name} in SageMaker.")


def delete(call: Call, ctx: Context) -> Result:
    name = model_name_of(call.previous.get("arn"))
    # status.arn, or a spec hash (created, not yet seen by a describe): this object made it;
    # without either, only the owner tag can say so (a crash before the status was written)
    recorded = name is not None or recorded_hash(call.previous, call.meta) is not None
    name = name or call.raw_spec.get("modelName") or call.meta.name
    if call.fields["deletionPolicy"] == "Retain":
        kept = Event.normal(
            EventReason.RETAINED, f"deletionPolicy is Retain: model {name} is kept in SageMaker."
        )
        return call.unchanged(kept) if recorded else call.unchanged()
    outcome = delete_if_owned(name, recorded, call.meta, ctx)
    return call.unchanged(outcome) if outcome else call.unchanged()


def references(raw_spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The ModelPackages a raw spec's containers reference (a malformed one: none)."""
    containers = [raw_spec.get("primaryContainer"), *(raw_spec.get("containers") or [])]
    return [
        ("ModelPackage", ref["name"])
        for container in containers
        if isinstance(container, dict)
        for ref in [container.get("modelPackageRef")]
        if isinstance(ref, dict) and isinstance(ref.get("name"), str)
    ]


CONTROLLER = Kind("Model", ModelSpec, FIELDS, reconcile, delete, references=references)
