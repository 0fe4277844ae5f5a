"""`model-registry-operator validate`: files, directories and stdin checked offline, one line
per problem; and the same verdicts as the apiserver (tests/harness/crd_validation.py, which
evaluates the CRDs' CEL rules with cel-python) on cases generated from those rules."""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import crd_validation
from model_registry_operator import validate
from model_registry_operator.api import KINDS
from model_registry_operator.api.crdgen import crd as generated_crd

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
PACKAGE = (SAMPLES / "modelpackage-modeldataurl.yaml").read_text()


def run(*paths: str, stdin: str = "") -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = validate.run(list(paths), stdin=io.BytesIO(stdin.encode()), out=out, err=err)
    return code, out.getvalue().splitlines(), err.getvalue()


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


# --- Files, directories, stdin ------------------------------------------------------------------


def test_every_sample_passes() -> None:
    code, lines, err = run(str(SAMPLES))
    assert (code, lines) == (0, [])
    samples = sorted(SAMPLES.glob("*.yaml"))
    assert f"{len(samples)} resources of registry.mlops.dev in {len(samples)} files: no problems" in err


BAD = """\
apiVersion: registry.mlops.dev/v1alpha1
kind: ModelPackage
metadata: {name: churn-v3}
spec:
  modelPackageGroupName: churn
  modelApprovalStatus: Approve
  inferenceSpecification:
    containers: [{image: "a b"}]
    supportedContentTypes: [text/csv]
    supportedResponseMIMETypes: [text/csv]
---
apiVersion: registry.mlops.dev/v1alpha1
kind: Model
metadata: {name: churn}
spec:
  executionRoleArn: arn:aws:iam::123456789012:role/SageMakerExecution
  primaryContainer: {image: x}
  containers: [{image: y}]
---
apiVersion: registry.mlops.dev/v1alpha1
kind: ModelPackageGroup
metadata: {name: churn.v2}
spec:
  tags: [{key: registry.mlops.dev/owner, value: me}]
"""


def test_several_bad_documents_are_each_reported_with_file_kind_name_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, lines, err = run(str(path))
    assert code == 1
    expected = [
        (
            "ModelPackage/churn-v3",
            "spec.modelApprovalStatus",
            'Unsupported value: "Approve": supported values: "Approved"',
        ),
        ("ModelPackage/churn-v3", "spec.inferenceSpecification.containers[0].image", 'Invalid value: "a b"'),
        ("Model/churn", "spec", "set exactly one of primaryContainer or containers"),
        ("ModelPackageGroup/churn.v2", "metadata.name", "not a valid model package group name"),
        ("ModelPackageGroup/churn.v2", "spec.tags", "no key starting with registry.mlops.dev/"),
    ]
    for obj, field, message in expected:
        prefix = f"{path}: {obj}: {field}: "
        assert any(line.startswith(prefix) and message in line for line in lines), (prefix, lines)
    assert len(lines) == len(expected), lines
    assert "5 problems (3 resources of registry.mlops.dev in 1 file)" in err


def test_stdin_is_named_dash() -> None:
    code, lines, _ = run("-", stdin=PACKAGE.replace("churn-v1", "Churn"))
    assert code == 1
    assert lines == [
        '-: ModelPackage/Churn: metadata.name: Invalid value: "Churn": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character"
    ]
    assert run("-", stdin=PACKAGE)[:2] == (0, [])


def test_a_directory_is_read_recursively_for_yaml_yml_and_json(tmp_path: Path) -> None:
    (tmp_path / "apps" / "churn").mkdir(parents=True)
    (tmp_path / "apps" / "a.yaml").write_text(PACKAGE)
    (tmp_path / "apps" / "churn" / "b.yml").write_text(
        PACKAGE.replace("modelApprovalStatus: Pending", "modelApprovalStatus: X")
    )
    as_json = yaml.safe_load(PACKAGE)
    as_json["spec"]["tags"][0]["value"] = 7
    (tmp_path / "apps" / "churn" / "c.json").write_text(json.dumps(as_json, indent="\t"))
    (tmp_path / "apps" / "notes.txt").write_text("kind: [")
    code, lines, err = run(str(tmp_path / "apps"))
    assert code == 1
    b, c = tmp_path / "apps" / "churn" / "b.yml", tmp_path / "apps" / "churn" / "c.json"
    assert [line.split(": ")[:3] for line in lines] == [
        [str(b), "ModelPackage/churn-v1", "spec.modelApprovalStatus"],
        [str(c), "ModelPackage/churn-v1", "spec.tags[0].value"],
    ], lines
    assert "(3 resources of registry.mlops.dev in 3 files)" in err


def test_other_kinds_and_api_versions_are_skipped_ours_unknown_are_not(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Not_Checked}\n---\n"
        "apiVersion: sagemaker.services.k8s.aws/v1alpha1\nkind: ModelPackage\nmetadata: {name: x}\nspec: {}\n---\n"
        "# only a comment\n---\n- a list\n---\nfoo: bar\n"
    )
    assert run(str(path)) == (
        0,
        [],
        "model-registry-operator validate: 0 resources of registry.mlops.dev in 1 file: no problems\n",
    )
    path.write_text(
        "apiVersion: registry.mlops.dev/v1\nkind: Model\nmetadata: {name: a}\nspec: {}\n---\n"
        "apiVersion: registry.mlops.dev/v1alpha1\nkind: Endpoint\nmetadata: {name: b}\nspec: {}\n"
    )
    code, lines, _ = run(str(path))
    assert code == 1
    assert lines == [
        f"{path}: Model/a: apiVersion: unknown version 'registry.mlops.dev/v1': this operator serves "
        "registry.mlops.dev/v1alpha1",
        f"{path}: Endpoint/b: kind: unknown kind 'Endpoint' of registry.mlops.dev/v1alpha1: expected one of "
        "ModelPackageGroup, ModelPackage, Model",
    ]


def test_a_list_is_read_item_by_item() -> None:
    items = [yaml.safe_load(PACKAGE), {**yaml.safe_load(PACKAGE), "metadata": {"name": "churn-v9"}}]
    items[1]["spec"]["modelPackageName"] = "standalone"
    code, lines, _ = run("-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert (
        code == 1
        and len(lines) == 1
        and lines[0].startswith("-: ModelPackage/churn-v9: spec: exactly one of")
    )


def test_a_yaml_syntax_error_names_the_line_and_earlier_documents_are_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(PACKAGE.replace("churn-v1", "Bad") + "---\nkind: Model\nmetadata:\n  name: [x\n")
    code, lines, _ = run(str(path))
    assert code == 1
    assert lines[0].startswith(f"{path}: ModelPackage/Bad: metadata.name: ")
    assert re.fullmatch(rf"{re.escape(str(path))}: line \d+: invalid YAML: .+", lines[1]), lines
    assert len(lines) == 2


def test_duplicate_keys_and_bad_json_are_syntax_errors(tmp_path: Path) -> None:
    code, lines, _ = run("-", stdin="kind: Model\nspec: {}\nkind: Model\n")
    assert (code, lines) == (1, ['-: line 3: invalid YAML: duplicate key "kind"'])
    path = tmp_path / "x.json"
    path.write_text('{\n  "kind": "Model",\n}\n')
    code, lines, _ = run(str(path))
    assert code == 1 and lines[0].startswith(f"{path}: line 3: invalid JSON: ")


def test_dates_stay_strings_as_kubectl_reads_them() -> None:
    text = PACKAGE.replace('training-run: "2024-05-31"', "training-run: 2024-05-31")
    assert text != PACKAGE
    assert run("-", stdin=text)[:2] == (0, [])


def test_missing_unreadable_and_undecodable_files_are_one_sentence_each(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"kind: \xff\xfe\n")
    code, lines, _ = run(str(missing), str(binary), str(SAMPLES / "modelpackagegroup.yaml"))
    assert code == 1
    assert lines == [
        f"{missing}: no such file or directory",
        f"{binary}: not UTF-8 text (byte 6 cannot be decoded)",
    ]
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked.yaml"
        locked.write_text(PACKAGE)
        locked.chmod(0)
        assert run(str(locked))[:2] == (1, [f"{locked}: cannot read the file: Permission denied"])


def test_unknown_fields_are_reported_and_do_not_hide_the_choice_rules() -> None:
    obj = yaml.safe_load(PACKAGE)
    obj["spec"]["modelPackageName"] = "standalone"
    obj["spec"]["inferenceSpecification"]["containers"][0]["imagee"] = "x"
    obj["extra"] = 1
    fields = [(f.field, f.message[:20]) for f in validate.validate_object(obj)]
    assert fields == [
        ("extra", "unknown field"),
        ("spec.inferenceSpecification.containers[0].imagee", "unknown field"),
        ("spec", "exactly one of model"),
    ]


def test_nulls_are_dropped_as_the_apiserver_does() -> None:
    obj = yaml.safe_load(PACKAGE)
    obj["spec"]["modelApprovalStatus"] = None
    assert validate.validate_object(obj) == []
    obj["spec"]["modelPackageGroupRef"] = None  # as if absent: the package names no group
    assert [f.field for f in validate.validate_object(obj)] == ["spec"]


# --- The console script -------------------------------------------------------------------------


def test_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    ok = cli("validate", "-f", str(SAMPLES))
    assert ok.returncode == 0 and ok.stdout == ""
    bad = cli("validate", "-f", "-", "-f", str(tmp_path / "missing"), stdin=BAD + "---\n: [\n")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"{tmp_path / 'missing'}: no such file or directory" in bad.stdout.splitlines()
    assert "-: ModelPackage/churn-v3: spec.modelApprovalStatus: " in bad.stdout
    assert re.search(r"^-: line \d+: invalid YAML: ", bad.stdout, re.M)
    usage = cli("validate")
    assert usage.returncode == 2 and "the following arguments are required: -f/--filename" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_help_tells_what_is_not_checked() -> None:
    shown = cli("validate", "--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "oldSelf" in text and "transition rules" in text and "-f PATH, --filename PATH" in text


def test_help_does_not_import_the_api_types() -> None:
    probe = (
        "import sys\nfrom model_registry_operator import cli\n"
        "try:\n    cli.main(['validate', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('model_registry_operator.api', "
        "'model_registry_operator.validate', 'kopf', 'pydantic'))))"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert shown.stdout.strip().splitlines()[-1] == "[]", shown.stdout + shown.stderr


# --- Same verdicts as the apiserver ---------------------------------------------------------------


@cache
def crd(kind: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "crds" / f"{KINDS[kind].plural}.yaml").read_text())


def test_the_runtime_schema_is_the_crds() -> None:
    # validate generates the schema from the types (crds/ is not installed); it is the same one
    for kind in KINDS:
        assert generated_crd(KINDS[kind]) == crd(kind)
        assert validate.schema_of(kind) == crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def cluster_refuses(obj: dict[str, Any]) -> list[dict[str, str]]:
    return crd_validation.validate(crd(obj["kind"]), obj)


def rules(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(path of the schema node, rule) of every rule of `kind`'s CRD that needs no old object;
    a path is like `spec.containers[]`."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(schema: dict[str, Any], path: str) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            if not crd_validation.uses_old_self(rule["rule"]):
                found.append((path, rule))
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{path}.{name}".lstrip("."))
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[]")

    walk(crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    return found


def nodes(obj: Any, path: str) -> Iterator[Any]:
    """The values at `path` (`spec.containers[]`) in obj."""
    if not path:
        yield obj
        return
    head, _, rest = path.partition(".")
    name, many = head.removesuffix("[]"), head.endswith("[]")
    if not isinstance(obj, dict) or name not in obj:
        return
    values = obj[name] if many else [obj[name]]
    for value in values if isinstance(values, list) else []:
        yield from nodes(value, rest)


S3_SOURCE = {"s3DataSource": {"s3Uri": "s3://b/p/", "s3DataType": "S3Prefix", "compressionType": "None"}}
# A valid value for each field a rule asks `has()` of; a rule naming another field fails the test.
VALUES: dict[str, Any] = {
    "modelPackageGroupRef": {"name": "churn"},
    "modelPackageGroupName": "churn",
    "modelPackageName": "standalone",
    "modelPackageVersion": 3,
    "modelDataUrl": "s3://b/model.tar.gz",
    "modelDataSource": S3_SOURCE,
    "modelDataArtifact": "model",
    "image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/img:1",
    "modelPackageRef": {"name": "churn-v2"},
    "primaryContainer": {"image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/img:1"},
    "containers": [{"image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/img:1"}],
    "modelName": "churn-model",
    "inferenceSpecification": {
        "containers": [{"image": "img:1", "modelDataArtifact": "model"}],
        "supportedContentTypes": ["text/csv"],
        "supportedResponseMIMETypes": ["text/csv"],
    },
    "artifacts": [{"name": "model", "files": [{"path": "model.joblib", "source": "s3://b/k"}]}],
}


def bases() -> list[dict[str, Any]]:
    """The samples, and one with what no sample has (additional inference specifications)."""
    found = [doc for path in sorted(SAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    extra = yaml.safe_load(PACKAGE)
    extra["spec"]["additionalInferenceSpecifications"] = [
        {"name": "neo", "containers": [{"image": "img:2", "modelDataUrl": "s3://b/neo.tar.gz"}]}
    ]
    return found + [extra]


def variants(rule: str, node: Any) -> Iterator[Any]:
    """Changed copies of one schema node, from what `rule` reads: the fields it asks `has()`
    of, set and unset in every combination; collections made longer than a `size() <= N`;
    keys given a prefix it refuses with `startsWith`; fields its `all(c, !has(c.x))` refuses
    and references its `exists(a, a.name == c.x)` looks up."""
    fields = sorted(set(re.findall(r"has\(self\.(\w+)\)", rule)))
    if isinstance(node, dict):
        for present in itertools.product([False, True], repeat=len(fields)):
            changed = copy.deepcopy(node)
            for field, keep in zip(fields, present):
                if not keep:
                    changed.pop(field, None)
                elif field not in changed:
                    changed[field] = copy.deepcopy(VALUES[field])
            yield changed
        for field in re.findall(r"size\(self\.(\w+)\) > 0", rule):
            yield {**copy.deepcopy(node), field: []}
        for items, _var, field in re.findall(r"self\.(\w+)\.all\((\w+), !has\(\2\.(\w+)\)\)", rule):
            if node.get(items):
                changed = copy.deepcopy(node)
                changed[items][0][field] = VALUES[field]
                yield changed
        for field in re.findall(r"\w+\.exists\(\w+, \w+\.name == \w+\.(\w+)\)", rule):
            changed = copy.deepcopy(node)
            for found in _dicts_with(changed, field):
                found[field] = "no-such-entry"
            yield changed
    for limit in re.findall(r"size\(self\) <= (\d+)", rule):
        if isinstance(node, list) and node:
            yield [{**copy.deepcopy(node[0]), "key": f"k{i}"} for i in range(int(limit) + 1)]
        if isinstance(node, dict):
            yield {**node, **{f"k{i}": "v" for i in range(int(limit) + 1 - len(node))}}
    for prefix in re.findall(r"startsWith\('([^']*)'\)", rule):
        if isinstance(node, list) and node:
            yield [{**copy.deepcopy(node[0]), "key": f"{prefix}owner"}]
        if isinstance(node, dict):
            yield {**node, f"{prefix}owner": "v"}


def _dicts_with(value: Any, field: str) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if field in value:
            yield value
        for item in value.values():
            yield from _dicts_with(item, field)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts_with(item, field)


def replaced(obj: dict[str, Any], path: str, index: int, value: Any) -> dict[str, Any]:
    """A copy of obj with the index-th node at path replaced by value."""
    changed = copy.deepcopy(obj)
    if not path:
        return value  # type: ignore[no-any-return]
    parents: list[tuple[Any, Any]] = []

    def collect(current: Any, rest: str) -> None:
        head, _, tail = rest.partition(".")
        name, many = head.removesuffix("[]"), head.endswith("[]")
        if not isinstance(current, dict) or name not in current:
            return
        keys = range(len(current[name])) if many and isinstance(current[name], list) else [None]
        for key in keys:
            holder, slot = (current[name], key) if key is not None else (current, name)
            if tail:
                collect(holder[slot], tail)
            else:
                parents.append((holder, slot))

    collect(changed, path)
    holder, slot = parents[index]
    holder[slot] = value
    return changed


def generated_cases() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(rule, its CRD entry, object) for every rule without oldSelf, over every base that has
    the rule's node; the root rules on metadata.name get names of every kind too."""
    for base in bases():
        for path, rule in rules(base["kind"]):
            for index, node in enumerate(nodes(base, path)):
                for variant in variants(rule["rule"], node if path else base.get("spec")):
                    if path:
                        yield rule["rule"], rule, replaced(base, path, index, variant)
                    else:
                        for name in ("churn", "churn.v1", "m" * 64, "a--b"):
                            yield rule["rule"], rule, {**base, "metadata": {"name": name}, "spec": variant}


# Cases the cluster refuses and the operator's types take: each a drift between a CEL rule
# and its pydantic twin, to be fixed in api/ (then this test fails until the entry goes).
# ModelSpec._check_choices reads `containers: []` as no containers; the rule reads it as set.
KNOWN_GAPS: dict[str, Any] = {}  # rules the operator enforces less strictly than the cluster: none


def test_cases_the_cluster_refuses_are_refused_and_schema_findings_are_the_clusters() -> None:
    violated: set[str] = set()
    gaps_seen: set[str] = set()
    every_rule = {rule["rule"] for kind in KINDS for _, rule in rules(kind)}
    checked = 0
    for expression, rule, obj in generated_cases():
        causes = cluster_refuses(obj)
        findings = validate.validate_object(obj)
        checked += 1
        broken = [cause for cause in causes if rule["message"] in cause["message"]]
        if broken:
            violated.add(expression)
        if expression in KNOWN_GAPS and KNOWN_GAPS[expression](obj):
            gaps_seen.add(expression)
            assert broken and not findings, f"fixed? remove the KNOWN_GAPS entry: {obj} {findings}"
            continue
        if broken and len(broken) == len(causes):
            # the rule alone refuses it: the types (or, at the root, the name check) do in its words
            assert any(rule["message"] in finding.message for finding in findings), (rule, obj, findings)
        if causes:  # the cluster refuses: so does validate (a model's first failed check at least)
            assert findings, (obj, causes)
        else:  # what the cluster takes, only the operator's stricter types may refuse
            assert all(finding.source == "type" for finding in findings), (obj, findings)
        cluster_fields = {cause["field"] for cause in causes}
        for finding in findings:
            if finding.source == "schema":
                assert finding.field in cluster_fields, (finding, causes)
    # every rule was broken by some case (the comparison is not vacuous), and every gap seen
    assert violated == every_rule, every_rule - violated
    assert gaps_seen == set(KNOWN_GAPS)
    assert checked > 100


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.update(modelApprovalStatus="approved"), "spec.modelApprovalStatus"),
        (lambda s: s.update(modelPackageDescription="x" * 1025), "spec.modelPackageDescription"),
        (
            lambda s: s["inferenceSpecification"].update(supportedContentTypes="text/csv"),
            "spec.inferenceSpecification.supportedContentTypes",
        ),
        (lambda s: s["inferenceSpecification"].pop("containers"), "spec.inferenceSpecification.containers"),
        (
            lambda s: s["inferenceSpecification"]["containers"][0].update(image=""),
            "spec.inferenceSpecification.containers[0].image",
        ),
        (lambda s: s["tags"].append({"key": "team", "value": "x" * 257}), "spec.tags[1].value"),
        (lambda s: s.update(modelPackageGroupRef={"name": "Churn_1"}), "spec.modelPackageGroupRef.name"),
        (lambda s: s.update(skipModelValidation="Sometimes"), "spec.skipModelValidation"),
    ],
)
def test_schema_problems_are_on_the_fields_the_cluster_names(change: Any, field: str) -> None:
    obj = yaml.safe_load(PACKAGE)
    assert cluster_refuses(obj) == [] and validate.validate_object(obj) == []
    change(obj["spec"])
    cluster_fields = {cause["field"] for cause in cluster_refuses(obj)}
    found = validate.validate_object(obj)
    assert field in cluster_fields
    # said as the cluster says it (the types would name the field too, in their words)
    assert ("schema", field) in {(finding.source, finding.field) for finding in found}, found
