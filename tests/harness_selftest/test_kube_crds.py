"""CRDs: registration in discovery, install-time checks, and admission of custom resources."""

from __future__ import annotations

import copy
import datetime

import pytest

from harness.kube import KubeApiError
from harness.kube.tables import human_age
from harness_selftest.widget_crd import widget, widget_crd

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@pytest.fixture
def ns(kube, kube_namespace):
    kube.apply_crd(widget_crd())
    return kube_namespace


def test_posting_a_crd_registers_it_in_discovery(kube):
    assert "selftest.example.com" not in [g["name"] for g in kube.call("GET", "/apis")["groups"]]
    created = kube.call("POST", CRDS, json=widget_crd())
    assert {c["type"]: c["status"] for c in created["status"]["conditions"]}["Established"] == "True"

    group = next(g for g in kube.call("GET", "/apis")["groups"] if g["name"] == "selftest.example.com")
    assert group["preferredVersion"] == {"groupVersion": "selftest.example.com/v1", "version": "v1"}
    assert kube.call("GET", "/apis/selftest.example.com")["versions"][0]["version"] == "v1"
    listing = kube.call("GET", "/apis/selftest.example.com/v1")
    by_name = {r["name"]: r for r in listing["resources"]}
    assert by_name["widgets"]["kind"] == "Widget"
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["widgets"]["shortNames"] == ["wdg"]
    assert {"create", "get", "list", "watch", "patch", "update", "delete"} <= set(by_name["widgets"]["verbs"])
    assert set(by_name["widgets/status"]["verbs"]) == {"get", "patch", "update"}
    assert kube.resource("wdg").plural == "widgets"


def test_deleting_a_crd_removes_its_resources_and_objects(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    kube.delete("customresourcedefinitions", "widgets.selftest.example.com")
    assert kube.request("GET", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets").status_code == 404
    assert kube.request("GET", "/apis/selftest.example.com/v1").status_code == 404


def test_a_crd_with_a_look_behind_pattern_is_refused_at_install(kube):
    crd = widget_crd()
    serial = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "serial"
    ]
    serial["pattern"] = "^[a-z]+(?<!-)$"
    with pytest.raises(KubeApiError) as caught:
        kube.call("POST", CRDS, json=crd)
    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert caught.value.causes[0]["field"] == (
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[serial].pattern"
    )
    assert "invalid or unsupported Perl syntax" in caught.value.causes[0]["message"]


def test_a_crd_with_unicode_classes_in_a_pattern_is_accepted_as_re2_does(kube, kube_namespace):
    crd = widget_crd()
    serial = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "serial"
    ]
    serial["pattern"] = r"^[\p{L}\p{N}]+$"  # botocore's patterns use these; Python's re does not know them
    kube.apply_crd(crd)
    assert kube.create(widget("w1", serial="ÄB1"), namespace=kube_namespace)["spec"]["serial"] == "ÄB1"


def test_a_crd_whose_name_does_not_match_its_names_is_refused(kube):
    crd = widget_crd()
    crd["metadata"]["name"] = "gadgets.selftest.example.com"
    with pytest.raises(KubeApiError) as caught:
        kube.apply_crd(crd)
    assert caught.value.status == 422 and caught.value.causes[0]["field"] == "metadata.name"


def test_applying_a_changed_crd_replaces_it(kube):
    kube.apply_crd(widget_crd())
    changed = widget_crd()
    changed["spec"]["names"]["shortNames"] = ["wd2"]
    kube.apply_crd(changed)
    assert kube.resource("wd2").kind == "Widget"
    assert kube.get("crd", "widgets.selftest.example.com")["metadata"]["generation"] == 2


def test_schema_violations_are_422_invalid_with_field_causes(kube, ns):
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("w1", size=11, color="green"), namespace=ns)
    error = caught.value
    assert (error.status, error.reason) == (422, "Invalid")
    fields = {cause["field"]: cause for cause in error.causes}
    assert set(fields) >= {"spec.size", "spec.color"}
    assert fields["spec.color"]["reason"] == "FieldValueNotSupported"
    assert error.message.startswith('Widget.selftest.example.com "w1" is invalid: ')
    assert error.body["details"]["kind"] == "Widget"
    assert kube.find("widgets", "w1", ns) is None


def test_required_field_missing_is_422(kube, ns):
    body = widget("w1")
    del body["spec"]["size"]
    with pytest.raises(KubeApiError) as caught:
        kube.create(body, namespace=ns)
    assert caught.value.causes[0]["reason"] == "FieldValueRequired"
    assert caught.value.causes[0]["field"] == "spec.size"


def test_cel_rule_violation_is_422_with_the_rule_message(kube, ns):
    with pytest.raises(KubeApiError) as caught:
        kube.create(widget("w1", size=7, color="blue"), namespace=ns)
    assert caught.value.status == 422
    assert any("a widget larger than 5 must be red" in c["message"] for c in caught.value.causes)
    assert kube.create(widget("w2", size=7, color="red"), namespace=ns)["spec"]["size"] == 7


def test_cel_transition_rule_checks_updates_against_the_old_object(kube, ns):
    kube.create(widget("w1", serial="AB1"), namespace=ns)
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", {"spec": {"serial": "AB2"}}, ns)
    assert caught.value.status == 422
    assert any("serial is immutable" in c["message"] for c in caught.value.causes)
    assert kube.get("widgets", "w1", ns)["spec"]["serial"] == "AB1"


def test_updates_are_validated_too(kube, ns):
    kube.create(widget("w1"), namespace=ns)
    with pytest.raises(KubeApiError) as caught:
        kube.patch("widgets", "w1", {"spec": {"size": 0}}, ns)
    assert caught.value.status == 422 and caught.value.causes[0]["field"] == "spec.size"


def test_defaults_are_applied_and_unknown_fields_pruned_with_a_warning(kube, ns):
    body = widget("w1")
    body["spec"]["unknown"] = "dropped"
    response = kube.request("POST", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets", json=body)
    assert response.status_code == 201
    assert response.json()["spec"] == {"size": 1, "color": "blue"}
    assert 'unknown field \\"spec.unknown\\"' in response.headers["Warning"]


def test_strict_field_validation_refuses_unknown_fields(kube, ns):
    body = widget("w1")
    body["spec"]["unknown"] = "dropped"
    with pytest.raises(KubeApiError) as caught:
        kube.create(body, namespace=ns, fieldValidation="Strict")
    assert caught.value.status == 400 and 'unknown field "spec.unknown"' in caught.value.message


def test_defaults_apply_before_validation_so_a_defaulted_value_counts(kube, ns):
    # size 7 needs color red; the default color (blue) is applied first, so this is refused.
    with pytest.raises(KubeApiError):
        kube.create(widget("w1", size=7), namespace=ns)


def test_custom_resources_must_state_their_kind(kube, ns):
    body = copy.deepcopy(widget("w1"))
    del body["kind"]
    response = kube.request("POST", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets", json=body)
    assert response.status_code == 400 and "Kind" in response.json()["message"]


def test_openapi_v3_tells_kubectl_that_fields_are_validated_server_side(kube):
    kube.apply_crd(widget_crd())
    root = kube.call("GET", "/openapi/v3")
    document = kube.call("GET", root["paths"]["apis/selftest.example.com/v1"]["serverRelativeURL"])
    patch = document["paths"]["/apis/selftest.example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "selftest.example.com",
        "version": "v1",
        "kind": "Widget",
    }
    assert {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}} in patch["parameters"]


def test_kubectl_get_tables_show_the_additional_printer_columns(kube, ns):
    kube.create(widget("w1", size=4), namespace=ns)
    kube.patch_status("widgets", "w1", {"conditions": [{"type": "Ready", "status": "True"}]}, ns)
    kube.create(widget("w2", size=2), namespace=ns)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = kube.call(
        "GET", f"/apis/selftest.example.com/v1/namespaces/{ns}/widgets", headers={"Accept": accept}
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    assert [row["cells"][:3] for row in table["rows"]] == [["w1", 4, "True"], ["w2", 2, None]]
    assert table["rows"][0]["cells"][3].endswith("s")  # an age such as "0s"
    assert table["rows"][0]["object"]["metadata"]["namespace"] == ns


def test_ages_read_as_kubectl_shows_them():
    now = datetime.datetime(2026, 1, 10, tzinfo=datetime.UTC)
    ages = {
        seconds: human_age((now - datetime.timedelta(seconds=seconds)).isoformat(), now)
        for seconds in (5, 150, 3600, 5 * 3600 + 60, 3 * 86400 + 3600, 30 * 86400)
    }
    assert ages == {
        5: "5s",
        150: "2m30s",
        3600: "60m",
        5 * 3600 + 60: "5h1m",
        3 * 86400 + 3600: "3d1h",
        30 * 86400: "30d",
    }
