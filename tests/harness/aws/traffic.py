"""The WSGI middleware in front of moto: request log, fault injection, control API.

Every AWS request is named (see ``operations``), checked against the fault rules, passed
to moto, and logged with its status and the bytes that crossed the wire each way.
Requests under ``/_harness/`` are the control API (JSON), for processes that do not
share memory with the server (bench and demo scripts)::

    POST   /_harness/faults    {"operation": "UploadPart", "kind": "throttle", "count": 2}
    GET    /_harness/faults
    DELETE /_harness/faults
    GET    /_harness/requests  -> {"requests": [...], "counts": {"PutObject": 3, ...}}
    POST   /_harness/config    {"statusDelaySeconds": 2.5}
    GET    /_harness/config
    POST   /_harness/identities {"accessKeyId": "AKIAANA", "arn": "arn:aws:iam::123456789012:user/ana"}
                               (optional: principalId, sourceIdentity, userProfileName, domainId,
                               userProfileArn) -> the UserContext SageMaker records for that key
    GET    /_harness/identities
    POST   /_harness/roles     {"account": "222222222222", "name": "registry", "trust": {policy}}
                               (optional: trust, default: the default account 123456789012 may
                               assume it; externalId, only with the default trust: then only
                               with that ExternalId; path) -> {"arn": "arn:aws:iam::...:role/..."}
    GET    /_harness/roles     -> {"roles": [{"account", "arn", "trust"}, ...]}
    POST   /_harness/quota     {"requestsPerSecond": 20, "burst": 20} (null: off) quota mode, see ``quota``
    GET    /_harness/quota
    POST   /_harness/reset     forget all AWS state, faults, requests, config, identities and quota

Each logged request (``RequestRecord``) also names the ``account`` and ``region`` it was
served in (from its access key and SigV4 scope, as moto attributes it) and, for the query
protocol (STS, IAM), its ``params`` (``{"RoleArn": ..., "RoleSessionName": ...,
"ExternalId": ...}`` for AssumeRole; never tokens or passwords). Its ``fault`` is the kind of
the fault rule that answered it, or ``"quota"`` for a SageMaker request quota mode throttled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

import moto.iam.models

from .config import HarnessConfig
from .corrections import accounts
from .faults import Faults, FaultSpecError, error_response
from .operations import SECRET_PARAMS, operation_of, query_params, signature_scope
from .quota import QUOTA_FAULT, Quota

CONTROL_PREFIX = "/_harness/"


@dataclass(frozen=True)
class RequestRecord:
    service: str
    operation: str
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    fault: str | None
    started: float  # time.time()
    account: str | None = None  # the AWS account the request was served in
    region: str | None = None  # the region of its SigV4 signature
    params: dict[str, str] | None = None  # query protocol (STS, IAM): its parameters


def _origin(environ: dict) -> tuple[str, str | None, dict[str, str] | None]:
    """(account, region, logged parameters) of a request, as moto attributes it."""
    key, region = signature_scope(environ)
    account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or moto.iam.models.get_account_id_from(
        key or "AKIAEXAMPLE"
    )
    params = query_params(environ)
    if params is not None:
        params = {
            k: v for k, v in params.items() if k not in SECRET_PARAMS and k not in ("Action", "Version")
        }
    return account, region, params


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, operation: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records if operation in (None, r.operation)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(r.operation for r in self._records))

    def count(self, operation: str) -> int:
        return len(self.records(operation))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class HarnessMiddleware:
    def __init__(
        self,
        app: Callable,
        faults: Faults,
        log: RequestLog,
        reset: Callable[[], None],
        config: HarnessConfig,
        quota: Quota | None = None,
    ) -> None:
        self.app = app
        self.quota = quota or Quota()
        self.faults = faults
        self.log = log
        self.reset = reset
        self.config = config

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
        started = time.time()
        service, operation = operation_of(environ)
        origin = _origin(environ)
        bytes_in = _content_length(environ)
        # quota mode (``quota``): a throttled request is refused before anything else, unexecuted
        refused = not self.quota.admit(service, *origin[:2])
        rule = None if refused else self.faults.apply(operation)
        if refused or (rule is not None and rule.kind != "latency"):
            fault = QUOTA_FAULT if refused else rule.kind
            _drain(environ, bytes_in)  # keep-alive: the next request must start clean
            status, headers, body = error_response("throttle" if refused else rule.kind, service)
            if environ.get("REQUEST_METHOD") == "HEAD":
                body = b""
            start_response(f"{status} Injected", headers + [("Content-Length", str(len(body)))])
            self.log.add(
                RequestRecord(
                    service,
                    operation,
                    environ.get("REQUEST_METHOD", ""),
                    path,
                    status,
                    bytes_in,
                    len(body),
                    fault,
                    started,
                    *origin,
                )
            )
            return [body]

        captured: dict = {}

        def capture_start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture_start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self.log.add(
            RequestRecord(
                service,
                operation,
                environ.get("REQUEST_METHOD", ""),
                path,
                captured.get("status", 0),
                bytes_in,
                len(body),
                None,
                started,
                *origin,
            )
        )
        return [body]

    # -- control API -------------------------------------------------------------------

    def _control(self, environ: dict, start_response: Callable, route: str):
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            payload = _read_json(environ)
            status, answer = self._route(method, route.strip("/"), payload)
        except json.JSONDecodeError as exc:
            status, answer = 400, {"error": f"body: not JSON: {exc}"}
        except (FaultSpecError, ValueError) as exc:  # messages start with the field name
            status, answer = 400, {"error": str(exc)}
        except TypeError as exc:
            status, answer = 400, {"error": f"body: {exc}"}
        body = json.dumps(answer, default=str).encode()
        start_response(
            f"{status} {'OK' if status < 400 else 'Error'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _route(self, method: str, route: str, payload) -> tuple[int, dict]:
        if route == "faults":
            if method == "POST":
                return 200, self.faults.add_from_dict(payload).to_dict()
            if method == "DELETE":
                self.faults.clear()
                return 200, {"faults": []}
            if method == "GET":
                return 200, {"faults": [r.to_dict() for r in self.faults.rules()]}
        elif route == "requests" and method == "GET":
            return 200, {
                "requests": [asdict(r) for r in self.log.records()],
                "counts": self.log.counts(),
            }
        elif route == "reset" and method == "POST":
            self.reset()
            return 200, {"reset": True}
        elif route == "identities":
            if method == "POST":
                return 200, self.config.identities_from_dict(payload)
            if method == "GET":
                with self.config._lock:
                    return 200, {"identities": dict(self.config.identities)}
        elif route == "roles":
            if method == "POST":
                return 200, accounts.create_role_from_dict(payload)
            if method == "GET":
                return 200, {"roles": accounts.roles()}
        elif route == "quota":
            if method == "POST":
                return 200, self.quota.update_from_dict(payload)
            if method == "GET":
                return 200, self.quota.to_dict()
        elif route == "config":
            if method == "POST":
                self.config.update_from_dict(payload)
            if method in ("POST", "GET"):
                return 200, self.config.to_dict()
        return 404, {"error": f"no control route {method} /_harness/{route}"}


def _content_length(environ: dict) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _drain(environ: dict, length: int) -> None:
    stream = environ.get("wsgi.input")
    while stream is not None and length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)


def _read_json(environ: dict):
    length = _content_length(environ)
    if not length:
        return {}
    return json.loads(environ["wsgi.input"].read(length) or b"{}")
