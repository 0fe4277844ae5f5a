"""Replicas that share the work: two active operator processes with MRO_SHARDS=2 against one API
server and one SageMaker. The emulator's request log tells who wrote what: each replica sends its
name in its User-Agent (kopf's `kopf/<version> model-registry-operator/<name>`, its own client's
`model-registry-operator/<name>`). One replica is killed (SIGKILL); the other takes its shard over
and reconciles new objects and a spec change of that shard."""

from __future__ import annotations

import collections
import time

import botocore.exceptions
import pytest

from conftest import OperatorProcess, is_ready, package_spec, resource, wait_until
from model_registry_operator.sharding import shard_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHARDS = 2
GROUPS = 4
PACKAGES = 200
LEASES = "mro"
WRITES = ("create", "update", "patch")


def writer(user_agent: str) -> str | None:
    """The replica named in a request's User-Agent; None: not the operator's."""
    if "model-registry-operator/" not in user_agent:
        return None
    return user_agent.rsplit("model-registry-operator/", 1)[1].split()[0]


def status_writes(kube, namespace: str, since: float = 0.0) -> dict[str, collections.Counter[str]]:
    """Per package: how many status writes each replica made (from `since`, wall clock)."""
    writes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in kube.requests:
        if (
            r.resource == "modelpackages"
            and r.subresource == "status"
            and r.namespace == namespace
            and r.verb in WRITES
            and r.received >= since
            and r.code is not None
            and r.code < 400
        ):
            who = writer(r.user_agent)
            assert who is not None, f"a status write without a replica's name: {r.user_agent!r}"
            writes[r.name][who] += 1
    return writes


def holders(kube, namespace: str) -> dict[int, str]:
    found = {}
    for shard in range(SHARDS):
        lease = kube.find("leases", f"{LEASES}-shard-{shard}", namespace)
        found[shard] = ((lease or {}).get("spec") or {}).get("holderIdentity") or ""
    return found


@pytest.fixture
def replicas(operator_env, kube_namespace, tmp_path, request):
    env = {
        **operator_env,
        "MRO_SHARDS": str(SHARDS),
        "MRO_SHARD_LEASE_NAME": LEASES,
        "MRO_SHARD_LEASE_NAMESPACE": kube_namespace,
        "MRO_RESYNC_SECONDS": "30",
    }
    started = {
        name: OperatorProcess({**env, "POD_NAME": name}, tmp_path / f"{name}.log", ["-A"]).start()
        for name in ("replica-a", "replica-b")
    }
    yield started
    for process in started.values():
        process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for name, process in started.items():
            print(f"===== {name}\n{process.log()[-15000:]}")


def ready_names(kube, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in kube.list("mp", namespace) if is_ready(p)}


def test_two_replicas_share_the_packages_and_one_takes_over_a_dead_ones_shard(
    kube, kube_namespace, replicas, aws
):
    if not hasattr(kube, "requests"):
        pytest.fail("this test reads the emulator's request log; it cannot run against a real cluster")
    ns = kube_namespace
    # each replica holds one shard (the first may take both, then hands one over)
    wait_until(
        lambda: set(holders(kube, ns).values()) == set(replicas),
        "each replica to hold one shard",
        timeout=60,
    )
    owner = holders(kube, ns)

    groups = [f"team-{g}" for g in range(GROUPS)]
    for group in groups:
        kube.create(resource("ModelPackageGroup", group, {}), namespace=ns)
    names = [f"model-{i:03d}" for i in range(PACKAGES)]
    for i, name in enumerate(names):
        kube.create(resource("ModelPackage", name, package_spec(groups[i % GROUPS])), namespace=ns)
    wait_until(
        lambda: len(ready_names(kube, ns)) == PACKAGES,
        f"all {PACKAGES} packages to be Ready",
        timeout=180,
        interval=1,
    )

    # who wrote which status: each package by exactly one replica, the holder of its shard
    writes = status_writes(kube, ns)
    assert set(writes) == set(names)
    both = sorted(name for name, by in writes.items() if len(by) > 1)
    assert not both, f"written by both replicas: {both[:10]}"
    share = collections.Counter(next(iter(by)) for by in writes.values())
    assert set(share) == set(replicas), share
    assert all(0.25 * PACKAGES <= count <= 0.75 * PACKAGES for count in share.values()), share
    wrong = [n for n, by in writes.items() if next(iter(by)) != owner[shard_of(ns, n, SHARDS)]]
    assert not wrong, f"written by the replica that does not hold their shard: {wrong[:10]}"
    assert holders(kube, ns) == owner  # no shard moved meanwhile

    # deletions: each by its owner, in SageMaker too; the other replica keeps the finalizer meanwhile
    # (kopf drops the finalizer of an object no handler of a process wants) and writes nothing
    sm = aws.client("sagemaker")
    deleted = names[:10]
    arns = {name: kube.get("mp", name, ns)["status"]["arn"] for name in deleted}
    since = time.time()
    for name in deleted:
        kube.delete("mp", name, namespace=ns)
    for name in deleted:
        kube.wait_gone("mp", name, namespace=ns, timeout=60)
    for arn in arns.values():
        with pytest.raises(botocore.exceptions.ClientError):
            sm.describe_model_package(ModelPackageName=arn)
    writes_while_deleting = [
        (r.name, writer(r.user_agent))
        for r in kube.requests
        if r.resource == "modelpackages" and r.name in arns and r.verb in WRITES and r.received >= since
    ]
    assert {name for name, _ in writes_while_deleting} == set(arns)  # the finalizer's removal at least
    stray = [(name, who) for name, who in writes_while_deleting if who != owner[shard_of(ns, name, SHARDS)]]
    assert not stray, f"written by a replica that does not own them: {stray}"
    names = names[len(deleted) :]

    # one replica dies; the survivor takes its shard over and reconciles its objects
    dead_shard = 0
    dead, survivor = owner[dead_shard], next(r for r in replicas if r != owner[dead_shard])
    replicas[dead].kill()
    killed = time.time()
    changed = next(n for n in names if shard_of(ns, n, SHARDS) == dead_shard)
    spec = package_spec(
        groups[int(changed.split("-")[1]) % GROUPS], customerMetadataProperties={"stage": "two"}
    )
    kube.patch("mp", changed, {"spec": spec}, ns)
    fresh = [n for n in (f"late-{i}" for i in range(40)) if shard_of(ns, n, SHARDS) == dead_shard][:5]
    for name in fresh:
        kube.create(resource("ModelPackage", name, package_spec(groups[0])), namespace=ns)

    def taken_over():
        done = {p["metadata"]["name"]: p for p in kube.list("mp", ns) if is_ready(p)}
        return (
            all(n in done for n in fresh) and done.get(changed, {}).get("metadata", {}).get("generation") == 2
        )

    wait_until(
        taken_over,
        f"{survivor} to reconcile {dead}'s shard",
        timeout=90,
        interval=1,
        operator=replicas[survivor],
    )
    took = time.time() - killed
    assert holders(kube, ns) == dict.fromkeys(range(SHARDS), survivor)
    after = status_writes(kube, ns, since=killed)
    for name in [*fresh, changed]:
        assert set(after[name]) == {survivor}, (name, after[name])
    assert not [name for name, by in after.items() if dead in by]
    print(f"{dead} killed; {survivor} reconciled its shard's new and changed packages {took:.1f} s later")
