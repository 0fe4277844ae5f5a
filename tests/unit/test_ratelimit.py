"""The client-side SageMaker rate limiter (registry/ratelimit.py): the rate holds (fake clock),
throttling halves it and success adds it back (AIMD, floor and ceiling), many threads share it
without losing a token or busy-waiting, botocore's events drive it, and the setting reaches it."""

from __future__ import annotations

import math
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from model_registry_operator import timing
from model_registry_operator.metrics import OperatorMetrics
from model_registry_operator.registry.ratelimit import RateLimiter, limiter_for
from model_registry_operator.registry.sagemaker import SageMakerRegistry
from model_registry_operator.settings import Settings


class FakeTime:
    """A clock that only `sleep` moves (one thread)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: float | None, fake: FakeTime) -> RateLimiter:
    return RateLimiter(rate, clock=fake.clock, sleep=fake.sleep)


# --- the rate holds --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.5, 1.0, 20.0, 250.0])
def test_the_rate_holds_after_the_burst(rate):
    fake = FakeTime()
    limit = limiter(rate, fake)
    burst = max(1.0, rate * timing.SAGEMAKER_RATE_BURST_SECONDS)
    start = fake.now
    for _ in range(1000):
        limit.acquire()
    elapsed = fake.now - start
    assert elapsed == pytest.approx((1000 - burst) / rate, rel=1e-6)
    assert limit.waited == pytest.approx(sum(fake.slept))


def test_a_quiet_moment_refills_the_bucket_up_to_the_burst_only():
    fake = FakeTime()
    limit = limiter(20, fake)  # burst: 5
    fake.now += 3600
    waits = [limit.acquire() for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(1 / 20) and waits[6] == pytest.approx(1 / 20)


def test_requests_spaced_below_the_rate_never_wait():
    fake = FakeTime()
    limit = limiter(10, fake)
    for _ in range(100):
        fake.now += 0.11
        assert limit.acquire() == 0.0


def test_without_a_ceiling_nothing_waits_until_sagemaker_throttles():
    fake = FakeTime()
    limit = limiter(None, fake)
    assert limit.rate == math.inf
    assert all(limit.acquire() == 0.0 for _ in range(10_000))
    assert fake.slept == [] and limit.metrics() == {"wait_millis": 0}


def test_a_bad_rate_is_refused_and_zero_means_no_limiter():
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="rate"):
            RateLimiter(bad)
    assert limiter_for(0) is None
    assert limiter_for(None).ceiling == math.inf
    assert limiter_for(20).ceiling == 20.0


# --- adaptivity --------------------------------------------------------------------------------


def test_throttling_halves_the_rate_once_per_interval_down_to_the_floor():
    fake = FakeTime()
    limit = limiter(20, fake)
    limit.throttled()
    assert limit.rate == 10
    limit.throttled()  # an answer to a request already in flight: no second halving
    fake.now += timing.SAGEMAKER_RATE_DECREASE_INTERVAL / 2
    limit.throttled()
    assert limit.rate == 10
    rates = []
    for _ in range(10):
        fake.now += timing.SAGEMAKER_RATE_DECREASE_INTERVAL
        limit.throttled()
        rates.append(limit.rate)
    floor = timing.SAGEMAKER_RATE_FLOOR
    assert rates[:3] == [max(floor, 5), max(floor, 2.5), max(floor, 1.25)]
    assert min(rates) == floor == rates[-1]
    assert limit.throttles == 13


def test_a_halving_empties_the_bucket():
    fake = FakeTime()
    limit = limiter(20, fake)
    fake.now += 10  # a full bucket
    limit.throttled()
    assert limit.acquire() == pytest.approx(1 / 10)  # no burst into an account that is throttling


def test_success_adds_the_rate_back_slowly_up_to_the_ceiling():
    fake = FakeTime()
    limit = limiter(20, fake)
    limit.throttled()
    assert limit.rate == 10
    step = max(timing.SAGEMAKER_RATE_INCREASE_MIN, timing.SAGEMAKER_RATE_INCREASE_SHARE * 20)  # per second
    seen = []
    for _ in range(30):
        fake.now += 0.5
        limit.succeeded()
        seen.append(limit.rate)
    assert seen[1] == pytest.approx(10 + step)  # after one second
    assert seen[:10] == sorted(seen[:10])  # growing, additively
    assert seen[-1] == 20 and max(seen) == 20  # back at the ceiling, never above
    assert (seen.index(20) + 1) * 0.5 == pytest.approx(10 / step, abs=0.5)  # half the rate back at `step`


def test_the_recovered_rate_is_what_requests_get():
    fake = FakeTime()
    limit = limiter(20, fake)
    fake.now += 1
    limit.throttled()
    start = fake.now
    for _ in range(100):
        limit.acquire()
    assert fake.now - start == pytest.approx(100 / 10, rel=0.01)  # halved: 10/s
    for _ in range(40):
        fake.now += 0.5
        limit.succeeded()
    start = fake.now
    for _ in range(100):
        limit.acquire()
    assert (100 - 5) / 20 <= fake.now - start <= 100 / 20  # back to 20/s


def test_without_a_ceiling_the_first_throttle_halves_what_was_really_sent():
    fake = FakeTime()
    limit = limiter(None, fake)
    for _ in range(30):  # 30 requests in the last second
        fake.now += 1 / 30
        limit.acquire()
    limit.throttled()
    assert limit.rate == pytest.approx(15)
    fake.now += 10
    limit.succeeded()  # grows by 5% of 30/s per second: no ceiling to stop at
    step = max(timing.SAGEMAKER_RATE_INCREASE_MIN, timing.SAGEMAKER_RATE_INCREASE_SHARE * 30)
    assert limit.rate == pytest.approx(15 + 10 * step)
    assert limit.metrics()["rate_millis"] == round(limit.rate * 1000)


def test_the_floor_never_exceeds_a_lower_configured_rate():
    fake = FakeTime()
    limit = limiter(timing.SAGEMAKER_RATE_FLOOR / 2, fake)
    limit.throttled()
    assert limit.rate == timing.SAGEMAKER_RATE_FLOOR / 2


# --- threads -----------------------------------------------------------------------------------


def test_concurrent_acquisitions_each_reserve_their_own_slot():
    frozen = 50.0
    slept: list[float] = []
    guard = threading.Lock()

    def sleep(seconds: float) -> None:
        with guard:
            slept.append(seconds)

    limit = RateLimiter(10, clock=lambda: frozen, sleep=sleep)  # burst: 2.5
    threads = [threading.Thread(target=lambda: [limit.acquire() for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 tokens at a frozen time: the first 2 free, then one slot every 0.1 s, none lost or shared
    expected = [(n + 1 - 2.5) / 10 for n in range(2, 200)]
    assert sorted(slept) == pytest.approx(expected)


def test_threads_share_the_rate_in_real_time_without_busy_waiting():
    limit = RateLimiter(100)  # burst: 25
    cpu, start = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=lambda: [limit.acquire() for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    assert elapsed >= (200 - 25) / 100 * 0.95
    assert elapsed < 6.0
    assert time.process_time() - cpu < 0.5  # sleeping, not spinning


# --- botocore's events and the registry ---------------------------------------------------------


def emit_answer(registry: SageMakerRegistry, status: int, code: str | None = None) -> None:
    registry._client.meta.events.emit(
        "response-received.sagemaker.DescribeModel",
        response_dict={"status_code": status},
        parsed_response={"Error": {"Code": code}} if code else {},
        exception=None,
        context={},
    )


def test_the_registry_has_one_limiter_driven_by_each_attempt_and_answer():
    registry = SageMakerRegistry("us-east-2", rate_limit=20)
    assert registry.limiter is not None and registry.limiter.ceiling == 20
    emit_answer(registry, 400, "ThrottlingException")
    assert registry.limiter.rate == 10
    emit_answer(registry, 400, "ValidationException")  # an answer, not a throttle: grows back
    emit_answer(registry, 500, "InternalFailure")  # says nothing about the rate
    assert 10 <= registry.limiter.rate < 20 and registry.limiter.throttles == 1
    emitted = registry._client.meta.events.emit("before-send.sagemaker.DescribeModel", request=None)
    assert [response for _, response in emitted] == [None] * len(emitted)  # no handler answers for HTTP
    assert registry.metrics()["rate_limit"]["rate_millis"] >= 10_000


def test_http_429_is_throttling_too():
    registry = SageMakerRegistry("us-east-2", rate_limit=20)
    emit_answer(registry, 429)
    assert registry.limiter.rate == 10


def test_the_registry_default_adapts_without_a_ceiling_and_zero_turns_it_off():
    assert SageMakerRegistry("us-east-2").limiter.ceiling == math.inf
    off = SageMakerRegistry("us-east-2", rate_limit=0)
    assert off.limiter is None and "rate_limit" not in off.metrics()


def test_the_limiter_is_exported_per_account_and_region():
    metrics = OperatorMetrics(CollectorRegistry())
    counters = {
        "calls": {},
        "attempts": {},
        "errors": {},
        "rate_limit": {"rate_millis": 12500, "wait_millis": 3250},
    }
    unlimited = {"calls": {}, "attempts": {}, "errors": {}, "rate_limit": {"wait_millis": 0}}
    metrics.watch_sagemaker(lambda: {("111111111111", "us-east-2"): counters, ("2", "eu-west-1"): unlimited})
    here = {"account": "111111111111", "region": "us-east-2"}
    sample = metrics.registry.get_sample_value
    assert sample("model_registry_operator_sagemaker_rate_limit", here) == 12.5
    assert sample("model_registry_operator_sagemaker_rate_limit_wait_seconds_total", here) == 3.25
    there = {"account": "2", "region": "eu-west-1"}
    assert sample("model_registry_operator_sagemaker_rate_limit", there) is None  # no limit: absent
    assert sample("model_registry_operator_sagemaker_rate_limit_wait_seconds_total", there) == 0


# --- the setting ---------------------------------------------------------------------------------


def test_the_setting_from_the_environment_and_the_flag():
    assert Settings.from_env({}).sagemaker_rate is None
    assert Settings.from_env({"MRO_SAGEMAKER_RATE": "20"}).sagemaker_rate == 20.0
    assert Settings.from_env({"MRO_SAGEMAKER_RATE": "off"}).sagemaker_rate == 0.0
    assert Settings.from_env({"MRO_SAGEMAKER_RATE": "0"}).sagemaker_rate == 0.0
    assert Settings.from_env({"MRO_SAGEMAKER_RATE": "20"}, sagemaker_rate="7.5").sagemaker_rate == 7.5


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_a_bad_rate_setting_names_itself(value):
    with pytest.raises(ValueError, match="MRO_SAGEMAKER_RATE: expected a number of requests per second"):
        Settings.from_env({"MRO_SAGEMAKER_RATE": value})
    with pytest.raises(ValueError, match="--sagemaker-rate: expected a number of requests per second"):
        Settings.from_env({}, sagemaker_rate=value)
