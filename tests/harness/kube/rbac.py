"""Compare the permissions an operator used (from the request log) with RBAC rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def rules_for(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """Minimal PolicyRules granting exactly `permissions`: one rule per group and resource."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for group, resource, verb in permissions:
        verbs.setdefault((group, resource), set()).add(verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(found)}
        for (group, resource), found in sorted(verbs.items())
    ]


def _allows(rule: dict[str, Any], permission: Permission) -> bool:
    group, resource, verb = permission
    groups, resources, verbs = (
        rule.get("apiGroups") or [],
        rule.get("resources") or [],
        rule.get("verbs") or [],
    )
    return (
        (group in groups or "*" in groups)
        and (resource in resources or "*" in resources)
        and (verb in verbs or "*" in verbs)
        and not rule.get("resourceNames")
    )


def missing(permissions: Iterable[Permission], rules: Iterable[dict[str, Any]]) -> set[Permission]:
    """The permissions no rule grants (rules limited to resourceNames are not counted)."""
    rule_list = list(rules)
    return {p for p in permissions if not any(_allows(rule, p) for rule in rule_list)}
