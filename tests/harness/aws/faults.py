"""Fault injection: make chosen operations fail or slow down, as the real services can.

A rule names an operation (``"CreateModelPackage"``, ``"UploadPart"``, or ``"*"``), a
kind, and when it fires: the next ``count`` matching calls, or each call with
``probability`` drawn from a ``random.Random(seed)`` (both may be combined: at most
``count`` firings). Kinds and the errors they answer:

- ``throttle``: SageMaker answers HTTP 400 ``ThrottlingException`` in its JSON protocol
  (what botocore classifies as throttling); S3 answers HTTP 503 ``SlowDown``; STS and IAM
  (query protocol, XML ``ErrorResponse``) HTTP 400 ``Throttling``.
- ``error500``: HTTP 500 ``InternalFailure`` (SageMaker) / ``InternalError`` (S3).
- ``error503``: HTTP 503 ``ServiceUnavailable``.
- ``latency``: sleep ``seconds`` and then serve the request normally.
"""

from __future__ import annotations

import functools
import itertools
import random
import threading
import time
from dataclasses import dataclass, field

import botocore.session

KINDS = ("throttle", "error500", "error503", "latency")
sleep = time.sleep  # a module attribute, so that tests can observe delays without waiting


class FaultSpecError(ValueError):
    """A fault rule that cannot be applied; the message names the bad field."""


@dataclass
class FaultRule:
    operation: str
    kind: str
    count: int | None = None
    probability: float | None = None
    seed: int | None = None
    seconds: float = 0.0
    id: int = 0
    fired: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.operation, str) or not (
            self.operation == "*" or self.operation in known_operations()
        ):
            raise FaultSpecError(
                f"operation: {self.operation!r} is not a SageMaker, S3, STS or IAM operation name "
                "(e.g. CreateModelPackage, UploadPartCopy, AssumeRole) nor '*'"
            )
        if self.kind not in KINDS:
            raise FaultSpecError(f"kind: must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.count is None and self.probability is None:
            raise FaultSpecError("count or probability: one of them is required")
        if self.count is not None and (not _is_int(self.count) or self.count < 0):
            raise FaultSpecError("count: must be a non-negative integer")
        if self.probability is not None and not (
            _is_number(self.probability) and 0.0 <= self.probability <= 1.0
        ):
            raise FaultSpecError("probability: must be a number between 0 and 1")
        if not _is_number(self.seconds) or self.seconds < 0:
            raise FaultSpecError("seconds: must be a number >= 0")
        if self.seed is not None and not isinstance(self.seed, int):
            raise FaultSpecError("seed: must be an integer")
        if self.kind == "latency" and not self.seconds:
            raise FaultSpecError("seconds: a latency rule needs a positive delay")
        self._random = random.Random(self.seed)

    def matches(self, operation: str) -> bool:
        return self.operation in ("*", operation)

    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def draw(self) -> bool:
        """Decide whether this call fails; counts the firing."""
        if self.exhausted():
            return False
        if self.probability is not None and self._random.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "operation": self.operation,
            "kind": self.kind,
            "count": self.count,
            "probability": self.probability,
            "seed": self.seed,
            "seconds": self.seconds,
            "fired": self.fired,
        }


@functools.cache
def known_operations() -> frozenset[str]:
    """Operation names of the emulated services, from botocore's service models, so that
    a misspelt rule is refused instead of silently never firing."""
    session = botocore.session.get_session()
    return frozenset(
        name
        for service in ("sagemaker", "s3", "sts", "iam")
        for name in session.get_service_model(service).operation_names
    )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Faults:
    """The active rules. Thread-safe: the server handles requests in threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(
        self,
        operation: str,
        kind: str,
        *,
        count: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
        seconds: float = 0.0,
    ) -> FaultRule:
        rule = FaultRule(operation, kind, count, probability, seed, seconds)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    # Shorthands for the common cases.
    def throttle(self, operation: str, count: int = 1, **kw) -> FaultRule:
        return self.add(operation, "throttle", count=count, **kw)

    def error(self, operation: str, status: int = 500, count: int = 1, **kw) -> FaultRule:
        if status not in (500, 503):
            raise FaultSpecError("status: must be 500 or 503")
        return self.add(operation, f"error{status}", count=count, **kw)

    def latency(self, operation: str, seconds: float, count: int | None = None, **kw) -> FaultRule:
        if count is None and kw.get("probability") is None:
            kw["probability"] = 1.0  # every call, until cleared
        return self.add(operation, "latency", count=count, seconds=seconds, **kw)

    def add_from_dict(self, spec: dict) -> FaultRule:
        if not isinstance(spec, dict):
            raise FaultSpecError("body: must be a JSON object")
        allowed = {"operation", "kind", "count", "probability", "seed", "seconds"}
        unknown = set(spec) - allowed
        if unknown:
            raise FaultSpecError(f"{sorted(unknown)[0]}: unknown field")
        if "operation" not in spec or "kind" not in spec:
            raise FaultSpecError("operation and kind: both are required")
        return self.add(**spec)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def apply(self, operation: str) -> FaultRule | None:
        """Sleep for matching latency rules; return the error rule that fires, if any."""
        delay = 0.0
        failing = None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(operation):
                    continue
                if rule.kind == "latency":
                    if rule.draw():
                        delay += rule.seconds
                elif failing is None and rule.draw():
                    failing = rule
        if delay:
            sleep(delay)
        return failing


# (HTTP status, error code, message) per protocol: SageMaker JSON, S3 XML, query XML
_ERRORS = {
    "throttle": {
        "sagemaker": (400, "ThrottlingException", "Rate exceeded"),
        "s3": (503, "SlowDown", "Please reduce your request rate."),
        "query": (400, "Throttling", "Rate exceeded"),
    },
    "error500": {
        "sagemaker": (500, "InternalFailure", "An internal error occurred (injected)."),
        "s3": (500, "InternalError", "We encountered an internal error. Please try again."),
        "query": (500, "InternalFailure", "An internal error occurred (injected)."),
    },
    "error503": {
        "sagemaker": (503, "ServiceUnavailable", "Service unavailable (injected)."),
        "s3": (503, "ServiceUnavailable", "Service is unable to handle request."),
        "query": (503, "ServiceUnavailable", "Service unavailable (injected)."),
    },
}
# XML namespaces of the query-protocol services' responses
_QUERY_NAMESPACES = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}


def error_response(kind: str, service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body the real service answers for this kind of failure."""
    import json

    if service == "s3":
        status, code, message = _ERRORS[kind]["s3"]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>harness</RequestId></Error>"
        ).encode()
        return status, [("Content-Type", "application/xml")], body
    if service in _QUERY_NAMESPACES:
        status, code, message = _ERRORS[kind]["query"]
        fault = "Sender" if status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{_QUERY_NAMESPACES[service]}">'
            f"<Error><Type>{fault}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>harness</RequestId></ErrorResponse>"
        ).encode()
        return status, [("Content-Type", "text/xml")], body
    status, code, message = _ERRORS[kind]["sagemaker"]
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-ErrorType", f"{code}:"),
        ("x-amzn-RequestId", "harness"),
    ]
    return status, headers, body
