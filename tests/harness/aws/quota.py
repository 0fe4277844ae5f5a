"""Quota mode: SageMaker's request rate limit, a token bucket per AWS account and region.

What AWS documents: API calls to a service may not exceed the maximum request rate allowed
per account and per Region, whichever application, CLI or console makes them; beyond it the
call is refused with "Rate exceeded" and throttled (AWS Knowledge Center, "How can I resolve
throttling errors ... when using the Amazon SageMaker Python SDK?",
https://repost.aws/knowledge-center/sagemaker-python-throttlingexception). SageMaker's
answer is the common error `ThrottlingException`, "The request was denied due to request
throttling.", HTTP 400 (SageMaker API Reference, Common Errors,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html), in its JSON
protocol: ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``, which botocore's
retry logic classifies as throttling. A throttled request is refused at the door: it has no
effect. AWS does not publish the shape of its buckets; this one is the usual token bucket:
``requestsPerSecond`` tokens a second, at most ``burst`` (default: one second's worth) held,
full at the start; every admitted SageMaker request takes one, a refused one takes none.

The quota applies to SageMaker only (S3, STS and IAM are never throttled by it), per
``(account, region)`` of the request as the request log records it. Off until set::

    POST /_harness/quota  {"requestsPerSecond": 20, "burst": 20}   (burst optional)
    POST /_harness/quota  {"requestsPerSecond": null}              off
    GET  /_harness/quota  -> {"requestsPerSecond": 20.0, "burst": 20.0, "throttled": 12}

A refused request is logged with ``fault == "quota"``; ``/_harness/reset`` turns the quota off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

QUOTA_FAULT = "quota"  # RequestRecord.fault of a request the quota refused


class Quota:
    """The token buckets; thread-safe (the server handles requests in threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._burst = 0.0
        self._buckets: dict[tuple[str | None, str | None], tuple[float, float]] = {}  # tokens, at
        self._throttled = 0

    def set(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """Turn quota mode on (a positive rate; ``burst`` default: the rate, at least 1) or off (None).
        Every bucket starts full again."""
        if requests_per_second is not None and not _positive(requests_per_second):
            raise ValueError("requestsPerSecond: must be a positive number, or null to turn the quota off")
        if burst is not None and not (_positive(burst) and burst >= 1):
            raise ValueError("burst: must be a number >= 1")
        with self._lock:
            self._rate = None if requests_per_second is None else float(requests_per_second)
            self._burst = float(burst) if burst is not None else max(1.0, self._rate or 0.0)
            self._buckets.clear()
            self._throttled = 0

    def clear(self) -> None:
        self.set(None)

    def admit(self, service: str, account: str | None, region: str | None) -> bool:
        """Whether this request may be served (True); False: refuse it as throttled."""
        if service != "sagemaker":
            return True
        with self._lock:
            if self._rate is None:
                return True
            now = self._clock()
            tokens, at = self._buckets.get((account, region), (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[(account, region)] = (tokens, now)
                self._throttled += 1
                return False
            self._buckets[(account, region)] = (tokens - 1.0, now)
            return True

    def to_dict(self) -> dict:
        with self._lock:
            return {
                "requestsPerSecond": self._rate,
                "burst": self._burst if self._rate is not None else None,
                "throttled": self._throttled,
            }

    def update_from_dict(self, payload) -> dict:
        """The control API's POST /_harness/quota body."""
        if not isinstance(payload, dict):
            raise ValueError("body: must be a JSON object")
        unknown = set(payload) - {"requestsPerSecond", "burst"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown member")
        if "requestsPerSecond" not in payload:
            raise ValueError("requestsPerSecond: required (a number, or null to turn the quota off)")
        self.set(payload["requestsPerSecond"], payload.get("burst"))
        return self.to_dict()


def _positive(value) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )
