"""Replicas that share the work: the shard of an object, and the lease policy (who takes, keeps,
hands over and takes over which shard), against an in-memory Lease API with optimistic
concurrency and a fake clock. The real API server: tests/e2e/test_sharding.py."""

from __future__ import annotations

import collections
import copy
import datetime
import itertools
import math

import pytest

from model_registry_operator import FINALIZER, timing
from model_registry_operator.sharding import (
    MEMBERS_ANNOTATION,
    SHARDS_ANNOTATION,
    UNSHARDED,
    LeaseConflict,
    Sharding,
    ShardLeases,
    ShardPlan,
    shard_of,
)

# --- the shard function -------------------------------------------------------------------------


def test_the_shard_of_an_object_is_stable_and_in_range():
    assert shard_of("ml", "churn", 1) == 0
    assert shard_of("ml", "churn", 4) == shard_of("ml", "churn", 4)  # no per-process salt (hash())
    assert shard_of("ml", "churn", 7) == 1  # the same in every process and release: a fixed value
    assert {shard_of("ml", f"pkg-{i}", 3) for i in range(100)} == {0, 1, 2}
    # the namespace is part of the identity
    assert [shard_of(ns, "churn", 1000) for ns in ("a", "b", "c")] != [shard_of("a", "churn", 1000)] * 3


@pytest.mark.parametrize("shards", [2, 3, 5, 8])
def test_shards_split_many_objects_evenly(shards):
    counts = collections.Counter(shard_of(f"team-{i % 7}", f"model-{i}", shards) for i in range(10_000))
    fair = 10_000 / shards
    assert all(abs(count - fair) < 0.1 * fair for count in counts.values()), counts


# --- the lease policy ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=self.now)


class Store:
    """Leases as the API server keeps them: a resourceVersion per write, 409 on a stale one."""

    def __init__(self) -> None:
        self.leases: dict[str, dict] = {}
        self.versions = itertools.count(1)
        self.writes: list[tuple[str, str, str]] = []  # (who, verb, name)


class FakeApi:
    def __init__(self, store: Store, who: str) -> None:
        self.store, self.who, self.down = store, who, False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("the API server cannot be reached")

    def list(self) -> list[dict]:
        self._check()
        return [copy.deepcopy(lease) for lease in self.store.leases.values()]

    def create(self, lease: dict) -> dict:
        self._check()
        name = lease["metadata"]["name"]
        if name in self.store.leases:
            raise LeaseConflict("AlreadyExists")
        return self._store(lease, "create")

    def replace(self, lease: dict) -> dict:
        self._check()
        name = lease["metadata"]["name"]
        current = self.store.leases.get(name)
        if current is None:
            raise RuntimeError("404")
        if lease["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise LeaseConflict("Conflict")
        return self._store(lease, "replace")

    def _store(self, lease: dict, verb: str) -> dict:
        stored = copy.deepcopy(lease)
        stored["metadata"]["resourceVersion"] = str(next(self.store.versions))
        self.store.leases[stored["metadata"]["name"]] = stored
        self.store.writes.append((self.who, verb, stored["metadata"]["name"]))
        return copy.deepcopy(stored)


class Replicas:
    """Replicas ticking in turn every renewal interval; `check` after each tick: no shard is ever
    owned by two at once."""

    def __init__(self, shards: int, clock: Clock | None = None, store: Store | None = None) -> None:
        self.shards, self.clock, self.store = shards, clock or Clock(), store or Store()
        self.replicas: dict[str, ShardLeases] = {}
        self.apis: dict[str, FakeApi] = {}
        self.alive: set[str] = set()

    def start(self, who: str, shards: int | None = None) -> ShardLeases:
        self.apis[who] = FakeApi(self.store, who)
        replica = ShardLeases(
            self.apis[who],
            shards=shards or self.shards,
            identity=who,
            name="mro",
            monotonic=self.clock.monotonic,
            wall=self.clock.wall,
        )
        self.replicas[who] = replica
        self.alive.add(who)
        return replica

    def kill(self, who: str) -> None:
        self.alive.discard(who)

    def check(self) -> None:
        for shard in range(self.shards):
            owners = [who for who, r in self.replicas.items() if r.owns(shard)]
            assert len(owners) <= 1, f"shard {shard} owned by {owners} at t={self.clock.now}"

    def tick(self, *order: str) -> None:
        for who in order or sorted(self.alive):
            if who in self.alive:
                self.replicas[who].tick()
                self.check()

    def run(self, seconds: float, step: float = timing.SHARD_RENEW_INTERVAL) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now += step
            self.check()
            self.tick()

    def owned(self) -> dict[str, set[int]]:
        return {who: set(r.owned()) for who, r in self.replicas.items() if who in self.alive}


def test_one_replica_takes_every_shard_at_once():
    cluster = Replicas(3)
    alone = cluster.start("a")
    gained, lost = alone.tick()
    assert gained == {0, 1, 2} and not lost
    lease = cluster.store.leases["mro-shard-1"]
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == timing.SHARD_LEASE_DURATION
    assert lease["metadata"]["annotations"][SHARDS_ANNOTATION] == "3"
    assert '"a"' in cluster.store.leases["mro-shard-members"]["metadata"]["annotations"][MEMBERS_ANNOTATION]
    # renewed every round, with the resourceVersion it read
    cluster.run(30)
    assert cluster.owned() == {"a": {0, 1, 2}}
    assert cluster.store.leases["mro-shard-1"]["spec"]["renewTime"] != lease["spec"]["renewTime"]


def test_a_second_replica_gets_its_share_handed_over_without_overlap():
    cluster = Replicas(2)
    cluster.start("a")
    cluster.tick("a")
    assert cluster.owned() == {"a": {0, 1}}
    cluster.start("b")
    cluster.run(3 * timing.SHARD_RENEW_INTERVAL)  # b heartbeats; a hands a shard over; b takes it
    assert cluster.owned() == {"a": {0}, "b": {1}}
    cluster.run(60)
    assert cluster.owned() == {"a": {0}, "b": {1}}  # stable


def test_a_shard_is_handed_over_only_once_its_running_handlers_are_done():
    cluster = Replicas(2)
    a = cluster.start("a")
    cluster.tick("a")
    a.begin(1)  # a handler of shard 1 is running on a
    cluster.start("b")
    cluster.run(2 * timing.SHARD_RENEW_INTERVAL)
    assert not a.owns(1) and not cluster.replicas["b"].owns(1)  # a stopped starting work, b waits
    assert cluster.store.leases["mro-shard-1"]["spec"]["holderIdentity"] == "a"
    a.end(1)
    cluster.run(2 * timing.SHARD_RENEW_INTERVAL)
    assert cluster.owned() == {"a": {0}, "b": {1}}


def test_a_handler_that_never_ends_delays_the_hand_over_at_most_the_drain_timeout():
    cluster = Replicas(2)
    a = cluster.start("a")
    cluster.tick("a")
    a.begin(1)
    cluster.start("b")
    cluster.run(timing.SHARD_DRAIN_TIMEOUT + 3 * timing.SHARD_RENEW_INTERVAL)
    assert cluster.owned() == {"a": {0}, "b": {1}}


def test_a_dead_replicas_shards_are_taken_over_within_a_minute():
    cluster = Replicas(4)
    for who in ("a", "b"):
        cluster.start(who)
    cluster.run(60)
    assert sorted(len(s) for s in cluster.owned().values()) == [2, 2]
    dead = cluster.owned()["a"]
    cluster.kill("a")  # SIGKILL: no release, its leases just stop being renewed
    taken_at = None
    start = cluster.clock.now
    while cluster.clock.now - start < 90:
        cluster.run(1, step=1)
        if dead <= cluster.replicas["b"].owned() and taken_at is None:
            taken_at = cluster.clock.now - start
    assert taken_at is not None and taken_at < 60, taken_at
    # never before the lease could have expired: b saw it unchanged for its whole duration
    assert taken_at >= timing.SHARD_LEASE_DURATION
    assert cluster.owned() == {"b": {0, 1, 2, 3}}
    assert cluster.store.leases[f"mro-shard-{min(dead)}"]["spec"]["leaseTransitions"] >= 1


def test_a_replica_cut_off_stops_before_its_shards_can_be_taken():
    cluster = Replicas(2)
    for who in ("a", "b"):
        cluster.start(who)
    cluster.run(60)
    a_shards = cluster.owned()["a"]
    cluster.apis["a"].down = True  # a keeps running, but cannot renew (nor list)
    cut_at = cluster.clock.now
    stopped_at = taken_at = None
    while cluster.clock.now - cut_at < 90:
        cluster.run(0.5, step=0.5)  # `check` proves no overlap at every half second
        if stopped_at is None and not cluster.replicas["a"].owned():
            stopped_at = cluster.clock.now
        if taken_at is None and a_shards <= cluster.replicas["b"].owned():
            taken_at = cluster.clock.now
    assert stopped_at is not None and taken_at is not None
    assert taken_at - stopped_at >= timing.SHARD_RENEW_MARGIN - timing.SHARD_RENEW_INTERVAL
    assert taken_at - cut_at < 60
    # back again: a finds its leases taken, and gets its share back by hand-over
    cluster.apis["a"].down = False
    cluster.run(60)
    assert sorted(len(s) for s in cluster.owned().values()) == [1, 1]


def test_two_replicas_racing_for_a_free_shard_get_it_once():
    cluster = Replicas(1)
    a, b = cluster.start("a"), cluster.start("b")
    cluster.tick("a", "b")  # both saw it free; b's write is refused
    cluster.check()
    assert cluster.owned() in ({"a": {0}, "b": set()}, {"a": set(), "b": {0}})
    assert [w for w in cluster.store.writes if w[2] == "mro-shard-0"] == [("a", "create", "mro-shard-0")]
    assert a.owns(0) and not b.owns(0)


def test_three_replicas_balance_four_shards_and_the_survivors_share_a_dead_ones():
    cluster = Replicas(4)
    for who in ("a", "b", "c"):
        cluster.start(who)
    cluster.run(120)
    share = math.ceil(4 / 3)
    owned = cluster.owned()
    assert sorted(len(s) for s in owned.values()) == [1, 1, 2]
    assert all(len(s) <= share for s in owned.values())
    assert set().union(*owned.values()) == {0, 1, 2, 3}
    heaviest = max(owned, key=lambda who: len(owned[who]))
    cluster.kill(heaviest)
    cluster.run(60)
    assert sorted(len(s) for s in cluster.owned().values()) == [2, 2]


def test_a_graceful_stop_releases_the_shards_at_once():
    cluster = Replicas(2)
    a, b = cluster.start("a"), cluster.start("b")
    cluster.run(60)
    assert sorted(len(s) for s in cluster.owned().values()) == [1, 1]
    a.release_all()
    cluster.kill("a")
    assert not a.owned()
    assert not [
        lease for lease in cluster.store.leases.values() if lease["spec"].get("holderIdentity") == "a"
    ]
    cluster.clock.now += timing.SHARD_RENEW_INTERVAL
    cluster.tick("b")  # a free shard is taken at once by one below its share (a is still counted)
    cluster.run(timing.SHARD_MEMBER_TIMEOUT + timing.SHARD_ORPHAN_GRACE)
    assert b.owned() == {0, 1}


def test_leases_of_another_shard_count_fence_a_new_replica_until_they_go():
    cluster = Replicas(3)
    old = cluster.start("old", shards=2)
    cluster.tick("old")
    assert old.owned() == {0, 1}
    new = cluster.start("new", shards=3)
    cluster.run(30)
    assert new.fenced and not new.owned()  # two hash functions never split the objects at once
    old.release_all()
    cluster.kill("old")
    cluster.run(2 * timing.SHARD_RENEW_INTERVAL)
    assert new.owned() == {0, 1, 2} and not new.fenced
    assert cluster.store.leases["mro-shard-0"]["metadata"]["annotations"][SHARDS_ANNOTATION] == "3"


def test_an_unreachable_api_server_at_start_owns_nothing():
    cluster = Replicas(2)
    a = cluster.start("a")
    cluster.apis["a"].down = True
    assert a.tick() == (frozenset(), frozenset())
    assert not a.owned()


# --- the kopf filters ---------------------------------------------------------------------------


class Owning:
    """ShardLeases' part the filters use: owns(shard)."""

    shards, identity = 2, "a"

    def __init__(self, owned: set[int]) -> None:
        self.owned_shards = owned

    def owns(self, shard: int) -> bool:
        return shard in self.owned_shards


def body(name: str, finalizer: bool = True, deleting: bool = False) -> dict:
    meta = {"namespace": "ml", "name": name, "uid": f"uid-{name}"}
    if finalizer:
        meta["finalizers"] = [FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    return {"metadata": meta, "spec": {}, "status": {}}


def test_the_filters_keep_kopf_off_other_replicas_objects_but_keep_their_finalizer():
    mine = next(f"p{i}" for i in itertools.count() if shard_of("ml", f"p{i}", 2) == 0)
    theirs = next(f"p{i}" for i in itertools.count() if shard_of("ml", f"p{i}", 2) == 1)
    plan = ShardPlan(Sharding(Owning({0}), objects=None), handlers=None)  # type: ignore[arg-type]

    assert plan.owned(body(mine)) and not plan.owned(body(theirs))  # create, update, resume
    # the timer matches whatever has the finalizer (kopf would otherwise remove it), and an
    # object without one only on its owner (no replica but the owner adds it)
    assert plan.kept(body(theirs)) and plan.kept(body(mine, finalizer=False))
    assert not plan.kept(body(theirs, finalizer=False))
    # delete: on the owner; elsewhere only while it is being deleted with the finalizer (it waits)
    assert plan.deletable(body(mine)) and not plan.deletable(body(theirs))
    assert plan.deletable(body(theirs, deleting=True))
    assert not plan.deletable(body(theirs, finalizer=False, deleting=True))
    # a timer of an object not this replica's starts waiting at once
    delay = plan.initial_delay(300)
    assert delay(body=body(mine)) == 300 and delay(body=body(theirs)) == 0


def test_unsharded_registration_is_unchanged():
    async def handler(**_):
        return None

    assert UNSHARDED.owned is None and UNSHARDED.kept is None and UNSHARDED.deletable is None
    assert UNSHARDED.initial_delay(300) == 300
    assert all(
        wrap(handler) is handler
        for wrap in (UNSHARDED.change, UNSHARDED.resync, UNSHARDED.delete, UNSHARDED.event)
    )


# --- settings ---------------------------------------------------------------------------------


def test_the_shard_settings_are_read_and_checked():
    from model_registry_operator.settings import Settings

    assert Settings.from_env({}).shards == 1  # no sharding: today's single active replica
    s = Settings.from_env(
        {"MRO_SHARDS": "3", "MRO_SHARD_LEASE_NAME": "mro", "MRO_SHARD_LEASE_NAMESPACE": "registry"}
    )
    assert (s.shards, s.shard_lease_name, s.shard_lease_namespace) == (3, "mro", "registry")
    assert Settings.from_env({"MRO_SHARDS": "2"}, shards="4").shards == 4  # the flag wins
    for bad in ("0", "two", "1.5", "-1", "1001"):
        with pytest.raises(ValueError, match="MRO_SHARDS"):
            Settings.from_env({"MRO_SHARDS": bad})
    with pytest.raises(ValueError, match="--shards"):
        Settings.from_env({}, shards="0")
    with pytest.raises(ValueError, match="MRO_SHARD_LEASE_NAME"):
        Settings.from_env({"MRO_SHARD_LEASE_NAME": "My_Release"})


def test_sharding_and_peering_are_not_combined(monkeypatch, capsys):
    from model_registry_operator.cli import main

    monkeypatch.setenv("MRO_SHARDS", "2")
    assert main(["run", "--peering", "mro"]) == 2
    err = capsys.readouterr().err
    assert "sharding replaces peering" in err and "Traceback" not in err


def test_a_resume_another_replica_recorded_is_cleared_when_the_shard_is_gained():
    class Patch:
        def __init__(self) -> None:
            self.status: dict = {}

    progress = {"reconcile-resume": {"delayed": "2024-05-01T10:00:00"}, "delete": {"started": "x"}}
    patch = Patch()
    assert ShardPlan._clear_resume({"status": {"kopf": {"progress": progress}}}, patch)
    assert patch.status == {"kopf": {"progress": {"reconcile-resume": None}}}
    assert not ShardPlan._clear_resume({"status": {"kopf": {"progress": {"delete": {}}}}}, Patch())
