"""A real kopf operator, in its own process, against the emulator through the kubeconfig."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.kube import KubeApiError
from harness_selftest.widget_crd import FINALIZER, widget, widget_crd

OPERATOR = pathlib.Path(__file__).with_name("widget_operator.py")


def poll(what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def peering() -> list[str]:
    return ["--standalone"]


@pytest.fixture
def operator(kube, kube_namespace, tmp_path, peering) -> Iterator[pathlib.Path]:
    kube.apply_crd(widget_crd())
    if "--peering" in peering:  # kopf expects its peering object to exist when it starts
        kube.create(
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": peering[peering.index("--peering") + 1]},
            },
            namespace=kube_namespace,
        )
    log = tmp_path / "kopf.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", *peering, "--namespace", kube_namespace, str(OPERATOR)],
            env={**os.environ, **kube.env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_kopf_creates_updates_and_deletes_with_a_finalizer_and_status(kube, kube_namespace, operator):
    ns = kube_namespace
    kube.create(widget("w1", size=3), namespace=ns)
    ready = kube.wait_for(
        "widgets",
        "w1",
        namespace=ns,
        timeout=30,
        condition=lambda o: (o.get("status") or {}).get("phase") == "Ready",
    )
    assert ready["status"]["observedSize"] == 3
    assert ready["metadata"]["finalizers"] == [FINALIZER]

    kube.patch("widgets", "w1", {"spec": {"size": 4}}, ns)
    kube.wait_for(
        "widgets",
        "w1",
        namespace=ns,
        timeout=30,
        condition=lambda o: (o.get("status") or {}).get("observedSize") == 4,
    )

    doomed = kube.get("widgets", "w1", ns)
    kube.delete("widgets", "w1", ns)
    kube.wait_gone("widgets", "w1", ns, timeout=30)
    poll(
        "the delete handler's event",
        lambda: [e for e in kube.events_for(doomed) if "widget w1 cleaned up" in e["message"]],
    )

    # kopf went through finalizer JSON patches and status writes: none failed server-side.
    assert not [r for r in kube.requests if r.code is not None and r.code >= 500]
    permissions = kube.permissions()
    assert ("selftest.example.com", "widgets/status", "patch") in permissions
    assert ("selftest.example.com", "widgets", "watch") in permissions
    assert ("", "events", "create") in permissions
    assert "Traceback" not in operator.read_text()


def test_a_custom_resource_violating_the_schema_is_refused_while_kopf_runs(kube, kube_namespace, operator):
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("bad", size=42), namespace=kube_namespace)
    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert caught.value.causes[0]["field"] == "spec.size"
    # The operator keeps working for valid objects after the refusal.
    kube.create(widget("good"), namespace=kube_namespace)
    kube.wait_for(
        "widgets",
        "good",
        namespace=kube_namespace,
        timeout=30,
        condition=lambda o: (o.get("status") or {}).get("phase") == "Ready",
    )


@pytest.mark.parametrize("peering", [["--peering", "selftest"]])
def test_kopf_peering_works_through_kopfpeering_objects(kube, kube_namespace, operator):
    kube.create(widget("w1"), namespace=kube_namespace)
    kube.wait_for(
        "widgets",
        "w1",
        namespace=kube_namespace,
        timeout=30,
        condition=lambda o: (o.get("status") or {}).get("phase") == "Ready",
    )
    peers = kube.get("kopfpeerings", "selftest", kube_namespace).get("status") or {}
    assert [peer["lifetime"] for peer in peers.values()] == [60]  # the operator announced itself
