"""The identity index (registry/identity_index.py): which version of a group carries an
object's identity, from one listing per group and process, with as few describes as can be."""

from __future__ import annotations

import threading
import time

import pytest

from model_registry_operator import OWNER_UID_KEY
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.registry.identity_index import IdentityIndex, marks_of

PAGE = 3  # versions per listing page, small so that paging shows


def arn(group: str, version: int) -> str:
    return f"arn:aws:sagemaker:us-east-2:123456789012:model-package/{group}/{version}"


def mine(name: str, uid: str | None = None) -> dict[str, str]:
    marks = {IDENTITY_KEY: f"default/ml/{name}"}
    if uid:
        marks[OWNER_UID_KEY] = uid
    return marks


class SageMaker:
    """Versions per group with their customer metadata; counts listing pages and describes."""

    def __init__(self, page_delay: float = 0.0):
        self.versions: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.pages_listed = 0
        self.described: list[str] = []
        self.page_delay = page_delay
        self._lock = threading.Lock()

    def register(self, group: str, metadata: dict[str, str] | None = None) -> str:
        versions = self.versions.setdefault(group, [])
        version_arn = arn(group, len(versions) + 1)
        versions.append((version_arn, dict(metadata or {})))
        return version_arn

    def pages(self, group: str):
        newest_first = list(reversed(self.versions.get(group, [])))
        for start in range(0, max(len(newest_first), 1), PAGE):
            with self._lock:
                self.pages_listed += 1
            time.sleep(self.page_delay)
            yield [{"ModelPackageArn": a} for a, _ in newest_first[start : start + PAGE]]

    def describe(self, version_arn: str):
        with self._lock:
            self.described.append(version_arn)
        for versions in self.versions.values():
            for a, metadata in versions:
                if a == version_arn:
                    return {"ModelPackageArn": a, "CustomerMetadataProperties": metadata}
        return None

    def delete(self, version_arn: str) -> None:
        for group, versions in self.versions.items():
            self.versions[group] = [(a, m) for a, m in versions if a != version_arn]

    def calls(self) -> int:
        return self.pages_listed + len(self.described)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sm() -> SageMaker:
    return SageMaker()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def index_of(sm: SageMaker, clock: Clock | None = None, max_age: float = 60.0) -> IdentityIndex:
    return IdentityIndex(sm.pages, sm.describe, max_age, clock or time.monotonic)


def create(sm: SageMaker, index: IdentityIndex, group: str, marks: dict[str, str]) -> str:
    """What SageMakerRegistry.create_package does: create, then tell the index."""
    version_arn = sm.register(group, marks)
    index.created(group, version_arn, marks_of({"CustomerMetadataProperties": marks}))
    return version_arn


def test_a_group_this_process_created_needs_no_call(sm):
    index = index_of(sm)
    index.group_created("churn")
    for number in range(5):
        assert index.find("churn", mine(f"v{number}", f"uid-{number}")) is None
        create(sm, index, "churn", mine(f"v{number}", f"uid-{number}"))
    assert sm.calls() == 0


def test_a_group_with_an_empty_listing_costs_one_page_then_nothing(sm):
    index = index_of(sm)
    for number in range(5):
        assert index.find("churn", mine(f"v{number}")) is None
        create(sm, index, "churn", mine(f"v{number}"))
    assert (sm.pages_listed, sm.described) == (1, [])


def test_the_index_is_built_once_by_one_of_many_concurrent_lookups():
    sm = SageMaker(page_delay=0.05)
    for number in range(7):  # three pages
        sm.register("churn", {"pipeline": "train", "run": str(number)})
    index = index_of(sm)
    results: list[object] = []
    start = threading.Barrier(16)

    def look(number: int) -> None:
        start.wait()
        results.append(index.find("churn", mine(f"v{number}", f"uid-{number}")))

    threads = [threading.Thread(target=look, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [None] * 16
    assert sm.pages_listed == 3, "one complete listing, not one per worker"
    assert sorted(sm.described) == sorted(a for a, _ in sm.versions["churn"]), "each version described once"
    # built: later lookups are answered from memory
    before = sm.calls()
    assert index.find("churn", mine("another")) is None
    assert sm.calls() == before


def test_a_reapplied_object_finds_its_version_whatever_its_uid(sm):
    index = index_of(sm)
    index.group_created("churn")
    version = create(sm, index, "churn", mine("churn-v1", "old-uid"))
    hit = index.find("churn", mine("churn-v1", "new-uid"))
    assert hit is not None and hit.arn == version
    assert sm.calls() == 0  # from memory: the registry describes the hit to return it


def test_after_a_restart_the_version_is_found_by_describing_newest_first(sm):
    sm.register("churn", {"pipeline": "train"})
    version = sm.register("churn", mine("churn-v1", "old-uid"))
    sm.register("churn", mine("churn-v2", "uid-2"))
    restarted = index_of(sm)
    hit = restarted.find("churn", mine("churn-v1", "new-uid"))
    assert hit is not None and hit.arn == version and hit.described is not None
    assert sm.described == [arn("churn", 3), arn("churn", 2)]  # stopped at the one it looked for
    assert sm.pages_listed == 1


def test_an_unmarked_or_another_identitys_version_is_never_taken(sm):
    sm.register("churn", {"pipeline": "train"})  # a pipeline's
    sm.register("churn", {IDENTITY_KEY: "blue/ml/churn-v1"})  # another cluster's, same name
    sm.register("churn", {IDENTITY_KEY: "default/other/churn-v1"})  # another namespace's
    sm.register("churn", {OWNER_UID_KEY: "someone-elses-uid"})  # an earlier release's, another object
    index = index_of(sm)
    assert index.find("churn", mine("churn-v1", "uid-1")) is None
    assert len(sm.described) == 4
    assert index.find("churn", mine("churn-v1", "uid-1")) is None
    assert index.find("churn", mine("churn-v2", "uid-2")) is None
    assert len(sm.described) == 4, "what was described is not described again"


def test_the_uid_an_earlier_release_marked_with_is_still_found(sm):
    version = sm.register("churn", {OWNER_UID_KEY: "uid-1"})
    hit = index_of(sm).find("churn", mine("churn-v1", "uid-1"))
    assert hit is not None and hit.arn == version


def test_versions_other_objects_record_are_not_described(sm):
    """After a restart, the versions recorded in other objects' status carry their marks."""
    recorded = {sm.register("churn", mine(f"v{n}", f"uid-{n}")): f"default/ml/v{n}" for n in range(5)}
    lost = sm.register("churn", mine("v5", "uid-5"))  # created just before a crash: not recorded
    index = index_of(sm)
    asked = []

    def records():
        asked.append(1)
        return recorded

    hit = index.find("churn", mine("v5", "uid-5"), records)
    assert hit is not None and hit.arn == lost
    assert sm.described == [lost]
    assert index.find("churn", mine("v6", "uid-6"), records) is None
    assert sm.described == [lost]
    assert len(asked) == 1, "records are read only when unknown versions meet a lookup"


def test_a_recorded_version_is_described_for_its_own_identity(sm):
    """Its object was deleted with Retain and applied again: the record named that identity."""
    version = sm.register("churn", mine("v1", "old-uid"))
    index = index_of(sm)
    assert index.find("churn", mine("v2"), lambda: {version: "default/ml/v1"}) is None
    assert sm.described == []
    hit = index.find("churn", mine("v1", "new-uid"), dict)
    assert hit is not None and hit.arn == version


def test_a_create_whose_answer_was_lost_is_looked_for_before_answering_none(sm):
    index = index_of(sm)
    index.group_created("churn")
    sm.register("churn", mine("v1", "uid-1"))  # SageMaker made it; the answer never came back
    index.unconfirmed("churn")
    hit = index.find("churn", mine("v1", "uid-1"))
    assert hit is not None and hit.arn == arn("churn", 1)
    assert sm.pages_listed == 1


def test_a_miss_with_an_old_listing_reads_the_newest_page_again(sm, clock):
    """Another writer with the same instance (a replica that took over) made a version after
    the index was built: a miss rereads the newest page, down to what was seen."""
    for number in range(7):
        sm.register("churn", {"run": str(number)})
    index = index_of(sm, clock, max_age=60.0)
    assert index.find("churn", mine("v1")) is None
    listed = sm.pages_listed
    other = sm.register("churn", mine("v1", "uid-1"))
    clock.now += 30
    assert index.find("churn", mine("v1")) is None, "trusted while the listing is young"
    clock.now += 31
    hit = index.find("churn", mine("v1"))
    assert hit is not None and hit.arn == other
    assert sm.pages_listed - listed == 2, "the newest page, and the first page with nothing new"


def test_a_listing_made_for_other_reasons_serves_as_the_build(sm, clock):
    sm.register("churn", {"run": "1"})
    index = index_of(sm, clock)
    index.listed("churn", [{"ModelPackageArn": arn("churn", 1)}], clock())
    assert index.find("churn", mine("v1")) is None
    assert sm.pages_listed == 0 and sm.described == [arn("churn", 1)]


def test_a_version_gone_from_a_later_listing_is_forgotten(sm, clock):
    index = index_of(sm, clock)
    index.group_created("churn")
    clock.now += 1
    version = create(sm, index, "churn", mine("v1"))
    sm.delete(version)
    clock.now += 1
    index.listed("churn", [], clock())
    assert index.find("churn", mine("v1")) is None
    assert index.stats()["versions"] == 0


def test_a_listing_begun_before_a_create_does_not_forget_it(sm, clock):
    index = index_of(sm, clock)
    index.group_created("churn")
    started = clock()
    clock.now += 1
    version = create(sm, index, "churn", mine("v1"))
    index.listed("churn", [], started)  # began before the create
    hit = index.find("churn", mine("v1"))
    assert hit is not None and hit.arn == version


def test_a_deleted_version_is_forgotten_and_a_duplicate_of_old_takes_its_place(sm):
    first = sm.register("churn", mine("v1"))
    second = sm.register("churn", mine("v1"))
    index = index_of(sm)
    hit = index.find("churn", mine("v1"))
    assert hit is not None and hit.arn == second  # newest first
    index.find("churn", mine("nobody"))  # describes the rest
    index.forget_version(second)
    hit = index.find("churn", mine("v1"))
    assert hit is not None and hit.arn == first


def test_groups_are_kept_apart(sm):
    index = index_of(sm)
    index.group_created("churn")
    index.group_created("fraud")
    create(sm, index, "churn", mine("v1"))
    assert index.find("fraud", mine("v1")) is None
    assert index.find("churn", mine("v1")) is not None


def test_a_group_created_again_forgets_the_versions_of_the_old_one(sm):
    index = index_of(sm)
    index.group_created("churn")
    create(sm, index, "churn", mine("v1"))
    index.forget_group("churn")
    index.group_created("churn")
    assert index.find("churn", mine("v1")) is None
    assert index.stats() == {"groups": 1, "versions": 0, "known": 0, "attributed": 0}


def test_reset_makes_the_next_lookup_list_again(sm):
    index = index_of(sm)
    index.group_created("churn")
    index.reset()
    assert index.find("churn", mine("v1")) is None
    assert sm.pages_listed == 1


def test_a_version_described_for_another_lookup_is_not_described_again_for_its_own(sm):
    """After a restart, the first lookup describes the versions made just before the crash:
    their own objects' lookups then take the description, no second describe."""
    theirs = sm.register("churn", mine("v1", "uid-1"))
    sm.register("churn", mine("v2", "uid-2"))
    index = index_of(sm)
    assert index.find("churn", mine("v3", "uid-3")) is None  # describes both
    hit = index.find("churn", mine("v1", "uid-1"))
    assert hit is not None and hit.arn == theirs and hit.described is not None
    assert len(sm.described) == 2
    hit = index.find("churn", mine("v1", "uid-1"))  # taken: a later lookup describes afresh
    assert hit is not None and hit.described is None


def test_a_version_learned_under_the_groups_name_is_known_under_its_arn(sm):
    group_arn = "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn"

    def pages(group):
        return sm.pages("churn")

    index = IdentityIndex(pages, sm.describe, 60.0)
    index.group_created("churn")
    version = create(sm, index, "churn", mine("v1"))
    hit = index.find(group_arn, mine("v1"))
    assert hit is not None and hit.arn == version
    assert sm.described == []
