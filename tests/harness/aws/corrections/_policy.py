"""The part of the IAM policy language the harness checks and evaluates: role trust policies
(STS AssumeRole, corrections/accounts.py) and model package group resource policies
(corrections/group_policies.py).

IAM JSON policy reference (IAM User Guide, "IAM JSON policy element reference"): a policy is
a JSON object with ``Version`` ("2012-10-17" or "2008-10-17") and ``Statement`` (one
statement or a list); a statement has ``Effect`` ("Allow" or "Deny"), ``Principal`` or
``NotPrincipal`` (required in resource-based policies, role trust policies included),
``Action`` or ``NotAction``, ``Resource`` or ``NotResource`` (required in resource-based
policies except trust policies, which may not have one: "Has prohibited field Resource"), and
an optional ``Condition`` block. IAM's own policy validation answers MalformedPolicyDocument
for a document that breaks these rules. The harness additionally requires ``Version``
(IAM defaults a missing one to 2008-10-17; SageMaker does not document what it accepts, and
a stricter check keeps the operator from relying on the default).

Evaluation follows IAM's policy evaluation logic: an explicit Deny wins, else an Allow of
a matching statement, else the request is implicitly denied. A statement matches when its
principal, action (case-insensitive, ``*``/``?`` wildcards), resource (case-sensitive, same
wildcards) and every condition match. ``"AWS"`` principals: ``"*"``, an account id or
``arn:aws:iam::ACCOUNT:root`` (every principal of that account), a user/role ARN (the role's
sessions, ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``, match its role ARN), or the
exact caller ARN. Condition operators evaluated: String*, Arn*, Bool and Null, with the
``IfExists`` suffix; a negated operator (``StringNotEquals``...) holds when the key is
absent from the request, the others do not ("If the key that you specify in a policy
condition is not present in the request context, the values do not match"). Numeric, Date,
IP address and Binary conditions are accepted in documents but never hold here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_LEVEL = {"Version", "Id", "Statement"}
_STATEMENT = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}
_PRINCIPAL_TYPES = {"AWS", "Service", "Federated", "CanonicalUser"}
_ACTION = re.compile(r"^(\*|[a-zA-Z0-9\-]+:[a-zA-Z0-9*?]+)$")
_EVALUATED_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "Bool",
    "Null",
}
_OTHER_OPERATORS = {
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
}
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ROOT = re.compile(r"^arn:aws[a-z\-]*:iam::(?P<account>[0-9]{12}):root$")
_ROLE = re.compile(r"^arn:aws[a-z\-]*:iam::(?P<account>[0-9]{12}):role/(?:.*/)?(?P<name>[^/]+)$")
_SESSION = re.compile(r"^arn:aws[a-z\-]*:sts::(?P<account>[0-9]{12}):assumed-role/(?P<name>[^/]+)/.+$")


class PolicyError(ValueError):
    """A malformed policy document; the message says what is wrong."""


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def load(text: Any, *, trust: bool = False) -> dict[str, Any]:
    """Parse and check a policy document (a trust policy when ``trust``)."""
    if isinstance(text, dict):
        document = text
    else:
        if not isinstance(text, str):
            raise PolicyError("the policy must be a JSON document")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise PolicyError(f"the policy is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError("the policy must be a JSON object")
    for key in document:
        if key not in _TOP_LEVEL:
            raise PolicyError(f"unknown policy element {key!r}")
    if "Version" not in document:
        raise PolicyError("the policy has no Version")
    if document["Version"] not in VERSIONS:
        raise PolicyError(f"Version must be one of {', '.join(VERSIONS)}, not {document['Version']!r}")
    if "Statement" not in document:
        raise PolicyError("the policy has no Statement")
    statements = as_list(document["Statement"])
    if not statements:
        raise PolicyError("Statement is empty")
    for index, statement in enumerate(statements):
        _check_statement(f"Statement[{index}]", statement, trust)
    return document


def _check_statement(where: str, statement: Any, trust: bool) -> None:
    if not isinstance(statement, dict):
        raise PolicyError(f"{where} must be a JSON object")
    for key in statement:
        if key not in _STATEMENT:
            raise PolicyError(f"{where} has an unknown element {key!r}")
    if "Effect" not in statement:
        raise PolicyError(f"{where} has no Effect")
    if statement["Effect"] not in ("Allow", "Deny"):
        raise PolicyError(f"{where}.Effect must be Allow or Deny, not {statement['Effect']!r}")
    _one_of(where, statement, "Principal", "NotPrincipal")
    for key in ("Principal", "NotPrincipal"):
        if key in statement:
            _check_principal(f"{where}.{key}", statement[key])
    _one_of(where, statement, "Action", "NotAction")
    for key in ("Action", "NotAction"):
        for action in _strings(f"{where}.{key}", statement[key]) if key in statement else []:
            if not _ACTION.match(action):
                raise PolicyError(f"{where}.{key}: {action!r} is not of the form service:action")
    if trust:
        for key in ("Resource", "NotResource"):
            if key in statement:
                raise PolicyError(f"{where} has the prohibited field {key} (a trust policy has no resource)")
    else:
        _one_of(where, statement, "Resource", "NotResource")
        for key in ("Resource", "NotResource"):
            if key in statement:
                _strings(f"{where}.{key}", statement[key])
    if "Condition" in statement:
        _check_condition(f"{where}.Condition", statement["Condition"])


def _one_of(where: str, statement: dict, key: str, negated: str) -> None:
    if key in statement and negated in statement:
        raise PolicyError(f"{where} has both {key} and {negated}")
    if key not in statement and negated not in statement:
        raise PolicyError(f"{where} has no {key}")


def _strings(where: str, value: Any) -> list[str]:
    values = as_list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{where} must be a non-empty string or list of strings")
    return values


def _check_principal(where: str, principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal:
        raise PolicyError(
            f'{where} must be "*" or an object such as {{"AWS": "arn:aws:iam::123456789012:root"}}'
        )
    for kind, values in principal.items():
        if kind not in _PRINCIPAL_TYPES:
            raise PolicyError(f"{where}: unknown principal type {kind!r}")
        for value in _strings(f"{where}.{kind}", values):
            if kind == "AWS" and not (
                value == "*" or _ACCOUNT.match(value) or value.startswith(("arn:aws:iam::", "arn:aws:sts::"))
            ):
                raise PolicyError(f"{where}.AWS: invalid principal {value!r}")


def _check_condition(where: str, condition: Any) -> None:
    if not isinstance(condition, dict):
        raise PolicyError(f"{where} must be a JSON object")
    for operator, tests in condition.items():
        base = _base_operator(operator)
        if base not in _EVALUATED_OPERATORS | _OTHER_OPERATORS:
            raise PolicyError(f"{where}: unknown condition operator {operator!r}")
        if not isinstance(tests, dict) or not tests:
            raise PolicyError(f"{where}.{operator} must be an object of condition keys")
        for key, expected in tests.items():
            if not all(isinstance(v, str | bool | int | float) for v in as_list(expected)):
                raise PolicyError(f"{where}.{operator}.{key}: values must be strings, numbers or booleans")


def _base_operator(operator: str) -> str:
    base = operator.split(":", 1)[1] if operator.startswith(("ForAllValues:", "ForAnyValue:")) else operator
    return base.removesuffix("IfExists")


# -- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What IAM evaluates: who asks, for which action on which resource, with which context."""

    principal_arn: str
    account: str
    action: str
    resource: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)


def decide(document: dict[str, Any], request: Request) -> str | None:
    """``"Deny"`` (an explicit deny), ``"Allow"``, or None (no statement allows: implicit deny)."""
    context = {k.lower(): v for k, v in request.context.items() if v is not None}
    allowed = False
    for statement in as_list(document["Statement"]):
        if _matches(statement, request, context):
            if statement["Effect"] == "Deny":
                return "Deny"
            allowed = True
    return "Allow" if allowed else None


def _matches(statement: dict, request: Request, context: dict[str, str]) -> bool:
    if "Principal" in statement:
        if not _principal_matches(statement["Principal"], request):
            return False
    elif _principal_matches(statement["NotPrincipal"], request):
        return False
    if "Action" in statement:
        if not any(glob(a, request.action, case=False) for a in as_list(statement["Action"])):
            return False
    elif any(glob(a, request.action, case=False) for a in as_list(statement["NotAction"])):
        return False
    if request.resource is not None:
        if "Resource" in statement:
            if not any(glob(r, request.resource, case=True) for r in as_list(statement["Resource"])):
                return False
        elif "NotResource" in statement and any(
            glob(r, request.resource, case=True) for r in as_list(statement["NotResource"])
        ):
            return False
    return all(
        _condition_holds(operator, key.lower(), as_list(expected), context)
        for operator, tests in statement.get("Condition", {}).items()
        for key, expected in tests.items()
    )


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    return any(_aws_principal_matches(value, request) for value in as_list(principal.get("AWS", [])))


def _aws_principal_matches(value: str, request: Request) -> bool:
    if value == "*":
        return True
    if _ACCOUNT.match(value):
        return value == request.account
    root = _ROOT.match(value)
    if root:
        return root.group("account") == request.account
    if value == request.principal_arn:
        return True
    role, session = _ROLE.match(value), _SESSION.match(request.principal_arn)
    return bool(
        role
        and session
        and role.group("account") == session.group("account")
        and role.group("name") == session.group("name")
    )


def _condition_holds(operator: str, key: str, expected: list, context: dict[str, str]) -> bool:
    base = _base_operator(operator)
    value = context.get(key)
    if base == "Null":
        return (value is None) == (str(expected[0]).lower() == "true")
    negated = "Not" in base
    if value is None:
        return operator.endswith("IfExists") or negated
    expected = [str(e).lower() if isinstance(e, bool) else str(e) for e in expected]
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        hit = (
            any(e == value for e in expected)
            if base.startswith("String")
            else any(glob(e, value, case=True) for e in expected)
        )
    elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = any(e.lower() == value.lower() for e in expected)
    elif base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        hit = any(glob(e, value, case=True) for e in expected)
    elif base == "Bool":
        hit = any(e.lower() == value.lower() for e in expected)
    else:
        return False  # not evaluated by the harness (see the module docstring)
    return not hit if negated else hit


def glob(pattern: str, value: str, case: bool) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` any one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE | re.DOTALL) is not None
