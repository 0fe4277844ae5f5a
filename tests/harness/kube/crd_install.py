"""Checks the apiserver makes when a CustomResourceDefinition is installed or changed.

Only what an operator's CRDs could get wrong: naming, versions, and `pattern`s that Go's
RE2 cannot compile (look-around, back-references) -- the apiserver refuses those CRDs.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic_core
from pydantic_core import core_schema

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Perl syntax RE2 does not have: look-ahead/behind, back-references, atomic groups, possessive quantifiers.
_NON_RE2 = re.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\\k<|[*+?}]\+")


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "field": field, "message": message}


def re2_problem(pattern: str) -> str | None:
    """Why RE2 refuses `pattern`, in the apiserver's words, or None."""
    unescaped = re.sub(r"\\\\", "", pattern)  # an escaped backslash cannot start an escape
    found = _NON_RE2.search(unescaped)
    if found:
        return f"error parsing regexp: invalid or unsupported Perl syntax: `{found.group(0)}`"
    try:  # Rust's regex crate has RE2's syntax (\p{L} yes, look-around no), unlike Python's re
        pydantic_core.SchemaValidator(core_schema.str_schema(pattern=pattern, regex_engine="rust-regex"))
    except pydantic_core.SchemaError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("error:")]
        return f"error parsing regexp: {detail[0].removeprefix('error: ') if detail else 'invalid syntax'}"
    return None


def _schema_patterns(schema: Any, path: str) -> list[tuple[str, str]]:
    """(field path, pattern) for every `pattern` in an openAPIV3Schema, with apiserver-style paths."""
    found: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return found
    if isinstance(schema.get("pattern"), str):
        found.append((f"{path}.pattern", schema["pattern"]))
    for name, sub in (schema.get("properties") or {}).items():
        found += _schema_patterns(sub, f"{path}.properties[{name}]")
    if isinstance(schema.get("items"), dict):
        found += _schema_patterns(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _schema_patterns(schema["additionalProperties"], f"{path}.additionalProperties")
    for key in ("allOf", "anyOf", "oneOf"):
        for index, sub in enumerate(schema.get(key) or []):
            found += _schema_patterns(sub, f"{path}.{key}[{index}]")
    if isinstance(schema.get("not"), dict):
        found += _schema_patterns(schema["not"], f"{path}.not")
    return found


def check_crd(crd: dict[str, Any]) -> list[dict[str, str]]:
    """Field causes for an invalid CRD; empty when the apiserver would accept it."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [_cause("spec", "Required value", "FieldValueRequired")]
    causes: list[dict[str, str]] = []
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    if not group or "." not in group:
        causes.append(
            _cause("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot')
        )
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append(_cause(f"spec.names.{key}", "Required value", "FieldValueRequired"))
    if plural and not _DNS_LABEL.match(plural):
        causes.append(_cause("spec.names.plural", f'Invalid value: "{plural}": must be a DNS-1035 label'))
    expected_name = f"{plural}.{group}"
    if crd.get("metadata", {}).get("name") != expected_name:
        causes.append(
            _cause(
                "metadata.name",
                f'Invalid value: "{crd.get("metadata", {}).get("name")}": '
                f'must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            _cause(
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            _cause("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    for index, version in enumerate(versions):
        base = f"spec.versions[{index}].schema.openAPIV3Schema"
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            causes.append(_cause(base, "Required value: schemas are required", "FieldValueRequired"))
            continue
        for field, pattern in _schema_patterns(schema, base):
            problem = re2_problem(pattern)
            if problem:
                causes.append(
                    _cause(
                        field,
                        f'Invalid value: "{pattern}": must be a valid regular expression, '
                        f"but isn't: {problem}",
                    )
                )
    return causes


def crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The status the apiextensions controller settles on for an accepted CRD."""
    spec = crd["spec"]
    storage = [v["name"] for v in spec["versions"] if v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    conditions = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    return {
        "acceptedNames": dict(spec["names"]),
        "conditions": conditions,
        "storedVersions": sorted(set(previous) | set(storage)),
    }
