"""pytest fixtures for the Kubernetes API: an emulated apiserver, or a real cluster.

``kube_emulator`` (session) starts one emulator per test process (so one per pytest-xdist
worker) on a free 127.0.0.1 port in under a second, and writes a kubeconfig for it.
``kube`` (function) is the same cluster reset before the test: no objects and no CRDs
except kopf's peering ones, namespaces default/kube-system/kube-public/kube-node-lease,
an empty request log and no injected faults. ``kube_namespace`` (function) is a fresh
namespace, deleted after the test.

When ``E2E_KUBECONFIG`` is set, no emulator starts: the fixtures connect to that cluster
(``kube.emulated`` is False, there is no request log and ``reset()`` is not possible;
tests that need the emulator call ``kube.requests`` and fail with a clear message, or
check ``kube.emulated``).

Usage::

    def test_reconcile(kube, kube_namespace):
        kube.apply_crds_from(REPO / "crds")                     # or kube.apply_crd(crd_dict)
        env = {**os.environ, **kube.env}                        # KUBECONFIG for a subprocess
        kube.create({"apiVersion": "registry.mlops.dev/v1alpha1", "kind": "ModelPackageGroup",
                     "metadata": {"name": "churn"}, "spec": {}}, namespace=kube_namespace)
        obj = kube.wait_for("modelpackagegroups", "churn", namespace=kube_namespace,
                            condition=lambda o: o.get("status", {}).get("arn"))
        kube.patch("mpg", "churn", {"spec": {"modelPackageGroupDescription": "v2"}}, kube_namespace)
        kube.delete("mpg", "churn", namespace=kube_namespace)
        kube.wait_gone("mpg", "churn", namespace=kube_namespace)
        assert ("registry.mlops.dev", "modelpackagegroups/status", "patch") in kube.permissions()
        assert [r.verb for r in kube.requests if r.resource == "events"] == ["create"]
        kube.inject_fault("patch", "modelpackages", subresource="status", code=409, count=2)

Client methods (harness.kube.client.KubeClient): create, get, find (None if absent),
list, replace, patch (type="merge"|"json"|"strategic", subresource=), patch_status,
delete, create_namespace, events_for(obj), apply_crd, apply_crds_from, wait_for,
wait_gone, and raw request/call. Failures raise KubeApiError (.status, .reason,
.message, .causes). Resources are kubectl-style names: plural, kind, short name,
plural.group, or group/version/plural.

Emulator only (harness.kube.cluster.KubeCluster): ``requests`` (RequestRecord: verb as
RBAC names it, group, version, resource, namespace, name, subresource, code),
``permissions()`` ({(apiGroup, resource[/subresource], verb)}), ``clear_requests()``,
``inject_fault(verb, resource, code=, count=, subresource=, name=, namespace=,
retry_after=)``, ``reset()``. ``harness.kube.rbac.missing(kube.permissions(), rules)``
names what a ClusterRole's rules do not grant; ``rbac.rules_for(...)`` writes the rules. ``apply_crd`` goes straight to the emulator (it does not
appear in the request log). What the emulator does and does not do compared to a real
apiserver: see harness.kube.emulator.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Iterator

import pytest

from .cluster import KubeCluster


def open_cluster(workdir: pathlib.Path) -> KubeCluster:
    """The real cluster of E2E_KUBECONFIG if set, else a new emulator with its kubeconfig in `workdir`."""
    real = os.environ.get("E2E_KUBECONFIG")
    if real:
        return KubeCluster.connect(real)
    return KubeCluster.start_emulator(workdir / "kubeconfig")


@pytest.fixture(scope="session")
def kube_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = open_cluster(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kube(kube_emulator: KubeCluster) -> KubeCluster:
    if kube_emulator.emulated:
        kube_emulator.reset()
    return kube_emulator


@pytest.fixture
def kube_namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    yield name
    kube.delete("namespaces", name, missing_ok=True)
