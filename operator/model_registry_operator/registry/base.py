"""The registry backend interface. Controllers speak only to this; SageMaker implements it.

Requests and responses are the SageMaker API shapes (PascalCase members, as boto3 takes and
returns them): the API types produce them, so no second vocabulary exists. `None` means
"does not exist". Every method raises only `errors.RetryableError` (throttling, 5xx,
timeouts) or `errors.TerminalError` (validation, access, conflicts) with the API's message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .. import OWNER_UID_KEY as OWNER_UID_KEY
from ..identity import MARKER_KEYS, Claim, Ownership

Shape = dict[str, Any]

# Tags SageMaker and AWS maintain themselves (Studio projects, domains, aws: system tags).
# Tag sync never removes them: they are not the spec's to own.
RESERVED_TAG_PREFIXES = ("aws:", "sagemaker:")

# SageMaker names are account-wide, Kubernetes objects namespaced: each group and model the
# operator creates (or adopts) carries its object's identity (identity.py) as a tag, to tell
# its own from another object's of the same name. Tag sync adds it, never changes or removes it.


def with_marks(request: dict[str, Any], marks: dict[str, str]) -> dict[str, Any]:
    """A CreateModelPackageGroup/CreateModel request carrying the identity tag besides the spec's."""
    return {
        **request,
        "Tags": [*request.get("Tags", []), *({"Key": k, "Value": v} for k, v in marks.items())],
    }


def not_deletable(owner: Ownership, recorded: bool) -> str | None:
    """Why the SageMaker object is not this object's to delete (a phrase for an Event), or None
    when it is: it is marked as this object's, or unmarked and the object's status records it
    (`recorded`: made before owner marks)."""
    if owner.claim is Claim.OTHERS:
        return f"is managed by {owner.owner_text()}"
    if owner.claim is Claim.UNMARKED and not recorded:
        return "was neither created nor adopted by this object"
    return None


def tag_changes(current: dict[str, str], desired: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(tags to add or overwrite, keys to remove) to make `current` the `desired` tags,
    leaving reserved keys and the operator's marks already set alone."""
    to_add = {
        k: v for k, v in desired.items() if current.get(k) != v and not (k in MARKER_KEYS and k in current)
    }
    to_remove = [
        k
        for k in current
        if k not in desired and k not in MARKER_KEYS and not k.startswith(RESERVED_TAG_PREFIXES)
    ]
    return to_add, to_remove


class Registry(Protocol):
    # model package groups
    def describe_group(self, name_or_arn: str) -> Shape | None: ...
    def create_group(self, request: Shape) -> str: ...  # CreateModelPackageGroup request -> ARN
    def delete_group(self, name: str) -> None: ...  # absent is not an error
    # the group's resource policy: its JSON text as SageMaker returns it, None when it has none
    # (or the group does not exist)
    def get_group_policy(self, name: str) -> str | None: ...
    def put_group_policy(self, name: str, policy_json: str) -> None: ...  # replaces any policy
    def delete_group_policy(self, name: str) -> None: ...  # no policy (or no group) is not an error

    # model packages
    # every ModelPackageSummary of a group, all pages
    def list_packages(self, group: str) -> list[Shape]: ...
    # the DescribeModelPackage shape of the version whose customer metadata carries any of
    # `marks` (identity.py), or None; `recorded`: () -> {ARN: identity} of the versions other
    # objects' status records (not described to be looked at: their marks are known)
    def find_package(
        self, group: str, marks: Mapping[str, str], recorded: Callable[[], Mapping[str, str]] | None = None
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
