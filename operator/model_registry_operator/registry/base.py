"""The registry backend interface. Controllers speak only to this; SageMaker implements it.

Requests and responses are the SageMaker API shapes (PascalCase members, as boto3 takes and
returns them): the API types produce them, so no second vocabulary exists. `None` means
"does not exist". Every method raises only `errors.RetryableError` (throttling, 5xx,
timeouts) or `errors.TerminalError` (validation, access, conflicts) with the API's message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .. import OWNER_UID_KEY as OWNER_UID_KEY

Shape = dict[str, Any]

# Tags SageMaker and AWS maintain themselves (Studio projects, domains, aws: system tags).
# Tag sync never removes them: they are not the spec's to own.
RESERVED_TAG_PREFIXES = ("aws:", "sagemaker:")

# SageMaker names are account-wide, Kubernetes objects namespaced: the operator tags each
# group and model it creates (or adopts) with OWNER_UID_KEY = the object's UID, to tell its
# own from another object's of the same name. Tag sync adds that tag, never changes or removes it.


def owner_tag(uid: str) -> dict[str, str]:
    return {OWNER_UID_KEY: uid}


def with_owner_tag(request: dict[str, Any], uid: str) -> dict[str, Any]:
    """A CreateModelPackageGroup/CreateModel request carrying the owner tag besides the spec's."""
    return {**request, "Tags": [*request.get("Tags", []), {"Key": OWNER_UID_KEY, "Value": uid}]}


def other_owner(tags: dict[str, str], uid: str) -> str | None:
    """The UID of another object the owner tag names, or None (ours, or no owner tag)."""
    owner = tags.get(OWNER_UID_KEY)
    return owner if owner and owner != uid else None


def not_deletable(tags: dict[str, str], uid: str, recorded: bool) -> str | None:
    """Why the SageMaker object with these tags is not the object `uid`'s to delete (a phrase
    for an Event), or None when it is: its owner tag names `uid`, or it has none and the
    object's status records it (`recorded`: made before owner tags)."""
    other = other_owner(tags, uid)
    if other:
        return f"is managed by another Kubernetes object (UID {other})"
    if OWNER_UID_KEY not in tags and not recorded:
        return "was neither created nor adopted by this object"
    return None


def tag_changes(current: dict[str, str], desired: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(tags to add or overwrite, keys to remove) to make `current` the `desired` tags,
    leaving reserved keys and an owner tag already set alone."""
    to_add = {
        k: v for k, v in desired.items() if current.get(k) != v and not (k == OWNER_UID_KEY and k in current)
    }
    to_remove = [
        k
        for k in current
        if k not in desired and k != OWNER_UID_KEY and not k.startswith(RESERVED_TAG_PREFIXES)
    ]
    return to_add, to_remove


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
    def find_package_by_owner(
        self, group: str, uid: str, created_after: datetime | None = None
    ) -> Shape | None: ...
    def create_package(
        self, request: Shape
    ) -> str: ...  # CreateModelPackage request (with ClientToken) -> ARN
    def describe_package(self, name_or_arn: str) -> Shape | None: ...
    def update_package(self, request: Shape) -> None: ...  # UpdateModelPackage request
    def delete_package(self, name_or_arn: str) -> None: ...  # absent is not an error

    # models
    def describe_model(self, name: str) -> Shape | None: ...
    def create_model(self, request: Shape) -> str: ...  # CreateModel request -> ARN
    def delete_model(self, name: str) -> None: ...  # absent is not an error

    # tags, on any ARN: desired replaces current (AddTags for new/changed, DeleteTags for
    # removed) as tag_changes says; `current`: the tags just listed, so none are listed again
    def list_tags(self, arn: str) -> dict[str, str]: ...
    def sync_tags(
        self, arn: str, desired: dict[str, str], current: dict[str, str] | None = None
    ) -> bool: ...  # True when something changed
