import botocore.session
import pytest

from controller_calls import make_call
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.listings import GroupListings
from model_registry_operator.errors import RetryableError
from model_registry_operator.registry.requests import CREATE_MEMBERS, group_name_of, is_subset, request_for
from model_registry_operator.timing import RETRY_JITTER, backoff, retry_delay


def error_result(err, meta, status, fields, attempt=0):
    call = make_call({}, meta, status, attempt=attempt)
    call.fields = dict(fields)
    return call.failed(err)


@pytest.mark.parametrize("operation", sorted(CREATE_MEMBERS))
def test_create_members_match_botocore(operation):
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert CREATE_MEMBERS[operation] == set(model.operation_model(operation).input_shape.members)


def test_request_for_drops_members_the_operation_does_not_take():
    shape = {
        "ModelPackageGroupName": "g",
        "ApprovalDescription": "x",
        "Tags": [],
        "ModelApprovalStatus": "Approved",
    }
    assert request_for("CreateModelPackage", shape) == {
        "ModelPackageGroupName": "g",
        "ModelApprovalStatus": "Approved",
    }


def test_is_subset_ignores_what_sagemaker_adds():
    assert is_subset(
        {"Containers": [{"Image": "i"}]}, {"Containers": [{"Image": "i", "ImageDigest": "sha"}], "X": 1}
    )
    assert not is_subset({"Containers": [{"Image": "i"}]}, {"Containers": [{"Image": "j"}]})
    assert not is_subset({"Containers": [{"Image": "i"}]}, {"Containers": []})


def test_backoff_grows_and_is_capped():
    assert [backoff(n) for n in range(4)] == [1, 2, 4, 8]
    assert backoff(20) == 60


def test_retry_delay_is_the_error_class_floor_until_the_backoff_passes_it():
    throttled = RetryableError("Throttled", "Rate exceeded.", delay=15.0)
    exact = [retry_delay(throttled.delay, n, jitter=lambda: 0.0) for n in range(8)]
    assert exact == [15, 15, 15, 15, 16, 32, 60, 60]  # never sooner than 15 s; then 2**n; capped
    assert retry_delay(RetryableError("Conflict", "c", delay=5.0).delay, 0, jitter=lambda: 0.0) == 5
    assert retry_delay(throttled.delay, 0, jitter=lambda: 1.0) == 15 * (1 + RETRY_JITTER)
    assert retry_delay(throttled.delay, 10, jitter=lambda: 1.0) == 60 * (1 + RETRY_JITTER)


def test_retries_of_many_objects_are_spread_within_the_jitter_bound():
    throttled = RetryableError("Throttled", "Rate exceeded.", delay=15.0)
    delays = [error_result(throttled, Meta(f"p{i}", "ml", f"u{i}", 1), {}, {}).retry for i in range(200)]
    assert all(15 <= d <= 15 * (1 + RETRY_JITTER) for d in delays)
    assert max(delays) - min(delays) > 15 * RETRY_JITTER / 2  # not in lockstep


def test_retries_at_the_cap_keep_the_same_message_so_status_is_not_rewritten():
    throttled = RetryableError("Throttled", "SageMaker is throttling requests.", 15.0)
    meta, status = Meta("p", "ml", "u", 1), {}
    messages = set()
    for attempt in range(10, 30):
        result = error_result(throttled, meta, status, {}, attempt)
        messages.add(result.status["conditions"][0]["message"])
        status = result.status
    assert messages == {"SageMaker is throttling requests. Retrying in 60s."}


def test_group_name_of_accepts_names_and_arns():
    assert group_name_of("arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn") == "churn"
    assert group_name_of("churn") == "churn"


def test_group_listings_share_one_call_within_the_period_and_fold_in_own_writes():
    calls = []
    now = [100.0]

    def list_packages(group):
        calls.append(group)
        return [{"ModelPackageArn": "a1", "ModelApprovalStatus": "Approved"}]

    listings = GroupListings(list_packages, period=10.0, clock=lambda: now[0])
    listings.get("churn")
    now[0] += 8.9
    assert listings.get("churn")["a1"]["ModelApprovalStatus"] == "Approved"
    assert calls == ["churn"]
    listings.remember("churn", {"ModelPackageArn": "a2", "ModelPackageStatus": "Pending"})
    assert set(listings.get("churn")) == {"a1", "a2"}
    assert len(calls) == 1
    listings.get("churn", max_age=1.0)  # a waiter wants fresher than 8.9 s
    assert len(calls) == 2
    now[0] += 9.5
    listings.get("churn")
    assert len(calls) == 3


def test_group_listings_keep_another_accounts_group_of_the_same_name_apart():
    calls = []
    listings = GroupListings(
        lambda group: calls.append(group) or [{"ModelPackageArn": f"{group}/1"}], period=10.0
    )
    shared = "arn:aws:sagemaker:us-east-2:210987654321:model-package-group/churn"
    assert list(listings.get("churn")) == ["churn/1"]
    assert list(listings.get(shared)) == [f"{shared}/1"]
    assert calls == ["churn", shared]


def test_a_long_wait_is_looked_at_less_often_up_to_two_minutes():
    import datetime

    from model_registry_operator.controllers.conditions import Outcome, build_conditions
    from model_registry_operator.timing import patience

    def finish(outcome, meta, previous, fields, retry=None):
        return make_call({}, meta, previous).finish(outcome, retry=retry)

    waiting = Outcome.reconciling("WaitingForApproval", "waiting for churn-v1 to be Approved")
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    conditions = build_conditions(waiting, 1, None, now="2026-01-01T00:00:00Z")
    assert patience(conditions, now=started) == 0
    assert patience(conditions, now=started + datetime.timedelta(seconds=40)) == 10
    assert patience(conditions, now=started + datetime.timedelta(days=7)) == 120
    ready = build_conditions(Outcome.ready("Synced", "ok"), 1, None, now="2026-01-01T00:00:00Z")
    assert patience(ready, now=started + datetime.timedelta(days=7)) == 0  # only a Reconciling wait stretches

    # through finish: the previous conditions (an hour of waiting) stretch a 3 s retry, not a fresh wait
    hour_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    previous = {"conditions": build_conditions(waiting, 1, None, now=hour_ago)}
    assert finish(waiting, Meta("m", "ml", "u", 1), previous, {}, retry=3.0).retry == 120 * spread("u")
    assert finish(waiting, Meta("m", "ml", "u", 1), {}, {}, retry=3.0).retry == 3.0


def spread(uid: str) -> float:
    """The share of its stretched wait an object waits (timing.PATIENCE_SPREAD), from its UID."""
    from model_registry_operator.timing import uid_fraction

    return 1 - 0.25 * uid_fraction(uid)


def test_objects_that_waited_the_same_time_come_back_spread_over_a_quarter_of_it():
    """1000 objects applied together have waited the same whole seconds: their next looks
    are spread by their UIDs, within the cap, not all in one second."""
    import datetime
    import statistics

    from model_registry_operator.controllers.conditions import Outcome, build_conditions
    from model_registry_operator.timing import patience

    waiting = build_conditions(Outcome.reconciling("InProgress", "w"), 1, None, now="2026-01-01T00:00:00Z")
    later = datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.UTC)  # 300 s of waiting
    delays = [patience(waiting, now=later, uid=f"uid-{i}") for i in range(1000)]
    assert patience(waiting, now=later) == 75
    assert all(56.25 <= d <= 75 for d in delays)
    assert len({round(d) for d in delays}) >= 15  # at most a few dozen in any one second
    assert 62.5 < statistics.median(delays) < 68.75


def test_a_wait_a_change_wakes_has_no_timer_of_its_own():
    """A Model waiting for a referenced package's approval is woken by the package's change:
    its wait is marked woken (kopf is not asked to come back: no retry write while it waits)
    and not stretched; one waiting for a package named by ARN (no object to watch) is looked
    at again on its stretched timer, at most every two minutes."""
    import datetime

    from controller_calls import DictLookup, reconcile
    from fakes import FakeRegistry
    from model_registry_operator.controllers import model
    from model_registry_operator.controllers.conditions import Outcome, build_conditions
    from model_registry_operator.controllers.context import Context
    from model_registry_operator.settings import Settings
    from model_registry_operator.timing import WAIT_FOR_PACKAGE_DELAY

    hour_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    waiting = Outcome.reconciling("WaitingForApproval", "waiting")
    previous = {"observedGeneration": 1, "conditions": build_conditions(waiting, 1, None, now=hour_ago)}
    ctx = Context.create(FakeRegistry(), Settings())
    role = "arn:aws:iam::123456789012:role/sagemaker"
    pending = {
        "arn": "arn:aws:sagemaker:us-east-2:123456789012:model-package/g/1",
        "modelApprovalStatus": "PendingManualApproval",
    }
    pending["conditions"] = build_conditions(Outcome.ready("Synced", "ok"), 1, None)
    lookup = DictLookup({("ModelPackage", "ml", "p"): {"spec": {}, "status": pending}})
    by_ref = {"executionRoleArn": role, "primaryContainer": {"modelPackageRef": {"name": "p"}}}
    result = reconcile(model.CONTROLLER, by_ref, Meta("m", "ml", "u", 1), previous, ctx, lookup)
    assert result.status["conditions"][1]["reason"] == "WaitingForApproval"
    assert result.woken and result.retry == WAIT_FOR_PACKAGE_DELAY
    ctx.registry.create_group({"ModelPackageGroupName": "g"})
    arn = ctx.registry.create_package(
        {"ModelPackageGroupName": "g", "ModelApprovalStatus": "PendingManualApproval"}
    )
    by_arn = {"executionRoleArn": role, "primaryContainer": {"modelPackageName": arn}}
    result = reconcile(model.CONTROLLER, by_arn, Meta("m", "ml", "u", 1), previous, ctx, lookup)
    assert "WaitingForApproval" in str(result.status["conditions"]) and result.retry == 120 * spread("u")
    assert not result.woken


def test_a_failed_wake_up_is_tried_again_while_what_it_found_is_remembered():
    """Each gap between a failed take-over and its next try, jitter included, is shorter than
    wiring.Found remembers what it found: the retry neither makes nor says again what it did."""
    from model_registry_operator import timing

    gaps = [
        timing.retry_delay(timing.WAKE_FAILURE_DELAY, attempt, jitter=lambda: 1.0)
        for attempt in range(timing.WAKE_FAILURE_ATTEMPTS - 1)
    ]
    assert gaps == sorted(gaps) and gaps[0] >= 1.0
    assert max(gaps) < timing.ANNOUNCED_SECONDS
