"""Install artefacts stay in step with the generated CRDs and the operator's needs."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from model_registry_operator.api import KINDS
from model_registry_operator.api.crdgen import render_all

ROOT = Path(__file__).resolve().parents[2]


def test_helm_chart_ships_the_current_crds():
    chart_crds = ROOT / "helm" / "model-registry-operator" / "crds"
    for name, text in render_all().items():
        path = chart_crds / name
        assert path.exists() and path.read_text() == text, f"{path} is stale: run `make crds`"


def test_install_manifest_grants_every_kind_and_its_status():
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "install" / "operator.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    for kind in KINDS.values():
        for verb in ("get", "list", "watch", "patch"):
            assert ("registry.mlops.dev", kind.plural, verb) in granted
        assert ("registry.mlops.dev", f"{kind.plural}/status", "patch") in granted
    assert ("", "events", "create") in granted


# -- kopf peering (several replicas) --------------------------------------------------------

PEERING_MANIFEST = ROOT / "manifests" / "install" / "peering.yaml"
CHART = ROOT / "helm" / "model-registry-operator"


def peering_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kopf_peering_resource(crd: dict) -> Any:
    import kopf

    spec = crd["spec"]
    (version,) = [v["name"] for v in spec["versions"] if v.get("served") and v.get("storage")]
    return kopf.Resource(
        group=spec["group"],
        version=version,
        plural=spec["names"]["plural"],
        kind=spec["names"]["kind"],
        namespaced=spec["scope"] == "Namespaced",
    )


@pytest.mark.parametrize("clusterwide", [True, False], ids=["all-namespaces", "namespaced"])
def test_peering_manifest_serves_the_resource_kopf_looks_for(clusterwide):
    import kopf
    from kopf._core.engines.peering import guess_selectors  # not re-exported by kopf

    settings = kopf.OperatorSettings()
    settings.peering.clusterwide = clusterwide
    crds = [d for d in peering_documents(PEERING_MANIFEST) if d["kind"] == "CustomResourceDefinition"]
    assert all(d["apiVersion"] == "apiextensions.k8s.io/v1" for d in crds)
    # kopf's selectors for this mode: kopf.dev first, the legacy zalando.org group second
    preferred = next(iter(guess_selectors(settings)))
    assert preferred.group == "kopf.dev"
    (crd,) = [crd for crd in crds if preferred.check(kopf_peering_resource(crd))]
    assert crd["metadata"]["name"] == f"{preferred.any_name}.{preferred.group}"
    assert kopf_peering_resource(crd).namespaced is not clusterwide
    # kopf keeps each replica's keep-alive under status: a schema pruning it would lose them
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    status = schema.get("properties", {}).get("status", {})
    assert "status" not in version.get("subresources", {})  # kopf patches the object itself
    assert schema.get("x-kubernetes-preserve-unknown-fields") or status.get(
        "x-kubernetes-preserve-unknown-fields"
    )


def test_peering_manifest_creates_the_cluster_peering_object():
    (peering,) = [d for d in peering_documents(PEERING_MANIFEST) if d["kind"] == "ClusterKopfPeering"]
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "model-registry-operator"
    assert (
        f"--peering={peering['metadata']['name']}" in PEERING_MANIFEST.read_text()
    )  # the instructions agree


def test_helm_chart_ships_the_same_peering_crds():
    manifest_crds = [
        d for d in peering_documents(PEERING_MANIFEST) if d["kind"] == "CustomResourceDefinition"
    ]
    assert peering_documents(CHART / "crds" / "kopf-peering.yaml") == manifest_crds


def test_helm_peering_object_is_named_as_the_deployments_peering_flag():
    # No helm binary here: compare the template expressions themselves.
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    peering = (CHART / "templates" / "peering.yaml").read_text()
    (flag_name,) = re.findall(r"--peering=(\{\{.*?\}\})", deployment)
    names = [n.replace("$.", ".") for n in re.findall(r"^  name: (\{\{.*?\}\})$", peering, re.MULTILINE)]
    assert names and set(names) == {flag_name}
    assert {"kind: ClusterKopfPeering", "kind: KopfPeering"} <= set(peering.splitlines())
    # the object exists exactly when the flag is passed
    guard = "{{- if gt (int .Values.replicas) 1 }}"
    assert guard in deployment and peering.count(guard) == 1
    assert re.search(r"if gt \(int \.Values\.replicas\) 1 \}\}\s*- --peering=", deployment)


def test_a_single_helm_replica_is_replaced_not_rolled():
    # without peering (one replica), a rolling update would run two operators at once; the
    # install manifest recreates, and so must the chart whenever it passes no --peering
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(
        r"\{\{- if le \(int \.Values\.replicas\) 1 \}\}\s*(#.*\n\s*)?strategy: \{type: Recreate\}", deployment
    )
    assert "strategy: {type: Recreate}" in (ROOT / "manifests" / "install" / "operator.yaml").read_text()
