"""Random and malformed specs: each one either parses or fails with a pydantic
ValidationError whose message names every invalid field by its path; nothing else escapes."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from harness import crd_validation
from model_registry_operator.api import KINDS, format_validation_error, parse_spec, to_api

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [
    yaml.safe_load(path.read_text()) for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
]

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=80)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Strings close to the real ones make the interesting failures (a pattern, a length) likely.
NEAR_MISS = st.sampled_from(
    [
        "",
        " ",
        "a" * 64,
        "a" * 1025,
        "s3://",
        "http://x/y",
        "arn:aws:iam::1:role/x",
        "churn-",
        "Approved",
        "ml.m5.large",
        "ml.nope",
        "../x",
        "x/../y",
        "SHA256:" + "0" * 64,
        "\u00e9t\u00e9",
        "a\nb",
        "1.2",
        "-1",
    ]
) | st.integers(-2, 2)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_spec(draw: st.DrawFn) -> tuple[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    spec = obj["spec"]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(spec)))
        if not path:
            spec = draw(JSON | NEAR_MISS)
            continue
        parent = spec
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "near-miss", "unknown-field"]))
            if action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif action == "unknown-field" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
            else:
                parent[path[-1]] = draw(NEAR_MISS if action == "near-miss" else JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation changed the shape; keep what we have
    return obj["kind"], spec


def _location_text(location: tuple) -> str:
    """A field path as the operator reports it: .name, [index], or ["odd key"] quoted."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        elif re.fullmatch(r"[A-Za-z_]\w*", part, flags=re.ASCII):
            text += f".{part}"
        else:
            text += "[" + json.dumps(part) + "]"
    return text


def check(kind: str, spec: Any) -> None:
    try:
        parsed = parse_spec(kind, spec)
    except ValidationError as error:
        message = format_validation_error(error)
        assert message.startswith("spec") and message.endswith(".")
        assert "\n" not in message, "one line, whatever the input"
        for item in error.errors():
            assert "spec" + _location_text(tuple(item["loc"])) in message, (item["loc"], message)
        return
    request = to_api(parsed)
    assert isinstance(request, dict)
    # What parsed once parses again from its own dump (the operator re-reads its objects).
    again = parse_spec(kind, parsed.model_dump(exclude_none=True))
    assert again == parsed


@settings(max_examples=200, deadline=None)
@given(case=mutated_spec())
def test_mutated_samples_parse_or_fail_naming_the_field(case: tuple[str, Any]) -> None:
    check(*case)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), spec=JSON)
def test_random_json_parses_or_fails_naming_the_field(kind: str, spec: Any) -> None:
    check(kind, spec)


CRDS = {
    kind: yaml.safe_load((ROOT / "crds" / f"{info.plural}.yaml").read_text()) for kind, info in KINDS.items()
}


@settings(max_examples=150, deadline=None)
@given(case=mutated_spec())
def test_the_crd_admits_every_spec_the_operator_accepts(case: tuple[str, Any]) -> None:
    """Admission (schema + CEL) is never stricter than the types: a spec the operator would
    reconcile is never refused by the apiserver. (The types may be stricter: map key
    patterns and look-behind stay out of the CRD.)"""
    kind, spec = case
    crd = CRDS[kind]
    obj = {
        "apiVersion": "registry.mlops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample"},
        "spec": spec,
    }
    admitted = crd_validation.apply_defaults(crd, crd_validation.prune(crd, obj))
    if not isinstance(admitted.get("spec"), dict):
        return  # refused for having no spec object at all
    try:
        parse_spec(kind, admitted["spec"])
    except ValidationError:
        return
    assert crd_validation.validate(crd, admitted) == []
