"""Artifact copy throughput: a 1 GiB HTTP source packed and uploaded by copy_artifacts,
next to a baseline in the same run: boto3 upload_fileobj of the same bytes from memory to
the same S3 endpoint (moto in server mode, its own process).

    .venv/bin/python bench/artifacts.py [--size-mib 1024] [--runs 3]

Each measurement runs in a fresh subprocess so that its peak RSS is its own; the HTTP
source server lives in this process. Prints MB/s per run, the medians, the ratio
(target >= 0.8) and the peak RSS of the copying process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests")]

import boto3  # noqa: E402
import psutil  # noqa: E402
from botocore.config import Config  # noqa: E402

from harness.httpserver import FileServer, Generated  # noqa: E402

BUCKET = "bench-artifacts"
CLIENT = """
import re
import boto3
from botocore.config import Config
def peak_rss():
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark across
    # fork and exec into ru_maxrss
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024
def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench", config=Config(s3={"addressing_style": "path"}))
"""
OURS = (
    CLIENT
    + r"""
import json, resource, sys, time
from dataclasses import dataclass
from model_registry_operator.artifacts import copy_artifacts
from model_registry_operator.settings import Settings

@dataclass
class File:
    path: str
    source: str
    sha256: None = None

@dataclass
class Artifact:
    name: str
    files: list

endpoint, url, key_prefix = sys.argv[1:4]
s3 = client(endpoint)
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
copy_artifacts([Artifact("model", [File("model.bin", url)])], s3_client=s3, bucket="%s", key_prefix=key_prefix,
               settings=Settings(allow_http=True))
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss": peak_rss(), "cpu": cpu}))
"""
    % BUCKET
)
BASELINE = (
    CLIENT
    + r"""
import io, json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from harness.httpserver import Generated
endpoint, size, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = b"".join(Generated(size, seed=1).read(0, size))
s3 = client(endpoint)
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
s3.upload_fileobj(io.BytesIO(data), "%s", key)
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss": peak_rss(), "cpu": cpu}))
"""
    % BUCKET
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_endpoint() -> Iterator[tuple[str, psutil.Process]]:
    """moto in server mode in its own process, with the bench bucket."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait()


def run_child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    size = options.size_mib * 1024**2

    ours, baseline, rss = [], [], []
    with FileServer() as server:
        url = server.add("/model.bin", Generated(size, seed=1))
        for run in range(options.runs):
            # a fresh moto per measurement: it keeps objects in memory and on disk, and
            # what an earlier upload left would slow the next one down
            with moto_endpoint() as (endpoint, moto):
                base = run_child(BASELINE, endpoint, str(size), "baseline", str(ROOT / "tests"))
                base["moto_cpu"] = sum(moto.cpu_times()[:2])
            with moto_endpoint() as (endpoint, moto):
                mine = run_child(OURS, endpoint, url, "ours")
                mine["moto_cpu"] = sum(moto.cpu_times()[:2])
            baseline.append(size / base["seconds"] / 1e6)
            ours.append(size / mine["seconds"] / 1e6)
            rss.append(mine["peak_rss"] / 1e6)
            print(
                f"run {run + 1}: copy_artifacts {ours[-1]:.1f} MB/s (peak RSS {rss[-1]:.0f} MB, CPU {mine['cpu']:.1f} s, "
                f"moto CPU {mine['moto_cpu']:.1f} s); upload_fileobj {baseline[-1]:.1f} MB/s (peak RSS "
                f"{base['peak_rss'] / 1e6:.0f} MB, CPU {base['cpu']:.1f} s, moto CPU {base['moto_cpu']:.1f} s); "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    ours_median, base_median = statistics.median(ours), statistics.median(baseline)
    print(f"source {options.size_mib} MiB over HTTP, {options.runs} runs, medians:")
    print(f"  copy_artifacts (pack + multipart upload): {ours_median:.1f} MB/s")
    print(f"  boto3 upload_fileobj from memory:          {base_median:.1f} MB/s")
    print(f"  ratio: {ours_median / base_median:.2f} (target >= 0.8)")
    print(f"  copy_artifacts peak RSS: {statistics.median(rss):.0f} MB (max {max(rss):.0f} MB)")


if __name__ == "__main__":
    main()
