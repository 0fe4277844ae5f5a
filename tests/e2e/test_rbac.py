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
    # namespaces are watched: their annotations say which AWS account their objects are in
    assert {("", "namespaces", "list"), ("", "namespaces", "watch")} <= used
    manifest = REPO / "manifests" / "install" / "operator.yaml"
    assert not missing(used, clusterrole_rules(manifest)), (
        f"{manifest.name} does not grant what the operator uses"
    )
    chart = REPO / "helm" / "model-registry-operator" / "templates" / "rbac.yaml"
    assert not missing(used, helm_clusterrole_rules(chart)), (
        "the Helm chart does not grant what the operator uses"
    )


def role_rules(text: str) -> list[dict]:
    """The rules of the namespaced Role (the Leases of sharding), plain YAML in either file."""
    block = text.split("kind: Role\n", 1)[1].split("rules:\n", 1)[1].split("---", 1)[0]
    assert "{{" not in block, "the chart's Role rules became templated: render them with helm here instead"
    return yaml.safe_load(block)


def test_sharded_replicas_requests_are_granted_leases_by_the_role(
    kube, kube_namespace, operator_env, tmp_path
):
    """A sharded replica (MRO_SHARDS) also lists, creates and updates Leases in its own namespace
    (the Role), and its own client patches status and reads objects (the ClusterRole)."""
    from conftest import OperatorProcess

    if not hasattr(kube, "permissions"):
        pytest.fail(
            "this test derives RBAC from the emulator's request log; it cannot run against a real cluster"
        )
    ns = kube_namespace
    env = {**operator_env, "MRO_SHARDS": "2", "MRO_SHARD_LEASE_NAMESPACE": ns, "POD_NAME": "replica-a"}
    process = OperatorProcess(env, tmp_path / "sharded.log", ["-A"]).start()
    try:
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
        kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
        wait_ready(kube, "mp", "churn-v1", ns, process)
        for plural, name in (("mp", "churn-v1"), ("mpg", "churn")):
            kube.delete(plural, name, namespace=ns)
            kube.wait_gone(plural, name, namespace=ns, timeout=30)
    finally:
        process.stop()
    leases = {r.namespace for r in kube.requests if r.resource == "leases"}
    assert leases == {ns}, "the Leases are in the operator's namespace only"
    own = kube.permissions(user_agent_prefix="model-registry-operator/")
    used = own | kube.permissions(user_agent_prefix="kopf/")
    lease_use = {p for p in used if p[0] == "coordination.k8s.io"}
    assert {("coordination.k8s.io", "leases", v) for v in ("list", "create", "update")} <= lease_use
    manifest = (REPO / "manifests" / "install" / "operator.yaml").read_text()
    chart = (REPO / "helm" / "model-registry-operator" / "templates" / "rbac.yaml").read_text()
    for name, text in (("operator.yaml", manifest), ("the Helm chart", chart)):
        assert not missing(lease_use, role_rules(text)), f"{name}'s Role does not grant the Leases' use"
    assert not missing(used - lease_use, clusterrole_rules(REPO / "manifests" / "install" / "operator.yaml"))
    assert not missing(
        used - lease_use,
        helm_clusterrole_rules(REPO / "helm" / "model-registry-operator" / "templates" / "rbac.yaml"),
    )
