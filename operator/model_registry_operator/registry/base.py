"""The registry backend interface. Controllers speak only to this; SageMaker implements it.

Requests and responses are the SageMaker API shapes (PascalCase members, as boto3 takes and
returns them): the API types produce them, so no second vocabulary exists. `None` means
"does not exist". Every method raises only `errors.RetryableError` (throttling, 5xx,
timeouts) or `errors.TerminalError` (validation, access, conflicts) with the API's message.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .. import OWNER_UID_KEY  # noqa: F401  (re-exported: the registry's callers use it from here)

Shape = dict[str, Any]


class Registry(Protocol):
    # model package groups
    def describe_group(self, name_or_arn: str) -> Shape | None: ...
    def create_group(self, request: Shape) -> str: ...  # CreateModelPackageGroup request -> ARN
    def delete_group(self, name: str) -> None: ...  # absent is not an error

    # model packages
    # every ModelPackageSummary of a group, all pages
    def list_packages(self, group: str) -> list[Shape]: ...
    # DescribeModelPackage shape; created_after (optional): the object's creationTimestamp
    # less a clock-skew margin, so older versions are not even looked at
    def find_package_by_owner(self, group: str, uid: str, created_after: datetime | None = None) -> Shape | None: ...
    def create_package(self, request: Shape) -> str: ...  # CreateModelPackage request (with ClientToken) -> ARN
    def describe_package(self, name_or_arn: str) -> Shape | None: ...
    def update_package(self, request: Shape) -> None: ...  # UpdateModelPackage request
    def delete_package(self, name_or_arn: str) -> None: ...  # absent is not an error

    # models
    def describe_model(self, name: str) -> Shape | None: ...
    def create_model(self, request: Shape) -> str: ...  # CreateModel request -> ARN
    def delete_model(self, name: str) -> None: ...  # absent is not an error

    # tags, on any ARN: desired replaces current (AddTags for new/changed, DeleteTags for removed)
    def list_tags(self, arn: str) -> dict[str, str]: ...
    def sync_tags(self, arn: str, desired: dict[str, str]) -> bool: ...  # True when something changed
