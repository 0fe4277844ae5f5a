"""The registry backend on Amazon SageMaker, with boto3.

One botocore client per registry (one registry per identity and region: accounts.Accounts),
created once and shared by all threads: botocore clients are thread-safe, their creation is not. Endpoint, credentials and
region come from boto3's own configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER,
AWS_REGION / AWS_DEFAULT_REGION, the credential chain); retries use botocore's standard
mode, which backs off with jitter on throttling, 5xx and network errors before anything
reaches the controller.
"""

from __future__ import annotations

import hashlib
import json
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
from ..errors import RetryableError, TerminalError
from ..identity import IDENTITY_KEY
from ..timing import (
    IDENTITY_INDEX_MAX_AGE,
    SAGEMAKER_CONNECT_TIMEOUT,
    SAGEMAKER_MAX_ATTEMPTS,
    SAGEMAKER_READ_TIMEOUT,
)
from .base import Shape, tag_changes
from .classify import classify_error, is_not_found
from .identity_index import IdentityIndex, Recorded, marks_of
from .ratelimit import limiter_for
from .requests import tag_map

# Fixed namespace: the same owner and request give the same ClientToken in every process.
_CLIENT_TOKEN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "registry.mlops.dev")

# AddTags and DeleteTags take at most 50 tags or keys per call (botocore's model).
_TAG_BATCH = 50

RetryMode = Literal["legacy", "standard", "adaptive"]
_T = TypeVar("_T")


def client_token_for(owner: str, salt: str | int = "", request: Shape | None = None) -> str:
    """A deterministic CreateModelPackage ClientToken for what `owner` registers.

    `owner`: the object's stable identity (`<instance>/<namespace>/<name>`, identity.py), not
    its Kubernetes UID, so that a re-created object (new UID) or another replica sending the
    same request gets the same ARN back within SageMaker's idempotency window. `request`: the
    CreateModelPackage request (its ClientToken aside), whose digest is part of the token: a
    changed request is a new call, not one SageMaker refuses as a reused token with other
    parameters (AWS's usual rule); that a version already exists for it is then the identity
    index's to tell (find_package). `salt`: changed only to deliberately register again (a
    version deleted in SageMaker behind the operator's back). The API wants 1-36 characters
    of [a-zA-Z0-9-]: a name-based UUID (36 characters), the same in every process.
    """
    if not owner:
        raise ValueError("owner: an object identity (or UID) is required to derive a ClientToken")
    digest = ""
    if request is not None:
        body = {k: v for k, v in request.items() if k != "ClientToken"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        digest = "/" + hashlib.sha256(canonical.encode()).hexdigest()
    return str(uuid.uuid5(_CLIENT_TOKEN_NAMESPACE, f"{owner}/{salt}{digest}"))


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
    `metrics()` reads all three (the operator's Prometheus endpoint does, at each scrape),
    and the rate limiter's `rate_limit` figures.

    `rate_limit`: the `--sagemaker-rate` setting (requests per second for this client; None:
    adapt to throttling without a ceiling; 0: no limiter), see ratelimit.py.
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        session: botocore.session.Session | None = None,
        config: Config | None = None,
        rate_limit: float | None = None,
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
        # requests/s of this client (one account and region), every thread's (ratelimit.py)
        self.limiter = limiter_for(rate_limit)
        if self.limiter is not None:
            self.limiter.attach(events)
        # find_package's identity index per group (identity_index.py): mark -> version ARN,
        # built once per group by this registry (one account and region), kept by its creates
        self.identities = IdentityIndex(
            lambda group: self._package_pages(group, newest_first=True),
            self.describe_package,
            IDENTITY_INDEX_MAX_AGE,
        )

    @property
    def endpoint_url(self) -> str:
        return self._client.meta.endpoint_url

    def metrics(self) -> dict[str, dict[Any, int]]:
        """A consistent copy of the counters (safe to read while other threads call)."""
        with self._metrics_lock:
            counters: dict[str, dict[Any, int]] = {
                "calls": dict(self.calls),
                "attempts": dict(self.attempts),
                "errors": dict(self.errors),
            }
        if self.limiter is not None:
            counters["rate_limit"] = dict(self.limiter.metrics())
        return counters

    # model package groups

    def describe_group(self, name_or_arn: str) -> Shape | None:
        return self._describe("describe_model_package_group", ModelPackageGroupName=name_or_arn)

    def create_group(self, request: Shape) -> str:
        arn: str = self._call("create_model_package_group", **request)["ModelPackageGroupArn"]
        self.identities.group_created(request["ModelPackageGroupName"])  # new: no version to look up
        return arn

    def delete_group(self, name: str) -> None:
        self._delete("delete_model_package_group", ModelPackageGroupName=name)
        self.identities.forget_group(name)

    def get_group_policy(self, name: str) -> str | None:
        """The group's resource policy text, or None. SageMaker's API reference does not say
        what a group without a policy answers: it is a ValidationException "Cannot find resource
        policy for: <group ARN>" (and "Cannot find Model Package Group: ..." for no group, the
        phrases the Terraform provider and the CloudFormation resource handler match), which
        classify.is_not_found reads as not found."""
        found = self._describe("get_model_package_group_policy", ModelPackageGroupName=name)
        return None if found is None else found.get("ResourcePolicy")

    def put_group_policy(self, name: str, policy_json: str) -> None:
        self._call("put_model_package_group_policy", ModelPackageGroupName=name, ResourcePolicy=policy_json)

    def delete_group_policy(self, name: str) -> None:
        self._delete("delete_model_package_group_policy", ModelPackageGroupName=name)

    # model packages

    def list_packages(self, group: str) -> list[Shape]:
        """Every version summary of `group` (status and approval included), all pages. The
        controllers share one listing per group among its packages (controllers.listings.GroupListings).
        The identity index takes each listing as its build or refresh of the group."""
        started = self.identities.clock()
        summaries = list(self._list_packages(group))
        self.identities.listed(group, summaries, started)
        return summaries

    def recent_packages(self) -> Iterator[list[Shape]]:
        """Every versioned package of the account and region, newest first, one list per page
        of 100: fresh versions' status for all groups at once (controllers.listings.RecentVersions)."""
        params: dict[str, Any] = {
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "PaginationConfig": {"PageSize": 100},
        }
        for page in self._pages("list_model_packages", **params):
            yield list(page.get("ModelPackageSummaryList", []))

    def find_package(
        self, group: str, marks: Mapping[str, str], recorded: Recorded | None = None
    ) -> Shape | None:
        """The version of `group` whose CustomerMetadataProperties carry any of `marks` (the
        object's identity, and the UID an earlier release marked its versions with), described.

        Looked up in the identity index (identity_index.py, which says what it assumes): per
        group, built once per process (single-flight) from one listing of the group, kept
        complete by this registry's creates. A miss costs no call once the group is indexed (a
        group this registry created needs no listing at all); a hit costs one
        DescribeModelPackage. Versions whose marks are unknown (after a restart, or added by
        other writers) are described once each, when a miss meets them, except those another
        object's status records (`recorded`: ARN -> that object's identity, read only then).

        Duplicates have two lines of defence. This lookup, for a re-created object (a re-apply,
        a rebuilt cluster: a new UID, the same identity), for a request changed between
        attempts, and once the ClientToken's idempotency window has passed. And the
        deterministic ClientToken (`client_token_for`, from the identity and the request): the
        same request gives the same ARN, also from another process that created it after this
        index last looked (a replica that took over, a crash between create and status write).
        """
        wanted = set(marks.items())
        while True:
            hit = self.identities.find(group, marks, recorded)
            if hit is None:
                return None
            described = hit.described or self.describe_package(hit.arn)
            if described is not None and wanted & marks_of(described):
                return described
            self.identities.forget_version(hit.arn)  # deleted meanwhile

    def create_package(self, request: Shape) -> str:
        """CreateModelPackage -> ARN. Without a ClientToken in `request`, one derived from its
        owner mark and the request (botocore would fill in a random one, defeating idempotency
        across restarts). A version in a group goes into the identity index; a create whose
        answer was lost makes the index check the listing before it next answers "none"."""
        metadata = request.get("CustomerMetadataProperties") or {}
        owner = metadata.get(IDENTITY_KEY) or metadata.get(OWNER_UID_KEY)
        if owner and "ClientToken" not in request:
            request = {**request, "ClientToken": client_token_for(owner, request=request)}
        group = request.get("ModelPackageGroupName")
        try:
            arn: str = self._call("create_model_package", **request)["ModelPackageArn"]
        except RetryableError:
            if group:
                self.identities.unconfirmed(group)
            raise
        if group:
            self.identities.created(group, arn, marks_of(request))
        return arn

    def describe_package(self, name_or_arn: str) -> Shape | None:
        return self._describe("describe_model_package", ModelPackageName=name_or_arn)

    def update_package(self, request: Shape) -> None:
        self._call("update_model_package", **request)

    def delete_package(self, name_or_arn: str) -> None:
        self._delete("delete_model_package", ModelPackageName=name_or_arn)
        self.identities.forget_version(name_or_arn)

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
        for page in self._package_pages(group, newest_first):
            yield from page

    def _package_pages(self, group: str, newest_first: bool = False) -> Iterator[list[Shape]]:
        params: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Descending" if newest_first else "Ascending",
            "PaginationConfig": {"PageSize": 100},
        }
        # a group that does not exist has no versions
        for page in self._pages("list_model_packages", missing_is_empty=True, **params):
            yield list(page.get("ModelPackageSummaryList", []))

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


def _batches(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
