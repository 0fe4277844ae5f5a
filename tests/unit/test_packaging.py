"""Install artefacts stay in step with the generated CRDs and the operator's needs."""
from pathlib import Path

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
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    for kind in KINDS.values():
        for verb in ("get", "list", "watch", "patch"):
            assert ("registry.mlops.dev", kind.plural, verb) in granted
        assert ("registry.mlops.dev", f"{kind.plural}/status", "patch") in granted
    assert ("", "events", "create") in granted
