"""`model-registry-operator validate`: manifests checked offline, as the cluster and the operator would.

Each document of a registry.mlops.dev kind is checked against

- the CRD's OpenAPI schema (types, required fields, enums, patterns, lengths, list sizes and
  duplicates), generated at run time from the API types by `api.crdgen` (what `make crds`
  writes to crds/; that directory is not part of the installed package);
- the CRD's CEL rules that need no old object: the rules on metadata.name at the root of a
  CRD are evaluated here, and every other one (one-of choices, reserved tag keys...) is
  enforced by the pydantic types too, so `api.parse_spec` refuses what they refuse
  (tests/unit/test_validate.py checks both against the CEL rules, evaluated by cel-python,
  on cases generated from the rules, and lists any known exception; the runtime needs no
  CEL engine). Transition rules (`oldSelf`: immutable fields,
  append-only lists) compare an update with the stored object and cannot apply to a file;
- the operator's pydantic types, which are stricter in places the CRD cannot express
  (map keys, look-around patterns, JSON document sizes) and refuse unknown fields, which
  the apiserver drops or (kubectl's strict field validation) refuses;
- metadata.name and metadata.namespace as Kubernetes names.

Documents of other groups are skipped; a document of our group with an unknown kind or
version is a problem.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import yaml
from pydantic import StringConstraints, TypeAdapter, ValidationError

from . import API_VERSION, GROUP
from .api import KINDS, parse_spec
from .api.cel import VALIDATIONS
from .api.common import KUBERNETES_NAME_PATTERN, _format_location

EXTENSIONS = (".yaml", ".yml", ".json")
STDIN = "-"
TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
DNS_LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
WRONG_TYPE = "must be of type"


@dataclass(frozen=True)
class Finding:
    """One problem of one object: the field (a path such as `spec.containers[0].image`) and
    what is wrong. `source` tells which check found it: schema, rule (a CEL rule evaluated
    here), type (the operator's pydantic types) or name (Kubernetes name syntax)."""

    field: str
    message: str
    source: str


@dataclass(frozen=True)
class Problem:
    """A line of output: `FILE: Kind/name: field: message` or `FILE: line N: message`."""

    file: str
    message: str
    obj: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.obj is not None:
            return f"{self.file}: {self.obj}: {self.field or '(object)'}: {self.message}"
        if self.line is not None:
            return f"{self.file}: line {self.line}: {self.message}"
        return f"{self.file}: {self.message}"


# --- One object ---------------------------------------------------------------------------------


def is_ours(obj: Any) -> bool:
    """Whether a document belongs to our API group (any kind, any version)."""
    if not isinstance(obj, dict):
        return False
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.partition("/")[0] == GROUP and "/" in api_version


@cache
def schema_of(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of `kind`'s CRD, as `make crds` generates it."""
    from .api.crdgen import crd  # the JSON schemas take a moment: only when validating

    (version,) = crd(KINDS[kind])["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_object(obj: dict[str, Any]) -> list[Finding]:
    """Every problem of one document of our group; empty when the cluster and the operator
    would both take it (but for transition rules, which need the stored object)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version != API_VERSION:
        return [
            Finding(
                "apiVersion", f"unknown version {api_version!r}: this operator serves {API_VERSION}", "schema"
            )
        ]
    if kind not in KINDS:
        kinds = ", ".join(KINDS)
        return [Finding("kind", f"unknown kind {kind!r} of {API_VERSION}: expected one of {kinds}", "schema")]
    schema = schema_of(kind)
    findings = [
        Finding(key if isinstance(key, str) else json.dumps(str(key)), "unknown field", "schema")
        for key in obj
        if key not in TOP_LEVEL_FIELDS
    ]
    # As the apiserver: nulls are dropped (not refused); status is the operator's and is ignored.
    body = _drop_nulls(schema, {key: value for key, value in obj.items() if key in TOP_LEVEL_FIELDS[:4]})
    findings += _check_names(body)
    _check_schema(schema, body, "", findings)
    wrong_type = any(finding.message.startswith(WRONG_TYPE) for finding in findings)
    if not wrong_type:  # as the apiserver: no rule runs on a value of the wrong type
        findings += _check_root_rules(kind, body)
    spec = body.get("spec")
    if isinstance(spec, dict):
        findings += _check_types(kind, spec, findings)
    return findings


def display_name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{obj.get('kind') or '(no kind)'}/{name if isinstance(name, str) and name else '(no name)'}"


# --- The OpenAPI schema --------------------------------------------------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _sub_schema(schema: dict[str, Any], key: Any) -> dict[str, Any] | None:
    found = (schema.get("properties") or {}).get(key)
    if found is None and isinstance(schema.get("additionalProperties"), dict):
        found = schema["additionalProperties"]
    return found


def _drop_nulls(schema: dict[str, Any], value: Any) -> Any:
    """`value` without null fields where the schema does not allow null (the apiserver drops
    them when it prunes). Unknown fields are kept: the types report them."""
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        result = {}
        for key, item in value.items():
            sub = _sub_schema(schema, key)
            if sub is None:
                result[key] = item
            elif item is not None or sub.get("nullable"):
                result[key] = _drop_nulls(sub, item)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_drop_nulls(schema["items"], item) for item in value]
    return value


def _child(path: str, key: Any) -> str:
    return _format_location((key if isinstance(key, str) else str(key),), path).lstrip(".")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)


def _shown(value: Any, limit: int = 80) -> str:
    if isinstance(value, (dict, list)):
        return _type_name(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + '..."'


@cache
def _pattern(pattern: str) -> TypeAdapter[str]:
    # pydantic-core's regex engine (Rust's), like the apiserver's RE2: searches, no look-around
    return TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])


def _matches(pattern: str, value: str) -> bool:
    try:
        _pattern(pattern).validate_python(value)
    except ValidationError:
        return False
    return True


def _check_schema(schema: dict[str, Any], value: Any, path: str, findings: list[Finding]) -> None:
    expected = schema.get("type")
    if expected and not _TYPES[expected](value):
        findings.append(Finding(path, f"{WRONG_TYPE} {expected}, not {_type_name(value)}", "schema"))
        return
    problems = _keyword_problems(schema, value)
    findings.extend(Finding(path, problem, "schema") for problem in problems)
    if isinstance(value, dict):
        for name in schema.get("required") or ():
            if name not in value:
                findings.append(Finding(_child(path, name), "Required value", "schema"))
        for key, item in value.items():
            sub = _sub_schema(schema, key)
            if sub is not None:  # unknown fields: the types report them
                _check_schema(sub, item, _child(path, key), findings)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        findings.extend(_duplicates(schema, value, path))
        for index, item in enumerate(value):
            _check_schema(schema["items"], item, f"{path}[{index}]", findings)


def _keyword_problems(schema: dict[str, Any], value: Any) -> list[str]:
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        choices = schema["enum"]
        if len(choices) <= 10:
            listed = ", ".join(json.dumps(choice) for choice in choices)
            problems.append(f"Unsupported value: {_shown(value)}: supported values: {listed}")
        else:
            examples = ", ".join(json.dumps(choice) for choice in choices[:3])
            problems.append(
                f"Unsupported value: {_shown(value)}: not one of the {len(choices)} supported values ({examples}, ...)"
            )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(
                f"Too long: may not be more than {schema['maxLength']} characters (is {len(value)})"
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(
                f"Invalid value: {_shown(value)}: should be at least {schema['minLength']} characters long"
            )
        if "pattern" in schema and not _matches(schema["pattern"], value):
            problems.append(f"Invalid value: {_shown(value)}: should match '{schema['pattern']}'")
    if isinstance(value, (list, dict)):
        what = "items" if isinstance(value, list) else "properties"
        low, high = (
            ("minItems", "maxItems") if isinstance(value, list) else ("minProperties", "maxProperties")
        )
        if high in schema and len(value) > schema[high]:
            problems.append(f"Too many: {len(value)}: must have at most {schema[high]} {what}")
        if low in schema and len(value) < schema[low]:
            problems.append(f"Invalid value: {len(value)}: should have at least {schema[low]} {what}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(
                f"Invalid value: {_shown(value)}: should be greater than or equal to {schema['minimum']}"
            )
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(
                f"Invalid value: {_shown(value)}: should be less than or equal to {schema['maximum']}"
            )
    return problems


def _duplicates(schema: dict[str, Any], value: list[Any], path: str) -> list[Finding]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("map", "set"):
        return []
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    findings = []
    for index, item in enumerate(value):
        if list_type == "map":
            if not isinstance(item, dict):
                continue  # a type error, reported on its own
            key = json.dumps({name: item.get(name) for name in keys}, sort_keys=True)
        else:
            key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            findings.append(Finding(f"{path}[{index}]", f"Duplicate value: {key}", "schema"))
        seen.add(key)
    return findings


# --- Names and the CRD's rules on them ----------------------------------------------------------


def _check_names(obj: dict[str, Any]) -> list[Finding]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return []  # missing or of the wrong type: the schema said so
    findings = []
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if name is None and not metadata.get("generateName"):
        findings.append(Finding("metadata.name", "Required value", "name"))
    elif isinstance(name, str) and not (len(name) <= 253 and _matches(f"^{KUBERNETES_NAME_PATTERN}$", name)):
        findings.append(
            Finding(
                "metadata.name",
                f"Invalid value: {_shown(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                "name",
            )
        )
    if namespace is not None and not (
        isinstance(namespace, str) and len(namespace) <= 63 and _matches(f"^{DNS_LABEL_PATTERN}$", namespace)
    ):
        findings.append(
            Finding(
                "metadata.namespace",
                f"Invalid value: {_shown(namespace)}: a lowercase RFC 1123 label must consist of lower case "
                "alphanumeric characters or '-', start and end with an alphanumeric character, and be at most 63 characters",
                "name",
            )
        )
    return findings


# The one shape of rule the CRDs carry at their root (api/crdgen.py `_name_rule`): the
# SageMaker name defaults to metadata.name, which must then be a valid SageMaker name.
NAME_RULE = re.compile(
    r"has\(self\.spec\.(?P<field>\w+)\) \|\| \(size\(self\.metadata\.name\) <= (?P<max>\d+) && "
    r"self\.metadata\.name\.matches\('(?P<pattern>[^']*)'\)\)"
)


@dataclass(frozen=True)
class NameRule:
    field: str
    max_length: int
    pattern: str
    message: str

    def refuses(self, obj: dict[str, Any]) -> bool:
        spec, name = obj.get("spec"), obj.get("metadata", {}).get("name")
        if (isinstance(spec, dict) and self.field in spec) or not isinstance(name, str):
            return False
        return not (len(name) <= self.max_length and _matches(self.pattern, name))


@cache
def root_rules(kind: str) -> tuple[NameRule, ...]:
    """The CEL rules at the root of `kind`'s CRD, evaluated here without a CEL engine. Those
    of another shape are left to the types (a test fails when a rule is covered by neither)."""
    rules = []
    for validation in schema_of(kind).get(VALIDATIONS, []):
        found = NAME_RULE.fullmatch(validation["rule"])
        if found:
            pattern = found["pattern"].replace("\\\\", "\\")  # a CEL string literal's escapes
            rules.append(NameRule(found["field"], int(found["max"]), pattern, validation["message"]))
    return tuple(rules)


def _check_root_rules(kind: str, obj: dict[str, Any]) -> list[Finding]:
    # The apiserver reports a root rule on the object; the field it is about is metadata.name.
    return [
        Finding("metadata.name", f"Invalid value: {_shown(obj['metadata']['name'])}: {rule.message}", "rule")
        for rule in root_rules(kind)
        if rule.refuses(obj)
    ]


# --- The operator's types -----------------------------------------------------------------------


def _check_types(kind: str, spec: dict[str, Any], known: list[Finding]) -> list[Finding]:
    """What `api.parse_spec` refuses (what the operator would set Stalled/InvalidSpec for),
    but for fields the schema already reported a problem of, or within.

    pydantic runs a model's own checks (the one-of choices) only once its fields are valid;
    unknown fields, which the apiserver would drop, are dropped here for a second pass, so
    they do not hide those checks."""
    reported = [finding.field for finding in known]
    findings: list[Finding] = []
    spec = copy.deepcopy(spec)
    for _ in range(2):
        try:
            parse_spec(kind, spec)
        except ValidationError as error:
            unknown = []
            for item in error.errors(include_url=False):
                field = _format_location(tuple(item["loc"]), "spec")
                if item["type"] == "extra_forbidden":
                    unknown.append(tuple(item["loc"]))
                if any(
                    field == seen or field.startswith((f"{seen}.", f"{seen}[", f"{seen} "))
                    for seen in reported
                ):
                    continue
                message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
                finding = Finding(field, message.removeprefix("Value error, "), "type")
                if finding not in findings:
                    findings.append(finding)
            if not unknown or not all(_remove(spec, location) for location in unknown):
                break
        else:
            break
    return findings


def _remove(value: Any, location: tuple[Any, ...]) -> bool:
    """Removes the field at `location` (a pydantic error's loc) from `value`; False when it
    cannot be found there."""
    for part in location[:-1]:
        found = isinstance(value, dict) and part in value
        found = found or (isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value))
        if not found:
            return False
        value = value[part]
    if isinstance(value, dict) and location and location[-1] in value:
        del value[location[-1]]
        return True
    return False


# --- Files --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: timestamps stay strings, a key given twice is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the constructor says so
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_shown(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def documents(name: str, text: str) -> Iterator[Any | Problem]:
    """The documents of one file (a .json file is JSON, anything else YAML, several
    documents allowed); a syntax error ends the file as a Problem naming its line."""
    if name.lower().endswith(".json"):
        try:
            yield json.loads(text)
        except json.JSONDecodeError as error:
            yield Problem(name, f"invalid JSON: {error.msg}", line=error.lineno)
        return
    try:
        yield from yaml.load_all(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
        if mark is not None:
            yield Problem(name, f"invalid YAML: {problem}", line=mark.line + 1)
        else:
            yield Problem(name, f"invalid YAML: {problem}")


def objects(document: Any) -> Iterator[dict[str, Any]]:
    """A document's objects: itself, or the items of a `kind: List` (as kubectl reads them)."""
    if not isinstance(document, dict):
        return  # not a Kubernetes object (a YAML list, a scalar, an empty document)
    if document.get("apiVersion") == "v1" and document.get("kind") == "List":
        for item in document.get("items") or ():
            yield from objects(item)
    else:
        yield document


def check_text(name: str, text: str) -> tuple[list[Problem], int]:
    """The problems of one file's text and how many objects of our group it holds."""
    problems: list[Problem] = []
    checked = 0
    for document in documents(name, text):
        if isinstance(document, Problem):
            problems.append(document)
            continue
        for obj in objects(document):
            if not is_ours(obj):
                continue
            checked += 1
            shown = display_name(obj)
            problems += [Problem(name, f.message, obj=shown, field=f.field) for f in validate_object(obj)]
    return problems, checked


def files(paths: Iterable[str]) -> Iterator[tuple[str, Path | None] | Problem]:
    """(name shown, path) of each file to read: a file as given, a directory's *.yaml, *.yml
    and *.json files (recursively, in order), `-` for stdin (path None)."""
    for given in paths:
        if given == STDIN:
            yield STDIN, None
            continue
        path = Path(given)
        if path.is_dir():
            errors: list[OSError] = []
            found = []
            for root, dirs, names in os.walk(path, onerror=errors.append):
                dirs.sort()
                found += [Path(root, n) for n in names if n.lower().endswith(EXTENSIONS)]
            for error in errors:
                yield Problem(
                    str(error.filename or given), f"cannot read the directory: {error.strerror or error}"
                )
            yield from ((str(file), file) for file in sorted(found))
        elif path.exists():
            yield given, path
        else:
            yield Problem(given, "no such file or directory")


def read(path: Path | None, stdin: BinaryIO) -> str:
    """The text of a file or of stdin; raises OSError or UnicodeDecodeError."""
    data = stdin.read() if path is None else path.read_bytes()
    return data.decode("utf-8-sig")


def run(
    paths: list[str], stdin: BinaryIO | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Check every file; print one line per problem on `out` and a summary on `err`.
    Returns 1 when there is any problem, else 0."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    problems = 0
    checked = 0
    read_files = 0
    seen: set[str] = set()
    for entry in files(paths):
        if isinstance(entry, Problem):
            found = [entry]
        else:
            name, path = entry
            if name in seen:
                continue  # named twice (a file and its directory, `-` twice)
            seen.add(name)
            try:
                text = read(path, stdin)
            except OSError as error:
                found = [Problem(name, f"cannot read the file: {error.strerror or error}")]
            except UnicodeDecodeError as error:
                found = [Problem(name, f"not UTF-8 text (byte {error.start} cannot be decoded)")]
            else:
                read_files += 1
                found, count = check_text(name, text)
                checked += count
        for problem in found:
            print(problem, file=out)
        problems += len(found)
    files_text = f"{read_files} file{'s' if read_files != 1 else ''}"
    objects_text = f"{checked} resource{'s' if checked != 1 else ''} of {GROUP}"
    if problems:
        print(
            f"model-registry-operator validate: {problems} problem{'s' if problems != 1 else ''} "
            f"({objects_text} in {files_text})",
            file=err,
        )
        return 1
    print(f"model-registry-operator validate: {objects_text} in {files_text}: no problems", file=err)
    return 0
