"""`make demo` (demo/run.py) end to end, as a subprocess: every sample Ready, the tables it
prints, a clean stop on Ctrl-C in the keep-running variant, and one sentence on failure."""

from __future__ import annotations

import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "run.py"
SAMPLES = sorted((REPO / "manifests" / "samples").glob("*.yaml"))
PLURALS = {"ModelPackageGroup": "modelpackagegroups", "ModelPackage": "modelpackages", "Model": "models"}
TIMEOUT = 150


def demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DEMO), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )


def finish(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the demo stops its children on SIGTERM
        out, err = process.communicate(timeout=30)
        pytest.fail(f"the demo did not finish within {timeout} s:\n{out}\n{err}")


def tables(output: str) -> dict[str, list[dict[str, str]]]:
    """The `$ kubectl get <plural>` tables in the demo's output, as rows of {COLUMN: cell}."""
    found: dict[str, list[dict[str, str]]] = {}
    for block in output.split("$ kubectl get ")[1:]:
        lines = block.split("\n\n")[0].splitlines()
        plural, header, rows = lines[0].split()[0], lines[1], lines[2:]
        starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{3}))\S", header)]
        names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        found[plural] = [
            {name: row[a:b].strip() for name, a, b in zip(names, starts, [*starts[1:], None], strict=True)}
            for row in rows
        ]
    return found


def assert_closed(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex((parts.hostname, parts.port)) != 0, f"{url} still answers after the demo"


def urls(output: str) -> list[str]:
    """The endpoints the demo announced: Kubernetes API, SageMaker/S3, web server, metrics."""
    return re.findall(r"http://127\.0\.0\.1:\d+", output.split("\napplied ")[0])


def test_demo_makes_every_sample_ready_and_exits_0() -> None:
    out, err = finish(demo())
    assert "Traceback" not in out + err, out + err
    assert "every sample is Ready" in out and out.rstrip().endswith("stopped."), out + err
    shown = tables(out)
    for path in SAMPLES:
        obj = yaml.safe_load(path.read_text())
        rows = [r for r in shown.get(PLURALS[obj["kind"]], []) if r["NAME"] == obj["metadata"]["name"]]
        assert rows, f"{path.name}: {obj['kind']} {obj['metadata']['name']} is not in the output:\n{out}"
        assert rows[0]["READY"] == "True" and rows[0]["REASON"] == "Synced", f"{path.name}: {rows[0]}"
    packages = {r["NAME"]: r for r in shown["modelpackages"]}
    assert packages["churn-v1"]["APPROVAL"] == "Approved"  # approved by the demo, which says who it is
    assert packages["churn-v1"]["APPROVAL BY"] == "make-demo", packages["churn-v1"]
    assert {r["NAME"] for r in shown["models"]} >= {"churn", "churn-pipeline", "churn-v1"}
    events = shown["events"]
    assert any(e["REASON"] == "ApprovalChanged" and e["OBJECT"] == "modelpackage/churn-v1" for e in events)
    assert not [e for e in events if e["TYPE"] != "Normal"], events
    assert "the demo serves this source itself: https://models.example.org/" in out
    assert [line for line in out.splitlines() if line.startswith("applied ")] and all(
        f"applied manifests/samples/{path.name}:" in out for path in SAMPLES
    )
    for url in urls(out):
        assert_closed(url)


def test_demo_keep_runs_until_ctrl_c_then_stops_everything() -> None:
    process = demo("--keep")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while not any("Press Ctrl-C to stop" in line for line in seen):
        if time.monotonic() > deadline or process.poll() is not None:
            process.send_signal(signal.SIGTERM)
            pytest.fail(f"the demo did not say it keeps running:\n{''.join(seen)}{process.stderr.read()}")  # type: ignore[union-attr]
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            pass
    out = "".join(seen)
    exports = dict(re.findall(r"^  export (\w+)=(\S+)$", out, re.M))
    assert {"KUBECONFIG", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"} <= set(exports)
    kubeconfig = yaml.safe_load(pathlib.Path(exports["KUBECONFIG"]).read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert server in out  # the kubeconfig points at the announced API server
    time.sleep(1)
    assert process.poll() is None, "the demo stopped by itself"

    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the demo did not stop within 60 s of Ctrl-C")
    reader.join(10)
    rest = "".join(lines.get() for _ in range(lines.qsize()))
    err = process.stderr.read()  # type: ignore[union-attr]
    assert process.returncode == 0, out + rest + err
    assert "Traceback" not in rest + err, rest + err
    assert rest.rstrip().endswith("stopped."), rest + err
    for url in urls(out):
        assert_closed(url)
    assert not pathlib.Path(exports["KUBECONFIG"]).exists()


def test_demo_that_does_not_converge_fails_with_one_sentence() -> None:
    process = demo("--timeout", "0.5")
    out, err = finish(process)
    assert process.returncode == 1, out + err
    assert "Traceback" not in out + err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo failed: "), err
    assert re.search(
        r" did not become Ready within 0.5 s: ((Reconciling|Stalled)/\w+|no status)", lines[0]
    ), err
    log = re.search(r"the operator's log is in (\S+)\.$", lines[0])
    assert log, err
    pathlib.Path(log.group(1)).unlink()
    for url in urls(out):
        assert_closed(url)
