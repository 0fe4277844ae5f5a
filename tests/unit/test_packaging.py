"""Install artefacts stay in step with the generated CRDs and the operator's needs."""

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


# What the chart renders (peering flag and object, Recreate for one replica) is checked on
# Helm's own render in test_helm.py.
