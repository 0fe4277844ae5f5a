"""metadata.managedFields as kube-apiserver records them for create, update and patch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from harness.kube import KubeApiError, field_manager, owners
from harness.kube.managed_fields import decode, describe, encode
from harness_selftest.widget_crd import GROUP, widget, widget_crd

KUBECTL_APPLY = "kubectl-client-side-apply/v1.31.0 (linux/amd64) kubernetes/abcdef"
API_VERSION = f"{GROUP}/v1"


@pytest.fixture
def ns(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    return kube_namespace


def entries(obj):
    return obj["metadata"].get("managedFields") or []


def entry_of(obj, manager, subresource=None):
    found = [e for e in entries(obj) if e["manager"] == manager and e.get("subresource") == subresource]
    assert len(found) == 1, describe(obj)
    return found[0]


def test_fieldsv1_round_trips_and_marks_maps_that_are_members():
    fields = {"f:spec": {".": {}, "f:size": {}, "f:labels": {".": {}, "f:a": {}}}, "f:metadata": {"f:x": {}}}
    paths = decode(fields)
    assert paths == {
        ("f:spec",),
        ("f:spec", "f:size"),
        ("f:spec", "f:labels"),
        ("f:spec", "f:labels", "f:a"),
        ("f:metadata", "f:x"),
    }
    assert encode(paths) == fields


def test_create_records_the_creator_as_the_apiserver_does(kube, ns):
    body = widget("w1", size=2)
    body["metadata"]["labels"] = {"app": "demo"}
    created = kube.create(body, namespace=ns, user_agent=KUBECTL_APPLY)
    [entry] = entries(created)
    assert entry["manager"] == "kubectl-client-side-apply"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == API_VERSION
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["time"].endswith("Z") and "subresource" not in entry
    # name, namespace, uid... are not tracked; spec.color is the CRD's default, owned by the creator
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {".": {}, "f:color": {}, "f:size": {}},
    }
    assert kube.get("widgets", "w1", ns)["metadata"]["managedFields"] == entries(created)


def test_manager_comes_from_the_user_agent_prefix_or_field_manager(kube, ns):
    created = kube.create(widget("w1"), namespace=ns, user_agent="OpenAPI-Generator/31.0.0/python")
    assert field_manager(created, ("spec", "size")) == "OpenAPI-Generator"
    created = kube.create(widget("w2"), namespace=ns, user_agent="kopf/1.45", fieldManager="mine")
    assert field_manager(created, ("spec", "size")) == "mine"
    with pytest.raises(KubeApiError) as error:
        kube.create(widget("w3"), namespace=ns, fieldManager="x" * 129)
    assert error.value.status == 422


def test_kubectl_style_apply_then_a_patch_by_argocd_moves_the_field(kube, ns):
    kube.create(widget("w1", size=2), namespace=ns, user_agent=KUBECTL_APPLY)
    patched = kube.patch(
        "widgets",
        "w1",
        {"spec": {"size": 3}},
        ns,
        field_manager="argocd-controller",
        user_agent=KUBECTL_APPLY,
    )
    assert field_manager(patched, ("spec", "size")) == "argocd-controller"
    assert field_manager(patched, ("spec", "color")) == "kubectl-client-side-apply"
    assert entry_of(patched, "argocd-controller")["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert entry_of(patched, "kubectl-client-side-apply")["fieldsV1"] == {"f:spec": {".": {}, "f:color": {}}}
    assert [e["manager"] for e in owners(patched, ("spec", "size"))] == ["argocd-controller"]

    # and back: kubectl edit (User-Agent kubectl-edit/...) takes it
    current = kube.get("widgets", "w1", ns)
    current["spec"]["size"] = 4
    edited = kube.replace(current, user_agent="kubectl-edit/v1.31.0 (linux/amd64)")
    assert field_manager(edited, ("spec", "size")) == "kubectl-edit"
    assert "argocd-controller" not in {e["manager"] for e in entries(edited)}  # it owns nothing now


def test_a_write_that_changes_nothing_records_nothing(kube, ns):
    kube.create(widget("w1", size=2), namespace=ns, user_agent=KUBECTL_APPLY)
    same = kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns, field_manager="argocd-controller")
    assert field_manager(same, ("spec", "size")) == "kubectl-client-side-apply"
    assert [e["manager"] for e in entries(same)] == ["kubectl-client-side-apply"]


def test_removing_a_field_takes_it_from_its_owner(kube, ns):
    kube.create(widget("w1", size=2, serial="AB1"), namespace=ns, user_agent=KUBECTL_APPLY)
    patched = kube.patch(
        "widgets",
        "w1",
        [{"op": "remove", "path": "/spec/serial"}],
        ns,
        type="json",
        user_agent="kubectl-patch",
    )
    assert field_manager(patched, ("spec", "serial")) is None
    assert [e["manager"] for e in entries(patched)] == ["kubectl-client-side-apply"]  # removing takes nothing


def test_status_writes_have_their_own_entry(kube, ns):
    kube.create(widget("w1"), namespace=ns, user_agent=KUBECTL_APPLY)
    status = {"conditions": [{"type": "Ready", "status": "True"}]}
    written = kube.patch_status("widgets", "w1", status, ns, user_agent="kopf/1.45.0")
    entry = entry_of(written, "kopf", subresource="status")
    assert entry["subresource"] == "status" and entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:status": {".": {}, "f:conditions": {}}}  # lists are atomic
    # the same manager on the main resource is a separate entry; status there is not its to own
    patched = kube.patch(
        "widgets", "w1", {"spec": {"size": 2}, "status": {"x": 1}}, ns, user_agent="kopf/1.45.0"
    )
    assert entry_of(patched, "kopf")["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert entry_of(patched, "kopf", subresource="status") == entry
    # field_manager on a status path answers the status writer
    assert field_manager(patched, ("status", "conditions")) == "kopf"


def test_managed_fields_are_kept_on_a_put_and_cleared_with_an_empty_entry(kube, ns):
    created = kube.create(widget("w1"), namespace=ns, user_agent=KUBECTL_APPLY)
    body = kube.get("widgets", "w1", ns)
    del body["metadata"]["managedFields"]  # a client unaware of them: they stay
    body["metadata"]["labels"] = {"a": "b"}
    kept = kube.replace(body, field_manager="tool")
    assert entry_of(kept, "kubectl-client-side-apply") == entry_of(created, "kubectl-client-side-apply")
    assert entry_of(kept, "tool")["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
    cleared = kube.patch("widgets", "w1", {"metadata": {"managedFields": [{}]}}, ns)
    assert "managedFields" not in cleared["metadata"]
    with pytest.raises(KubeApiError) as error:
        kube.patch(
            "widgets", "w1", {"metadata": {"managedFields": [{"manager": "x", "operation": "Bad"}]}}, ns
        )
    assert error.value.status == 422


def test_watch_events_carry_managed_fields(kube, ns):
    kube.create(widget("w1"), namespace=ns, user_agent=KUBECTL_APPLY)
    r = kube.resource("widgets")
    response = kube.request("GET", r.path(ns), params={"watch": "true", "timeoutSeconds": "1"})
    [event] = [json.loads(line) for line in response.text.splitlines() if line]
    assert event["object"]["metadata"]["managedFields"][0]["manager"] == "kubectl-client-side-apply"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_apply_and_patch_are_recorded_under_kubectls_managers(kube, ns):
    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **kube.env},
        )

    manifest = widget("w1", ns, size=2)
    applied = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert applied.returncode == 0, applied.stderr
    obj = kube.get("widgets", "w1", ns)
    assert field_manager(obj, ("spec", "size")) == "kubectl-client-side-apply"
    assert owners(obj, ("metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"))
    patched = kubectl("patch", "widget", "w1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":3}}')
    assert patched.returncode == 0, patched.stderr
    assert field_manager(kube.get("widgets", "w1", ns), ("spec", "size")) == "kubectl-patch"
    manifest["spec"]["size"] = 4
    assert kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest)).returncode == 0
    assert field_manager(kube.get("widgets", "w1", ns), ("spec", "size")) == "kubectl-client-side-apply"
