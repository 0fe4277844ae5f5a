"""The emulated apiserver's object semantics, through HTTP as any client sees them."""

from __future__ import annotations

import pytest

from harness.kube import KubeApiError
from harness_selftest.widget_crd import FINALIZER, widget, widget_crd


@pytest.fixture
def ns(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    return kube_namespace


def test_create_stamps_uid_resource_version_generation_and_creation_timestamp(kube, ns):
    created = kube.create(widget("w1", size=2), namespace=ns)
    meta = created["metadata"]
    assert len(meta["uid"]) == 36
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert kube.get("widgets", "w1", ns)["metadata"] == meta


def test_create_ignores_system_metadata_sent_by_the_client(kube, ns):
    body = widget("w1")
    body["metadata"].update(uid="mine", generation=7, creationTimestamp="2000-01-01T00:00:00Z")
    meta = kube.create(body, namespace=ns)["metadata"]
    assert (
        meta["uid"] != "mine" and meta["generation"] == 1 and not meta["creationTimestamp"].startswith("2000")
    )


def test_resource_version_increases_across_all_resources(kube, ns):
    versions = [
        kube.create(widget("a"), namespace=ns)["metadata"]["resourceVersion"],
        kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, namespace=ns)[
            "metadata"
        ]["resourceVersion"],
        kube.patch("widgets", "a", {"metadata": {"labels": {"x": "y"}}}, ns)["metadata"]["resourceVersion"],
        kube.create_namespace("other")["metadata"]["resourceVersion"],
    ]
    numbers = [int(v) for v in versions]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4


def test_generation_changes_only_with_the_spec(kube, ns):
    kube.create(widget("w1", size=2), namespace=ns)
    labelled = kube.patch("widgets", "w1", {"metadata": {"labels": {"team": "a"}}}, ns)
    assert labelled["metadata"]["generation"] == 1
    with_status = kube.patch_status("widgets", "w1", {"phase": "Ready"}, ns)
    assert with_status["metadata"]["generation"] == 1
    resized = kube.patch("widgets", "w1", {"spec": {"size": 3}}, ns)
    assert resized["metadata"]["generation"] == 2


def test_an_update_that_changes_nothing_keeps_the_resource_version(kube, ns):
    created = kube.create(widget("w1", size=2), namespace=ns)
    same = kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_create_of_an_existing_name_is_409_already_exists(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("w1"), namespace=ns)
    assert (caught.value.status, caught.value.reason) == (409, "AlreadyExists")
    assert caught.value.message == 'widgets.selftest.example.com "w1" already exists'


def test_missing_object_is_404_not_found_with_details(kube, ns):
    with pytest.raises(KubeApiError) as caught:
        kube.get("widgets", "nope", ns)
    assert (caught.value.status, caught.value.reason) == (404, "NotFound")
    assert caught.value.body["details"] == {
        "name": "nope",
        "group": "selftest.example.com",
        "kind": "widgets",
    }


def test_stale_resource_version_on_put_is_409_conflict(kube, ns):
    stale = kube.create(widget("w1"), namespace=ns)
    kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns)
    stale["spec"]["size"] = 3
    with pytest.raises(KubeApiError) as caught:
        kube.replace(stale)
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")
    assert "the object has been modified" in caught.value.message


def test_put_with_the_current_resource_version_succeeds(kube, ns):
    current = kube.create(widget("w1"), namespace=ns)
    current["spec"]["size"] = 4
    assert kube.replace(current)["spec"]["size"] == 4


def test_put_of_a_custom_resource_without_a_resource_version_is_422(kube, ns):
    current = kube.create(widget("w1"), namespace=ns)
    del current["metadata"]["resourceVersion"]
    with pytest.raises(KubeApiError) as caught:
        kube.replace(current)
    assert caught.value.status == 422 and caught.value.causes[0]["field"] == "metadata.resourceVersion"


def test_stale_resource_version_in_a_merge_patch_is_409_conflict(kube, ns):
    old = kube.create(widget("w1"), namespace=ns)["metadata"]["resourceVersion"]
    kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns)
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", {"metadata": {"resourceVersion": old}, "spec": {"size": 3}}, ns)
    assert caught.value.status == 409


def test_json_patch_with_a_failing_test_op_is_422_not_500(kube, ns):
    old = kube.create(widget("w1"), namespace=ns)["metadata"]["resourceVersion"]
    kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns)
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": old},
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
    ]
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", ops, ns, type="json")
    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert "finalizers" not in kube.get("widgets", "w1", ns)["metadata"]


def test_json_patch_with_a_passing_test_op_applies(kube, ns):
    current = kube.create(widget("w1"), namespace=ns)["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": current},
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
    ]
    assert kube.patch("widgets", "w1", ops, ns, type="json")["metadata"]["finalizers"] == [FINALIZER]


def test_merge_patch_null_removes_a_field(kube, ns):
    kube.create(widget("w1", serial="AB1"), namespace=ns)
    kube.patch("widgets", "w1", {"metadata": {"annotations": {"a": "1", "b": "2"}}}, ns)
    patched = kube.patch("widgets", "w1", {"metadata": {"annotations": {"a": None}}}, ns)
    assert patched["metadata"]["annotations"] == {"b": "2"}


def test_strategic_merge_patch_is_refused_for_custom_resources_but_merged_for_built_ins(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", {"spec": {"size": 2}}, ns, type="strategic")
    assert caught.value.status == 415
    kube.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}, namespace=ns
    )
    patched = kube.patch("configmaps", "c", {"data": {"b": "2"}}, ns, type="strategic")
    assert patched["data"] == {"a": "1", "b": "2"}


def test_status_is_dropped_on_create_when_the_status_subresource_exists(kube, ns):
    body = widget("w1")
    body["status"] = {"phase": "Forged"}
    assert "status" not in kube.create(body, namespace=ns)


def test_status_writes_change_only_the_status(kube, ns):
    kube.create(widget("w1", size=2), namespace=ns)
    result = kube.patch(
        "widgets",
        "w1",
        {
            "spec": {"size": 9, "color": "red"},
            "metadata": {"labels": {"a": "b"}},
            "status": {"phase": "Ready"},
        },
        ns,
        subresource="status",
    )
    assert result["status"] == {"phase": "Ready"}
    assert result["spec"]["size"] == 2 and "labels" not in result["metadata"]


def test_main_resource_writes_never_change_the_status(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    kube.patch_status("widgets", "w1", {"phase": "Ready"}, ns)
    patched = kube.patch("widgets", "w1", {"status": {"phase": "Forged"}, "spec": {"size": 2}}, ns)
    assert patched["status"] == {"phase": "Ready"} and patched["spec"]["size"] == 2
    current = kube.get("widgets", "w1", ns)
    current["status"] = {"phase": "Forged again"}
    assert kube.replace(current)["status"] == {"phase": "Ready"}


def test_status_put_uses_the_status_subresource(kube, ns):
    current = kube.create(widget("w1"), namespace=ns)
    current["status"] = {"phase": "Ready"}
    current["spec"]["size"] = 5
    result = kube.replace(current, subresource="status")
    assert result["status"] == {"phase": "Ready"} and result["spec"]["size"] == 1


def test_delete_without_finalizers_removes_at_once(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    kube.delete("widgets", "w1", ns)
    assert kube.find("widgets", "w1", ns) is None


def test_delete_with_a_finalizer_marks_then_removing_the_last_finalizer_removes(kube, ns):
    body = widget("w1")
    body["metadata"]["finalizers"] = [FINALIZER, "other/finalizer"]
    created = kube.create(body, namespace=ns)
    response = kube.request("DELETE", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets/w1")
    assert response.status_code == 202
    marked = kube.get("widgets", "w1", ns)["metadata"]
    assert marked["deletionTimestamp"] and marked["deletionGracePeriodSeconds"] == 0
    assert marked["generation"] == created["metadata"]["generation"] + 1  # as the apiserver does
    kube.patch("widgets", "w1", {"metadata": {"finalizers": ["other/finalizer"]}}, ns)
    assert kube.find("widgets", "w1", ns) is not None
    kube.patch("widgets", "w1", {"metadata": {"finalizers": None}}, ns)
    assert kube.find("widgets", "w1", ns) is None


def test_no_new_finalizers_while_deleting(kube, ns):
    body = widget("w1")
    body["metadata"]["finalizers"] = [FINALIZER]
    kube.create(body, namespace=ns)
    kube.delete("widgets", "w1", ns)
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", {"metadata": {"finalizers": [FINALIZER, "late/finalizer"]}}, ns)
    assert caught.value.status == 422
    assert caught.value.causes[0]["field"] == "metadata.finalizers"


def test_delete_precondition_on_uid_is_409(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    response = kube.request(
        "DELETE",
        f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets/w1",
        json={"preconditions": {"uid": "not-the-uid"}},
    )
    assert response.status_code == 409
    assert kube.find("widgets", "w1", ns) is not None


def test_dry_run_create_stores_nothing(kube, ns):
    kube.create(widget("w1"), namespace=ns, dryRun="All")
    assert kube.find("widgets", "w1", ns) is None


def test_list_carries_kind_api_version_and_resource_version(kube, ns):
    kube.create(widget("b"), namespace=ns)
    last = kube.create(widget("a"), namespace=ns)["metadata"]["resourceVersion"]
    listing = kube.call("GET", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets")
    assert (listing["kind"], listing["apiVersion"]) == ("WidgetList", "selftest.example.com/v1")
    assert listing["metadata"]["resourceVersion"] == last
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a", "b"]
    assert all(item["kind"] == "Widget" for item in listing["items"])


def test_list_with_label_selector_and_namespace_scope(kube, ns):
    kube.create_namespace("elsewhere")
    for name, team in (("a", "x"), ("b", "y")):
        body = widget(name)
        body["metadata"]["labels"] = {"team": team}
        kube.create(body, namespace=ns)
    kube.create(widget("c"), namespace="elsewhere")
    assert [o["metadata"]["name"] for o in kube.list("widgets", ns, labelSelector="team=x")] == ["a"]
    assert [
        o["metadata"]["name"] for o in kube.list("widgets", ns, labelSelector="team in (x,y),team!=y")
    ] == ["a"]
    assert sorted(o["metadata"]["name"] for o in kube.list("widgets", all_namespaces=True)) == ["a", "b", "c"]


def test_list_pages_with_limit_and_continue(kube, ns):
    for name in "abc":
        kube.create(widget(name), namespace=ns)
    path = f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets"
    first = kube.call("GET", path, params={"limit": 2})
    rest = kube.call("GET", path, params={"limit": 2, "continue": first["metadata"]["continue"]})
    assert [o["metadata"]["name"] for o in first["items"] + rest["items"]] == ["a", "b", "c"]
    assert "continue" not in rest["metadata"]


def test_namespaces_can_be_listed_read_and_created(kube):
    kube.create_namespace("team-a")
    names = [ns["metadata"]["name"] for ns in kube.list("namespaces")]
    assert {"default", "kube-system", "team-a"} <= set(names)
    assert kube.get("namespaces", "team-a")["status"] == {"phase": "Active"}
    assert kube.call("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"


def test_creating_in_a_missing_namespace_is_404(kube):
    kube.apply_crd(widget_crd())
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("w1"), namespace="missing")
    assert caught.value.status == 404 and 'namespaces "missing" not found' in caught.value.message


def test_deleting_a_namespace_deletes_its_objects_and_waits_for_finalizers(kube, ns):
    held = widget("held")
    held["metadata"]["finalizers"] = [FINALIZER]
    kube.create(held, namespace=ns)
    kube.create(widget("free"), namespace=ns)
    kube.delete("namespaces", ns)
    assert kube.get("namespaces", ns)["status"]["phase"] == "Terminating"
    assert kube.find("widgets", "free", ns) is None
    assert kube.get("widgets", "held", ns)["metadata"]["deletionTimestamp"]
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("late"), namespace=ns)
    assert caught.value.status == 403
    kube.patch("widgets", "held", {"metadata": {"finalizers": None}}, ns)
    assert kube.find("namespaces", ns) is None


def test_invalid_object_name_is_422(kube, ns):
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("Not_Valid"), namespace=ns)
    assert caught.value.status == 422 and caught.value.causes[0]["field"] == "metadata.name"


def test_generate_name_makes_a_unique_name(kube, ns):
    """kube-apiserver's SimpleNameGenerator: the prefix (cut to 58 characters) and 5 characters
    of its alphabet of consonants and digits."""
    import re

    body = widget("")
    body["metadata"] = {"generateName": "w-"}
    names = {kube.create(body, namespace=ns)["metadata"]["name"] for _ in range(3)}
    suffix = "[bcdfghjklmnpqrstvwxz2456789]{5}"  # kube-apiserver's alphabet for generated names
    assert len(names) == 3 and all(re.fullmatch(f"w-{suffix}", n) for n in names)
    body["metadata"] = {"generateName": "y" * 70}  # y: not in the alphabet, so the cut shows
    assert re.fullmatch(f"y{{58}}{suffix}", kube.create(body, namespace=ns)["metadata"]["name"])


def test_a_generated_name_that_exists_is_generated_again(kube, ns, monkeypatch):
    """As kube-apiserver since RetryGenerateName (GA in 1.32): a create with generateName is not
    refused because the name drawn exists (kopf posts every Event with one: a thousand Events
    drew a taken name in a 16^5 space, and each was lost with a 409); only after 8 draws."""
    from harness.kube import emulator

    if not kube.emulated:
        pytest.skip("the draws of a real API server cannot be chosen")
    draws = iter(["bbbbb", "bbbbb", "ccccc"] + ["ddddd"] * (1 + 8))
    monkeypatch.setattr(emulator, "generated_suffix", lambda: next(draws))
    body = widget("")
    body["metadata"] = {"generateName": "w-"}
    assert kube.create(body, namespace=ns)["metadata"]["name"] == "w-bbbbb"
    assert kube.create(body, namespace=ns)["metadata"]["name"] == "w-ccccc"  # bbbbb taken: drawn again
    assert kube.create(body, namespace=ns)["metadata"]["name"] == "w-ddddd"
    with pytest.raises(KubeApiError) as caught:  # eight draws of taken names
        kube.create(body, namespace=ns)
    assert caught.value.status == 409


def test_events_leases_and_kopf_peerings_are_accepted(kube, ns):
    core_event = {
        "metadata": {"generateName": "e-"},
        "reason": "Test",
        "message": "hello",
        "type": "Normal",
        "involvedObject": {"kind": "Widget", "name": "w1", "namespace": ns},
    }
    created = kube.call(
        "POST", f"/api/v1/namespaces/{ns}/events", json=core_event
    )  # no apiVersion/kind: as kopf
    assert created["kind"] == "Event"
    kube.create(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e2"},
            "reason": "Test",
            "note": "hello",
            "type": "Normal",
            "action": "Test",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "t",
            "reportingInstance": "t",
        },
        namespace=ns,
    )
    kube.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "leader"},
            "spec": {"holderIdentity": "me"},
        },
        namespace=ns,
    )
    kube.create({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "default"}})
    kube.create(
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}}, namespace=ns
    )
    assert kube.get("leases", "leader", ns)["spec"]["holderIdentity"] == "me"
    assert kube.get("clusterkopfpeerings", "default")["metadata"]["uid"]
    assert kube.get("kopfpeerings", "default", ns)["metadata"]["uid"]
    assert len(kube.list("events.k8s.io/v1/events", ns)) == 1


def test_events_are_selected_by_involved_object_as_kubectl_describe_does(kube, ns):
    target = kube.create(widget("w1"), namespace=ns)
    for name, uid in (("mine", target["metadata"]["uid"]), ("other", "another-uid")):
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name},
                "type": "Warning",
                "reason": "Stalled",
                "message": "m",
                "involvedObject": {"kind": "Widget", "name": "w1", "namespace": ns, "uid": uid},
            },
            namespace=ns,
        )
    assert [e["metadata"]["name"] for e in kube.events_for(target)] == ["mine"]
    selected = kube.list(
        "v1/events",
        ns,
        fieldSelector=f"involvedObject.name=w1,involvedObject.namespace={ns},"
        "involvedObject.kind=Widget,type=Warning",
    )
    assert [e["metadata"]["name"] for e in selected] == ["mine", "other"]
    with pytest.raises(KubeApiError) as caught:
        kube.list("widgets", ns, fieldSelector="spec.size=1")
    assert caught.value.status == 400 and "field label not supported: spec.size" in caught.value.message
