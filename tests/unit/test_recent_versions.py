"""Fresh versions' completion read for every group at once (controllers/listings.RecentVersions):
one account-wide listing, newest first, about a call per 100 fresh versions, single-flight."""

from __future__ import annotations

import datetime
import threading

import pytest

from model_registry_operator.controllers.listings import GroupListings, RecentVersions
from model_registry_operator.timing import (
    COMPLETION_ROUND_MAX_WAIT,
    COMPLETION_ROUND_MIN_WAIT,
    COMPLETION_ROUND_PAGE,
    COMPLETION_WAIT_EXPIRY,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # wall clock, as SageMaker's CreationTime

    def __call__(self) -> float:
        return self.now


class Account:
    """Every version of an account and region; pages of 100, newest first, counted."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.versions: list[dict] = []
        self.pages_listed = 0
        self.group_listings = 0

    def create(self, group: str = "churn", status: str = "Completed") -> str:
        arn = f"arn:aws:sagemaker:us-east-2:123456789012:model-package/{group}/{len(self.versions) + 1}"
        self.versions.append(
            {
                "ModelPackageArn": arn,
                "ModelPackageGroupName": group,
                "ModelPackageStatus": status,
                "CreationTime": datetime.datetime.fromtimestamp(self.clock(), datetime.UTC),
            }
        )
        return arn

    def set_status(self, arn: str, status: str) -> None:
        next(v for v in self.versions if v["ModelPackageArn"] == arn)["ModelPackageStatus"] = status

    def pages(self):
        newest_first = list(reversed(self.versions))
        for start in range(0, max(len(newest_first), 1), 100):
            self.pages_listed += 1
            yield [dict(v) for v in newest_first[start : start + 100]]

    def list_group(self, group: str) -> list[dict]:
        self.group_listings += 1
        return [dict(v) for v in self.versions if v["ModelPackageGroupName"] == group]


def setup():
    clock = Clock()
    account = Account(clock)
    return clock, account, RecentVersions(account.pages, clock)


def test_a_lone_version_is_seen_after_a_second_with_one_call():
    clock, account, recent = setup()
    arn = account.create()
    recent.created(arn)
    clock.now += 0.5
    assert recent.status(arn) == COMPLETION_ROUND_MIN_WAIT - 0.5
    clock.now += 0.5
    assert recent.status(arn)["ModelPackageStatus"] == "Completed"
    assert account.pages_listed == 1


def test_a_burst_in_many_groups_costs_about_a_call_per_hundred_versions():
    clock, account, recent = setup()
    arns = []
    for number in range(250):
        arns.append(account.create(f"group-{number % 50}"))
        recent.created(arns[-1])
        clock.now += 0.001
    clock.now += COMPLETION_ROUND_MAX_WAIT
    assert all(recent.status(arn)["ModelPackageStatus"] == "Completed" for arn in arns)
    assert account.pages_listed <= 4, "a round pages down to the oldest waiting version, no further"
    assert recent.rounds <= 2


def test_a_page_worth_of_waiting_versions_makes_the_round_at_once():
    clock, account, recent = setup()
    first = account.create()
    recent.created(first)
    clock.now += COMPLETION_ROUND_MIN_WAIT
    for _ in range(100):
        recent.created(account.create())
    assert recent.rounds == 1, "the create that filled a page made the round"
    assert recent.status(first)["ModelPackageStatus"] == "Completed"


def test_a_version_still_in_progress_is_looked_at_again_by_a_later_round():
    clock, account, recent = setup()
    arn = account.create(status="InProgress")
    recent.created(arn)
    clock.now += COMPLETION_ROUND_MIN_WAIT
    wait = recent.status(arn)
    assert isinstance(wait, float) and wait > 0
    account.set_status(arn, "Completed")
    assert isinstance(recent.status(arn), float), "no second round at once"
    clock.now += wait
    assert recent.status(arn)["ModelPackageStatus"] == "Completed"
    assert recent.rounds == 2


def test_a_version_no_listing_shows_is_left_to_a_describe():
    clock, _, recent = setup()
    ghost = "arn:aws:sagemaker:us-east-2:210987654321:model-package/shared/1"  # another account's
    recent.created(ghost)
    clock.now += COMPLETION_ROUND_MIN_WAIT
    assert recent.status(ghost) is None


def test_after_a_restart_a_version_waited_for_is_looked_at_by_the_next_round():
    clock, account, recent = setup()
    arn = account.create()
    clock.now += 5
    assert recent.status(arn)["ModelPackageStatus"] == "Completed"


def test_concurrent_askers_share_one_round():
    clock, account, recent = setup()
    arns = [account.create() for _ in range(16)]
    for arn in arns:
        recent.created(arn)
    clock.now += COMPLETION_ROUND_MAX_WAIT
    results = []
    start = threading.Barrier(16)

    def ask(arn):
        start.wait()
        results.append(recent.status(arn))

    threads = [threading.Thread(target=ask, args=(arn,)) for arn in arns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["ModelPackageStatus"] for r in results] == ["Completed"] * 16
    assert recent.rounds == 1 and account.pages_listed == 1


def test_a_version_nobody_asks_about_any_more_is_dropped():
    clock, account, recent = setup()
    gone = account.create()
    recent.created(gone)  # its object was deleted: nobody asks again
    clock.now += COMPLETION_WAIT_EXPIRY + 1
    arn = account.create()
    recent.created(arn)
    clock.now += COMPLETION_ROUND_MAX_WAIT
    assert recent.status(arn)["ModelPackageStatus"] == "Completed"
    assert recent.status(gone)["ModelPackageStatus"] == "Completed"  # asked again: a new round
    assert recent.rounds == 2


def test_group_listings_use_the_feed_and_fold_what_it_saw_into_the_group_listing():
    clock, account, _ = setup()
    listings = GroupListings(account.list_group, 300.0, recent=account.pages)
    listings.recent = RecentVersions(account.pages, clock)
    listings.get("churn")  # a resync's listing, before the create
    arn = account.create()
    listings.created("churn", {"ModelPackageArn": arn, "ModelPackageStatus": "Pending"})
    assert listings.get("churn")[arn]["ModelPackageStatus"] == "Pending"
    clock.now += COMPLETION_ROUND_MAX_WAIT
    assert listings.fresh("churn", arn)["ModelPackageStatus"] == "Completed"
    assert listings.get("churn")[arn]["ModelPackageStatus"] == "Completed", "a resync agrees"
    assert account.group_listings == 1


def test_a_group_named_by_arn_or_a_registry_without_the_feed_reads_the_group_listing():
    _, account, _ = setup()
    shared = "arn:aws:sagemaker:us-east-2:210987654321:model-package-group/churn"
    listings = GroupListings(account.list_group, 300.0, recent=account.pages)
    arn = account.create(shared)
    assert listings.fresh(shared, arn)["ModelPackageStatus"] == "Completed"
    assert account.group_listings == 1 and account.pages_listed == 0
    plain = GroupListings(account.list_group, 300.0)  # a plain function: no recent_packages
    assert plain.recent is None
    assert plain.fresh(shared, arn)["ModelPackageStatus"] == "Completed"


class Throttled(Exception):
    pass


def failing_once():
    """A RecentVersions whose first listing is refused (throttled), and a first version waited for."""
    clock, account, _ = setup()
    calls = {"n": 0}

    def pages():
        calls["n"] += 1
        if calls["n"] == 1:
            raise Throttled("Rate exceeded")
        yield from account.pages()

    recent = RecentVersions(pages, clock)
    first = account.create()
    recent.created(first)
    return clock, account, recent, first


def test_a_round_that_fails_leaves_its_versions_to_the_next_round():
    clock, _, recent, arn = failing_once()
    clock.now += COMPLETION_ROUND_MAX_WAIT
    with pytest.raises(Throttled):  # the asker's reconcile reports it and comes back
        recent.status(arn)
    found = recent.status(arn)
    assert isinstance(found, dict), f"still waited for after a failed round: {found!r}"
    assert found["ModelPackageStatus"] == "Completed"
    assert recent.rounds == 2


def test_a_round_made_by_a_create_that_fails_does_not_fail_the_create():
    clock, account, recent, first = failing_once()
    clock.now += COMPLETION_ROUND_MIN_WAIT
    arns = [account.create() for _ in range(COMPLETION_ROUND_PAGE - 1)]
    for arn in arns:
        recent.created(arn)  # the one that fills a page makes the round, which fails: not raised here
    assert recent.rounds == 1 and account.pages_listed == 0
    clock.now += COMPLETION_ROUND_MAX_WAIT
    assert all(recent.status(arn)["ModelPackageStatus"] == "Completed" for arn in [first, *arns])
    assert recent.rounds == 2
