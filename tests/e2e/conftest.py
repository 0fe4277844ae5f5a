"""The real operator process (`model-registry-operator run`) against the Kubernetes API
emulator and the SageMaker harness, both over HTTP.

`operator` starts it (after `crds` installed the CRDs) with a short resync; tests call
`operator.kill()` (SIGKILL) / `operator.start()` to crash and restart it. The operator's
log goes to a file shown when a test fails.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "registry.mlops.dev/v1alpha1"
WAIT_SECONDS = 60
ARTIFACT_BUCKET = "registry-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    def __init__(self, env: dict[str, str], log_path: pathlib.Path, args: list[str]):
        self.env, self.log_path, self.args = env, log_path, args
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.metrics_port: int | None = None

    def start(self) -> OperatorProcess:
        self.starts += 1
        port = free_port()
        self.metrics_port = next(p for p in iter(free_port, None) if p != port)
        log = open(self.log_path, "ab")
        log.write(f"--- start #{self.starts}\n".encode())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "model_registry_operator.cli",
                "run",
                *self.args,
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
                "--metrics",
                f"127.0.0.1:{self.metrics_port}",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def crds(kube):
    kube.apply_crds_from(REPO / "crds")
    return kube


@pytest.fixture
def operator_env(aws, crds) -> dict[str, str]:
    return {
        **os.environ,
        **aws.env,
        **crds.env,
        "MRO_RESYNC_SECONDS": "3",
        "MRO_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "PYTHONPATH": str(REPO / "operator"),
    }


@pytest.fixture
def operator(operator_env, tmp_path, request) -> Iterator[OperatorProcess]:
    process = OperatorProcess(operator_env, tmp_path / "operator.log", ["-A"]).start()
    yield process
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(process.log()[-20000:])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def wait_until(
    check: Callable[[], Any],
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = 0.2,
    operator: OperatorProcess | None = None,
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if operator is not None and operator.process is not None and operator.process.poll() is not None:
            pytest.fail(
                f"the operator exited ({operator.process.returncode}) while waiting for {what}:\n"
                + operator.log()[-5000:]
            )
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


def is_ready(obj: dict[str, Any] | None) -> bool:
    return condition(obj, "Ready").get("status") == "True" and obj["status"].get("observedGeneration") == obj[
        "metadata"
    ].get("generation")


def resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def package_spec(group: str, **extra: Any) -> dict[str, Any]:
    return {
        "modelPackageGroupRef": {"name": group},
        "inferenceSpecification": {
            "containers": [{"image": IMAGE, "modelDataUrl": "s3://models/churn/model.tar.gz"}],
            "supportedContentTypes": ["text/csv"],
            "supportedResponseMIMETypes": ["text/csv"],
        },
        **extra,
    }


def wait_ready(
    kube,
    plural: str,
    name: str,
    namespace: str,
    operator: OperatorProcess | None = None,
    timeout: float = WAIT_SECONDS,
) -> dict[str, Any]:
    return wait_until(
        lambda: (lambda obj: obj if is_ready(obj) else None)(kube.find(plural, name, namespace=namespace)),
        f"{plural}/{name} to be Ready",
        timeout=timeout,
        operator=operator,
    )


def wait_condition(
    kube,
    plural: str,
    name: str,
    namespace: str,
    ctype: str,
    reason: str,
    operator: OperatorProcess | None = None,
    timeout: float = WAIT_SECONDS,
) -> dict[str, Any]:
    def check():
        obj = kube.find(plural, name, namespace=namespace)
        found = condition(obj, ctype)
        return obj if found.get("status") == "True" and found.get("reason") == reason else None

    return wait_until(check, f"{plural}/{name} to be {ctype}/{reason}", timeout=timeout, operator=operator)


def event_reasons(kube, namespace: str, name: str) -> list[str]:
    return [
        e.get("reason")
        for e in kube.list("events", namespace=namespace)
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def wait_event(
    kube,
    namespace: str,
    name: str,
    reason: str,
    operator: OperatorProcess | None = None,
    timeout: float = WAIT_SECONDS,
) -> None:
    wait_until(
        lambda: reason in event_reasons(kube, namespace, name),
        f"a {reason} Event on {name}",
        timeout=timeout,
        operator=operator,
    )
