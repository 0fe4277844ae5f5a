"""Remembered CEL outcomes (harness.crd_validation) answer exactly as a fresh evaluation:
the same causes on repeat, per object, and for rules narrowed to the fields they read."""

from __future__ import annotations

from harness.crd_validation import _fields_read, validate


def crd(rules: list[dict]) -> dict:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": rules,
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string"},
                    "items": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    return {"spec": {"versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": schema}}]}}


def obj(**spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}, "spec": spec}


IMMUTABLE_A = {
    "rule": "has(self.a) == has(oldSelf.a) && (!has(self.a) || self.a == oldSelf.a)",
    "message": "a is immutable",
}


def test_a_transition_rule_narrowed_to_its_field_still_sees_that_field_change() -> None:
    definition = crd([IMMUTABLE_A])
    for _ in range(2):  # the second time from memory
        assert validate(definition, obj(a="1", b="x"), obj(a="1", b="y")) == []
        causes = validate(definition, obj(a="2", b="x"), obj(a="1", b="x"))
        assert [c["field"] for c in causes] == ["spec"] and "a is immutable" in causes[0]["message"]
        assert validate(definition, obj(b="x"), obj(a="1", b="x")) != []  # removing it counts too


def test_a_remembered_failure_is_reported_again_with_the_same_message() -> None:
    definition = crd([{"rule": "self.a.startsWith('z')"}])  # no such member when a is absent: an error
    first = validate(definition, obj(b="x"))
    assert first and first == validate(definition, obj(b="x")) == validate(definition, obj(b="other"))
    assert validate(definition, obj(a="zz")) == []


def test_rules_using_the_whole_value_are_evaluated_on_the_whole_value() -> None:
    definition = crd([{"rule": "size(self) <= 2", "message": "too many fields"}])
    assert validate(definition, obj(a="1", b="2")) == []
    assert validate(definition, obj(a="1", b="2", items=["x"])) != []


def test_the_fields_a_rule_reads() -> None:
    assert _fields_read(IMMUTABLE_A["rule"]) == {"self": ("a",), "oldSelf": ("a",)}
    assert _fields_read("self.items.all(i, i.self != '')") == {"self": ("items",), "oldSelf": ()}
    assert _fields_read("size(self) > 0")["self"] is None
    assert _fields_read("self['a'] == 'x'")["self"] is None
    assert _fields_read("self == oldSelf") == {"self": None, "oldSelf": None}
