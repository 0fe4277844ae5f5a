"""coordination.k8s.io/v1 Lease in the emulated apiserver, as the sharded operator uses it: namespaced,
listed by label, replaced with optimistic concurrency (a stale resourceVersion is 409 Conflict, a
second create 409 AlreadyExists), and its spec decoded and validated as kube-apiserver does."""

from __future__ import annotations

import json

import pytest

from harness.kube import KubeApiError


def lease(name: str, holder: str | None = "replica-a", **spec) -> dict:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "labels": {"registry.mlops.dev/shard-set": "mro"}},
        "spec": {"leaseDurationSeconds": 15, "renewTime": "2024-05-01T10:00:00.123456Z"},
    }
    if holder is not None:
        body["spec"]["holderIdentity"] = holder
    body["spec"].update(spec)
    return body


def test_a_lease_is_namespaced_and_listed_by_its_label(kube, kube_namespace):
    ns = kube_namespace
    created = kube.create(lease("mro-shard-0"), namespace=ns)
    assert created["metadata"]["namespace"] == ns and int(created["metadata"]["resourceVersion"]) > 0
    kube.create(lease("mro-shard-1", holder=None), namespace=ns)
    kube.create({**lease("other"), "metadata": {"name": "other"}}, namespace=ns)
    kube.create_namespace(f"{ns}-b")
    kube.create(lease("mro-shard-0"), namespace=f"{ns}-b")  # the same name in another namespace

    listed = kube.list("leases", ns, labelSelector="registry.mlops.dev/shard-set=mro")
    assert sorted(item["metadata"]["name"] for item in listed) == ["mro-shard-0", "mro-shard-1"]
    got = kube.get("leases", "mro-shard-0", ns)
    assert got["spec"] == created["spec"] and got["kind"] == "Lease"
    assert ("coordination.k8s.io", "leases", "list") in kube.permissions()


def test_a_replace_with_a_stale_resource_version_is_a_conflict(kube, kube_namespace):
    ns = kube_namespace
    first = kube.create(lease("mro-shard-0"), namespace=ns)
    renewed = dict(first, spec={**first["spec"], "renewTime": "2024-05-01T10:00:05.000000Z"})
    second = kube.replace(renewed)
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    # another replica wrote in between: the one that read `first` loses
    taken = dict(first, spec={**first["spec"], "holderIdentity": "replica-b"})
    with pytest.raises(KubeApiError) as refused:
        kube.replace(taken)
    assert (refused.value.status, refused.value.reason) == (409, "Conflict")
    assert kube.get("leases", "mro-shard-0", ns)["spec"]["holderIdentity"] == "replica-a"

    # with the current version, it goes through
    current = kube.get("leases", "mro-shard-0", ns)
    current["spec"]["holderIdentity"] = "replica-b"
    assert kube.replace(current)["spec"]["holderIdentity"] == "replica-b"


def test_creating_a_lease_that_exists_is_already_exists(kube, kube_namespace):
    kube.create(lease("mro-shard-0"), namespace=kube_namespace)
    with pytest.raises(KubeApiError) as refused:
        kube.create(lease("mro-shard-0", holder="replica-b"), namespace=kube_namespace)
    assert (refused.value.status, refused.value.reason) == (409, "AlreadyExists")


def test_a_released_lease_keeps_no_holder(kube, kube_namespace):
    held = kube.create(lease("mro-shard-0"), namespace=kube_namespace)
    del held["spec"]["holderIdentity"]
    released = kube.replace(held)
    assert "holderIdentity" not in released["spec"]


@pytest.mark.parametrize(
    "spec, code, says",
    [
        (
            {"leaseDurationSeconds": 0},
            422,
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        ),
        ({"leaseTransitions": -1}, 422, "must be greater than or equal to 0"),
        ({"leaseDurationSeconds": "15"}, 400, "cannot be handled as a Lease"),
        ({"holderIdentity": 7}, 400, "LeaseSpec.spec.holderIdentity"),
        ({"renewTime": "yesterday"}, 400, 'parsing time "yesterday"'),
        ({"acquireTime": "2024-13-01T10:00:00.000000Z"}, 400, "spec.acquireTime"),
    ],
)
def test_the_spec_is_checked_as_the_apiserver_does(kube, kube_namespace, spec, code, says):
    with pytest.raises(KubeApiError) as refused:
        kube.create(lease("mro-shard-0", **spec), namespace=kube_namespace)
    assert refused.value.status == code and says in refused.value.message
    # also on an update
    good = kube.create(lease("mro-shard-1"), namespace=kube_namespace)
    with pytest.raises(KubeApiError) as again:
        kube.replace(dict(good, spec={**good["spec"], **spec}))
    assert again.value.status == code


def test_the_kubernetes_client_sees_the_conflicts(kube, kube_namespace):
    """What the operator's lease thread uses: CoordinationV1Api, raw JSON, ApiException 409."""
    kubernetes = pytest.importorskip("kubernetes")
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kube.env["KUBECONFIG"], client_configuration=config)
    api = kubernetes.client.CoordinationV1Api(kubernetes.client.ApiClient(config))
    ns = kube_namespace

    created = json.loads(api.create_namespaced_lease(ns, lease("mro-shard-0"), _preload_content=False).data)
    stale = json.loads(json.dumps(created))
    created["spec"]["renewTime"] = "2024-05-01T10:00:10.000000Z"
    api.replace_namespaced_lease("mro-shard-0", ns, created, _preload_content=False)
    stale["spec"]["holderIdentity"] = "replica-b"
    with pytest.raises(kubernetes.client.ApiException) as refused:
        api.replace_namespaced_lease("mro-shard-0", ns, stale, _preload_content=False)
    assert refused.value.status == 409
    listed = json.loads(
        api.list_namespaced_lease(
            ns, label_selector="registry.mlops.dev/shard-set=mro", _preload_content=False
        ).data
    )
    assert [item["spec"]["holderIdentity"] for item in listed["items"]] == ["replica-a"]
