"""A client-side limit on the rate of SageMaker requests, shared by every thread of one client.

SageMaker limits the rate of API requests per AWS account and region (each operation has its
own quota, listed in Service Quotas) and refuses what goes beyond it with a
`ThrottlingException` ("Rate exceeded"). botocore's standard retries back off, but every
throttled attempt still spends quota, the account's other clients' as well as the operator's:
16 worker threads calling as fast as they can against a quota of 20 requests/s had nearly
half of their requests throttled and took 2.3-2.8 times the time their calls needed at that
rate (issue 14). So each registry (one botocore client: one account and region) has one
`RateLimiter`, shared by all the threads that use it:

- **Token bucket.** Tokens accrue at the current rate, up to a burst of
  SAGEMAKER_RATE_BURST_SECONDS of them (at least one). Every HTTP attempt takes one,
  botocore's retries included (the `before-send` event). A thread that finds none reserves the
  next one and sleeps, outside the lock, until it is due: requests go in the order they came,
  no thread polls, and the rate holds however many threads call.
- **Adaptive (AIMD).** A throttled answer (`response-received`: a throttling code, or HTTP
  429) halves the rate, at most once per SAGEMAKER_RATE_DECREASE_INTERVAL and never below
  SAGEMAKER_RATE_FLOOR, and empties the bucket; each successful answer adds back
  SAGEMAKER_RATE_INCREASE_SHARE of the reference rate per second since the previous one (at
  least SAGEMAKER_RATE_INCREASE_MIN), up to the ceiling. Another client spending the same
  account's quota makes the operator yield part of it, and take it back once the throttling
  stops.
- **Ceiling.** The configured rate (`--sagemaker-rate`, the account's quota), the reference
  of the growth. Without one there is no limit at all until SageMaker throttles: the first
  throttle sets the rate to half of what was actually sent over the last
  SAGEMAKER_RATE_WINDOW, and it then grows back (by 5% per second of the rate it had before
  each halving) with no ceiling. Rate 0 turns the limiter off (`limiter_for`).

The waits happen after botocore signed the request: they are bounded by the threads waiting
times the interval between tokens (16 threads at the floor of 2 requests/s: 8 s), far within a
signature's validity.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ..timing import (
    SAGEMAKER_RATE_BURST_SECONDS,
    SAGEMAKER_RATE_DECREASE_INTERVAL,
    SAGEMAKER_RATE_FLOOR,
    SAGEMAKER_RATE_INCREASE_MIN,
    SAGEMAKER_RATE_INCREASE_SHARE,
    SAGEMAKER_RATE_WINDOW,
)
from .classify import THROTTLING_CODES


class RateLimiter:
    """Requests per second for one client; thread-safe. `rate`: the ceiling (requests per
    second, > 0), or None for no limit until SageMaker throttles. `clock` and `sleep` are
    time.monotonic and time.sleep; tests pass fakes."""

    def __init__(
        self,
        rate: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate: expected a positive number of requests per second, got {rate!r}")
        self.ceiling = math.inf if rate is None else float(rate)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._rate = self.ceiling
        self._floor = min(SAGEMAKER_RATE_FLOOR, self.ceiling)
        self._reference = self.ceiling  # what the growth after a halving is a share of
        now = clock()
        self._tokens = self._burst()
        self._filled_at = now  # tokens counted up to this time
        self._grown_at = now  # the rate grown back up to this time
        self._decreased_at = -math.inf
        # without a ceiling: when the requests of the last window were sent (their rate)
        self._sent: collections.deque[float] | None = collections.deque() if rate is None else None
        self._waited = 0.0
        self._throttles = 0

    @property
    def rate(self) -> float:
        """The current rate, requests per second (inf: no limit)."""
        with self._lock:
            return self._rate

    @property
    def waited(self) -> float:
        """Seconds requests spent waiting for a token, summed over threads."""
        with self._lock:
            return self._waited

    @property
    def throttles(self) -> int:
        """Throttled answers seen."""
        with self._lock:
            return self._throttles

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            if self._sent is not None:
                self._sent.append(now)
                while self._sent[0] < now - SAGEMAKER_RATE_WINDOW:
                    self._sent.popleft()
            if math.isinf(self._rate):
                return 0.0
            self._fill(now)
            self._tokens -= 1.0  # below 0: a reservation, repaid as tokens accrue
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
            self._waited += wait
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self) -> None:
        """SageMaker throttled a request: halve the rate (once per decrease interval)."""
        with self._lock:
            now = self._clock()
            self._throttles += 1
            if now - self._decreased_at < SAGEMAKER_RATE_DECREASE_INTERVAL:
                return
            self._decreased_at = self._grown_at = now
            base = self._rate
            if self._sent is not None:  # no ceiling: from what was really sent
                recent = sum(1 for at in self._sent if at >= now - SAGEMAKER_RATE_WINDOW)
                base = min(base, recent / SAGEMAKER_RATE_WINDOW)
                self._reference = max(base, self._floor)
            if math.isinf(self._rate):
                self._tokens = 0.0
            else:
                self._fill(now)
                self._tokens = min(self._tokens, 0.0)
            self._filled_at = now
            self._rate = max(self._floor, base / 2)

    def succeeded(self) -> None:
        """A request was answered without throttling: grow the rate back towards the ceiling."""
        with self._lock:
            if self._rate >= self.ceiling:
                return
            now = self._clock()
            self._fill(now)
            step = max(SAGEMAKER_RATE_INCREASE_MIN, SAGEMAKER_RATE_INCREASE_SHARE * self._reference)
            self._rate = min(self.ceiling, self._rate + step * max(0.0, now - self._grown_at))
            self._grown_at = now

    def metrics(self) -> dict[str, int]:
        """`rate_millis` (the current rate in thousandths of a request per second; absent while
        there is no limit) and `wait_millis` (milliseconds waited, summed over threads): whole
        numbers, like the registry's other counters."""
        with self._lock:
            values = {"wait_millis": round(self._waited * 1000)}
            if math.isfinite(self._rate):
                values["rate_millis"] = round(self._rate * 1000)
            return values

    def attach(self, events: Any, service: str = "sagemaker") -> None:
        """Register on a botocore client's events (`client.meta.events`): every HTTP attempt
        takes a token, every answer adapts the rate."""
        events.register(f"before-send.{service}", self._before_send)
        events.register(f"response-received.{service}", self._response_received)

    def _before_send(self, **_: Any) -> None:
        self.acquire()  # returns None: a value would be taken as the HTTP response

    def _response_received(
        self, response_dict: Any = None, parsed_response: Any = None, exception: Any = None, **_: Any
    ) -> None:
        if exception is not None or response_dict is None:
            return  # the network: says nothing about the rate
        status = response_dict.get("status_code", 200)
        code = ((parsed_response or {}).get("Error") or {}).get("Code") if status >= 300 else None
        if status == 429 or code in THROTTLING_CODES:
            self.throttled()
        elif status < 500:
            self.succeeded()

    def _burst(self) -> float:
        return max(1.0, self._rate * SAGEMAKER_RATE_BURST_SECONDS)

    def _fill(self, now: float) -> None:
        """Tokens accrued at the current rate since they were last counted (lock held)."""
        elapsed = max(0.0, now - self._filled_at)
        self._tokens = min(self._burst(), self._tokens + elapsed * self._rate)
        self._filled_at = now


def limiter_for(rate: float | None) -> RateLimiter | None:
    """The limiter for the `--sagemaker-rate` setting: None (unset) adapts to throttling with no
    ceiling, a positive rate is the ceiling, 0 turns the limiter off (None)."""
    if rate == 0:
        return None
    return RateLimiter(rate)
