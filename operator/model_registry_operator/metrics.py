"""Prometheus metrics of the operator, served over HTTP (`--metrics ADDR:PORT`, MRO_METRICS).

Label sets stay bounded whatever the cluster holds: kind, outcome, condition, SageMaker
operation and error code, AWS account and region (one per configured role and region), copy
result. Object names never become labels.

- Reconciles are counted and timed where their result is known (controllers/wiring.py).
- `objects{kind, condition}` is computed at scrape time from the condition each object was
  last written with, kept per UID: an object leaves it when its delete finishes or the API
  server reports it gone, and a restarted operator refills it as it resumes every object.
- SageMaker requests are read at scrape time from the registries' own counters
  (SageMakerRegistry.metrics(), summed per account and region), not counted twice.
- Process metrics (CPU, memory, open files) come with prometheus_client's default registry.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

PREFIX = "model_registry_operator"
DEFAULT_ADDRESS = "0.0.0.0:9090"


def kind_names() -> tuple[str, ...]:
    from .api import KINDS  # late: `model-registry-operator --help` does not build the API types

    return tuple(KINDS)


CONDITIONS = ("Ready", "Reconciling", "Stalled")
# ready/reconciling/stalled: the state the reconcile ended in; error: a retryable failure
# (throttling, SageMaker unavailable, an unexpected exception), retried with backoff;
# deleted: a delete that finished (the finalizer goes).
OUTCOMES = ("ready", "reconciling", "stalled", "error", "deleted")
COPY_RESULTS = ("copied", "reused", "failed")
# From a cached no-op resync (milliseconds) to a multi-GiB artifact copy (many minutes).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, float("inf"))


def parse_address(value: str) -> tuple[str, int] | None:
    """`ADDR:PORT` (`0.0.0.0:9090`, `:9090` for every interface, `[::]:9090`) -> (addr, port);
    empty or `off` -> None (no metrics endpoint). Raises ValueError with the expected form."""
    value = value.strip()
    if value.lower() in ("", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"expected ADDR:PORT such as {DEFAULT_ADDRESS}, or an empty value to turn metrics off, "
            f"got {value!r}"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def state_of(status: dict[str, Any] | None) -> str | None:
    """The condition that is True in `status` (Ready, Reconciling or Stalled), if any."""
    for c in (status or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") in CONDITIONS and c.get("status") == "True":
            return str(c["type"])  # one of CONDITIONS
    return None


class ObjectConditions:
    """{uid: (kind, condition)} as last written; thread-safe (reconciles run in a pool).

    An entry not written or touched for `max_age` seconds is dropped: an active operator
    looks at every object at least once per resync period, so what is older belongs to a
    replica that peering paused (whose watches stopped, so deletions never reach it) and
    would otherwise be exported, stale, for ever."""

    def __init__(self, max_age: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._guard = threading.Lock()
        self._by_uid: dict[str, tuple[str, str, float]] = {}
        self._max_age, self._clock = max_age, clock

    def set(self, uid: str, kind: str, condition: str) -> None:
        with self._guard:
            self._by_uid[uid] = (kind, condition, self._clock())

    def touch(self, uid: str) -> None:
        """The object was looked at and its condition stands (a resync left to a running handler)."""
        with self._guard:
            if uid in self._by_uid:
                kind, condition, _ = self._by_uid[uid]
                self._by_uid[uid] = (kind, condition, self._clock())

    def forget(self, uid: str) -> None:
        with self._guard:
            self._by_uid.pop(uid, None)

    def counts(self) -> Tally[tuple[str, str]]:
        with self._guard:
            if self._max_age is not None:
                oldest = self._clock() - self._max_age
                for uid in [uid for uid, (_, _, at) in self._by_uid.items() if at < oldest]:
                    del self._by_uid[uid]
            return Tally((kind, condition) for kind, condition, _ in self._by_uid.values())


class _ObjectsCollector:
    def __init__(self, conditions: ObjectConditions):
        self._conditions = conditions

    def collect(self) -> Iterator[Metric]:
        counts = self._conditions.counts()
        gauge = GaugeMetricFamily(
            f"{PREFIX}_objects",
            "Objects by kind and the kstatus condition that is True "
            "in their status, as the operator last wrote it.",
            labels=["kind", "condition"],
        )
        for kind in sorted(set(kind_names()) | {k for k, _ in counts}):
            for condition in CONDITIONS:
                gauge.add_metric([kind, condition], counts.get((kind, condition), 0))
        yield gauge


# {(account, region): SageMakerRegistry.metrics()}: the registries' counters per AWS account
# and region (accounts.Accounts.metrics); both labels are bounded by the configured roles and regions
SageMakerCounters = dict[tuple[str, str], dict[str, dict[Any, int]]]


class _SageMakerCollector:
    """Reads the registries' counters at scrape time: per (account, region), SageMakerRegistry.metrics():
    {"calls": {op: n}, "attempts": {op: n}, "errors": {(op, code): n}}, and with a rate limiter
    "rate_limit": {"rate_millis": n, "wait_millis": n}."""

    def __init__(self, read: Callable[[], SageMakerCounters]):
        self._read = read

    def collect(self) -> Iterator[Metric]:
        registries = self._read()
        calls = CounterMetricFamily(
            f"{PREFIX}_sagemaker_calls",
            "SageMaker API calls by operation; a call botocore retried counts once.",
            labels=["account", "region", "operation"],
        )
        requests = CounterMetricFamily(
            f"{PREFIX}_sagemaker_requests",
            "HTTP requests to SageMaker by operation, botocore's retries included.",
            labels=["account", "region", "operation"],
        )
        errors = CounterMetricFamily(
            f"{PREFIX}_sagemaker_errors",
            "SageMaker HTTP requests that failed, by "
            "operation and error code (or network exception), botocore's retries "
            "included.",
            labels=["account", "region", "operation", "code"],
        )
        rate = GaugeMetricFamily(
            f"{PREFIX}_sagemaker_rate_limit",
            "SageMaker requests per second the operator currently allows itself (its limiter: the "
            "configured rate, lowered while SageMaker throttles); absent while there is no limit.",
            labels=["account", "region"],
        )
        waited = CounterMetricFamily(
            f"{PREFIX}_sagemaker_rate_limit_wait_seconds",
            "Seconds SageMaker requests waited for the operator's rate limiter, summed over threads.",
            labels=["account", "region"],
        )
        for (account, region), counters in sorted(registries.items()):
            for family, values in (
                (calls, counters.get("calls", {})),
                (requests, counters.get("attempts", {})),
            ):
                for operation, count in sorted(values.items()):
                    family.add_metric([account, region, operation], count)
            for (operation, code), count in sorted(counters.get("errors", {}).items()):
                errors.add_metric([account, region, operation, code], count)
            limiter = counters.get("rate_limit", {})  # registry/ratelimit.py, in thousandths
            if "rate_millis" in limiter:
                rate.add_metric([account, region], limiter["rate_millis"] / 1000)
            if "wait_millis" in limiter:
                waited.add_metric([account, region], limiter["wait_millis"] / 1000)
        yield from (calls, requests, errors, rate, waited)


class OperatorMetrics:
    """The operator's metrics in one Prometheus registry (the process's default one unless
    given: tests pass their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, objects_max_age: float | None = None):
        """`objects_max_age`: see ObjectConditions (a few resync periods); None: kept until deleted."""
        self.registry = registry
        self.reconciles = Counter(
            f"{PREFIX}_reconciles", "Reconciles by kind and outcome.", ["kind", "outcome"], registry=registry
        )
        self.duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile took (SageMaker "
            "calls and artifact copies included, waits between attempts not).",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.copies = Counter(
            f"{PREFIX}_artifact_copies",
            "Artifacts handled by result: copied into the artifact "
            "bucket, reused (a complete copy was already there), failed.",
            ["result"],
            registry=registry,
        )
        self.bytes_copied = Counter(
            f"{PREFIX}_artifact_copied_bytes",
            "Bytes of archives written to the artifact bucket.",
            registry=registry,
        )
        for kind in kind_names():  # every series exists from the start, so rate() sees the first increment
            self.duration.labels(kind)
            for outcome in OUTCOMES:
                self.reconciles.labels(kind, outcome)
        for result in COPY_RESULTS:
            self.copies.labels(result)
        self.objects = ObjectConditions(objects_max_age)
        registry.register(_ObjectsCollector(self.objects))

    def watch_sagemaker(self, read: Callable[[], SageMakerCounters]) -> None:
        """Expose the registries' counters per (account, region) (accounts.Accounts.metrics)."""
        self.registry.register(_SageMakerCollector(read))

    def reconciled(
        self,
        kind: str,
        status: dict[str, Any],
        seconds: float,
        *,
        failed: bool = False,
        deleted: bool = False,
    ) -> None:
        """One reconcile (or delete) ended with `status`."""
        if deleted:
            outcome = "deleted"
        elif failed:
            outcome = "error"
        else:
            outcome = (state_of(status) or "reconciling").lower()
        self.reconciles.labels(kind, outcome).inc()
        self.duration.labels(kind).observe(seconds)

    def written(self, kind: str, uid: str, status: dict[str, Any]) -> None:
        """The operator wrote `status` for the object `uid`."""
        condition = state_of(status)
        if condition is not None:
            self.objects.set(uid, kind, condition)

    def looked_at(self, uid: str) -> None:
        self.objects.touch(uid)

    def gone(self, uid: str) -> None:
        self.objects.forget(uid)

    def artifact(self, result: str, size: int = 0) -> None:
        """One artifact handled: `result` is one of COPY_RESULTS, `size` the bytes written."""
        self.copies.labels(result).inc()
        if result == "copied":
            self.bytes_copied.inc(size)


def serve(address: tuple[str, int], registry: CollectorRegistry = REGISTRY) -> Any:
    """Serve `registry` at http://ADDR:PORT/metrics from a daemon thread; returns the server.
    OSError (the port is taken, the address is not this host's) is the caller's to report."""
    from prometheus_client import disable_created_metrics, start_http_server

    # one `_created` series per counter doubles what is stored for a timestamp nobody queries
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    host, port = address
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
