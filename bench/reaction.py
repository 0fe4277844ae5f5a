"""How fast objects waiting for another react when it changes, however long they waited.

    .venv/bin/python bench/reaction.py [--models 100] [--packages 1000] [--groups 10] [--wait 300]

Starts the Kubernetes API emulator (in this process), the SageMaker harness and the operator
(subprocesses), then sets up both waits at once:
- models: M ModelPackages are registered (PendingManualApproval) and M Models made from them
  wait for their approval; after WAIT seconds all the packages are approved at once;
- packages: N ModelPackages in G groups are applied before their groups; after WAIT seconds
  the groups are applied.
The approvals come first; once every Model is Ready, the groups. It prints, for each, the
time from the change (each approval, each group's creation) to the
waiting object's SageMaker create call (CreateModel, CreateModelPackage) and to its Ready:
p50, p95 and max. The waits are long enough (default 5 minutes) for any growing retry timer
to pass a minute: a figure within seconds shows the objects were woken by the change.
Targets (issue 11): p95 <= 2 s, max <= 5 s. Last, the floor of the packages' figure on this
machine: as many CreateModelPackage calls alone, from 16 threads, with no operator in the way.

The create calls are matched to the changes in time order (the harness does not log which
object a call was for): the i-th CreateModel after the approvals is counted against the i-th
approval. The Ready times are per object (the emulator is listed every 0.1 s).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from converge import IMAGE, NAMESPACE, REPO, AwsHarness, cpu_seconds, peak_rss_mb, start_operator

from harness.kube import KubeCluster

API = "registry.mlops.dev/v1alpha1"
OPERATOR_AGENTS = ("kopf", "model-registry-operator")  # the operator's requests, by User-Agent
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def package(name: str, group: str, approval: str | None = None) -> dict:
    spec: dict = {
        "modelPackageGroupRef": {"name": group},
        "inferenceSpecification": {
            "containers": [{"image": IMAGE, "modelDataUrl": f"s3://models/{name}/model.tar.gz"}],
            "supportedContentTypes": ["text/csv"],
            "supportedResponseMIMETypes": ["text/csv"],
        },
    }
    if approval:
        spec["modelApprovalStatus"] = approval
    return {"apiVersion": API, "kind": "ModelPackage", "metadata": {"name": name}, "spec": spec}


def model(name: str, package_name: str) -> dict:
    spec = {"executionRoleArn": ROLE, "primaryContainer": {"modelPackageRef": {"name": package_name}}}
    return {"apiVersion": API, "kind": "Model", "metadata": {"name": name}, "spec": spec}


def group(name: str) -> dict:
    return {"apiVersion": API, "kind": "ModelPackageGroup", "metadata": {"name": name}, "spec": {}}


def is_ready(obj: dict) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def reason(obj: dict) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True":
            return c.get("reason")
    return None


def sagemaker_requests(aws: AwsHarness) -> list[dict]:
    """The harness's request log: {operation, started, status, ...} per SageMaker call."""
    with urllib.request.urlopen(f"{aws.url}/_harness/requests") as response:
        return json.load(response)["requests"]


def create_times(aws: AwsHarness, operation: str) -> list[float]:
    records = sagemaker_requests(aws)
    return sorted(r["started"] for r in records if r["operation"] == operation and r["status"] < 300)


def resource_of(record) -> str:
    """An emulator request's resource, with its subresource: "modelpackages/status"."""
    return f"{record.resource}/{record.subresource}" if record.subresource else str(record.resource)


def figures(latencies: list[float]) -> str:
    if not latencies:
        return "none"
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):.2f}s, p95 {p95:.2f}s, max {ordered[-1]:.2f}s (n={len(ordered)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100, help="Models waiting for approval (default 100)")
    parser.add_argument(
        "--packages", type=int, default=1000, help="ModelPackages waiting for groups (default 1000)"
    )
    parser.add_argument("--groups", type=int, default=10, help="their ModelPackageGroups (default 10)")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds they wait (default 300)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up this long after the changes")
    args = parser.parse_args()

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mro-reaction-"))
    kube = KubeCluster.start_emulator(workdir / "kubeconfig")
    aws = AwsHarness()
    operator = None
    try:
        kube.apply_crds_from(REPO / "crds")
        kube.create_namespace(NAMESPACE)
        env = {**os.environ, **aws.env, **kube.env, "PYTHONPATH": str(REPO / "operator")}
        operator = start_operator(env, workdir / "operator.log")
        pool = concurrent.futures.ThreadPoolExecutor(8)

        def apply(objs: list[dict]) -> None:
            list(pool.map(lambda obj: kube.create(obj, namespace=NAMESPACE), objs))

        # the models' packages, registered and pending approval, then the models waiting for them
        apply([group("approvals")])
        names = [f"pkg-{i:04d}" for i in range(args.models)]
        apply([package(name, "approvals") for name in names])
        wait_until(kube, "modelpackages", set(names), is_ready, operator, args.timeout, workdir)
        waits_from, cpu_before_waits = time.time(), cpu_seconds(operator.pid)
        apply([model(f"mdl-{name}", name) for name in names])
        # the packages waiting for their groups
        waiting = [f"wait-{i:05d}" for i in range(args.packages)]
        apply([package(name, f"group-{i % args.groups}", "Approved") for i, name in enumerate(waiting)])
        print(
            f"{args.models} Models wait for their packages' approval and {args.packages} ModelPackages for their "
            f"{args.groups} groups, for {args.wait:.0f}s ..."
        )
        started_wait = time.monotonic()
        time.sleep(args.wait)
        still = {r for obj in kube.list("models", namespace=NAMESPACE) for r in [reason(obj)]}
        print(f"after {time.monotonic() - started_wait:.0f}s the Models are {sorted(filter(None, still))}")
        print(f"  while they waited: operator CPU {cpu_seconds(operator.pid) - cpu_before_waits:.1f}s")
        print_requests(
            kube, aws, "Waiting objects", waits_from, time.time(), len(names) + len(waiting), "per object"
        )

        # the changes, at once
        before_models = len(create_times(aws, "CreateModel"))
        before_packages = len(create_times(aws, "CreateModelPackage"))
        approved: dict[str, float] = {}

        def approve(name: str) -> None:
            kube.patch(
                "modelpackages", name, {"spec": {"modelApprovalStatus": "Approved"}}, namespace=NAMESPACE
            )
            approved[f"mdl-{name}"] = time.time()

        created: dict[str, float] = {}

        def make_group(index: int) -> None:
            kube.create(group(f"group-{index}"), namespace=NAMESPACE)
            created[f"group-{index}"] = time.time()

        # one change after the other, each measured alone (the packages have waited longer)
        cpu_before = cpu_seconds(operator.pid)
        approvals_at = time.time()
        list(pool.map(approve, names))
        model_ready = wait_until(
            kube, "models", set(approved), is_ready, operator, args.timeout, workdir, changed=approvals_at
        )
        groups_at = time.time()
        burst_cpu = machine_cpu(operator, aws)
        list(pool.map(make_group, range(args.groups)))
        package_ready = wait_until(
            kube, "modelpackages", set(waiting), is_ready, operator, args.timeout, workdir, changed=groups_at
        )
        cpu = cpu_seconds(operator.pid) - cpu_before
        ended_at = time.time()
        burst_cpu = {who: spent - burst_cpu[who] for who, spent in machine_cpu(operator, aws).items()}

        model_creates = create_times(aws, "CreateModel")[before_models:]
        package_creates = create_times(aws, "CreateModelPackage")[before_packages:]
        group_of = {name: f"group-{i % args.groups}" for i, name in enumerate(waiting)}
        package_changed = sorted(created[group_of[name]] for name in waiting)
        print(
            f"Models, from each approval to its CreateModel: {figures(matched(sorted(approved.values()), model_creates))}"
        )
        print(
            f"Models, from each approval to Ready:          {figures([model_ready[n] - t for n, t in approved.items()])}"
        )
        print(
            "ModelPackages, from their group's creation to CreateModelPackage: "
            f"{figures(matched(package_changed, package_creates))}"
        )
        print(
            "ModelPackages, from their group's creation to Ready:              "
            f"{figures([package_ready[n] - created[group_of[n]] for n in waiting])}"
        )
        print(f"operator CPU after the changes: {cpu:.1f}s; peak RSS {peak_rss_mb(operator.pid):.0f} MB")
        print(
            f"  ModelPackages, CPU from their groups' creation to the last Ready ({ended_at - groups_at:.1f}s on "
            f"{os.cpu_count()} cores): "
            + ", ".join(f"{who} {spent:.1f}s" for who, spent in burst_cpu.items())
        )
        print_stages(kube, approved)
        print_requests(kube, aws, "Models", approvals_at, groups_at, len(names))
        print_requests(kube, aws, "ModelPackages", groups_at, ended_at, len(waiting))
        print_timeline(kube, aws, "ModelPackages", groups_at, ended_at)
        print_records_left(kube)
        print_floor(aws, args.packages)
        if os.environ.get("MRO_BENCH_DUMP"):  # the request log, for a closer look
            with open(os.environ["MRO_BENCH_DUMP"], "w") as out:
                json.dump(
                    [
                        [r.verb, r.resource, r.subresource, r.name, r.user_agent, r.received, r.code]
                        for r in kube.requests
                    ],
                    out,
                )
        return 0
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                print("the operator did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
                operator.kill()
                operator.wait()
        aws.stop()
        kube.stop()


def machine_cpu(operator: subprocess.Popen, aws: AwsHarness) -> dict[str, float]:
    """CPU seconds so far of the three processes sharing the machine."""
    return {
        "operator": cpu_seconds(operator.pid),
        "SageMaker harness": cpu_seconds(aws.process.pid),
        "emulated API server (and this bench's polling)": cpu_seconds(os.getpid()),
    }


def print_stages(kube: KubeCluster, approved: dict[str, float]) -> None:
    """Where a Model's reaction time goes, from the emulator's request log: approval -> its
    package's status written (package reconciled) -> the Model's status written by the
    operator outside kopf (the wake-up) -> its status written by kopf (its handler; the
    first such write may be a retry that still waited)."""
    writes: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for r in kube.requests:
        if r.verb == "patch" and r.name and r.resource in ("modelpackages", "models"):
            writes.setdefault((r.resource, r.name), []).append((r.received, r.user_agent))
    stages: dict[str, list[float]] = {"package written": [], "woken": [], "kopf's first write": []}
    for name, at in approved.items():
        package = [t for t, _ in writes.get(("modelpackages", name.removeprefix("mdl-")), []) if t > at]
        model_writes = [(t, agent) for t, agent in writes.get(("models", name), []) if t > at]
        woken = [t for t, agent in model_writes if not agent.startswith("kopf")]
        handled = [t for t, agent in model_writes if agent.startswith("kopf")]
        if package:
            stages["package written"].append(package[0] - at)
        if woken:
            stages["woken"].append(woken[0] - at)
        if handled:
            stages["kopf's first write"].append(handled[0] - at)
    for stage, times in stages.items():
        print(f"  Models, from each approval to {stage}: {figures(times) if times else 'none'}")


def print_records_left(kube: KubeCluster) -> None:
    """Objects done whose status still holds a kopf handler's progress record: they would look
    owned by a change handler for good (resyncs leave them alone). Expected: none."""
    time.sleep(3.0)  # writes still on their way
    left = [
        obj["metadata"]["name"]
        for plural in ("modelpackages", "models")
        for obj in kube.list(plural, namespace=NAMESPACE)
        if is_ready(obj) and ((obj.get("status") or {}).get("kopf") or {}).get("progress")
    ]
    print(f"  objects Ready with a handler's progress record left: {len(left)} {left[:3] if left else ''}")


def print_requests(
    kube: KubeCluster,
    aws: AwsHarness,
    what: str,
    start: float,
    end: float,
    count: int,
    per: str = "per reaction",
) -> None:
    """The requests of one phase (from its changes until the next phase), per reaction:
    what each reaction costs the API server and SageMaker, by kind of request (or, for the
    wait, what each waiting object cost, from its apply until the change)."""
    if not count:
        return
    kinds: dict[str, int] = {}
    for r in kube.requests:
        if start <= r.received < end and r.verb not in ("watch", "list"):
            actor = next((a for a in OPERATOR_AGENTS if r.user_agent.startswith(a)), "bench")
            name = f"{actor} {r.verb} {resource_of(r)}"
            kinds[name] = kinds.get(name, 0) + 1
    for r in sagemaker_requests(aws):
        if start <= r["started"] < end:
            kinds[f"SageMaker {r['operation']}"] = kinds.get(f"SageMaker {r['operation']}", 0) + 1
    listed = ", ".join(f"{name} {n / count:.2f}" for name, n in sorted(kinds.items()))
    print(f"  {what}, requests {per}: {listed}")


def print_timeline(kube: KubeCluster, aws: AwsHarness, what: str, start: float, end: float) -> None:
    """When each kind of request of a phase came, from its change: first, median and last
    (where the phase's time goes: the referenced objects' own reconcile, the creates, the
    status writes)."""
    times: dict[str, list[float]] = {}
    for r in kube.requests:
        if (
            start <= r.received < end
            and r.verb not in ("watch", "list", "get")
            and r.user_agent.startswith(OPERATOR_AGENTS)
        ):
            times.setdefault(f"{r.verb} {resource_of(r)}", []).append(r.received - start)
    for r in sagemaker_requests(aws):
        if start <= r["started"] < end:
            times.setdefault(r["operation"], []).append(r["started"] - start)
    print(f"  {what}, requests after the change (first / median / last, s):")
    for name, at in sorted(times.items(), key=lambda item: min(item[1])):
        print(f"    {name}: {min(at):.2f} / {statistics.median(at):.2f} / {max(at):.2f} (n={len(at)})")


def print_floor(aws: AwsHarness, count: int) -> None:
    """The bound on the packages' figure on this machine: `count` CreateModelPackage calls into
    a new group from 16 threads (the operator's reconcile workers), straight from boto3, with
    nothing else (no handler, no Kubernetes write); when each returned, from the start."""
    if not count:
        return
    import boto3

    client = boto3.client(
        "sagemaker",
        endpoint_url=aws.url,
        region_name=aws.env["AWS_REGION"],
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    client.create_model_package_group(ModelPackageGroupName="floor")
    spec = package("floor", "floor")["spec"]["inferenceSpecification"]
    inference = {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": spec["containers"][0]["modelDataUrl"]}],
        "SupportedContentTypes": spec["supportedContentTypes"],
        "SupportedResponseMIMETypes": spec["supportedResponseMIMETypes"],
    }
    started = time.monotonic()

    def create(_: int) -> float:
        client.create_model_package(ModelPackageGroupName="floor", InferenceSpecification=inference)
        return time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        done = list(pool.map(create, range(count)))
    print(f"floor: {count} CreateModelPackage calls alone from 16 threads, each done after: {figures(done)}")


def matched(changes: list[float], calls: list[float]) -> list[float]:
    """The i-th call after the changes against the i-th change, both in time order."""
    return [call - change for change, call in zip(changes, calls)]


def wait_until(kube, plural, names, done, operator, timeout, workdir, changed=None) -> dict[str, float]:
    """When each named object first satisfied `done` (time.time() when the time of the change
    awaited, `changed`, is given).

    With `changed`, the time is that of the object's last status write received before the
    listing that first showed it done (the emulator's request log): exact, however seldom it
    is listed, so the listing can be rare. It must be: a listing of a thousand objects costs
    the emulator (in this process) and this client a few tenths of a second of CPU, taken
    from what is measured on the same cores; so each waits ten times as long as the previous
    one took (at least 0.5 s), and none comes before each object has had a status write since
    the change (`written_since`: the request log, in memory), which it needs to be done: the first
    listing used to come at once, and took the emulator's thread (the same interpreter) from
    delivering the very watch events measured."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout

    def going_on(count: int, what: str) -> None:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited; see {workdir / 'operator.log'}")
        if time.monotonic() > deadline:
            raise SystemExit(f"only {count}/{len(names)} {plural} {what} after {timeout:.0f}s")

    wall = changed is not None
    if wall:
        scanned, written = 0, set()
        while not names <= written:
            going_on(len(written & names), "written")
            time.sleep(0.5)
            scanned = written_since(kube, plural, changed, scanned, written)
    while len(seen) < len(names):
        going_on(len(seen), "done")
        now = time.time() if wall else time.monotonic()
        listing = time.monotonic()
        for obj in kube.list(plural, namespace=NAMESPACE):
            name = obj["metadata"]["name"]
            if name in names and name not in seen and done(obj):
                seen[name] = now
        time.sleep(max(0.5, 10 * (time.monotonic() - listing)) if wall else 0.1)
    if wall:
        last_write: dict[str, list[float]] = {}
        for r in kube.requests:
            if r.verb == "patch" and r.resource == plural and r.subresource == "status" and r.name in seen:
                last_write.setdefault(r.name, []).append(r.received)
        for name, listed in seen.items():
            seen[name] = max((t for t in last_write.get(name, []) if t <= listed), default=listed)
    return seen


def written_since(kube: KubeCluster, plural: str, since: float, scanned: int, written: set[str]) -> int:
    """Add to `written` the objects whose status was written at `since` or later, from the
    emulator's request log past its first `scanned` records; returns how many it has."""
    records = kube.requests
    for r in records[scanned:]:
        if r.verb == "patch" and r.resource == plural and r.subresource == "status" and r.received >= since:
            written.add(str(r.name))
    return len(records)


if __name__ == "__main__":
    sys.exit(main())
