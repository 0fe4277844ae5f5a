"""An in-memory Kubernetes API server, faithful where an operator depends on it.

Built on kmock (kopf's author's HTTP mock): kmock's `Server` runs it on 127.0.0.1 and
`KubernetesEmulator` is the base class. kmock 0.8's own object handling is replaced. Run
against it, kopf 1.45 stalls, for two reasons (seen in kopf's log):

- `GET /api/v1/namespaces` fails in kmock's path parser (500): kopf's namespace observer
  retries it with backoff and never starts the namespaced watches;
- with `-A`, kopf adds its finalizer by a JSON patch guarded by `test
  /metadata/resourceVersion`; kmock objects have no resourceVersion, the test fails and
  kmock answers 500 (not 422), so kopf retries for a minute (1+1+2+3+5+8+13+21 s) and
  no handler runs. Lists also say `resourceVersion: "..."`, so a watch cannot resume
  and every reconnect replays all objects while events between list and watch are lost.

What is emulated here, per request: uid, cluster-wide monotonic resourceVersion,
generation (spec changes only), creationTimestamp; generateName as kube-apiserver fills it
(its alphabet, a name taken generated again); resourceVersion preconditions (409);
merge patch and JSON patch (failed `test` -> 422); the status subresource kept apart;
finalizers and deletionTimestamp; namespaces and their deletion; watch with
resourceVersion resume, bookmarks, timeoutSeconds and 410 for expired versions; list
with kind/apiVersion/resourceVersion, label and field selectors, limit/continue;
discovery; CRD registration; and CR admission: defaults, pruning, then validation
against the CRD's openAPIV3Schema and CEL rules (harness.crd_validation), answering
422 Invalid with field causes. Also: server-side field validation (fieldValidation=Strict
-> 400, default -> Warning header), `Table` output with additionalPrinterColumns for
`kubectl get`, a minimal /openapi/v3 (so kubectl validates server-side), dryRun, delete
preconditions, a request log named as RBAC names requests, and injectable faults.
metadata.managedFields as the apiserver writes them for create/update/patch (operation
Update; manager from ?fieldManager= else the User-Agent before its first "/"; one entry per
manager, apiVersion and subresource; fields move to their last writer; `[{}]` clears them;
harness.kube.managed_fields, whose `field_manager(obj, path)` says who last set a field).

Not emulated (differences from a real apiserver):
- no authentication, authorization or admission webhooks (RBAC is not enforced: derive
  what an operator needs from the request log); no conversion webhooks: every served
  version of a CRD sees the same stored fields, only apiVersion differs;
- server-side apply (application/apply-patch+yaml) answers 415, so no Apply entries in
  managedFields; their lists are atomic (no `k:`/`v:` items for x-kubernetes-list-type
  map/set); a strategic merge patch on a built-in kind is a plain merge patch (no patchMergeKey);
- no garbage collection by ownerReferences, no propagationPolicy, no deletecollection;
  deleting a CRD removes its objects at once (the apiserver waits for their finalizers);
- built-in kinds (Event, ConfigMap...) are stored as sent, unvalidated, except Lease
  (harness.kube.leases: its spec decoded and validated as the apiserver does); CRD
  install checks cover names, versions and RE2 patterns only (not the full structural
  schema rules); no validation ratcheting (1.30+), no CEL cost limits;
- core/v1 and events.k8s.io/v1 Events are separate stores (the same objects in reality);
- lists ignore the resourceVersion/resourceVersionMatch parameters (always the latest);
  bookmarks every 10 s; watch events are JSON objects even when kubectl asks for Tables;
- only namespaces, events, configmaps, secrets, serviceaccounts, leases, CRDs and kopf's
  peering CRDs are built in; no controllers (a namespace's contents are deleted at once
  on its deletion), no /finalize, no scale subresource;
- plain HTTP/1.1 and JSON only: no TLS, protobuf, aggregated discovery or OpenAPI schemas
  (`kubectl explain` does not work); no API priority and fairness (inject 429s instead).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import dataclasses
import datetime
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

from . import crd_install, errors, leases, managed_fields, resources, tables
from .errors import ApiError
from .resources import ResourceType
from .selectors import field_selector, label_selector

logger = logging.getLogger(__name__)

# Events kept for watches resuming from a resourceVersion; older versions answer 410 Gone.
HISTORY_LIMIT = 10_000
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "managedFields",
)
# Kept from the stored object on every write of the main resource (the client cannot change them).
PRESERVED_ON_UPDATE = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "name",
    "namespace",
)
# metadata.generateName as kube-apiserver fills it (k8s.io/apiserver/pkg/storage/names,
# SimpleNameGenerator): the prefix cut to 58 characters, then 5 characters of
# k8s.io/apimachinery/pkg/util/rand's alphabet (consonants and digits: 27^5 names per prefix).
# A generated name that exists is generated again (the RetryGenerateName feature, GA in
# Kubernetes 1.32), up to 8 attempts in all, before the create is refused with 409.
GENERATED_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_NAME_PREFIX_MAX = 58
GENERATE_NAME_ATTEMPTS = 8


def generated_suffix() -> str:
    return "".join(secrets.choice(GENERATED_NAME_ALPHABET) for _ in range(5))


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class RequestRecord:
    """One API request, named as RBAC names it (verb, apiGroup, resource, subresource)."""

    verb: str  # get, list, watch, create, update, patch, delete, deletecollection (or the HTTP method)
    path: str
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    code: int | None = None  # the HTTP status; None while a watch is still streaming
    user_agent: str = ""  # tells the operator's requests (kopf/...) from a test client's
    received: float = dataclasses.field(default_factory=time.time)  # wall clock, for benchmarks' timelines

    @property
    def permission(self) -> tuple[str, str, str] | None:
        """(apiGroup, resource[/subresource], verb) as an RBAC rule grants it; None for discovery."""
        if self.resource is None:
            return None
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return (self.group or "", resource, self.verb)


_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclasses.dataclass
class Fault:
    """Answer `code` to the next `count` matching requests (None: to all), instead of serving them."""

    verb: str
    resource: str
    subresource: str | None = None
    name: str | None = None
    namespace: str | None = None
    code: int = 500
    count: int | None = 1
    message: str = "injected fault"
    retry_after: int | None = None

    def matches(self, record: RequestRecord) -> bool:
        return (
            (self.count is None or self.count > 0)
            and (record.verb, record.resource, record.subresource)
            == (self.verb, self.resource, self.subresource)
            and self.name in (None, record.name)
            and self.namespace in (None, record.namespace)
        )

    def response(self) -> aiohttp.web.Response:
        if self.count is not None:
            self.count -= 1
        details = {"retryAfterSeconds": self.retry_after} if self.retry_after is not None else None
        error = ApiError(self.code, _REASONS.get(self.code, "InternalError"), self.message, details)
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return aiohttp.web.json_response(error.status(), status=self.code, headers=headers)


@dataclasses.dataclass
class _Route:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _parse_resource_path(path: str) -> _Route | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    # /namespaces/<ns>/<plural>/... but /namespaces/<name>/status|finalize is the namespace itself.
    if len(rest) >= 3 and rest[0] == "namespaces" and not (group == "" and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    rest += [None] * (3 - len(rest))
    return _Route(group, version, rest[0], namespace, rest[1], rest[2])


def _rbac_verb(method: str, route: _Route | None, params: dict[str, str]) -> str:
    watching = params.get("watch") in ("true", "1")
    named = route is not None and route.name is not None
    return {
        "GET": "watch" if watching else ("get" if named or route is None else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }.get(method, method.lower())


def _int_param(params: dict[str, str], name: str) -> int:
    try:
        return int(params.get(name) or 0)
    except ValueError:
        raise errors.bad_request(f"{name}: invalid value {params[name]!r}: must be an integer") from None


def _strip_for_generation(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _dropped_fields(before: Any, after: Any, path: str = "") -> list[str]:
    """Fields present in `before` and absent in `after` (what pruning removed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        dropped = []
        for key, value in before.items():
            sub = f"{path}.{key}" if path else key
            if key not in after:
                dropped.append(sub)
            else:
                dropped += _dropped_fields(value, after[key], sub)
        return dropped
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            f for i, (b, a) in enumerate(zip(before, after)) for f in _dropped_fields(b, a, f"{path}[{i}]")
        ]
    return []


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


class _Watch:
    """One open watch stream: its filter and its queue of pending events."""

    def __init__(self, rt: ResourceType, namespace: str | None, matches: Any) -> None:
        self.rt = rt
        self.namespace = namespace
        self.matches = matches
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    def wants(self, group_resource: tuple[str, str], obj: dict[str, Any]) -> bool:
        if group_resource != self.rt.group_resource:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.matches(obj)


@attrs.define(kw_only=True)
class KubeApiEmulator(kmock.KubernetesEmulator):
    """The aiohttp handler; run it with `kmock.Server(emulator)` (see harness.kube.server)."""

    # A module with validate/apply_defaults/prune (these two return a new object, or None for no
    # change, and never change their argument); None: harness.crd_validation.
    validator: Any = None
    bookmark_interval: float = 10.0
    history_limit: int = HISTORY_LIMIT
    records: list[RequestRecord] = attrs.field(factory=list, init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    _types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict, init=False)
    _store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = attrs.field(
        factory=lambda: collections.defaultdict(dict), init=False
    )
    _rv: int = attrs.field(default=0, init=False)
    _history: collections.deque[tuple[int, tuple[str, str], str, dict[str, Any]]] = attrs.field(
        factory=collections.deque, init=False
    )
    _watches: set[_Watch] = attrs.field(factory=set, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    _records_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately not kmock's fallbacks (see the module docstring): this handler serves all.
        self._history = collections.deque(maxlen=self.history_limit)
        self.reset()

    # ---------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget all objects, CRDs and requests; back to a fresh cluster. Call on the server's loop."""
        for watch in list(self._watches):
            watch.queue.put_nowait(None)
        self._watches.clear()
        self._types = {(rt.group, rt.version, rt.plural): rt for rt in resources.BUILTINS}
        self._store.clear()
        self._history.clear()
        self.records.clear()
        self.faults.clear()
        for name in INITIAL_NAMESPACES:
            self._create_namespace_now(name)
        for crd in resources.KOPF_PEERING_CRDS:
            self.apply_crd(crd)

    def close_watches(self) -> None:
        """End every open watch stream (so that the server can stop at once)."""
        self._closing = True
        for watch in list(self._watches):
            watch.queue.put_nowait(None)

    @property
    def objects(self) -> dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]]:  # type: ignore[override]
        """{(group, plural): {(namespace or "", name): object}} -- read it on the server's loop."""
        return self._store

    @property
    def resource_types(self) -> list[ResourceType]:
        return list(self._types.values())

    def apply_crd(self, crd: dict[str, Any], manager: str = "kubectl-client-side-apply") -> dict[str, Any]:
        """Create or replace a CRD directly (as `kubectl apply` would, recorded in managedFields
        under `manager`); raises ApiError if invalid."""
        rt = self._types[("apiextensions.k8s.io", "v1", "customresourcedefinitions")]
        name = (crd.get("metadata") or {}).get("name", "")
        existing = self._store[rt.group_resource].get(("", name))
        if existing is None:
            return copy.deepcopy(self._create(rt, None, copy.deepcopy(crd), {}, manager)[0])
        replacement = copy.deepcopy(crd)
        replacement.setdefault("metadata", {})["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return copy.deepcopy(self._write(rt, existing, replacement, None, {}, manager)[0])

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _emit(self, rt: ResourceType, event_type: str, obj: dict[str, Any]) -> None:
        # A stored object is never changed in place (a write stores a new one), so it is its
        # own snapshot: history and watch queues share it, and serialise it when they send it.
        rv = int(obj["metadata"]["resourceVersion"])
        self._history.append((rv, rt.group_resource, event_type, obj))
        for watch in list(self._watches):
            if watch.wants(rt.group_resource, obj):
                watch.queue.put_nowait((event_type, obj))

    def _type_for(self, group: str, plural: str) -> ResourceType:
        return next(rt for rt in self._types.values() if rt.group_resource == (group, plural))

    # ---------------------------------------------------------------- HTTP entry

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:  # type: ignore[override]
        body = await raw.read()
        params = dict(raw.query)
        route = _parse_resource_path(raw.path)
        record = RequestRecord(
            verb=_rbac_verb(raw.method, route, params),
            path=raw.path,
            user_agent=raw.headers.get("User-Agent", ""),
        )
        if route is not None:
            record.group, record.version, record.resource = route.group, route.version, route.plural
            record.namespace, record.name, record.subresource = route.namespace, route.name, route.subresource
        with self._records_lock:
            self.records.append(record)
        fault = next((f for f in self.faults if f.matches(record)), None)
        if fault is not None:
            response = fault.response()
            record.code = response.status
            return response
        try:
            response = await self._dispatch(raw, route, params, body)
        except ApiError as exc:
            response = aiohttp.web.json_response(exc.status(), status=exc.code)
        except Exception as exc:  # a bug in the emulator: answer as the apiserver would, and log it
            logger.exception("Emulator failure on %s %s", raw.method, raw.path)
            response = aiohttp.web.json_response(
                ApiError(500, "InternalError", f"emulator failure: {exc!r}").status(), status=500
            )
        record.code = response.status
        return response

    async def _dispatch(
        self, raw: aiohttp.web.BaseRequest, route: _Route | None, params: dict[str, str], body: bytes
    ) -> aiohttp.web.StreamResponse:
        if route is None:
            return self._serve_non_resource(raw)
        rt = self._types.get((route.group, route.version, route.plural))
        if rt is None or (route.namespace is not None and not rt.namespaced):
            raise errors.path_not_found(raw.path)
        if route.subresource is not None and (route.subresource not in rt.subresources or route.name is None):
            raise errors.path_not_found(raw.path)
        if rt.namespaced and route.namespace is None and route.name is not None:
            raise errors.path_not_found(raw.path)
        namespace = route.namespace if rt.namespaced else None
        method = raw.method
        manager = ""
        if method in ("POST", "PUT", "PATCH"):
            manager = self._manager(method, params, raw.headers.get("User-Agent", ""))

        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._serve_watch(raw, rt, namespace, route.name, params)
        if method == "GET" and route.name is None:
            listing = self._list(rt, namespace, params)
            if tables.wants_table(raw.headers.get("Accept", "")):  # kubectl get: printer columns
                return aiohttp.web.json_response(
                    tables.table(rt, listing["items"], listing["metadata"]["resourceVersion"])
                )
            return aiohttp.web.json_response(listing)
        if method == "GET":
            obj = self._serve_object(rt, self._get(rt, namespace, route.name))
            if tables.wants_table(raw.headers.get("Accept", "")):
                return aiohttp.web.json_response(tables.table(rt, [obj], obj["metadata"]["resourceVersion"]))
            return aiohttp.web.json_response(obj)
        if method == "POST" and route.name is None:
            return self._answer(
                rt, *self._create(rt, namespace, self._json_object(body), params, manager), 201
            )
        if method == "PUT" and route.name is not None:
            old = self._get(rt, namespace, route.name)
            new = self._json_object(body)
            self._check_identity(rt, new, route.name, namespace)
            if rt.has_generation and not (new.get("metadata") or {}).get("resourceVersion"):
                # Custom resources and CRDs allow no unconditional update (AllowUnconditionalUpdate false).
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    route.name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "metadata.resourceVersion",
                            "message": "Invalid value: 0x0: must be specified for an update",
                        }
                    ],
                )
            return self._answer(rt, *self._write(rt, old, new, route.subresource, params, manager), 200)
        if method == "PATCH" and route.name is not None:
            old = self._get(rt, namespace, route.name)
            new = self._patched(rt, old, raw.headers.get("Content-Type", ""), body)
            return self._answer(rt, *self._write(rt, old, new, route.subresource, params, manager), 200)
        if method == "DELETE" and route.name is not None and route.subresource is None:
            obj, code = self._delete(rt, namespace, route.name, body, params)
            return aiohttp.web.json_response(self._serve_object(rt, obj), status=code)
        raise errors.method_not_allowed()

    def _answer(
        self, rt: ResourceType, obj: dict[str, Any], warnings: list[str], code: int
    ) -> aiohttp.web.Response:
        response = aiohttp.web.json_response(self._serve_object(rt, obj), status=code)
        for warning in warnings:
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            response.headers.add("Warning", f'299 - "{escaped}"')  # RFC 7234 warn-text is a quoted-string
        return response

    def _serve_non_resource(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = raw.path.rstrip("/") or "/"
        types = self.resource_types
        if raw.method != "GET":
            raise errors.method_not_allowed()
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/version":
            return aiohttp.web.json_response(
                {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": "v1.31.0-kmock-emulator",
                    "gitCommit": "",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if path == "/api":
            return aiohttp.web.json_response(
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        if path == "/apis":
            return aiohttp.web.json_response(resources.api_group_list(types))
        if path == "/openapi/v3":
            return aiohttp.web.json_response(resources.openapi_v3_root(types))
        parts = path.strip("/").split("/")
        document = None
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = (
                (parts[3], parts[4]) if parts[2] == "apis" and len(parts) == 5 else ("", parts[3])
            )
            document = resources.openapi_v3_group_version(types, group, version)
        elif parts[0] == "api" and len(parts) == 2:
            document = resources.api_resource_list(types, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            document = resources.api_group(types, parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            document = resources.api_resource_list(types, parts[1], parts[2])
        if document is None:
            raise errors.path_not_found(raw.path)
        return aiohttp.web.json_response(document)

    # ---------------------------------------------------------------- reading

    def _serve_object(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as this version's endpoint shows it (no conversion: same fields).

        A shallow copy sharing the stored object's fields: serialise it, never change it."""
        return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}

    def _get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._store[rt.group_resource].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return obj

    def _matching(
        self, rt: ResourceType, namespace: str | None, params: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        labels = label_selector(params.get("labelSelector"))
        fields = field_selector(params.get("fieldSelector"), rt.group_resource)
        for (ns, _), obj in sorted(self._store[rt.group_resource].items()):
            if (namespace is None or ns == namespace) and labels(obj) and fields(obj):
                yield obj

    def _list(self, rt: ResourceType, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        items = [self._serve_object(rt, obj) for obj in self._matching(rt, namespace, params)]
        start = 0
        if params.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(params["continue"].encode()).decode())
            except ValueError:
                raise errors.bad_request("continue key is not valid") from None
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        limit = _int_param(params, "limit")
        if limit > 0:
            if start + limit < len(items):
                metadata["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
                metadata["remainingItemCount"] = len(items) - start - limit
            items = items[start : start + limit]
        else:
            items = items[start:]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    async def _serve_watch(
        self,
        raw: aiohttp.web.BaseRequest,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        params: dict[str, str],
    ) -> aiohttp.web.StreamResponse:
        labels = label_selector(params.get("labelSelector"))
        fields = field_selector(params.get("fieldSelector"), rt.group_resource)
        matches = (
            (lambda obj: labels(obj) and fields(obj) and obj["metadata"]["name"] == name)
            if name
            else (lambda obj: labels(obj) and fields(obj))
        )
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        timeout = _int_param(params, "timeoutSeconds") if params.get("timeoutSeconds") else None

        # Everything up to registering the watch runs without an await: no event can slip between.
        initial, expired = self._initial_events(rt, namespace, matches, params)
        watch = _Watch(rt, namespace, matches)
        if not expired:
            self._watches.add(watch)

        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            for event in initial:
                await self._write_event(response, rt, event)
            while not expired and not self._closing:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    await self._write_event(response, rt, self._bookmark(rt))
                    next_bookmark = now + self.bookmark_interval
                wait = min(1.0, next_bookmark - now, (deadline - now) if deadline is not None else 1.0)
                try:
                    item = await asyncio.wait_for(watch.queue.get(), timeout=max(wait, 0.01))
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        break
                    continue
                if item is None:
                    break
                await self._write_event(response, rt, {"type": item[0], "object": item[1]})
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            self._watches.discard(watch)
        try:
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return response

    def _initial_events(
        self, rt: ResourceType, namespace: str | None, matches: Any, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], bool]:
        """Events to send before live ones, and whether the stream ends right after (410)."""
        since = params.get("resourceVersion") or ""
        current = [obj for obj in self._matching(rt, namespace, {}) if matches(obj)]
        if params.get("sendInitialEvents") == "true":
            end = self._bookmark(rt)
            end["object"]["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
            return [{"type": "ADDED", "object": obj} for obj in current] + [end], False
        if since in ("", "0"):
            return [{"type": "ADDED", "object": obj} for obj in current], False
        try:
            since_rv = int(since)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{since}"') from None
        oldest = self._history[0][0] if self._history else self._rv + 1
        if since_rv < oldest - 1 and len(self._history) == self._history.maxlen:
            status = errors.gone(f"too old resource version: {since_rv} ({oldest - 1})").status()
            return [{"type": "ERROR", "object": status}], True
        watch = _Watch(rt, namespace, matches)
        return [
            {"type": t, "object": o} for rv, gr, t, o in self._history if rv > since_rv and watch.wants(gr, o)
        ], False

    def _bookmark(self, rt: ResourceType) -> dict[str, Any]:
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": rt.kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self._rv)},
            },
        }

    async def _write_event(
        self, response: aiohttp.web.StreamResponse, rt: ResourceType, event: dict[str, Any]
    ) -> None:
        obj = event["object"]
        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
            obj = self._serve_object(rt, obj)
        await response.write(json.dumps({"type": event["type"], "object": obj}).encode() + b"\n")

    # ---------------------------------------------------------------- writing

    @staticmethod
    def _json_object(body: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(body or b"null")
        except ValueError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object")
        return obj

    def _check_type_meta(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Built-ins default apiVersion/kind from the URL; custom resources must state them."""
        if rt.crd is not None:
            if not obj.get("kind"):
                raise errors.bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
            if not obj.get("apiVersion"):
                raise errors.bad_request(f"Object 'apiVersion' is missing in '{json.dumps(obj)[:200]}'")
        api_version = obj.get("apiVersion") or rt.api_version
        kind = obj.get("kind") or rt.kind
        if (
            kind != rt.kind
            or api_version.split("/")[0] != (rt.group or api_version.split("/")[0])
            or (not rt.group and api_version != rt.version)
        ):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match the expected "
                f"API version ({rt.api_version}) and kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        if (rt.group, rt.plural) == (leases.GROUP, leases.PLURAL):
            leases.check(obj)  # decoded and validated as the apiserver does (harness.kube.leases)

    @staticmethod
    def _manager(method: str, params: dict[str, str], user_agent: str) -> str:
        """The field manager of a write: ?fieldManager=, else the User-Agent's prefix."""
        field_manager = params.get("fieldManager")
        if field_manager is not None and (
            len(field_manager) > managed_fields.MAX_MANAGER_LENGTH or not field_manager.isprintable()
        ):
            kind = {"POST": "CreateOptions", "PUT": "UpdateOptions"}.get(method, "PatchOptions")
            message = (
                f"Too long: may not be more than {managed_fields.MAX_MANAGER_LENGTH} bytes"
                if len(field_manager) > managed_fields.MAX_MANAGER_LENGTH
                else "Invalid value: must only contain printable characters"
            )
            raise errors.invalid(
                "meta.k8s.io",
                kind,
                "",
                [{"reason": "FieldValueInvalid", "field": "fieldManager", "message": message}],
            )
        return managed_fields.manager_for(field_manager, user_agent)

    @staticmethod
    def _check_managed_fields(rt: ResourceType, name: str, sent: Any) -> None:
        if sent is None or managed_fields.is_reset(sent):
            return
        causes = managed_fields.invalid_entries(sent)
        if causes:
            raise errors.invalid(rt.group, rt.kind, name, causes)

    @staticmethod
    def _record_managed_fields(
        rt: ResourceType,
        sent: Any,
        old: dict[str, Any],
        result: dict[str, Any],
        subresource: str | None,
        manager: str,
    ) -> None:
        """Set result's metadata.managedFields as the apiserver's field manager does (Update)."""
        meta = result["metadata"]
        if managed_fields.is_reset(sent):  # [{}]: the client clears them, this write records nothing
            meta.pop("managedFields", None)
            return
        base = sent if isinstance(sent, list) and sent else (old.get("metadata") or {}).get("managedFields")
        before, after = old, result
        if rt.plural == "namespaces" and rt.group == "":
            # spec.finalizers is set by the apiserver (PrepareForCreate), after the field manager ran
            before = {k: v for k, v in old.items() if k != "spec"}
            after = {k: v for k, v in result.items() if k != "spec"}
        entries = managed_fields.record_update(
            base,
            before,
            after,
            manager=manager,
            api_version=rt.api_version,
            subresource=subresource,
            status_subresource="status" in rt.subresources,
            time=_now(),
        )
        if entries:
            meta["managedFields"] = entries
        else:
            meta.pop("managedFields", None)

    def _check_identity(
        self, rt: ResourceType, obj: dict[str, Any], name: str, namespace: str | None
    ) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if namespace is not None and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    def _validate_name(self, rt: ResourceType, name: str) -> None:
        pattern, limit, what = (
            (_DNS_LABEL, 63, "RFC 1123 label")
            if rt.plural == "namespaces"
            else (_DNS_SUBDOMAIN, 253, "RFC 1123 subdomain")
        )
        if len(name) > limit or not pattern.match(name):
            raise errors.invalid(
                rt.group,
                rt.kind,
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "metadata.name",
                        "message": f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
                        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                        "character",
                    }
                ],
            )

    def _check_namespace_open(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns = self._store[("", "namespaces")].get(("", namespace or ""))
        if ns is None:
            raise errors.not_found("", "namespaces", namespace or "")
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"{errors.qualified(rt.group, rt.plural)} is forbidden: unable to create new "
                f"content in namespace {namespace} because it is being terminated"
            )

    def _create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        params: dict[str, str],
        manager: str = "",
    ) -> tuple[dict[str, Any], list[str]]:
        """Store a new object; returns it and the warnings for the client (pruned fields).

        The object returned (here and by `_write`) is the stored one: serialise it, never change it."""
        self._check_type_meta(rt, obj)
        meta = obj["metadata"]
        if rt.namespaced:
            if namespace is None:
                raise errors.path_not_found(f"{rt.plural} (create needs a namespaced URL)")
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                )
            prefix = str(meta["generateName"])[:GENERATED_NAME_PREFIX_MAX]
            for _ in range(GENERATE_NAME_ATTEMPTS):
                meta["name"] = prefix + generated_suffix()
                if (namespace or "", meta["name"]) not in self._store[rt.group_resource]:
                    break
        self._validate_name(rt, meta["name"])
        self._check_namespace_open(rt, namespace)
        key = (namespace or "", meta["name"])
        if key in self._store[rt.group_resource]:
            raise errors.already_exists(rt.group, rt.plural, meta["name"])
        sent_managed_fields = meta.get("managedFields")
        self._check_managed_fields(rt, meta["name"], sent_managed_fields)
        for field in SYSTEM_METADATA:
            meta.pop(field, None)
        if "status" in rt.subresources and rt.crd is not None:
            obj.pop("status", None)  # the status of a new custom resource comes only through /status

        if rt.plural == "customresourcedefinitions":
            self._admit_crd(obj)
        elif rt.plural == "namespaces" and rt.group == "":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        warnings: list[str] = []
        if rt.crd is not None:
            obj, warnings = self._admit(rt, obj, None, params)

        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        self._record_managed_fields(rt, sent_managed_fields, {}, obj, None, manager)
        if rt.has_generation:
            meta["generation"] = 1
        if params.get("dryRun"):
            meta["resourceVersion"] = str(self._rv)
            return obj, warnings
        meta["resourceVersion"] = self._next_rv()
        self._store[rt.group_resource][key] = obj
        self._emit(rt, "ADDED", obj)
        if rt.plural == "customresourcedefinitions":
            self._register_crd(obj)
        return obj, warnings

    def _create_namespace_now(self, name: str) -> None:
        rt = self._type_for("", "namespaces")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self._create(rt, None, namespace, {}, "kube-apiserver")

    def _patched(
        self, rt: ResourceType, old: dict[str, Any], content_type: str, body: bytes
    ) -> dict[str, Any]:
        media = content_type.split(";")[0].strip().lower()
        try:
            patch = json.loads(body or b"null")
        except ValueError as exc:
            raise errors.bad_request(f"the patch is not valid JSON: {exc}") from None
        if media == "application/merge-patch+json" or (
            media == "application/strategic-merge-patch+json" and rt.crd is None
        ):
            # Built-ins: a strategic merge patch is applied as a merge patch (no patch strategies known).
            if not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            return _merge_patch(copy.deepcopy(old), patch)
        if media == "application/json-patch+json":
            if not isinstance(patch, list):
                raise errors.bad_request("a JSON patch must be a JSON array of operations")
            try:
                return jsonpatch.apply_patch(copy.deepcopy(old), patch, in_place=True)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise errors.patch_rejected(f"test operation failed: {exc}") from None
            except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
                raise errors.patch_rejected(str(exc)) from None
            except jsonpatch.InvalidJsonPatch as exc:
                raise errors.bad_request(f"invalid JSON patch: {exc}") from None
        if media == "application/strategic-merge-patch+json":
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported for custom resources; "
                "use application/merge-patch+json or application/json-patch+json",
            )
        raise errors.unsupported_media_type(media)

    def _write(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        params: dict[str, str],
        manager: str = "",
    ) -> tuple[dict[str, Any], list[str]]:
        """An update (PUT or PATCH result) of the main resource or of /status; returns as `_create`."""
        self._check_type_meta(rt, new)
        old_meta, new_meta = old["metadata"], new["metadata"]
        name = old_meta["name"]
        wanted_rv = new_meta.get("resourceVersion")
        if wanted_rv not in (None, "") and wanted_rv != old_meta["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name)
        for field in ("name", "namespace"):
            if new_meta.get(field) not in (None, "", old_meta.get(field)):
                raise errors.invalid(
                    rt.group,
                    rt.kind,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": f"metadata.{field}",
                            "message": f'Invalid value: "{new_meta.get(field)}": field is immutable',
                        }
                    ],
                )

        # managedFields the client sent (a PUT echoes them; a patch may replace or clear them)
        sent_managed_fields = None if subresource else new_meta.get("managedFields")
        if sent_managed_fields is not None and sent_managed_fields != old_meta.get("managedFields"):
            self._check_managed_fields(rt, name, sent_managed_fields)
        else:
            sent_managed_fields = old_meta.get("managedFields")
        warnings: list[str] = []
        if rt.crd is not None:
            new, warnings = self._prepare_cr(rt, new, params)
        # `new` is this request's own (a parsed body, a patched copy): it becomes the stored
        # object without a copy. `old` is stored: its fields may be shared, never changed.
        if subresource == "status":
            # a status write changes the status and nothing else
            result = {**old, "metadata": copy.deepcopy(old_meta)}
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            result_meta = result["metadata"]
            for field in PRESERVED_ON_UPDATE:
                if field in old_meta:
                    result_meta[field] = copy.deepcopy(old_meta[field])
                else:
                    result_meta.pop(field, None)
            result_meta.pop("managedFields", None)
            result_meta.pop("selfLink", None)
            if "status" in rt.subresources:
                if "status" in old:
                    result["status"] = old["status"]
                else:
                    result.pop("status", None)
            if old_meta.get("deletionTimestamp"):
                added = set(result_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise errors.invalid(
                        rt.group,
                        rt.kind,
                        name,
                        [
                            {
                                "reason": "FieldValueForbidden",
                                "field": "metadata.finalizers",
                                "message": "Forbidden: no new finalizers can be added if the object is being deleted",
                            }
                        ],
                    )
            if rt.has_generation and _strip_for_generation(result) != _strip_for_generation(old):
                result_meta["generation"] = old_meta.get("generation", 0) + 1
            if rt.plural == "namespaces" and rt.group == "":
                result["spec"] = copy.deepcopy(old.get("spec"))  # spec.finalizers only via /finalize
        for key in ("finalizers", "labels", "annotations", "ownerReferences"):
            if key in result["metadata"] and not result["metadata"][key]:
                del result["metadata"][key]  # the apiserver drops empty lists/maps

        if rt.plural == "customresourcedefinitions" and subresource is None:
            self._admit_crd(result)
        if rt.crd is not None:
            self._validate_cr(rt, result, old)

        self._record_managed_fields(rt, sent_managed_fields, old, result, subresource, manager)
        result["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if result == old or params.get("dryRun"):
            return result, warnings  # no change: no new version, no event
        result["metadata"]["resourceVersion"] = self._next_rv()
        key = (result["metadata"].get("namespace") or "", name)
        self._store[rt.group_resource][key] = result
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            result = self._remove(rt, key)  # the last finalizer is gone: the object goes
        else:
            self._emit(rt, "MODIFIED", result)
            if rt.plural == "customresourcedefinitions":
                self._register_crd(result)
        return result, warnings

    def _delete(
        self, rt: ResourceType, namespace: str | None, name: str, body: bytes, params: dict[str, str]
    ) -> tuple[dict[str, Any], int]:
        obj = self._get(rt, namespace, name)
        options = self._json_object(body) if body.strip() else {}
        preconditions = (options or {}).get("preconditions") or {}
        meta = obj["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if preconditions.get(field) not in (None, meta[field]):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {label} in precondition: {preconditions[field]}, "
                    f"{label} in object meta: {meta[field]}",
                    {"name": name, "group": rt.group, "kind": rt.plural},
                )
        if params.get("dryRun") or (options or {}).get("dryRun"):
            return copy.deepcopy(obj), 200
        return self._delete_object(rt, (namespace or "", name))

    def _delete_object(self, rt: ResourceType, key: tuple[str, str]) -> tuple[dict[str, Any], int]:
        obj = self._store[rt.group_resource][key]
        meta = obj["metadata"]
        is_namespace = rt.plural == "namespaces" and rt.group == ""
        if meta.get("deletionTimestamp"):
            return copy.deepcopy(obj), 202
        if meta.get("finalizers") or is_namespace:
            updated = copy.deepcopy(obj)
            updated["metadata"]["deletionTimestamp"] = _now()
            updated["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt.has_generation:
                updated["metadata"]["generation"] = meta.get("generation", 0) + 1
            if is_namespace:
                updated["status"] = {"phase": "Terminating"}
            updated["metadata"]["resourceVersion"] = self._next_rv()
            self._store[rt.group_resource][key] = updated
            self._emit(rt, "MODIFIED", updated)
            if is_namespace:
                self._terminate_namespace(key[1])
                if key not in self._store[rt.group_resource]:
                    return updated, 200
            return copy.deepcopy(updated), 202
        return self._remove(rt, key), 200

    def _remove(self, rt: ResourceType, key: tuple[str, str]) -> dict[str, Any]:
        stored = self._store[rt.group_resource].pop(key)
        obj = {**stored, "metadata": {**stored["metadata"], "resourceVersion": self._next_rv()}}
        self._emit(rt, "DELETED", obj)
        if rt.plural == "customresourcedefinitions":
            self._unregister_crd(obj)
        if key[0]:
            self._finish_namespace_if_empty(key[0])
        return obj

    def _terminate_namespace(self, namespace: str) -> None:
        """What the namespace controller does: delete everything inside, then the namespace."""
        for group_resource, objects in list(self._store.items()):
            rt = self._type_for(*group_resource) if objects else None
            for key in [k for k in objects if k[0] == namespace]:
                if key in objects:
                    self._delete_object(rt, key)
        self._finish_namespace_if_empty(namespace)

    def _finish_namespace_if_empty(self, namespace: str) -> None:
        namespaces = self._store[("", "namespaces")]
        ns = namespaces.get(("", namespace))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if any(k[0] == namespace for objects in self._store.values() for k in objects):
            return
        self._remove(self._type_for("", "namespaces"), ("", namespace))

    # ---------------------------------------------------------------- CRDs and admission

    def _admit_crd(self, crd: dict[str, Any]) -> None:
        causes = crd_install.check_crd(crd)
        name = crd["metadata"].get("name", "")
        if causes:
            raise errors.invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)
        spec = crd["spec"]
        for rt in self._types.values():
            if rt.crd is None and rt.group == spec["group"] and rt.plural == spec["names"]["plural"]:
                raise errors.invalid(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.names.plural",
                            "message": "Invalid value: conflicts with a built-in resource",
                        }
                    ],
                )
        crd["status"] = crd_install.crd_status(crd)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        self._unregister_crd(crd, drop_objects=False)
        for rt in resources.types_from_crd(crd):
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def _unregister_crd(self, crd: dict[str, Any], drop_objects: bool = True) -> None:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        removed = [
            key
            for key, rt in self._types.items()
            if rt.crd is not None and rt.group_resource == (group, plural)
        ]
        if drop_objects and removed:
            rt = self._types[removed[0]]
            for key in list(self._store[rt.group_resource]):
                self._remove(rt, key)
        for key in removed:
            del self._types[key]

    def _validation(self) -> Any:
        if self.validator is None:
            try:
                from harness import crd_validation  # written separately; imported when first needed
            except ImportError:
                logger.warning("harness.crd_validation is missing: custom resources are NOT validated")
                self.validator = _NoValidation
            else:
                self.validator = crd_validation
        return self.validator

    @property
    def validates(self) -> bool:
        """Whether custom resources are checked against their CRD (False only without the module)."""
        return self._validation() is not _NoValidation

    def _prepare_cr(
        self, rt: ResourceType, obj: dict[str, Any], params: dict[str, str]
    ) -> tuple[dict[str, Any], list[str]]:
        """Defaults, then pruning, as the apiserver decodes a custom resource."""
        validation = self._validation()
        assert rt.crd is not None
        defaulted = validation.apply_defaults(rt.crd, obj)
        obj = defaulted if defaulted is not None else obj
        before = obj  # prune returns a copy (or None: nothing to drop); it never changes its argument
        pruned = validation.prune(rt.crd, obj)
        obj = pruned if pruned is not None else obj
        dropped = [f for f in _dropped_fields(before, obj) if not f.startswith("metadata.")]
        if dropped and params.get("fieldValidation") == "Strict":
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{field}"' for field in dropped)
            )
        warnings = (
            [] if params.get("fieldValidation") == "Ignore" else [f'unknown field "{f}"' for f in dropped]
        )
        return obj, warnings

    def _validate_cr(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        assert rt.crd is not None
        causes = self._validation().validate(rt.crd, obj, old)
        if causes:
            raise errors.invalid(rt.group, rt.kind, obj["metadata"].get("name", ""), list(causes))

    def _admit(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, params: dict[str, str]
    ) -> tuple[dict[str, Any], list[str]]:
        obj, warnings = self._prepare_cr(rt, obj, params)
        self._validate_cr(rt, obj, old)
        return obj, warnings


class _NoValidation:
    """Stands in for harness.crd_validation while it does not exist: admits everything."""

    @staticmethod
    def apply_defaults(crd: dict[str, Any], obj: dict[str, Any]) -> None:
        return None

    @staticmethod
    def prune(crd: dict[str, Any], obj: dict[str, Any]) -> None:
        return None

    @staticmethod
    def validate(crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Any]:
        return []
