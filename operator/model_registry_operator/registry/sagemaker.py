"""The registry backend on Amazon SageMaker, with boto3.

One botocore client per registry (one registry per region), created once and shared by all
threads: botocore clients are thread-safe, their creation is not. Endpoint, credentials and
region come from boto3's own configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER,
AWS_REGION / AWS_DEFAULT_REGION, the credential chain); retries use botocore's standard
mode, which backs off with jitter on throttling, 5xx and network errors before anything
reaches the controller.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .. import OWNER_UID_KEY
from ..errors import TerminalError
from ..identity import IDENTITY_KEY, MARKER_KEYS
from ..timing import SAGEMAKER_CONNECT_TIMEOUT, SAGEMAKER_MAX_ATTEMPTS, SAGEMAKER_READ_TIMEOUT
from .base import Shape, tag_changes
from .classify import classify_error, is_not_found
from .requests import tag_map

# Fixed namespace: the same Kubernetes UID gives the same ClientToken in every process.
_CLIENT_TOKEN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "registry.mlops.dev")

# AddTags and DeleteTags take at most 50 tags or keys per call (botocore's model).
_TAG_BATCH = 50

RetryMode = Literal["legacy", "standard", "adaptive"]
_T = TypeVar("_T")


def client_token_for(uid: str, salt: str | int = "") -> str:
    """A deterministic CreateModelPackage ClientToken for the object with this UID.

    The API wants 1-36 characters of [a-zA-Z0-9-]; a name-based UUID (36 characters) of the
    UID and salt fits and is the same in every process. Change `salt` only to deliberately
    create a new version for the same object (for example after it was deleted in SageMaker).
    """
    if not uid:
        raise ValueError("uid: an object UID is required to derive a ClientToken")
    return str(uuid.uuid5(_CLIENT_TOKEN_NAMESPACE, f"{uid}/{salt}"))


def default_config(
    total_max_attempts: int = SAGEMAKER_MAX_ATTEMPTS,
    retry_mode: RetryMode = "standard",
    max_pool_connections: int = 32,
) -> Config:
    """botocore settings for the shared client.

    Standard retry mode retries throttling, 5xx and network errors with exponential backoff
    and jitter, within a per-client retry quota (so a SageMaker outage does not multiply the
    load); `total_max_attempts` counts the first attempt. Timeouts are short because every
    call here is a small control-plane request. The pool is sized for the controller's
    worker threads, which share this one client.
    """
    return Config(
        retries={"mode": retry_mode, "total_max_attempts": total_max_attempts},
        connect_timeout=SAGEMAKER_CONNECT_TIMEOUT,
        read_timeout=SAGEMAKER_READ_TIMEOUT,
        max_pool_connections=max_pool_connections,
        user_agent_extra="model-registry-operator",
    )


class SageMakerRegistry:
    """`registry.base.Registry` on SageMaker. Every method raises only RetryableError or
    TerminalError (see classify.py); describe_* return None and delete_* succeed when the
    object does not exist.

    `calls` counts API calls per operation (each page of a listing is one call),
    `attempts` counts HTTP requests, retries included: the benchmark's "SageMaker calls",
    and `errors` the requests that failed, by (operation, error code), retries included.
    `metrics()` reads all three (the operator's Prometheus endpoint does, at each scrape).
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        session: botocore.session.Session | None = None,
        config: Config | None = None,
    ):
        session = session or botocore.session.get_session()
        region = region or _configured_region(session)
        if not region:
            raise TerminalError(
                "MissingRegion", "No AWS region is configured for the operator; set AWS_REGION."
            )
        self.region = region
        config = config or default_config(**_retry_settings(session))
        self._client = session.create_client("sagemaker", region_name=region, config=config)
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self._metrics_lock = threading.Lock()
        events = self._client.meta.events
        events.register("before-call.sagemaker", self._count_call)
        events.register("before-send.sagemaker", self._count_attempt)
        events.register("response-received.sagemaker", self._count_error)
        # find_package's memory: package ARN -> its owner marks (empty when unmarked) for
        # versions already described, and mark -> ARN. Marks are written once at creation, so
        # what was seen stays true; an ARN is forgotten once deleted or missing.
        self._marks: dict[str, frozenset[tuple[str, str]]] = {}
        self._by_mark: dict[tuple[str, str], str] = {}
        self._marks_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return self._client.meta.endpoint_url

    def metrics(self) -> dict[str, dict[Any, int]]:
        """A consistent copy of the counters (safe to read while other threads call)."""
        with self._metrics_lock:
            return {"calls": dict(self.calls), "attempts": dict(self.attempts), "errors": dict(self.errors)}

    # model package groups

    def describe_group(self, name_or_arn: str) -> Shape | None:
        return self._describe("describe_model_package_group", ModelPackageGroupName=name_or_arn)

    def create_group(self, request: Shape) -> str:
        arn: str = self._call("create_model_package_group", **request)["ModelPackageGroupArn"]
        return arn

    def delete_group(self, name: str) -> None:
        self._delete("delete_model_package_group", ModelPackageGroupName=name)

    # model packages

    def list_packages(self, group: str) -> list[Shape]:
        """Every version summary of `group` (status and approval included), all pages. The
        controllers share one listing per group among its packages (controllers.listings.GroupListings)."""
        return list(self._list_packages(group))

    def find_package(self, group: str, marks: Mapping[str, str]) -> Shape | None:
        """The version of `group` whose CustomerMetadataProperties carry any of `marks` (the
        object's identity, and the UID an earlier release marked its versions with).

        Cost: when this process created or already saw the version, one DescribeModelPackage.
        Otherwise one ListModelPackages call per 100 versions (newest first) plus one
        DescribeModelPackage per version not described before by this process: each version
        is described at most once per process (marks are written at creation and stay).

        The first line of defence against duplicates is the deterministic ClientToken
        (`client_token_for`, filled in by `create_package`): the same token gives the same
        ARN. This lookup is the second, for when the token cannot be relied on (the request
        changed between attempts, the token's idempotency window passed, or the object was
        created again: a re-apply, a rebuilt cluster, with a new UID and the same identity).
        """
        wanted = set(marks.items())
        with self._marks_lock:
            known = next((self._by_mark[m] for m in wanted if m in self._by_mark), None)
        if known:
            described = self.describe_package(known)
            if described is not None and wanted & _marks(described):
                return described
            self._forget(known)
        for summary in self._list_packages(group, newest_first=True):
            arn = summary["ModelPackageArn"]
            with self._marks_lock:
                seen = self._marks.get(arn)
            if seen is not None:
                # described before, maybe by another object's lookup running at the same time
                if wanted & seen:
                    return self.describe_package(arn)
                continue
            described = self.describe_package(arn)
            if described is None:
                continue
            self._remember(arn, _marks(described))
            if wanted & _marks(described):
                return described
        return None

    def create_package(self, request: Shape) -> str:
        marks = _marks(request)
        metadata = request.get("CustomerMetadataProperties") or {}
        owner = metadata.get(IDENTITY_KEY) or metadata.get(OWNER_UID_KEY)
        if owner and "ClientToken" not in request:
            # botocore would fill in a random token, defeating idempotency across restarts
            request = {**request, "ClientToken": client_token_for(owner)}
        group = request.get("ModelPackageGroupName")
        arn: str = self._call("create_model_package", **request)["ModelPackageArn"]
        if group:
            self._remember(arn, marks)
        return arn

    def describe_package(self, name_or_arn: str) -> Shape | None:
        return self._describe("describe_model_package", ModelPackageName=name_or_arn)

    def update_package(self, request: Shape) -> None:
        self._call("update_model_package", **request)

    def delete_package(self, name_or_arn: str) -> None:
        self._delete("delete_model_package", ModelPackageName=name_or_arn)
        self._forget(name_or_arn)

    # models

    def describe_model(self, name: str) -> Shape | None:
        return self._describe("describe_model", ModelName=name)

    def create_model(self, request: Shape) -> str:
        arn: str = self._call("create_model", **request)["ModelArn"]
        return arn

    def delete_model(self, name: str) -> None:
        self._delete("delete_model", ModelName=name)

    # tags

    def list_tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._pages("list_tags", ResourceArn=arn):
            tags.update(tag_map(page.get("Tags")))
        return tags

    def sync_tags(self, arn: str, desired: dict[str, str], current: dict[str, str] | None = None) -> bool:
        """Make the tags of `arn` equal to `desired`, leaving reserved (aws:, sagemaker:) keys
        and an owner tag already set alone (base.tag_changes). AddTags overwrites the value of
        an existing key, so changed values need no delete. Costs one ListTags page (none when
        the caller passes the `current` tags it just listed) plus, only when something
        differs, one AddTags and/or one DeleteTags per 50 keys."""
        if current is None:
            current = self.list_tags(arn)
        added, to_remove = tag_changes(current, desired)
        to_add = [{"Key": k, "Value": v} for k, v in added.items()]
        for batch in _batches(to_add, _TAG_BATCH):
            self._call("add_tags", ResourceArn=arn, Tags=batch)
        for keys in _batches(to_remove, _TAG_BATCH):
            self._call("delete_tags", ResourceArn=arn, TagKeys=keys)
        return bool(to_add or to_remove)

    # plumbing

    def _call(self, method: str, **params: Any) -> Shape:
        try:
            response: Shape = getattr(self._client, method)(**params)
        except (ClientError, BotoCoreError) as exc:
            raise classify_error(exc) from exc
        response.pop("ResponseMetadata", None)
        return response

    def _describe(self, method: str, **params: Any) -> Shape | None:
        try:
            response: Shape = getattr(self._client, method)(**params)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise classify_error(exc) from exc
        except BotoCoreError as exc:
            raise classify_error(exc) from exc
        response.pop("ResponseMetadata", None)
        return response

    def _delete(self, method: str, **params: Any) -> None:
        # same not-found rule as describe: an absent object is the goal of a delete
        self._describe(method, **params)

    def _pages(self, method: str, missing_is_empty: bool = False, **params: Any) -> Iterator[Shape]:
        try:
            yield from self._client.get_paginator(method).paginate(**params)
        except ClientError as exc:
            if missing_is_empty and is_not_found(exc):
                return
            raise classify_error(exc) from exc
        except BotoCoreError as exc:
            raise classify_error(exc) from exc

    def _list_packages(self, group: str, newest_first: bool = False) -> Iterator[Shape]:
        params: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Descending" if newest_first else "Ascending",
            "PaginationConfig": {"PageSize": 100},
        }
        # a group that does not exist has no versions
        for page in self._pages("list_model_packages", missing_is_empty=True, **params):
            yield from page.get("ModelPackageSummaryList", [])

    def _remember(self, arn: str, marks: frozenset[tuple[str, str]]) -> None:
        with self._marks_lock:
            self._marks[arn] = marks
            for mark in marks:
                self._by_mark[mark] = arn

    def _forget(self, arn: str) -> None:
        with self._marks_lock:
            for mark in self._marks.pop(arn, frozenset()):
                if self._by_mark.get(mark) == arn:
                    del self._by_mark[mark]

    def _count_call(self, model: Any = None, **_: Any) -> None:
        with self._metrics_lock:
            self.calls[model.name] += 1

    def _count_attempt(self, event_name: str = "", **_: Any) -> None:
        with self._metrics_lock:
            self.attempts[event_name.rsplit(".", 1)[-1]] += 1

    def _count_error(
        self,
        event_name: str = "",
        response_dict: Any = None,
        parsed_response: Any = None,
        exception: Any = None,
        **_: Any,
    ) -> None:
        """Once per HTTP attempt: an error answer by its code, a network failure by its type."""
        if exception is not None:
            code = type(exception).__name__
        elif response_dict is not None and response_dict.get("status_code", 200) >= 300:
            code = ((parsed_response or {}).get("Error") or {}).get("Code") or str(
                response_dict["status_code"]
            )
        else:
            return
        with self._metrics_lock:
            self.errors[(event_name.rsplit(".", 1)[-1], code)] += 1


_registries: dict[str, SageMakerRegistry] = {}
_registries_lock = threading.Lock()


def registry_for(region: str | None = None) -> SageMakerRegistry:
    """This process's registry (and so its one botocore client) for `region`; the default is
    boto3's configured region. Created on first use, then shared by every caller."""
    key = region or _configured_region(botocore.session.get_session()) or ""
    with _registries_lock:
        if key not in _registries:
            _registries[key] = SageMakerRegistry(key or None)
        return _registries[key]


def _configured_region(session: botocore.session.Session) -> str | None:
    # botocore reads AWS_DEFAULT_REGION and profiles; AWS_REGION is what EKS (IRSA) and the
    # other AWS SDKs set, so it is honoured as well, first.
    return os.environ.get("AWS_REGION") or session.get_config_variable("region")


def _retry_settings(session: botocore.session.Session) -> dict[str, Any]:
    """AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (or retry_mode / max_attempts in the profile) when
    set, else the defaults of default_config."""
    settings: dict[str, Any] = {}
    mode = os.environ.get("AWS_RETRY_MODE") or session.get_scoped_config().get("retry_mode")
    if mode:
        settings["retry_mode"] = mode
    attempts = session.get_config_variable("max_attempts")
    if attempts:
        settings["total_max_attempts"] = int(attempts)
    return settings


def _marks(package: Shape) -> frozenset[tuple[str, str]]:
    """The owner marks (identity, legacy UID) in a version's customer metadata."""
    metadata = package.get("CustomerMetadataProperties") or {}
    return frozenset((key, str(metadata[key])) for key in MARKER_KEYS if metadata.get(key))


def _batches(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
