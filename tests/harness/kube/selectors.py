"""Label and field selectors as the apiserver parses them for list and watch."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_TERM = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_FIELD_TERM = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([^,]*?)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside `in (a,b)` value lists."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term for term in terms if term.strip()]


def label_selector(selector: str | None) -> Predicate:
    if not selector:
        return lambda obj: True
    checks: list[Predicate] = []
    for term in _split_terms(selector):
        if match := _EQ_TERM.match(term):
            key, op, value = match.groups()
            checks.append(lambda labels, k=key, v=value, neg=(op == "!="): (labels.get(k) == v) != neg)
        elif match := _SET_TERM.match(term):
            negated, key, op, values = match.groups()
            if op:
                options = {v.strip() for v in values.split(",")}
                checks.append(
                    lambda labels, k=key, o=options, neg=(op == "notin"): (
                        (k in labels and labels[k] in o) != neg
                    )
                )
            else:
                checks.append(lambda labels, k=key, neg=bool(negated): (k in labels) != neg)
        else:
            raise bad_request(f"unable to parse requirement: invalid label selector term {term.strip()!r}")
    return lambda obj: all(check((obj.get("metadata") or {}).get("labels") or {}) for check in checks)


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_OBJECT_REFERENCE = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
# The extra field labels the apiserver supports, per (group, plural).
EXTRA_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): tuple(f"involvedObject.{f}" for f in _OBJECT_REFERENCE)
    + ("reason", "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): tuple(f"regarding.{f}" for f in _OBJECT_REFERENCE)
    + ("reason", "reportingController", "type"),
    ("", "namespaces"): ("status.phase",),
}


def _field_value(obj: dict[str, Any], field: str) -> str:
    value: Any = obj
    for key in field.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if field == "source" and isinstance(value, dict):  # core Events select on source.component
        value = value.get("component")
    return "" if value is None else str(value)


def field_selector(selector: str | None, group_resource: tuple[str, str] = ("", "")) -> Predicate:
    if not selector:
        return lambda obj: True
    supported = _COMMON_FIELDS + EXTRA_FIELDS.get(group_resource, ())
    checks: list[Predicate] = []
    for term in _split_terms(selector):
        match = _FIELD_TERM.match(term)
        if not match:
            raise bad_request(f"invalid field selector: {term.strip()!r}")
        field, op, value = match.groups()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        checks.append(lambda obj, f=field, v=value, neg=(op == "!="): (_field_value(obj, f) == v) != neg)
    return lambda obj: all(check(obj) for check in checks)
