"""Model package group resource policies and cross-account access through them.

moto 5.2.5 has no PutModelPackageGroupPolicy, GetModelPackageGroupPolicy or
DeleteModelPackageGroupPolicy (HTTP 500), and resolves a model package ARN of another
account or region to the package of the same name in the caller's own backend.

The operations (botocore's SageMaker service model):

- PutModelPackageGroupPolicy(ModelPackageGroupName, ResourcePolicy) -> {ModelPackageGroupArn}:
  "Adds a resouce policy to control access to a model group." GetModelPackageGroupPolicy ->
  {ResourcePolicy}: "Gets a resource policy that manages access for a model group."
  DeleteModelPackageGroupPolicy -> {}: "Deletes a model group resource policy."
- ModelPackageGroupName is an EntityName in all three: "The name of the model group",
  length 1-63, pattern ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``; unlike Describe/Delete
  ModelPackageGroup (ArnOrName) an ARN does not fit and is refused with the service's
  constraint message ("1 validation error detected: Value '...' at 'modelPackageGroupName'
  failed to satisfy constraint: Member must satisfy regular expression pattern: ...").
  ResourcePolicy: PolicyString, length 1-20480.
- A group that does not exist: ValidationException "Cannot find Model Package Group: <group
  arn>"; Get/Delete of a group without a policy: ValidationException "Cannot find resource
  policy for: <group arn>". The API reference lists no specific error for these (only
  ConflictException for Put); the messages are the ones AWS's own CloudFormation resource
  provider (aws-cloudformation/aws-cloudformation-resource-providers-sagemaker,
  aws-sagemaker-modelpackagegroup: ExceptionMapper, ReadHandler, AbstractTestBase) and the
  Terraform AWS provider (internal/service/sagemaker/model_package_group_policy.go) match on
  to tell "not found" apart.
- A malformed policy: ValidationException "Invalid policy provided: <what is wrong>". SageMaker
  answers policy errors with ValidationException (its model has no MalformedPolicyDocument
  error) and this prefix ("Invalid policy provided: Duplicate principal", reported in
  awslabs/aiops-modules#397); what follows the prefix is the harness's own wording (see
  _policy.py for the rules checked).
- The policy text is stored as given (Get answers it verbatim) on the group, so deleting
  the group deletes its policy and a group created again under the same name has none.

Cross-account access (IAM User Guide, "Cross account resource access in IAM": a principal
of another account may act on a resource when the resource-based policy allows it; the
denial reads "User: <arn> is not authorized to perform: <action> on resource: <arn> because
no resource-based policy allows the <action> action"): a SageMaker call naming a model
package or model package group ARN of another account is served from that account's backend
(same region; an ARN of another region names nothing here: "does not exist") when the
group's resource policy allows the caller (see _policy.py: account root, account id, caller
ARN, its role's ARN, "*") the action on that ARN: ``sagemaker:<Operation>``, except that
CreateModel with a container's ModelPackageName needs ``sagemaker:DescribeModelPackage`` on
the package (the harness's reading: SageMaker reads the package on the caller's behalf; the
model itself is created in the caller's account). Otherwise AccessDeniedException (HTTP 400,
JSON protocol); an explicit Deny reads "... with an explicit deny in a resource-based
policy". The caller's own identity-based policy is not modelled (every identity may do
everything in its own account). Served this way: Describe/Update/DeleteModelPackage,
CreateModel, Add/List/DeleteTags (on the package or group ARN), DescribeModelPackageGroup,
ListModelPackages (on the group ARN) and CreateModelPackage into a shared group (on the group
ARN; the version belongs to the group's account).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from . import _policy
from ._common import arn_of, backend_method, response_method
from .accounts import Caller, caller_identity

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z\-]*):sagemaker:(?P<region>[a-z0-9\-]*):(?P<account>[0-9]{12}):"
    r"(?P<type>[a-z\-]*)/(?P<id>.+)$"
)
_ENTITY_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
MAX_POLICY_LENGTH = 20480
# The action a call needs on a model package it names, when not sagemaker:<Operation>.
PACKAGE_ACTION = {"CreateModel": "sagemaker:DescribeModelPackage"}

_request = threading.local()  # the SageMaker request being served by this thread


class AccessDeniedException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def apply() -> None:
    original_call_action = SageMakerResponse.call_action

    def call_action(self: SageMakerResponse):
        _request.response = self
        try:
            return original_call_action(self)
        finally:
            _request.response = None

    SageMakerResponse.call_action = call_action


# -- Put / Get / Delete ----------------------------------------------------------------


def _check_length(problems: list[str], value: str, wire: str, high: int) -> None:
    if len(value) > high:
        problems.append(
            f"Value '{value}' at '{wire}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {high}"
        )


def _raise_problems(problems: list[str]) -> None:
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        raise ValidationError(f"{count}: {'; '.join(problems)}")


def _policy_group(backend: SageMakerModelBackend, name: Any, policy: Any = None):
    problems: list[str] = []
    name = name if isinstance(name, str) else ""
    _check_length(problems, name, "modelPackageGroupName", 63)
    if not re.fullmatch(_ENTITY_NAME, name):
        problems.append(
            f"Value '{name}' at 'modelPackageGroupName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {_ENTITY_NAME}"
        )
    if isinstance(policy, str):
        _check_length(problems, policy, "resourcePolicy", MAX_POLICY_LENGTH)
    _raise_problems(problems)
    group = backend.model_package_groups.get(name)
    if group is None:
        raise ValidationError(
            f"Cannot find Model Package Group: {arn_of(backend, 'model-package-group', name)}"
        )
    return group


@backend_method
def put_model_package_group_policy(
    self: SageMakerModelBackend, model_package_group_name, resource_policy
) -> str:
    group = _policy_group(self, model_package_group_name, resource_policy)
    try:
        _policy.load(resource_policy)
    except _policy.PolicyError as exc:
        raise ValidationError(f"Invalid policy provided: {exc}") from None
    group._harness_resource_policy = resource_policy
    return group.arn


@backend_method
def get_model_package_group_policy(self: SageMakerModelBackend, model_package_group_name) -> str:
    group = _policy_group(self, model_package_group_name)
    policy = getattr(group, "_harness_resource_policy", None)
    if policy is None:
        raise ValidationError(f"Cannot find resource policy for: {group.arn}")
    return policy


@backend_method
def delete_model_package_group_policy(self: SageMakerModelBackend, model_package_group_name) -> None:
    group = _policy_group(self, model_package_group_name)
    if getattr(group, "_harness_resource_policy", None) is None:
        raise ValidationError(f"Cannot find resource policy for: {group.arn}")
    group._harness_resource_policy = None


@response_method
def respond_put_model_package_group_policy(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.put_model_package_group_policy(
        self._get_param("ModelPackageGroupName"), self._get_param("ResourcePolicy")
    )
    return ActionResult({"ModelPackageGroupArn": arn})


@response_method
def respond_get_model_package_group_policy(self: SageMakerResponse) -> ActionResult:
    policy = self.sagemaker_backend.get_model_package_group_policy(self._get_param("ModelPackageGroupName"))
    return ActionResult({"ResourcePolicy": policy})


@response_method
def respond_delete_model_package_group_policy(self: SageMakerResponse) -> EmptyResult:
    self.sagemaker_backend.delete_model_package_group_policy(self._get_param("ModelPackageGroupName"))
    return EmptyResult()


# -- ARNs of other accounts ------------------------------------------------------------


def is_foreign(backend: SageMakerModelBackend, name_or_arn: Any) -> bool:
    """True for an ARN of another account or region than ``backend``'s."""
    match = _ARN.match(name_or_arn) if isinstance(name_or_arn, str) else None
    return bool(match) and (match.group("account"), match.group("region")) != (
        backend.account_id,
        backend.region_name,
    )


def owner_of(backend: SageMakerModelBackend, arn: str) -> SageMakerModelBackend:
    """The backend holding the resource an ARN names (``backend`` for a name)."""
    match = _ARN.match(arn or "")
    if match is None:
        return backend
    return sagemaker_backends[match.group("account")][match.group("region")]


def _caller() -> tuple[Caller, str] | None:
    response = getattr(_request, "response", None)
    if response is None:
        return None
    caller = caller_identity(response.get_access_key(), response.current_account, response.region)
    return caller, response._get_action()


def foreign_package(backend: SageMakerModelBackend, arn: str):
    """The model package a foreign ARN names, if its group's resource policy lets the caller
    act on it (see the module docstring)."""
    match = _ARN.match(arn)
    owner = owner_of(backend, arn)
    package_id = match.group("id").lower()
    package_arn = arn_of(owner, "model-package", package_id)
    request = _caller()
    if match.group("region") != backend.region_name or request is None:
        raise ValidationError(f"ModelPackage {package_arn} does not exist.")
    caller, operation = request
    action = PACKAGE_ACTION.get(operation, f"sagemaker:{operation}")
    group_name = package_id.split("/", 1)[0] if "/" in package_id else None
    group = next(
        (g for n, g in list(owner.model_package_groups.items()) if group_name and n.lower() == group_name),
        None,
    )
    _authorize(caller, action, package_arn, group)
    package = owner.model_packages.get(package_arn)
    if package is None:
        raise ValidationError(f"ModelPackage {package_arn} does not exist.")
    return package


def foreign_group(backend: SageMakerModelBackend, arn: str):
    """The model package group a foreign ARN names, if its resource policy lets the caller
    act on it."""
    match = _ARN.match(arn)
    owner = owner_of(backend, arn)
    name = match.group("id")
    group_arn = arn_of(owner, "model-package-group", name)
    request = _caller()
    if match.group("region") != backend.region_name or request is None:
        raise ValidationError(f"ModelPackageGroup {group_arn} does not exist.")
    caller, operation = request
    group = owner.model_package_groups.get(name)
    _authorize(caller, f"sagemaker:{operation}", group_arn, group)
    return group


def _authorize(caller: Caller, action: str, resource: str, group) -> None:
    text = getattr(group, "_harness_resource_policy", None) if group is not None else None
    decision = None
    if text is not None:
        decision = _policy.decide(
            _policy.load(text),
            _policy.Request(
                principal_arn=caller.arn, account=caller.account, action=action, resource=resource
            ),
        )
    if decision == "Allow":
        return
    why = (
        "with an explicit deny in a resource-based policy"
        if decision == "Deny"
        else f"because no resource-based policy allows the {action} action"
    )
    raise AccessDeniedException(
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} {why}"
    )
