"""The apiserver behaviour tests/harness/crd_validation.py emulates (the Kubernetes
emulator relies on it for every create and update)."""

from __future__ import annotations

from typing import Any

from harness.crd_validation import apply_defaults, evaluate, pattern_problem, prune, validate

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "x-kubernetes-validations": [
        {"rule": "self.metadata.name != 'forbidden'", "message": "name is forbidden"}
    ],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.size >= oldSelf.size", "message": "size cannot shrink", "fieldPath": ".size"},
                {
                    "rule": "!has(self.size) || self.size != 13",
                    "messageExpression": "'unlucky size ' + string(self.size)",
                },
            ],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "note": {"type": "string", "nullable": True, "maxLength": 5},
                "labels": {
                    "type": "object",
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string", "pattern": "^\\p{L}+$"},
                },
                "items": {
                    "type": "array",
                    "maxItems": 3,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "x-kubernetes-validations": [
                            {"rule": "self == oldSelf", "message": "items are immutable"}
                        ],
                        "properties": {
                            "name": {"type": "string"},
                            "value": {"type": "string", "default": "v"},
                        },
                    },
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    },
}
CRD = {"spec": {"versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": SCHEMA}}]}}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"}, "spec": spec}


def reasons(found: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(c["reason"], c["field"]) for c in found}


def test_prune_drops_unknown_fields_and_nulls_but_keeps_preserved_and_metadata() -> None:
    given = obj(
        size=2, bogus=1, mode=None, note=None, free={"any": {"thing": 1}}, items=[{"name": "a", "extra": 1}]
    )
    given["metadata"]["labels"] = {"k": "v"}
    given["top"] = 1
    pruned = prune(CRD, given)
    assert pruned == {
        **obj(size=2, note=None, free={"any": {"thing": 1}}, items=[{"name": "a"}]),
        "metadata": {"name": "x", "labels": {"k": "v"}},
    }
    assert "bogus" in given["spec"], "the input is not modified"


def test_defaults_fill_missing_fields_at_every_level() -> None:
    assert apply_defaults(CRD, obj(items=[{"name": "a"}, {"name": "b", "value": "w"}])) == obj(
        size=1, items=[{"name": "a", "value": "v"}, {"name": "b", "value": "w"}]
    )


def test_schema_keywords() -> None:
    found = validate(
        CRD,
        obj(
            size=30,
            mode="c",
            note="toolong",
            labels={"a": "x", "b": "y", "c": "1"},
            items=[{"name": "a"}, {"name": "a"}, {"value": "x"}, {"name": "d"}],
        ),
    )
    assert reasons(found) == {
        ("FieldValueInvalid", "spec.size"),
        ("FieldValueNotSupported", "spec.mode"),
        ("FieldValueTooLong", "spec.note"),
        ("FieldValueTooMany", "spec.labels"),
        ("FieldValueInvalid", "spec.labels.c"),
        ("FieldValueTooMany", "spec.items"),
        ("FieldValueDuplicate", "spec.items[1]"),
        ("FieldValueRequired", "spec.items[2].name"),
    }
    assert validate(CRD, obj(note=None, labels={"\u00e9t\u00e9": "\u00e9t\u00e9"})) == []
    assert reasons(validate(CRD, {"metadata": {"name": "x"}})) == {("FieldValueRequired", "spec")}
    # The apiserver runs no CEL rule when a value has the wrong type, and says so.
    assert reasons(validate(CRD, obj(size="2"))) == {
        ("FieldValueTypeInvalid", "spec.size"),
        ("FieldValueInvalid", ""),
    }


def test_rules_with_message_expression_and_root_rules() -> None:
    found = validate(CRD, {**obj(size=13), "metadata": {"name": "forbidden"}})
    assert {(c["field"], c["message"].removeprefix('Invalid value: "object": ')) for c in found} == {
        ("", "name is forbidden"),
        ("spec", "unlucky size 13"),
    }


def test_transition_rules_run_on_update_only_and_pair_list_map_items_by_key() -> None:
    old = obj(size=5, items=[{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    assert validate(CRD, obj(size=4)) == []
    assert reasons(validate(CRD, obj(size=4), old)) == {("FieldValueInvalid", "spec.size")}
    reordered = obj(size=5, items=[{"name": "b", "value": "2"}, {"name": "a", "value": "1"}, {"name": "c"}])
    assert validate(CRD, reordered, old) == []
    changed = obj(size=5, items=[{"name": "b", "value": "3"}])
    found = validate(CRD, changed, old)
    assert (
        reasons(found) == {("FieldValueInvalid", "spec.items[0]")}
        and "items are immutable" in found[0]["message"]
    )


def test_cel_evaluation() -> None:
    # celpy answers its own BoolType: equal to True, not the same object
    assert evaluate("[has(self.a), has(self.b)].filter(x, x).size() == 1", {"a": 1}) == True  # noqa: E712
    assert evaluate("self == oldSelf", {"a": [1]}, {"a": [1]}) == True  # noqa: E712


def test_pattern_problem_follows_re2() -> None:
    assert pattern_problem(r"^\p{L}+$") is None
    assert pattern_problem(r"^a(?<!-)$")
    assert pattern_problem(r"(a)\1")
    assert pattern_problem(r"[a-")
    assert pattern_problem(r"a{2}+") and pattern_problem(r"a*+")
