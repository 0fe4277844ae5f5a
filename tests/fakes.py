"""An in-memory Registry for unit tests of the reconcile logic (no HTTP, no moto).

It follows the documented SageMaker behaviour the controllers rely on: versions numbered
per group, ClientToken idempotency, UpdateModelPackage changing only the members passed,
CustomerMetadataPropertiesToRemove, append-only additional inference specifications,
non-empty groups refusing deletion, CreatedBy/LastModifiedBy (`identity`, or
`changed_elsewhere` for a change made outside the operator), tags given at creation kept and synced by the same rule
as SageMakerRegistry.sync_tags (registry.base.tag_changes). `calls` counts operations; `fail_next(op, error)`
makes the next call of `op` raise; `package_status` sets the status new versions get.
The end-to-end tests check the same behaviours against the real operator and the harness.
"""

from __future__ import annotations

import copy
import datetime
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from model_registry_operator.errors import ReconcileError
from model_registry_operator.registry.base import tag_changes
from model_registry_operator.registry.classify import classify_error

ACCOUNT, REGION = "123456789012", "us-east-2"
OPERATOR_IDENTITY = f"arn:aws:sts::{ACCOUNT}:assumed-role/model-registry-operator/mro"


def sagemaker_error(code: str, message: str) -> ReconcileError:
    """What SageMakerRegistry raises for this SageMaker answer: the same classification."""
    return classify_error(ClientError({"Error": {"Code": code, "Message": message}}, "SageMaker"))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


class FakeRegistry:
    def __init__(self, account: str = ACCOUNT, region: str = REGION) -> None:
        self.account, self.region = account, region  # of the ARNs it makes
        self.groups: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, dict[str, Any]] = {}  # by ARN
        self.models: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.group_policies: dict[str, str] = {}  # group name -> resource policy text, as put
        self.tokens: dict[str, str] = {}
        self.last_version: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.package_status = "Completed"
        self.recorded: dict[str, str] | None = None  # the last find_package's `recorded`, called
        # who the calls come from: SageMaker's CreatedBy/LastModifiedBy (UserContext) of what they change
        self.identity: dict[str, Any] = {"IamIdentity": {"Arn": OPERATOR_IDENTITY}}
        self._failures: dict[str, list[ReconcileError]] = {}

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name}"

    # test controls

    def fail_next(self, op: str, error: ReconcileError, times: int = 1) -> None:
        self._failures.setdefault(op, []).extend([error] * times)

    def _call(self, op: str, request: dict[str, Any] | None = None) -> None:
        self.calls[op] += 1
        self.requests.append((op, copy.deepcopy(request or {})))
        if self._failures.get(op):
            raise self._failures[op].pop(0)

    def creates(self) -> int:
        return sum(self.calls[op] for op in ("create_group", "create_package", "create_model"))

    # groups

    def describe_group(self, name_or_arn: str) -> dict[str, Any] | None:
        self._call("describe_group")
        group = self.groups.get(name_or_arn.rsplit("/", 1)[-1])
        return copy.deepcopy(group) if group else None

    def create_group(self, request: dict[str, Any]) -> str:
        self._call("create_group", request)
        name = request["ModelPackageGroupName"]
        if name in self.groups:
            raise sagemaker_error("ValidationException", f"Model Package Group {name} already exists.")
        group_arn = self.arn("model-package-group", name)
        self.groups[name] = {
            "ModelPackageGroupName": name,
            "ModelPackageGroupArn": group_arn,
            "ModelPackageGroupStatus": "Completed",
            "CreationTime": _now(),
            "ModelPackageGroupDescription": request.get("ModelPackageGroupDescription"),
        }
        self.tags[group_arn] = {t["Key"]: t["Value"] for t in request.get("Tags") or []}
        return group_arn

    def delete_group(self, name: str) -> None:
        self._call("delete_group")
        if self._versions(name):
            raise sagemaker_error("ConflictException", f"Model Package Group {name} is not empty.")
        self.groups.pop(name, None)
        self.group_policies.pop(name, None)

    # group resource policies: the text as put; no policy (or no group) is None, as
    # SageMakerRegistry reads SageMaker's ValidationException "Cannot find resource policy ..."

    def get_group_policy(self, name: str) -> str | None:
        self._call("get_group_policy")
        return self.group_policies.get(name)

    def put_group_policy(self, name: str, policy_json: str) -> None:
        self._call("put_group_policy", {"ModelPackageGroupName": name, "ResourcePolicy": policy_json})
        if name not in self.groups:
            raise sagemaker_error("ValidationException", f"Cannot find Model Package Group: {name}")
        self.group_policies[name] = policy_json

    def delete_group_policy(self, name: str) -> None:
        self._call("delete_group_policy")
        self.group_policies.pop(name, None)

    # packages

    def _versions(self, group: str) -> list[dict[str, Any]]:
        return [p for p in self.packages.values() if p.get("ModelPackageGroupName") == group]

    def list_packages(self, group: str) -> list[dict[str, Any]]:
        self._call("list_packages")
        keys = (
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "CreationTime",
            "ModelPackageStatus",
            "ModelApprovalStatus",
        )
        return [{k: p[k] for k in keys if k in p} for p in self._versions(group)]

    def find_package(self, group: str, marks: dict[str, str], recorded: Any = None) -> dict[str, Any] | None:
        self._call("find_package")
        self.recorded = recorded() if recorded is not None else None
        for package in self._versions(group):
            metadata = package.get("CustomerMetadataProperties") or {}
            if any(metadata.get(key) == value for key, value in marks.items()):
                return copy.deepcopy(package)
        return None

    def create_package(self, request: dict[str, Any]) -> str:
        self._call("create_package", request)
        token = request.get("ClientToken")
        if token in self.tokens:
            return self.tokens[token]
        group = request.get("ModelPackageGroupName")
        if group:
            if group not in self.groups:
                raise sagemaker_error("ValidationException", f"Model Package Group {group} does not exist.")
            # versions count up and are never reused, also after a delete (as in SageMaker)
            version = self.last_version[group] = self.last_version.get(group, 0) + 1
            package_arn = self.arn("model-package", f"{group}/{version}")
            package = {
                "ModelPackageGroupName": group,
                "ModelPackageVersion": version,
                "ModelApprovalStatus": request.get("ModelApprovalStatus", "PendingManualApproval"),
            }
        else:
            name = request["ModelPackageName"]
            package_arn = self.arn("model-package", name)
            package = {"ModelPackageName": name}
        package.update({k: copy.deepcopy(v) for k, v in request.items() if k not in ("ClientToken", "Tags")})
        package.update(
            ModelPackageArn=package_arn,
            ModelPackageStatus=self.package_status,
            CreationTime=_now(),
            LastModifiedTime=_now(),
            CreatedBy=copy.deepcopy(self.identity),
            LastModifiedBy=copy.deepcopy(self.identity),
        )
        self.packages[package_arn] = package
        if token:
            self.tokens[token] = package_arn
        return package_arn

    def describe_package(self, name_or_arn: str) -> dict[str, Any] | None:
        self._call("describe_package")
        package = self.packages.get(name_or_arn) or self.packages.get(self.arn("model-package", name_or_arn))
        return copy.deepcopy(package) if package else None

    def update_package(self, request: dict[str, Any]) -> None:
        self._call("update_package", request)
        package = self.packages.get(request["ModelPackageArn"])
        if package is None:
            raise sagemaker_error("ValidationException", "Model package does not exist.")
        for key, value in request.items():
            if key == "CustomerMetadataProperties":
                package.setdefault(key, {}).update(value)
            elif key == "CustomerMetadataPropertiesToRemove":
                for removed in value:
                    package.get("CustomerMetadataProperties", {}).pop(removed, None)
            elif key == "AdditionalInferenceSpecificationsToAdd":
                package.setdefault("AdditionalInferenceSpecifications", []).extend(copy.deepcopy(value))
            elif key not in ("ModelPackageArn", "ClientToken"):
                package[key] = copy.deepcopy(value)
        package["LastModifiedTime"] = _now()
        package["LastModifiedBy"] = copy.deepcopy(self.identity)

    def changed_elsewhere(self, package_arn: str, who: dict[str, Any], **members: Any) -> None:
        """A change made outside the operator (Studio, the CLI) by `who` (a UserContext)."""
        package = self.packages[package_arn]
        package.update(copy.deepcopy(members))
        package.update(LastModifiedTime=_now(), LastModifiedBy=copy.deepcopy(who))

    def delete_package(self, name_or_arn: str) -> None:
        self._call("delete_package")
        self.packages.pop(name_or_arn, None)

    # models

    def describe_model(self, name: str) -> dict[str, Any] | None:
        self._call("describe_model")
        model = self.models.get(name)
        return copy.deepcopy(model) if model else None

    def create_model(self, request: dict[str, Any]) -> str:
        self._call("create_model", request)
        name = request["ModelName"]
        if name in self.models:
            raise sagemaker_error("ValidationException", f"Cannot create already existing model {name}.")
        model_arn = self.arn("model", name)
        self.models[name] = {**copy.deepcopy(request), "ModelArn": model_arn, "CreationTime": _now()}
        self.tags[model_arn] = {t["Key"]: t["Value"] for t in request.get("Tags") or []}
        return model_arn

    def delete_model(self, name: str) -> None:
        self._call("delete_model")
        self.models.pop(name, None)

    # tags

    def list_tags(self, resource_arn: str) -> dict[str, str]:
        self._call("list_tags")
        return dict(self.tags.get(resource_arn, {}))

    def sync_tags(
        self, resource_arn: str, desired: dict[str, str], current: dict[str, str] | None = None
    ) -> bool:
        if current is None:
            current = self.list_tags(resource_arn)
        to_add, to_remove = tag_changes(current, desired)
        if not (to_add or to_remove):
            return False
        self._call("sync_tags", {"Tags": to_add, "TagKeys": to_remove})
        tags = self.tags.setdefault(resource_arn, {})
        tags.update(to_add)
        for key in to_remove:
            tags.pop(key, None)
        return True
