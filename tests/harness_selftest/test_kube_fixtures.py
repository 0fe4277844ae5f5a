"""The harness around the emulator: kubeconfig, request log, launcher, real-cluster mode."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import kubernetes
import pytest
import yaml

from harness.kube import KubeApiError, KubeCluster, rbac
from harness.kube.fixtures import open_cluster
from harness_selftest.widget_crd import widget, widget_crd

TESTS = pathlib.Path(__file__).parents[1]


def test_kubeconfig_lets_the_kubernetes_client_connect(kube):
    config = yaml.safe_load(kube.kubeconfig_path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == kube.url
    assert kube.url.startswith("http://127.0.0.1:")
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(kube.kubeconfig_path)))
    names = [ns.metadata.name for ns in api.list_namespace().items]
    assert "default" in names


def test_the_kubernetes_client_patches_custom_objects(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    kube.create(widget("w1"), namespace=kube_namespace)
    api = kubernetes.client.CustomObjectsApi(
        kubernetes.config.new_client_from_config(str(kube.kubeconfig_path))
    )
    patched = api.patch_namespaced_custom_object(
        "selftest.example.com", "v1", kube_namespace, "widgets", "w1", {"spec": {"size": 2}}
    )
    assert patched["spec"]["size"] == 2 and patched["metadata"]["generation"] == 2


def test_the_request_log_names_verbs_as_rbac_does(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    kube.clear_requests()
    ns = kube_namespace
    kube.create(widget("w1"), namespace=ns)
    kube.get("widgets", "w1", ns)
    kube.list("widgets", ns)
    kube.patch_status("widgets", "w1", {"phase": "x"}, ns)
    kube.replace(kube.get("widgets", "w1", ns))
    kube.delete("widgets", "w1", ns)
    widget_requests = [r for r in kube.requests if r.resource == "widgets"]
    assert [(r.verb, r.subresource) for r in widget_requests] == [
        ("create", None),
        ("get", None),
        ("list", None),
        ("patch", "status"),
        ("get", None),
        ("update", None),
        ("delete", None),
    ]
    assert all(r.namespace == ns and r.group == "selftest.example.com" for r in widget_requests)
    assert widget_requests[1].name == "w1" and widget_requests[0].code == 201
    assert ("selftest.example.com", "widgets/status", "patch") in kube.permissions()
    assert all(r.resource is None for r in kube.requests if r not in widget_requests)  # the rest is discovery


def test_watch_requests_are_logged_as_watch(kube):
    kube.call("GET", "/api/v1/namespaces", params={"watch": "true", "timeoutSeconds": "0"})
    assert ("", "namespaces", "watch") in kube.permissions()


def test_reset_forgets_objects_crds_and_requests(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    kube.reset()
    assert kube.requests == []
    assert kube.find("namespaces", kube_namespace) is None
    assert kube.request("GET", "/apis/selftest.example.com/v1").status_code == 404


def test_real_cluster_mode_uses_e2e_kubeconfig_and_starts_no_emulator(tmp_path, monkeypatch):
    other = KubeCluster.start_emulator(tmp_path / "real" / "kubeconfig")  # stands in for a real cluster
    try:
        other.create_namespace("only-on-the-real-one")
        monkeypatch.setenv("E2E_KUBECONFIG", str(other.kubeconfig_path))
        cluster = open_cluster(tmp_path / "unused")
        assert not cluster.emulated and not (tmp_path / "unused").exists()
        assert cluster.get("namespaces", "only-on-the-real-one")["metadata"]["name"] == "only-on-the-real-one"
        assert cluster.env == {"KUBECONFIG": str(other.kubeconfig_path)}
        with pytest.raises(RuntimeError, match="real cluster"):
            cluster.requests
    finally:
        other.stop()


def test_launcher_serves_in_the_foreground_with_crds_applied(tmp_path):
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "widget.yaml").write_text(yaml.safe_dump(widget_crd()))
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.kube", "--kubeconfig", str(kubeconfig), "--crds", str(crds)],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == "applied CRD widgets.selftest.example.com"
        assert "Kubernetes API emulator on http://127.0.0.1:" in lines[1]
        client = KubeCluster.connect(kubeconfig)
        assert client.resource("widgets").kind == "Widget"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_launcher_refuses_a_missing_crd_directory(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.kube",
            "--kubeconfig",
            str(tmp_path / "kc"),
            "--crds",
            str(tmp_path / "nope"),
        ],
        cwd=TESTS,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        timeout=30,
    )
    assert result.returncode == 2 and "not a directory" in result.stderr and "Traceback" not in result.stderr


def test_unknown_resource_type_is_404(kube):
    with pytest.raises(KubeApiError) as caught:
        kube.call("GET", "/apis/nothing.example.com/v1/things")
    assert caught.value.status == 404


def test_injected_faults_answer_the_next_matching_requests(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    kube.create(widget("w1"), namespace=kube_namespace)
    kube.inject_fault("patch", "widgets", subresource="status", code=409, count=1)
    kube.inject_fault("get", "widgets", code=429, count=1, retry_after=2)
    with pytest.raises(KubeApiError) as conflict:
        kube.patch_status("widgets", "w1", {"phase": "x"}, kube_namespace)
    assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
    assert (
        kube.patch("widgets", "w1", {"spec": {"size": 2}}, kube_namespace)["spec"]["size"] == 2
    )  # main: served
    assert kube.patch_status("widgets", "w1", {"phase": "x"}, kube_namespace)["status"] == {"phase": "x"}
    throttled = kube.request("GET", f"/apis/selftest.example.com/v1/namespaces/{kube_namespace}/widgets/w1")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert kube.get("widgets", "w1", kube_namespace)["status"] == {"phase": "x"}
    assert [r.code for r in kube.requests if r.subresource == "status"] == [409, 200]


def test_used_permissions_compare_with_rbac_rules(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    kube.clear_requests()
    kube.create(widget("w1"), namespace=kube_namespace)
    kube.patch_status("widgets", "w1", {"phase": "x"}, kube_namespace)
    used = kube.permissions()
    assert rbac.rules_for(used) == [
        {"apiGroups": ["selftest.example.com"], "resources": ["widgets"], "verbs": ["create"]},
        {"apiGroups": ["selftest.example.com"], "resources": ["widgets/status"], "verbs": ["patch"]},
    ]
    role = [{"apiGroups": ["selftest.example.com"], "resources": ["widgets"], "verbs": ["*"]}]
    assert rbac.missing(used, role) == {("selftest.example.com", "widgets/status", "patch")}
    assert (
        rbac.missing(used, role + [{"apiGroups": ["*"], "resources": ["widgets/status"], "verbs": ["patch"]}])
        == set()
    )
