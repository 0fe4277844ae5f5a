"""The committed CRDs: generated from the types (not stale), structural, installable by an
apiserver (RE2 patterns), with the presentation users rely on (names, columns, status)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml

from harness import crd_validation
from model_registry_operator import GROUP, VERSION
from model_registry_operator.api import KINDS
from model_registry_operator.api.crdgen import main, render_all
from model_registry_operator.api.modelpackage import IMMUTABLE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"

# Perl syntax Go's RE2 refuses: look-ahead/behind, back-references, atomic groups, possessive quantifiers.
NON_RE2 = re.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\\k<|\\g\{|(?:[*+?]|\{\d+(?:,\d*)?\})\+")


def non_re2(pattern: str) -> str | None:
    found = NON_RE2.search(re.sub(r"\\\\", "", pattern))
    return found.group(0) if found else None


@cache
def load(kind: str) -> dict[str, Any]:  # read-only in these tests
    return yaml.load(
        (CRD_DIR / f"{KINDS[kind].plural}.yaml").read_text(),
        Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader),
    )


def schema_of(kind: str) -> dict[str, Any]:
    return load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def test_committed_crds_are_generated_from_the_types() -> None:
    for name, text in render_all().items():
        committed = CRD_DIR / name
        assert committed.exists(), f"crds/{name} is missing: run `make crds`"
        assert committed.read_text() == text, f"crds/{name} is stale: run `make crds`"
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(render_all())


def test_generator_writes_the_files(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == render_all()
    assert main([]) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_names_and_version(kind: str) -> None:
    crd = load(kind)
    info = KINDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{info.plural}.{GROUP}"
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert names["kind"] == kind and names["plural"] == info.plural
    assert names["shortNames"] == list(info.short_names)
    assert "mlops" in names["categories"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_short_names() -> None:
    assert [load(kind)["spec"]["names"]["shortNames"] for kind in KINDS] == [["mpg"], ["mp"], ["mdl"]]


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns(kind: str) -> None:
    columns = {c["name"]: c for c in load(kind)["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    assert columns["ARN"]["jsonPath"] == ".status.arn"
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert "priority" not in columns["Reason"]  # a stalled object's reason without -o wide
    if kind == "ModelPackage":
        assert columns["Version"]["jsonPath"] == ".status.modelPackageVersion"
        assert columns["Approval"]["jsonPath"] == ".status.modelApprovalStatus"
        # who made the last approval change: a JSONPath cannot index approvalHistory from its end
        assert columns["Approval By"]["jsonPath"] == ".status.lastApprovalChangedBy"
        assert "priority" not in columns["Approval By"]
    status = schema_of(kind)["properties"]["status"]
    for column in columns.values():
        if column["jsonPath"].startswith(".status."):
            field = re.match(r"\.status\.(\w+)", column["jsonPath"]).group(1)
            assert field in status["properties"], f"column {column['name']} reads an unknown status field"


JSON_DOCUMENTS = (".spec.modelCard.modelCardContent",)


def test_json_documents_are_open_objects() -> None:
    spec = schema_of("ModelPackage")["properties"]["spec"]["properties"]
    content = spec["modelCard"]["properties"]["modelCardContent"]
    assert content["type"] == "object" and content["x-kubernetes-preserve-unknown-fields"] is True
    assert spec["modelCard"]["properties"]["modelCardStatus"]["enum"] == [
        "Draft",
        "PendingReview",
        "Approved",
        "Archived",
    ]
    assert spec["modelLifeCycle"]["required"] == ["stage", "stageStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    for path, node in walk(schema_of(kind)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for keyword in (
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "patternProperties",
            "propertyNames",
            "title",
            "const",
        ):
            assert keyword not in node, f"{path} has {keyword}"
        # .status.kopf: kopf's own records, kept as kopf writes them (test_kopf_records.py);
        # a JSON document written as a YAML object (the model card): any JSON object
        if node.get("type") == "object" and path not in (".metadata", ".status.kopf", *JSON_DOCUMENTS):
            assert "properties" in node or "additionalProperties" in node, f"{path} keeps unknown fields"
        assert "default" not in node or node["default"] is not None


@pytest.mark.parametrize("kind", KINDS)
def test_every_pattern_compiles_with_re2(kind: str) -> None:
    patterns = [(path, node["pattern"]) for path, node in walk(schema_of(kind)) if "pattern" in node]
    assert patterns
    for path, pattern in patterns:
        assert non_re2(pattern) is None, f"{path}: {pattern} is not RE2"
        assert crd_validation.pattern_problem(pattern) is None, f"{path}: {pattern} does not compile"
        assert pattern.startswith("^") and pattern.endswith("$"), f"{path}: SageMaker matches whole values"


def test_re2_check_catches_perl_syntax() -> None:
    for bad in [
        r"a(?!-)",
        r"(?<!-)$",
        r"(?<=a)b",
        r"(?=x)",
        r"(a)\1",
        r"(?>a)",
        r"a*+",
        r"a{1,2}+",
        r"\k<n>",
    ]:
        assert non_re2(bad), bad
    for good in [r"^(?:[\p{L}\p{M}]*)$", r"\\1", r"[a-z]{1,3}", r"\p{L}+"]:
        assert non_re2(good) is None, good


@pytest.mark.parametrize("kind", KINDS)
def test_list_map_keys_are_required(kind: str) -> None:
    """The apiserver refuses a list-type map whose key fields are optional without default."""
    maps = [
        (path, node) for path, node in walk(schema_of(kind)) if node.get("x-kubernetes-list-type") == "map"
    ]
    assert maps
    for path, node in maps:
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in node["items"].get("required", []), f"{path}: key {key} is optional"


def test_metadata_name_is_bounded_for_the_rules_reading_it() -> None:
    for kind in KINDS:
        assert schema_of(kind)["properties"]["metadata"]["properties"] == {
            "name": {"type": "string", "maxLength": 253}
        }


def test_spec_is_required_and_status_is_open_to_the_operator() -> None:
    for kind in KINDS:
        root = schema_of(kind)
        assert root["required"] == ["spec"]
        status = root["properties"]["status"]["properties"]
        assert {"arn", "observedGeneration", "conditions"} <= set(status)
        condition = status["conditions"]["items"]["properties"]
        assert set(condition) == {
            "type",
            "status",
            "reason",
            "message",
            "lastTransitionTime",
            "observedGeneration",
        }


def test_kind_specific_status_fields() -> None:
    status = {kind: schema_of(kind)["properties"]["status"]["properties"] for kind in KINDS}
    assert {"modelPackageGroupStatus", "creationTime"} <= set(status["ModelPackageGroup"])
    assert {
        "modelPackageVersion",
        "modelPackageGroupName",
        "modelPackageStatus",
        "modelApprovalStatus",
        "approvalDescription",
        "approvalHistory",
        "lastApprovalChangedBy",
        "artifacts",
        "creationTime",
        "lastModifiedTime",
    } <= set(status["ModelPackage"])
    history = status["ModelPackage"]["approvalHistory"]
    assert history["maxItems"] == 20
    assert set(history["items"]["properties"]) == {
        "modelApprovalStatus",
        "approvalDescription",
        "time",
        "changedBy",
    }
    assert set(status["ModelPackage"]["artifacts"]["items"]["properties"]) == {
        "name",
        "uri",
        "sha256",
        "size",
    }
    assert {"creationTime", "containers"} <= set(status["Model"])
    assert "modelPackageName" in status["Model"]["containers"]["items"]["properties"]


def _rules(kind: str) -> list[dict[str, Any]]:
    return schema_of(kind)["properties"]["spec"].get("x-kubernetes-validations", [])


def test_model_package_fields_without_update_api_are_immutable() -> None:
    """What botocore's UpdateModelPackageInput cannot change is immutable; what it can
    change (and tags, and Kubernetes-only settings) is not."""
    update = (
        botocore.session.get_session().get_service_model("sagemaker").shape_for("UpdateModelPackageInput")
    )
    updatable = {name[0].lower() + name[1:] for name in update.members}
    updatable |= {"additionalInferenceSpecifications", "tags", "deletionPolicy"}
    immutable = {
        rule["fieldPath"].lstrip(".")
        for rule in _rules("ModelPackage")
        if rule.get("fieldPath") and "immutable" in rule["message"]
    }
    spec_fields = set(schema_of("ModelPackage")["properties"]["spec"]["properties"])
    assert immutable == spec_fields - updatable
    # artifacts are Kubernetes-only; fixed because they are the version's model data; an
    # object adopts one version for its whole life; a version stays in its region
    assert immutable == set(IMMUTABLE_FIELDS) | {"artifacts", "modelPackageVersion", "region"}


def test_group_is_immutable_but_for_tags_and_model_is_mutable_but_for_its_name() -> None:
    immutable = {rule["fieldPath"] for rule in _rules("ModelPackageGroup") if "oldSelf" in rule["rule"]}
    assert immutable == {".modelPackageGroupName", ".modelPackageGroupDescription", ".region"}
    # a changed Model spec replaces the model, under the same name: the name is its identity;
    # and every object stays in its region
    assert [rule["fieldPath"] for rule in _rules("Model") if "oldSelf" in rule["rule"]] == [
        ".modelName",
        ".region",
    ]


def test_every_rule_has_a_message_and_cel_stays_bounded() -> None:
    for kind in KINDS:
        for path, node in walk(schema_of(kind)):
            for rule in node.get("x-kubernetes-validations", []):
                assert rule.get("message"), f"{path}: {rule['rule']}"
            # Unbounded strings and lists make the apiserver's CEL cost estimate explode.
            if (
                node.get("type") == "string"
                and "enum" not in node
                and not node.get("format")
                and "spec" in path.split(".")[1:2]
            ):
                assert "maxLength" in node, f"{kind}{path} has no maxLength"
            if node.get("type") == "array" and path.startswith(".spec"):
                assert "maxItems" in node, f"{kind}{path} has no maxItems"
