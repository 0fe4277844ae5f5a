"""Model package groups and model packages: the model registry itself.

moto 5.2.5 deviates from the API reference here (quotes are from botocore's SageMaker
service model, ``botocore.session.get_session().get_service_model("sagemaker")``, and
from the seed pages in /work/shared/seeds/):

- DeleteModelPackage / DeleteModelPackageGroup are missing (NotImplementedError, HTTP 500).
- Version numbers are ``len(versions) + 1``, so after a delete a new version reuses (and
  overwrites) an existing number.
- UpdateModelPackage overwrites ApprovalDescription and CustomerMetadataProperties with
  None when they are not passed, crashes on CustomerMetadataPropertiesToRemove alone, and
  ignores most of the updatable members.
- ClientToken is stored but not honoured; duplicate names silently overwrite.
- A group ARN is not accepted where the API takes "the name or ARN"; DescribeModelPackage
  resolves a bare group name to its latest version.
- ModelPackageStatus is always Completed.
- CreatedBy / LastModifiedBy (UserContext) are a made-up Studio user profile
  ("fake-user-profile-name", "fake-domain-id") for every caller, and an update copies
  CreatedBy into LastModifiedBy. UserContext: "Information about the user who created or
  modified a SageMaker resource", IamIdentity.Arn "The Amazon Resource Name (ARN) of the
  IAM identity", PrincipalId "The ID of the principal that assumes the IAM identity". Here
  they name the caller's IAM identity: the one configured for the request's access key
  (``HarnessConfig.set_identity``, control API ``/_harness/identities``), else the one
  moto's STS GetCallerIdentity answers for that key; no Studio user profile unless one is
  configured.
- ListModelPackages summaries carry the whole description; ModelPackageSummary has only
  its ten members (no CreatedBy, LastModifiedBy, InferenceSpecification...).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ConflictException, ValidationError
from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
from moto.sts.models import sts_backends

from ..config import CONFIG
from . import group_policies
from ._common import ARN, arn_of, backend_method, harness_state, name_from, response_method

# Members moto's ModelPackage does not keep. Stored as sent and answered by Describe.
EXTRA_MEMBERS = (
    "ModelPackageRegistrationType",
    "SkipModelValidation",
    "SourceUri",
    "SecurityConfig",
    "ModelCard",
    "ModelLifeCycle",
    "ManagedStorageType",
)

# UpdateModelPackage members that replace the stored value when passed (botocore input
# shape of UpdateModelPackage). The others are handled one by one below.
REPLACED_ON_UPDATE = (
    "InferenceSpecification",
    "SourceUri",
    "ModelCard",
    "ModelLifeCycle",
    "ModelPackageRegistrationType",
)

# "AdditionalInferenceSpecificationsToAdd ... Total number of additional Inference
# Specifications can not exceed 15." (botocore UpdateModelPackage documentation)
MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS = 15

# botocore's ModelPackageSummary members: what a ListModelPackages entry holds.
SUMMARY_MEMBERS = (
    "ModelPackageName",
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageDescription",
    "CreationTime",
    "ModelPackageStatus",
    "ModelApprovalStatus",
    "ModelLifeCycle",
    "ModelPackageRegistrationType",
)

_lock = threading.RLock()  # the server is threaded; create/delete must not interleave
clock = time.monotonic  # a module attribute, so that tests can move time without waiting


def apply() -> None:
    original_response_object = ModelPackage.gen_response_object

    def gen_response_object(self: ModelPackage) -> dict[str, Any]:
        response = original_response_object(self)
        response.update(getattr(self, "_harness_extra", {}))
        status = _status(self)
        response["ModelPackageStatus"] = status
        detail = {"Pending": "NotStarted", "InProgress": "InProgress"}.get(status, "Completed")
        for statuses in response.get("ModelPackageStatusDetails", {}).values():
            for entry in statuses:
                entry["Status"] = detail
        return response

    ModelPackage.gen_response_object = gen_response_object


# -- lookups ---------------------------------------------------------------------------


def _group_arn(backend: SageMakerModelBackend, name: str) -> str:
    return arn_of(backend, "model-package-group", name)


@backend_method
def _harness_group(self: SageMakerModelBackend, name_or_arn: str):
    # DescribeModelPackageGroup.ModelPackageGroupName pattern starts with an optional
    # "arn:aws...:sagemaker:...:[a-z\-]*\/" prefix: a name or an ARN is accepted.
    if group_policies.is_foreign(self, name_or_arn):  # another account's, if its policy allows
        return group_policies.foreign_group(self, name_or_arn)
    name = name_from(name_or_arn, "model-package-group")
    group = self.model_package_groups.get(name)
    if group is None:
        raise ValidationError(f"ModelPackageGroup {_group_arn(self, name)} does not exist.")
    return group


@backend_method
def _harness_package(self: SageMakerModelBackend, name_or_arn: str) -> ModelPackage:
    # DescribeModelPackage.ModelPackageName: "The name or Amazon Resource Name (ARN) of the
    # model package", pattern "(arn:...\/)?(name)(\/[0-9]{1,9})?": an ARN, "group/3", or
    # the name of an unversioned package. A bare group name is not a package.
    if group_policies.is_foreign(self, name_or_arn):  # another account's, if its policy allows
        return group_policies.foreign_package(self, name_or_arn)
    match = ARN.match(name_or_arn or "")
    package_id = match.group("id") if match else name_or_arn
    arn = arn_of(self, "model-package", (package_id or "").lower())
    package = self.model_packages.get(arn)
    if package is None:
        raise ValidationError(f"ModelPackage {arn} does not exist.")
    return package


def _status(package: ModelPackage) -> str:
    remaining = getattr(package, "_harness_ready_at", 0.0) - clock()
    if remaining <= 0:
        return "Completed"
    return "Pending" if remaining > package._harness_delay / 2 else "InProgress"


# -- groups ----------------------------------------------------------------------------

original_create_group = SageMakerModelBackend.create_model_package_group


@backend_method
def create_model_package_group(self, model_package_group_name, model_package_group_description, tags=None):
    # AWS refuses an existing name with ValidationException "Model Package Group already
    # exists: <arn>" (moto overwrites the group, and so would lose its versions' parent).
    with _lock:
        if model_package_group_name in self.model_package_groups:
            raise ValidationError(
                f"Model Package Group already exists: {_group_arn(self, model_package_group_name)}"
            )
        return original_create_group(self, model_package_group_name, model_package_group_description, tags)


@backend_method
def describe_model_package_group(self, model_package_group_name: str):
    return self._harness_group(model_package_group_name)


@backend_method
def delete_model_package_group(self, model_package_group_name: str) -> None:
    # "DeleteModelPackageGroup: Deletes the specified model group." Its only documented
    # error is ConflictException, "There was a conflict when you attempted to modify a
    # SageMaker entity": a group that still holds versions is not deleted.
    with _lock:
        group = self._harness_group(model_package_group_name)
        owner = group_policies.owner_of(self, group.arn)  # another account's shared group: its own
        name = group.model_package_group_name
        versions = [p for p in owner.model_packages.values() if p.model_package_group_name == name]
        if versions:
            raise ConflictException(
                f"Cannot delete model package group {group.arn}: it still contains "
                f"{len(versions)} model package(s). Delete them first."
            )
        del owner.model_package_groups[name]
        harness_state(owner, "last_version", dict).pop(name, None)


@response_method
def respond_delete_model_package_group(self) -> EmptyResult:
    self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
    return EmptyResult()


@response_method
def respond_describe_model_package_group(self) -> ActionResult:
    group = self.sagemaker_backend.describe_model_package_group(self._get_param("ModelPackageGroupName"))
    return ActionResult(group.gen_response_object())


# -- packages --------------------------------------------------------------------------


def caller_of(response) -> dict[str, Any]:
    """The UserContext of the request's signer (see the module docstring)."""
    access_key_id = response.get_access_key()
    configured = CONFIG.identity(access_key_id)
    if configured is not None:
        return configured
    sts = sts_backends[response.current_account]["global"]
    principal_id, arn, _ = sts.get_caller_identity(access_key_id, response.region)
    return {"IamIdentity": {"Arn": arn, "PrincipalId": principal_id}}


@backend_method
def create_model_package(
    self, *, model_package_name, model_package_group_name, client_token, extra=None, caller=None, **members
) -> str:
    with _lock:
        if model_package_group_name and members.get("tags") is not None:
            # CreateModelPackage.Tags: "If you supply ModelPackageGroupName, your model
            # package belongs to the model group you specify and uses the tags associated
            # with the model group. In this case, you cannot supply a tag argument."
            raise ValidationError(
                "Tags cannot be supplied when ModelPackageGroupName is: a model package version "
                "uses the tags of its model package group."
            )
        tokens = harness_state(self, "client_tokens", dict)
        # CreateModelPackage.ClientToken: "A unique token that guarantees that the call to
        # this API is idempotent." The same token answers the package it created.
        if client_token and tokens.get(client_token) in self.model_packages:
            return tokens[client_token]
        if model_package_group_name and model_package_name:
            raise ValidationError(
                "Both ModelPackageName and ModelPackageGroupName are provided in the input. "
                "Cannot determine which one to use."
            )
        if not model_package_group_name and not model_package_name:
            raise ValidationError("Missing ARN.")
        if model_package_group_name:
            # "ModelPackageGroupName: The name or Amazon Resource Name (ARN) of the model
            # package group that this model version belongs to."
            group = self._harness_group(model_package_group_name)
            if group_policies.is_foreign(self, model_package_group_name):
                # a version registered in another account's shared group is that account's
                owner = group_policies.owner_of(self, group.arn)
                return owner.create_model_package(
                    model_package_name=model_package_name,
                    model_package_group_name=group.model_package_group_name,
                    client_token=client_token,
                    extra=extra,
                    caller=caller,
                    **members,
                )
            name = group.model_package_group_name
            # Versions count up and are never reused: moto's len(versions) + 1 would hand
            # out a deleted version's number again.
            last_version = harness_state(self, "last_version", dict)
            version = last_version.get(name, 0) + 1
            last_version[name] = version
            package_type = "Versioned"
        else:
            name, version, package_type = model_package_name, None, "Unversioned"
            arn = arn_of(self, "model-package", name.lower())
            if arn in self.model_packages:
                # Names identify unversioned packages; a second create is refused, not
                # applied over the first.
                raise ValidationError(f"Model Package already exists: {arn}")
        package = ModelPackage(
            model_package_name=name,
            model_package_group_name=name if version else None,
            model_package_version=version,
            approval_description=None,
            client_token=client_token,
            region_name=self.region_name,
            account_id=self.account_id,
            model_package_type=package_type,
            **members,
        )
        package._harness_extra = dict(extra or {})
        if caller is not None:
            package.created_by = caller
        delay = CONFIG.status_delay_seconds
        package._harness_delay = delay
        package._harness_ready_at = clock() + delay
        self.model_packages[package.arn] = package
        self.model_package_name_mapping[package.arn] = package.arn
        if client_token:
            tokens[client_token] = package.arn
        return package.arn


CREATE_MEMBERS = {
    "ModelPackageName": "model_package_name",
    "ModelPackageGroupName": "model_package_group_name",
    "ModelPackageDescription": "model_package_description",
    "InferenceSpecification": "inference_specification",
    "ValidationSpecification": "validation_specification",
    "SourceAlgorithmSpecification": "source_algorithm_specification",
    "Tags": "tags",
    "ModelApprovalStatus": "model_approval_status",
    "MetadataProperties": "metadata_properties",
    "ModelMetrics": "model_metrics",
    "ClientToken": "client_token",
    "CustomerMetadataProperties": "customer_metadata_properties",
    "DriftCheckBaselines": "drift_check_baselines",
    "Domain": "domain",
    "Task": "task",
    "SamplePayloadUrl": "sample_payload_url",
    "AdditionalInferenceSpecifications": "additional_inference_specifications",
}


@response_method
def respond_create_model_package(self) -> ActionResult:
    members = {snake: self._get_param(api) for api, snake in CREATE_MEMBERS.items()}
    members["certify_for_marketplace"] = self._get_param("CertifyForMarketplace", False)
    extra = {m: self._get_param(m) for m in EXTRA_MEMBERS if self._get_param(m) is not None}
    arn = self.sagemaker_backend.create_model_package(**members, extra=extra, caller=caller_of(self))
    return ActionResult({"ModelPackageArn": arn})


@backend_method
def describe_model_package(self, model_package_name: str) -> ModelPackage:
    return self._harness_package(model_package_name)


@backend_method
def delete_model_package(self, model_package_name: str) -> None:
    # "DeleteModelPackage: Deletes a model package." ModelPackageName: "The name or Amazon
    # Resource Name (ARN) of the model package to delete."
    with _lock:
        package = self._harness_package(model_package_name)
        owner = group_policies.owner_of(self, package.arn)  # another account's shared package: its own
        del owner.model_packages[package.arn]
        for key, value in list(owner.model_package_name_mapping.items()):
            if value == package.arn:
                del owner.model_package_name_mapping[key]


@response_method
def respond_delete_model_package(self) -> EmptyResult:
    self.sagemaker_backend.delete_model_package(self._get_param("ModelPackageName"))
    return EmptyResult()


@backend_method
def update_model_package(self, model_package_arn: str, caller: dict | None = None, **members: Any) -> str:
    # UpdateModelPackage changes what it is given and nothing else (AWS CLI
    # update-model-package, seed 004: every member but --model-package-arn is optional).
    with _lock:
        package = self._harness_package(model_package_arn)
        if members.get("ModelApprovalStatus") is not None:
            package.set_model_approval_status(members["ModelApprovalStatus"])
        if members.get("ApprovalDescription") is not None:
            package.approval_description = members["ApprovalDescription"]
        metadata = dict(package.customer_metadata_properties or {})
        # "CustomerMetadataProperties: The metadata properties associated with the model
        # package versions." Passed keys are set; keys not passed are kept.
        metadata.update(members.get("CustomerMetadataProperties") or {})
        # "CustomerMetadataPropertiesToRemove: The metadata properties associated with the
        # model package versions to remove." Works on its own.
        for key in members.get("CustomerMetadataPropertiesToRemove") or []:
            metadata.pop(key, None)
        package.customer_metadata_properties = metadata or None
        to_add = members.get("AdditionalInferenceSpecificationsToAdd")
        if to_add:
            _append_additional_specifications(package, to_add)
        for member in REPLACED_ON_UPDATE:
            if members.get(member) is None:
                continue
            if member == "InferenceSpecification":
                package.inference_specification = members[member]
            else:
                package._harness_extra = {**getattr(package, "_harness_extra", {}), member: members[member]}
        # LastModifiedTime / LastModifiedBy: who made this update (moto's
        # modifications_done() would copy CreatedBy)
        package.last_modified_time = utcnow()
        package.last_modified_by = caller if caller is not None else package.created_by
        return package.arn


def _append_additional_specifications(package: ModelPackage, to_add: list[dict]) -> None:
    # "An array of additional Inference Specification objects to be added to the existing
    # array additional Inference Specification. Total number of additional Inference
    # Specifications can not exceed 15." and, for Name, "The name must be unique within
    # the list of your additional inference specifications for a particular model package."
    existing = list(package.additional_inference_specifications or [])
    names = [spec.get("Name") for spec in existing]
    for spec in to_add:
        if spec.get("Name") in names:
            raise ValidationError(
                f"An additional inference specification named {spec.get('Name')!r} already "
                f"exists for model package {package.arn}. Names must be unique."
            )
        names.append(spec.get("Name"))
    if len(existing) + len(to_add) > MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS:
        raise ValidationError(
            f"Total number of additional inference specifications can not exceed "
            f"{MAX_ADDITIONAL_INFERENCE_SPECIFICATIONS}: model package {package.arn} has "
            f"{len(existing)} and {len(to_add)} were to be added."
        )
    package.validate_additional_inference_specifications(to_add)
    package.additional_inference_specifications = existing + list(to_add)


UPDATE_MEMBERS = (
    "ModelApprovalStatus",
    "ApprovalDescription",
    "CustomerMetadataProperties",
    "CustomerMetadataPropertiesToRemove",
    "AdditionalInferenceSpecificationsToAdd",
    "InferenceSpecification",
    "SourceUri",
    "ModelCard",
    "ModelLifeCycle",
    "ModelPackageRegistrationType",
    "ClientToken",
)


@response_method
def respond_update_model_package(self) -> ActionResult:
    members = {member: self._get_param(member) for member in UPDATE_MEMBERS}
    arn = self.sagemaker_backend.update_model_package(
        self._get_param("ModelPackageArn"), caller=caller_of(self), **members
    )
    return ActionResult({"ModelPackageArn": arn})


@response_method
def respond_list_model_packages(self) -> ActionResult:
    group = self._get_param("ModelPackageGroupName")
    backend = self.sagemaker_backend
    if group and group_policies.is_foreign(backend, group):
        # another account's group: listed from its account, if its policy allows
        backend = group_policies.owner_of(backend, backend._harness_group(group).arn)
    if group:
        # "ModelPackageGroupName: A filter that returns only model versions that belong
        # to the specified model group." (name or ARN, by its pattern)
        group = name_from(group, "model-package-group")
    packages, next_token = backend.list_model_packages(
        creation_time_after=self._get_param("CreationTimeAfter"),
        creation_time_before=self._get_param("CreationTimeBefore"),
        max_results=self._get_param("MaxResults"),
        name_contains=self._get_param("NameContains"),
        model_approval_status=self._get_param("ModelApprovalStatus"),
        model_package_group_name=group,
        model_package_type=self._get_param("ModelPackageType", "Unversioned"),
        next_token=self._get_param("NextToken"),
        sort_by=self._get_param("SortBy"),
        sort_order=self._get_param("SortOrder"),
    )
    summaries = [{k: v for k, v in p.gen_response_object().items() if k in SUMMARY_MEMBERS} for p in packages]
    return ActionResult({"ModelPackageSummaryList": summaries, "NextToken": next_token})
