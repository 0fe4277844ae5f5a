"""How the operator spends a SageMaker request quota: N ModelPackages under a rate limit.

    .venv/bin/python bench/quota.py [-n 300] [-g 3] [--rate 20] [--runs 3] [--no-limit | --adaptive]

Starts the Kubernetes API emulator (in this process), the SageMaker harness in quota mode
(a token bucket of RATE requests/s, burst RATE, per account and region: beyond it SageMaker
answers ThrottlingException without executing the request, as AWS does) and the operator with
`MRO_SAGEMAKER_RATE=RATE` (the account's quota, as a user would set it), applies G groups and N
ModelPackages, waits for all Ready and prints:
- the time from the first apply to all Ready;
- the SageMaker calls the operator needed (the requests SageMaker served) and their lower
  bound in time, calls / RATE, and the ratio time / lower bound;
- the throttled requests and their share of all SageMaker requests;
- the operator's CPU seconds and peak RSS (VmHWM).
`--no-limit` runs the operator without its limiter (`MRO_SAGEMAKER_RATE=off`), `--adaptive` with
the default (no ceiling, slowing down only once throttled). With `--runs R`, each run starts
afresh and the medians are printed last.
Targets (issue 14, RATE 20, N 300 in 3 groups): ratio <= 1.2, throttled <= 10% of requests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from converge import (
    NAMESPACE,
    REPO,
    AwsHarness,
    cpu_seconds,
    objects,
    peak_rss_mb,
    ready_count,
    start_operator,
)

from harness.kube import KubeCluster


def control(url: str, route: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/_harness/{route}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def run(args: argparse.Namespace) -> dict[str, float]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mro-bench-quota-"))
    kube = KubeCluster.start_emulator(workdir / "kubeconfig")
    aws = AwsHarness()
    operator = None
    try:
        control(aws.url, "quota", {"requestsPerSecond": args.rate, "burst": args.burst or args.rate})
        kube.apply_crds_from(REPO / "crds")
        kube.create_namespace(NAMESPACE)
        env = {
            **os.environ,
            **aws.env,
            **kube.env,
            "MRO_RESYNC_SECONDS": str(args.resync),
            "PYTHONPATH": str(REPO / "operator"),
        }
        env.pop("MRO_SAGEMAKER_RATE", None)
        if args.no_limit:
            env["MRO_SAGEMAKER_RATE"] = "off"
        elif not args.adaptive:
            env["MRO_SAGEMAKER_RATE"] = f"{args.rate:g}"
        operator = start_operator(env, workdir / "operator.log")

        groups, packages = objects(args.packages, args.groups)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda obj: kube.create(obj, namespace=NAMESPACE), groups + packages))
        ready = 0
        while ready < args.packages:
            if operator.poll() is not None:
                raise SystemExit(f"the operator exited; see {workdir / 'operator.log'}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"only {ready}/{args.packages} Ready after {args.timeout:.0f}s")
            time.sleep(1.0 if ready < 0.9 * args.packages else 0.1)
            ready = ready_count(kube)
        converged = time.monotonic() - t0
        cpu = cpu_seconds(operator.pid)
        rss = peak_rss_mb(operator.pid)
        records = [r for r in control(aws.url, "requests")["requests"] if r["service"] == "sagemaker"]
        throttled = sum(1 for r in records if r["fault"] == "quota")
        served = len(records) - throttled
        bound = served / args.rate
        figures = {
            "time to Ready (s)": converged,
            "SageMaker calls needed": served,
            "lower bound (s)": bound,
            "time / lower bound": converged / bound,
            "throttled requests": throttled,
            "throttled share (%)": 100 * throttled / max(1, len(records)),
            "operator CPU (s)": cpu,
            "operator peak RSS (MB)": rss,
        }
        return figures
    finally:
        if operator is not None and operator.poll() is None:
            operator.terminate()
            try:
                operator.wait(15)
            except Exception:
                operator.kill()
        aws.stop()
        kube.stop()


def show(figures: dict[str, float]) -> str:
    return "; ".join(
        f"{name} {value:.0f}" if value == int(value) and "(s)" not in name else f"{name} {value:.2f}"
        for name, value in figures.items()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--packages", type=int, default=300, help="ModelPackages (default 300)")
    parser.add_argument("-g", "--groups", type=int, default=3, help="ModelPackageGroups (default 3)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="SageMaker's quota, requests/s per account (default 20)"
    )
    parser.add_argument("--burst", type=float, help="SageMaker's bucket size (default: one second's worth)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-limit", action="store_true", help="the operator without its limiter")
    mode.add_argument(
        "--adaptive", action="store_true", help="the operator's default: no ceiling, adapting to throttling"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs, each from scratch (default 1)")
    parser.add_argument("--resync", type=float, default=300.0, help="operator resync period (default 300)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = parser.parse_args()
    if args.packages < 1 or args.groups < 1 or args.rate <= 0 or args.runs < 1:
        parser.error("--packages, --groups, --runs must be at least 1 and --rate positive")

    operator_rate = "off" if args.no_limit else "unset (adaptive)" if args.adaptive else f"{args.rate:g}"
    print(
        f"packages {args.packages} in {args.groups} groups; SageMaker quota {args.rate:g} requests/s "
        f"(burst {args.burst or args.rate:g}); operator MRO_SAGEMAKER_RATE {operator_rate}",
        flush=True,
    )
    runs = []
    for number in range(1, args.runs + 1):
        figures = run(args)
        runs.append(figures)
        print(f"run {number}: {show(figures)}", flush=True)
    if args.runs > 1:
        medians = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
        print(f"median of {args.runs}: {show(medians)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
