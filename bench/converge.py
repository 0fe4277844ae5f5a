"""How fast the operator converges N ModelPackages in G groups, and what it costs.

    .venv/bin/python bench/converge.py [-n 1000] [-g 10] [--resync 60]
    .venv/bin/python bench/converge.py -n 100 -g 2 --kill 5 --no-resync   # restarts

With `--kill K` the operator is killed (SIGKILL) and started again K times while it creates
the versions, after each K+1-th of the CreateModelPackage calls: what recovery costs, and that
it made exactly one version per package (checked at the end, after the counts are read).

Starts the Kubernetes API emulator (in this process), the SageMaker harness (a
subprocess) and the operator (`model-registry-operator run`, a subprocess), applies G
ModelPackageGroups and N ModelPackages, and prints:
- the time from the first apply to all Ready;
- SageMaker calls per package to reach Ready, by operation;
- SageMaker calls of one resync period R in steady state (the window [ready + R,
  ready + 2R), in which each object is resynced once);
- Kubernetes API calls per package made by the operator (the bench's own are excluded), and
  the writes among them;
- the operator's peak RSS (VmHWM).
Targets (issue 4): < 60 s for N=1000, <= 3 SageMaker calls per package to Ready,
<= 20 SageMaker calls per resync of 1000 packages in 10 groups, peak RSS < 250 MB.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness.kube import KubeCluster  # noqa: E402

API = "registry.mlops.dev/v1alpha1"
NAMESPACE = "bench"
IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AwsHarness:
    """The SageMaker/S3 harness in its own process, read through its control API."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.aws", "--port", port],
            env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.process.stdout.readline()
        if "endpoint on" not in line:
            raise SystemExit(f"the SageMaker harness did not start: {line.strip()}")

    def counts(self) -> collections.Counter:
        with urllib.request.urlopen(f"{self.url}/_harness/requests") as response:
            return collections.Counter(json.load(response)["counts"])

    def post(self, route: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{self.url}/_harness/{route}", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request).close()

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": "us-east-2",
            "AWS_DEFAULT_REGION": "us-east-2",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_operator(env: dict[str, str], log_path: pathlib.Path) -> subprocess.Popen:
    """`model-registry-operator run -A` with liveness and metrics served on free ports, as in
    production; its log goes to `log_path`. Returns once it has had time to start its watches."""
    log = open(log_path, "wb")
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_registry_operator.cli",
            "run",
            "-A",
            "--liveness",
            f"http://127.0.0.1:{free_port()}/healthz",
            "--metrics",
            f"127.0.0.1:{free_port()}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    time.sleep(2.0)  # let the operator connect and start its watches
    return operator


def objects(n: int, g: int) -> tuple[list[dict], list[dict]]:
    groups = [
        {"apiVersion": API, "kind": "ModelPackageGroup", "metadata": {"name": f"group-{i}"}, "spec": {}}
        for i in range(g)
    ]
    packages = [
        {
            "apiVersion": API,
            "kind": "ModelPackage",
            "metadata": {"name": f"package-{i:05d}"},
            "spec": {
                "modelPackageGroupRef": {"name": f"group-{i % g}"},
                "modelApprovalStatus": "Approved",
                "inferenceSpecification": {
                    "containers": [{"image": IMAGE, "modelDataUrl": f"s3://models/{i}/model.tar.gz"}],
                    "supportedContentTypes": ["text/csv"],
                    "supportedResponseMIMETypes": ["text/csv"],
                },
            },
        }
        for i in range(n)
    ]
    return groups, packages


def ready_count(kube: KubeCluster) -> int:
    ready = 0
    for obj in kube.list("modelpackages", namespace=NAMESPACE):
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"].get("generation") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        ):
            ready += 1
    return ready


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak RSS; field="VmRSS": its RSS now."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def versions_made(aws: AwsHarness, groups: int) -> int:
    """Versions in the bench's groups (read after the counts: these calls are not the operator's)."""
    import botocore.session

    session = botocore.session.get_session()
    client = session.create_client(
        "sagemaker",
        region_name="us-east-2",
        endpoint_url=aws.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    total = 0
    for index in range(groups):
        pages = client.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=f"group-{index}", ModelPackageType="Versioned"
        )
        total += sum(len(page["ModelPackageSummaryList"]) for page in pages)
    return total


# what the operator's own reads are (its resync loop reads each object once per period)
READ_VERBS = frozenset({"get", "list", "watch"})


def per_op(counts: collections.Counter) -> str:
    return ", ".join(f"{op} {count}" for op, count in counts.most_common())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--packages", type=int, default=1000, help="ModelPackages (default 1000)")
    parser.add_argument("-g", "--groups", type=int, default=10, help="ModelPackageGroups (default 10)")
    parser.add_argument(
        "--resync", type=float, default=30.0, help="operator resync period in seconds (default 30)"
    )
    parser.add_argument("--no-resync", action="store_true", help="skip the resync measurement")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--crds", type=pathlib.Path, default=REPO / "crds", help="CRD directory")
    parser.add_argument(
        "--kill",
        type=int,
        default=0,
        metavar="K",
        help="kill -9 and restart the operator K times while creating",
    )
    parser.add_argument(
        "--create-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="CreateModelPackage takes S seconds more",
    )
    args = parser.parse_args()
    if args.packages < 1 or args.groups < 1:
        parser.error("--packages and --groups must be at least 1")

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mro-bench-"))
    kube = KubeCluster.start_emulator(workdir / "kubeconfig")
    aws = AwsHarness()
    operator = None
    try:
        kube.apply_crds_from(args.crds)
        kube.create_namespace(NAMESPACE)
        env = {
            **os.environ,
            **aws.env,
            **kube.env,
            "MRO_RESYNC_SECONDS": str(args.resync),
            "PYTHONPATH": str(REPO / "operator"),
        }
        operator = start_operator(env, workdir / "operator.log")
        kube.clear_requests()
        bench_calls = 0
        if args.create_latency > 0:
            aws.post(
                "faults",
                {
                    "operation": "CreateModelPackage",
                    "kind": "latency",
                    "probability": 1.0,
                    "seconds": args.create_latency,
                },
            )
        # after which CreateModelPackage call each kill -9 comes; CPU of the killed operators
        kills = [args.packages * (i + 1) // (args.kill + 1) for i in range(args.kill)]
        killed_cpu, starts, lifetimes = 0.0, 1, []  # lifetimes: SageMaker calls by each killed operator

        groups, packages = objects(args.packages, args.groups)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda obj: kube.create(obj, namespace=NAMESPACE), groups + packages))
        bench_calls += len(groups) + len(packages)
        applied = time.monotonic() - t0
        ready = 0
        while ready < args.packages:
            if operator.poll() is not None:
                raise SystemExit(f"the operator exited; see {workdir / 'operator.log'}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"only {ready}/{args.packages} Ready after {args.timeout:.0f}s")
            if kills:
                time.sleep(0.02)
                so_far = aws.counts()
                if so_far["CreateModelPackage"] >= kills[0]:
                    kills.pop(0)
                    lifetimes.append(so_far)
                    killed_cpu += cpu_seconds(operator.pid)
                    operator.kill()  # SIGKILL
                    operator.wait()
                    operator = start_operator(env, workdir / f"operator-{starts}.log")
                    starts += 1
                continue
            # listing N objects is work for the emulator too: rarely at first, often near the end
            time.sleep(2.0 if ready < 0.9 * args.packages else 0.25)
            ready = ready_count(kube)
            bench_calls += 1
        converged = time.monotonic() - t0
        cpu = {
            "operator": killed_cpu + cpu_seconds(operator.pid),
            "SageMaker harness": cpu_seconds(aws.process.pid),
            "bench + Kubernetes emulator": cpu_seconds(os.getpid()),
        }
        to_ready = aws.counts()
        records = kube.requests
        kube_calls = len(records) - bench_calls
        by_kind = collections.Counter(
            f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}" for r in records
        )
        by_kind["create modelpackages"] -= len(packages)
        by_kind["create modelpackagegroups"] -= len(groups)
        by_kind["list modelpackages"] -= bench_calls - len(groups) - len(packages)

        print(f"packages {args.packages} in {args.groups} groups; applied in {applied:.1f}s")
        print(f"all Ready after {converged:.1f}s")
        print(
            "CPU seconds used until then: "
            + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
            + f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
        total = sum(to_ready.values())
        print(f"SageMaker calls to Ready: {total} ({total / args.packages:.2f}/package): {per_op(to_ready)}")
        print(
            f"Kubernetes API calls by the operator to Ready: {kube_calls} ({kube_calls / args.packages:.2f}/package): "
            f"{per_op(+by_kind)}"
        )
        writes = sum(n for op, n in by_kind.items() if op.split()[0] not in READ_VERBS)
        print(f"  of which writes: {writes} ({writes / args.packages:.2f}/package)")
        print(f"operator CPU per package: {1000 * cpu['operator'] / args.packages:.1f} ms")
        if args.kill:
            made = versions_made(aws, args.groups)
            verdict = "exactly one each" if made == args.packages else f"{made - args.packages:+d}: WRONG"
            print(f"kill -9 and restart: {args.kill} times; versions in SageMaker: {made} ({verdict})")
            for number, (before, after) in enumerate(zip([collections.Counter(), *lifetimes], lifetimes), 1):
                print(f"  operator {number} until killed: {per_op(after - before)}")

        if not args.no_resync:
            # Steady state: one full period after all are Ready, every object is resynced
            # once per period; the first period after convergence is cheaper than usual
            # because the listings made while converging are still fresh.
            window_start = t0 + converged + args.resync
            time.sleep(max(0.0, window_start - time.monotonic()))
            before, kube_before = aws.counts(), len(kube.requests)
            time.sleep(args.resync)
            resync = aws.counts() - before
            kube_resync = len(kube.requests) - kube_before
            print(
                f"SageMaker calls in one resync period ({args.resync:g}s): {sum(resync.values())}: {per_op(resync)}"
            )
            print(f"Kubernetes API calls in one resync period: {kube_resync}")
        print(
            f"operator peak RSS: {peak_rss_mb(operator.pid):.0f} MB "
            f"(now {peak_rss_mb(operator.pid, 'VmRSS'):.0f} MB)"
        )
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            try:
                operator.wait(15)
            except subprocess.TimeoutExpired:
                operator.kill()
        aws.stop()
        kube.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
