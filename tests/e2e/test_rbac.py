"""The shipped RBAC grants every request the real operator makes, derived from the emulator's
request log over a full lifecycle of each kind (create, approve, reference, delete)."""

import pathlib

import pytest
import yaml

from conftest import ROLE, package_spec, resource, wait_ready
from harness.kube.rbac import missing

pytestmark = pytest.mark.e2e
REPO = pathlib.Path(__file__).resolve().parents[2]


def clusterrole_rules(path: pathlib.Path) -> list[dict]:
    docs = yaml.safe_load_all(path.read_text())
    return next(d for d in docs if d and d["kind"] == "ClusterRole")["rules"]


def helm_clusterrole_rules(path: pathlib.Path) -> list[dict]:
    """The chart's ClusterRole rules: plain YAML between `rules:` and the next document."""
    text = path.read_text()
    block = text.split("kind: ClusterRole\n", 1)[1].split("rules:\n", 1)[1].split("---", 1)[0]
    assert "{{" not in block, "the chart's rules became templated: render them with helm here instead"
    return yaml.safe_load(block)


def test_install_manifest_rbac_covers_every_request_the_operator_makes(kube, kube_namespace, operator):
    if not hasattr(kube, "permissions"):
        pytest.fail(
            "this test derives RBAC from the emulator's request log; it cannot run against a real cluster"
        )
    ns = kube_namespace
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn", modelApprovalStatus="Approved")),
        namespace=ns,
    )
    kube.create(
        resource(
            "Model",
            "churn",
            {"executionRoleArn": ROLE, "primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}},
        ),
        namespace=ns,
    )
    wait_ready(kube, "mdl", "churn", ns, operator)
    for plural, name in (("mdl", "churn"), ("mp", "churn-v1"), ("mpg", "churn")):
        kube.delete(plural, name, namespace=ns)
        kube.wait_gone(plural, name, namespace=ns, timeout=30)

    used = kube.permissions(user_agent_prefix="kopf/")  # the operator's requests, not this test's
    assert ("registry.mlops.dev", "modelpackages/status", "patch") in used  # the filter kept the operator
    manifest = REPO / "manifests" / "install" / "operator.yaml"
    assert not missing(used, clusterrole_rules(manifest)), (
        f"{manifest.name} does not grant what the operator uses"
    )
    chart = REPO / "helm" / "model-registry-operator" / "templates" / "rbac.yaml"
    assert not missing(used, helm_clusterrole_rules(chart)), (
        "the Helm chart does not grant what the operator uses"
    )
