"""kubectl (as `make demo` and users run it) against the emulator through its kubeconfig."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from harness_selftest.widget_crd import widget, widget_crd

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(kube, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **kube.env},
    )


def test_kubectl_applies_a_crd_and_custom_resources(kube, kube_namespace):
    assert kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(widget_crd())).returncode == 0
    manifest = widget("w1", kube_namespace, size=3)
    applied = kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert applied.returncode == 0, applied.stderr
    manifest["spec"]["size"] = 4
    assert kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(manifest)).returncode == 0
    assert kube.get("widgets", "w1", kube_namespace)["metadata"]["generation"] == 2

    listed = kubectl(kube, "get", "wdg", "-n", kube_namespace, "-o", "name")
    assert listed.stdout.split() == ["widget.selftest.example.com/w1"]
    table = kubectl(kube, "get", "widgets", "-n", kube_namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "READY", "AGE"] and table[1].split()[:2] == ["w1", "4"]


def test_kubectl_shows_the_apiservers_validation_errors(kube, kube_namespace):
    kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(widget_crd()))
    invalid = kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(widget("w1", kube_namespace, size=50)))
    assert invalid.returncode != 0
    assert 'The Widget "w1" is invalid' in invalid.stderr and "spec.size" in invalid.stderr
    unknown = widget("w2", kube_namespace)
    unknown["spec"]["extra"] = 1
    strict = kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump(unknown))
    assert strict.returncode != 0 and 'unknown field "spec.extra"' in strict.stderr


def test_kubectl_describe_and_get_events_show_an_objects_events(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    target = kube.create(widget("w1"), namespace=kube_namespace)
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "w1.1"},
            "type": "Warning",
            "reason": "Stalled",
            "message": "size is wrong",
            "lastTimestamp": target["metadata"]["creationTimestamp"],
            "involvedObject": {
                "apiVersion": "selftest.example.com/v1",
                "kind": "Widget",
                "name": "w1",
                "namespace": kube_namespace,
                "uid": target["metadata"]["uid"],
            },
        },
        namespace=kube_namespace,
    )
    described = kubectl(kube, "describe", "widget", "w1", "-n", kube_namespace).stdout
    assert described.splitlines()[-1].split()[:2] == ["Warning", "Stalled"]
    listed = kubectl(kube, "get", "events", "-n", kube_namespace).stdout.splitlines()
    assert listed[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert listed[1].split()[1:4] == ["Warning", "Stalled", "widget/w1"]
