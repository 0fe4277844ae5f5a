"""CEL `x-kubernetes-validations` rules the CRDs carry, written next to the types they guard.

The apiserver checks them at admission; pydantic validators check the same one-of rules
again in the operator so a spec that bypassed admission (an old CRD) is still refused.
"""

from __future__ import annotations

from typing import Any

VALIDATIONS = "x-kubernetes-validations"


def rule(
    expression: str, message: str, field_path: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    validation: dict[str, Any] = {"rule": expression, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    if reason:
        validation["reason"] = reason
    return validation


def exactly_one_of(*fields: str) -> dict[str, Any]:
    listed = ", ".join(fields[:-1]) + f" or {fields[-1]}"
    checks = ", ".join(f"has(self.{field})" for field in fields)
    return rule(f"[{checks}].filter(x, x).size() == 1", f"exactly one of {listed} must be set")


def at_most_one_of(*fields: str) -> dict[str, Any]:
    listed = ", ".join(fields[:-1]) + f" or {fields[-1]}"
    checks = ", ".join(f"has(self.{field})" for field in fields)
    return rule(f"[{checks}].filter(x, x).size() <= 1", f"set at most one of {listed}")


def immutable(field: str, why: str) -> dict[str, Any]:
    """`field` (a direct child of the object carrying the rule) may not be set, changed or
    removed after creation. A rule on the field itself would not run when the field is
    added or removed, so the rule lives on the parent and compares presence too."""
    return rule(
        f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"{field} is immutable: {why}",
        field_path=f".{field}",
    )


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    """json_schema_extra for a model carrying these rules."""
    return {VALIDATIONS: list(rules)}
