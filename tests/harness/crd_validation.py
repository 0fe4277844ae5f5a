"""What the apiserver does with a custom resource on create/update, from the CRD alone:
structural pruning, defaulting, OpenAPI v3 schema validation and CEL
`x-kubernetes-validations` (with cel-python).

Causes look like the apiserver's `metav1.StatusCause`s in a 422 Invalid answer:
`{"reason": "FieldValueInvalid", "field": "spec.modelName", "message": "Invalid value: ..."}`.

Patterns are matched with the Rust regex engine behind pydantic-core: like Go's RE2 it has
no look-around or back-references, knows `\\p{L}`, and searches (is not anchored).
Transition rules (those using `oldSelf`) run only on update and only where the old value
can be paired with the new one: object properties, map values, and items of
`x-kubernetes-list-type: map` lists by their keys -- as the apiserver does.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from functools import cache
from typing import Annotated, Any

import celpy
import lark
from pydantic import StringConstraints, TypeAdapter, ValidationError

_MISSING = object()
_ENV = celpy.Environment()


def _version_schema(crd: dict[str, Any], obj: dict[str, Any] | None = None) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    wanted = (obj or {}).get("apiVersion", "").rpartition("/")[2]
    chosen = next((v for v in versions if v["name"] == wanted), None)
    chosen = chosen or next((v for v in versions if v.get("storage")), versions[0])
    return chosen["schema"]["openAPIV3Schema"]


# --- Pruning and defaulting --------------------------------------------------------------------


def prune(crd: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` without the fields the schema does not know (structural pruning) and
    without nulls where the schema is not nullable (the apiserver drops those too)."""
    schema = _version_schema(crd, obj)
    pruned = _prune(schema, copy.deepcopy(obj), root=True)
    return pruned


def _prune(schema: dict[str, Any], value: Any, root: bool = False) -> Any:
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        values = schema.get("additionalProperties")
        result = {}
        for key, item in value.items():
            if root and key in ("apiVersion", "kind", "metadata"):
                result[key] = item
                continue
            sub = (properties or {}).get(key) if properties is not None else None
            if sub is None and isinstance(values, dict):
                sub = values
            if sub is None:
                if schema.get("x-kubernetes-preserve-unknown-fields") or values is True:
                    result[key] = item
                continue
            if item is None and not sub.get("nullable"):
                continue
            result[key] = _prune(sub, item)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], item) for item in value]
    return value


def apply_defaults(crd: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with the schema's `default`s filled in where a field is missing."""
    return _default(_version_schema(crd, obj), copy.deepcopy(obj))


def _default(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _default(sub, value[key])
        if isinstance(schema.get("additionalProperties"), dict):
            for key in value:
                if key not in (schema.get("properties") or {}):
                    value[key] = _default(schema["additionalProperties"], value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default(schema["items"], item) for item in value]
    return value


# --- Validation --------------------------------------------------------------------------------


def validate(
    crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[dict[str, str]]:
    """Causes for every violation of the CRD's schema and CEL rules; empty when valid.
    `old` is the stored object on update (enables transition rules)."""
    schema = _version_schema(crd, obj)
    causes: list[dict[str, str]] = []
    _validate(schema, obj, _MISSING, "", causes, rules=False)
    # As the apiserver: CEL rules run only when no value has the wrong type.
    if any(cause["reason"] == "FieldValueTypeInvalid" for cause in causes):
        causes.append(
            _cause(
                "FieldValueInvalid",
                "",
                "some validation rules were not checked because the object was "
                "invalid; correct the existing errors to complete validation",
            )
        )
    else:
        _validate(schema, obj, old if old is not None else _MISSING, "", causes, rules=True)
    return causes


def _cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "field": field, "message": message}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _validate(
    schema: dict[str, Any], value: Any, old: Any, path: str, causes: list[dict[str, str]], rules: bool
) -> None:
    """One pass over the value: schema keywords (rules=False) or CEL rules (rules=True)."""
    field = path
    if value is None:
        if not schema.get("nullable") and not rules:
            causes.append(
                _cause(
                    "FieldValueTypeInvalid",
                    field,
                    f'Invalid value: "null": {field} in body must be of type {schema.get("type")}: "null"',
                )
            )
        return
    expected = schema.get("type")
    if expected and not _TYPES[expected](value):
        if not rules:
            causes.append(
                _cause(
                    "FieldValueTypeInvalid",
                    field,
                    f"Invalid value: {_shown(value)}: {field} in body must be of type {expected}: {_type_name(value)}",
                )
            )
        return
    if not rules:
        _check_keywords(schema, value, field, causes)

    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in () if rules else schema.get("required") or ():
            if name not in value:
                causes.append(_cause("FieldValueRequired", _child(path, name), "Required value"))
        values_schema = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None and isinstance(values_schema, dict):
                sub = values_schema
            if sub is None:
                continue  # unknown fields are pruned before validation
            old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            _validate(sub, item, old_item, _child(path, key), causes, rules)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        old_items = _correlate(schema, value, old)
        for index, item in enumerate(value):
            _validate(schema["items"], item, old_items[index], f"{path}[{index}]", causes, rules)

    if rules:
        _check_rules(schema, value, old, path, causes)


def _type_name(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)


def _check_keywords(schema: dict[str, Any], value: Any, field: str, causes: list[dict[str, str]]) -> None:
    shown = _shown(value)
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(item) for item in schema["enum"])
        causes.append(
            _cause(
                "FieldValueNotSupported", field, f"Unsupported value: {shown}: supported values: {supported}"
            )
        )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                _cause("FieldValueTooLong", field, f"Too long: may not be longer than {schema['maxLength']}")
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {shown}: {field} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "pattern" in schema and not _matches(schema["pattern"], value):
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {shown}: {field} in body should match '{schema['pattern']}'",
                )
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                _cause(
                    "FieldValueTooMany",
                    field,
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                )
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {len(value)}: {field} in body should have at least {schema['minItems']} items",
                )
            )
        causes.extend(_list_duplicates(schema, value, field))
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(
                _cause(
                    "FieldValueTooMany",
                    field,
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {len(value)}: {field} in body should have at least {schema['minProperties']} properties",
                )
            )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {shown}: {field} in body should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(
                _cause(
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {shown}: {field} in body should be less than or equal to {schema['maximum']}",
                )
            )


def _list_keys(schema: dict[str, Any], item: Any) -> Any:
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if not isinstance(item, dict):
        return None
    return tuple(json.dumps(item.get(key), sort_keys=True) for key in keys)


def _list_duplicates(schema: dict[str, Any], value: list[Any], field: str) -> list[dict[str, str]]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("map", "set"):
        return []
    seen: set[Any] = set()
    causes = []
    for index, item in enumerate(value):
        if list_type == "map" and not isinstance(item, dict):
            continue  # a type error, reported on its own
        key = _list_keys(schema, item) if list_type == "map" else json.dumps(item, sort_keys=True)
        if key in seen:
            if list_type == "map":
                shown = (
                    "{"
                    + ", ".join(
                        f'"{name}":{json.dumps(item.get(name))}'
                        for name in schema.get("x-kubernetes-list-map-keys") or []
                    )
                    + "}"
                )
            else:
                shown = json.dumps(item)
            causes.append(_cause("FieldValueDuplicate", f"{field}[{index}]", f"Duplicate value: {shown}"))
        seen.add(key)
    return causes


def _correlate(schema: dict[str, Any], value: list[Any], old: Any) -> list[Any]:
    """The old item paired with each new item: only for list-type map (by key)."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return [_MISSING] * len(value)
    by_key = {_list_keys(schema, item): item for item in old}
    return [by_key.get(_list_keys(schema, item), _MISSING) for item in value]


@cache
def _pattern(pattern: str) -> TypeAdapter:
    return TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])


def _matches(pattern: str, value: str) -> bool:
    try:
        _pattern(pattern).validate_python(value)
    except ValidationError:
        return False
    return True


# Perl syntax RE2 refuses: look-ahead/behind, back-references, atomic groups, possessive quantifiers.
_NON_RE2 = re.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\\k<|\\g\{|(?:[*+?]|\{\d+(?:,\d*)?\})\+")


def pattern_problem(pattern: str) -> str | None:
    """Why Go's RE2 (the apiserver) would refuse `pattern`, or None. Unlike Python's `re`,
    RE2 knows Unicode classes such as \\p{L}; the Rust engine used here does too."""
    found = _NON_RE2.search(re.sub(r"\\\\", "", pattern))
    if found:
        return f"error parsing regexp: invalid or unsupported Perl syntax: `{found.group(0)}`"
    try:
        _pattern(pattern)
    except Exception as error:  # pydantic wraps the engine's compile error
        return f"error parsing regexp: {str(error).splitlines()[-1].strip()}"
    return None


# --- CEL ---------------------------------------------------------------------------------------


@cache
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


@cache
def uses_old_self(expression: str) -> bool:
    return re.search(r"\boldSelf\b", expression) is not None


def evaluate(expression: str, self_value: Any, old_value: Any = _MISSING) -> Any:
    """The Python value of a CEL expression with `self` (and `oldSelf`) bound; raises
    CELEvalError when the expression fails to evaluate."""
    activation = {"self": celpy.json_to_cel(self_value)}
    if old_value is not _MISSING:
        activation["oldSelf"] = celpy.json_to_cel(old_value)
    result = _program(expression).evaluate(activation)
    if isinstance(result, celpy.CELEvalError):
        raise result
    return result


# Outcomes of CEL evaluations by (expression, self as JSON, oldSelf as JSON or None). A rule
# is a pure function of those, and writes re-check mostly unchanged values: a status or
# metadata write re-runs every spec rule on the same spec. Evaluating with cel-python is
# what admission costs (milliseconds per rule); this turns a repeat into a dict look-up.
_OUTCOMES: dict[tuple[str, str, str | None], tuple[bool, Any]] = {}
_OUTCOMES_LIMIT = 50_000
_OUTCOMES_LOCK = threading.Lock()


@cache
def _fields_read(expression: str) -> dict[str, tuple[str, ...] | None]:
    """For `self` and `oldSelf`: the fields `expression` reads when it reads nothing else of
    the variable (only `self.field`, `has(self.field)`), or None (it uses the whole value)."""
    found: dict[str, set[str] | None] = {"self": set(), "oldSelf": set()}

    def walk(tree: Any, ancestors: list[Any]) -> None:
        for index, child in enumerate(tree.children):
            if isinstance(child, lark.Tree):
                walk(child, ancestors + [tree])
            elif child in found and found[child] is not None:
                # `name.field` parses as member_dot(member(primary(ident(name))), field)
                chain = ancestors[-3:] + [tree]
                if (
                    [t.data for t in chain] == ["member_dot", "member", "primary", "ident"]
                    and chain[0].children[0] is chain[1]
                    and isinstance(chain[0].children[1], lark.Token)
                ):
                    found[child].add(chain[0].children[1].value)
                elif not (tree.data in ("member_dot", "member_dot_arg") and index == 1):  # not a field name
                    found[child] = None  # the whole value is used

    walk(_ENV.compile(expression), [])
    return {name: None if fields is None else tuple(sorted(fields)) for name, fields in found.items()}


class _Bindings:
    """`self` and `oldSelf` for the rules of one schema node, as each rule sees them.

    A rule that reads only some fields of an object (`self.x`, `has(self.x)`) is given and
    keyed by just those fields: the result is the same, and it is shared by every object
    with the same values there (the immutability rules of a spec, for one). Each view is
    keyed by its JSON text (not sorted: the same text means the very same input) and
    converted for cel-python once, when needed."""

    def __init__(self, value: Any, old: Any) -> None:
        self._values = {"self": value, "oldSelf": old}
        self._views: dict[tuple[str, tuple[str, ...] | None], list[Any]] = {}

    def _view(self, name: str, expression: str) -> list[Any]:
        """[value, JSON text, cel-python value or _MISSING] of `name` as `expression` reads it."""
        fields = _fields_read(expression)[name]
        value = self._values[name]
        if not isinstance(value, dict):
            fields = None
        view = self._views.get((name, fields))
        if view is None:
            if fields is not None:
                value = {field: value[field] for field in fields if field in value}
            view = self._views[(name, fields)] = [value, json.dumps(value), _MISSING]
        return view

    @staticmethod
    def _cel(view: list[Any]) -> Any:
        if view[2] is _MISSING:
            view[2] = celpy.json_to_cel(view[0])
        return view[2]

    def evaluate(self, expression: str, transition: bool) -> Any:
        """As `evaluate(expression, self, oldSelf if transition)`: the same result or error, remembered."""
        self_view = self._view("self", expression)
        old_view = self._view("oldSelf", expression) if transition else None
        key = (expression, self_view[1], old_view[1] if old_view else None)
        outcome = _OUTCOMES.get(key)
        if outcome is None:
            activation = {"self": self._cel(self_view)}
            if old_view is not None:
                activation["oldSelf"] = self._cel(old_view)
            try:
                result = _program(expression).evaluate(activation)
                outcome = (not isinstance(result, celpy.CELEvalError), result)
            except (celpy.CELEvalError, TypeError, KeyError) as error:
                outcome = (False, error)
            with _OUTCOMES_LOCK:  # the emulator's thread and a test's may validate at once
                if len(_OUTCOMES) >= _OUTCOMES_LIMIT:
                    _OUTCOMES.pop(next(iter(_OUTCOMES)), None)  # the oldest first
                _OUTCOMES[key] = outcome
        succeeded, result = outcome
        if not succeeded:
            raise result.with_traceback(None)
        return result


def _check_rules(
    schema: dict[str, Any], value: Any, old: Any, path: str, causes: list[dict[str, str]]
) -> None:
    validations = schema.get("x-kubernetes-validations")
    if not validations:
        return
    bindings = _Bindings(value, old)
    for validation in validations:
        expression = validation["rule"]
        transition = uses_old_self(expression)
        if transition and old is _MISSING:
            continue
        field = path
        if validation.get("fieldPath"):
            field = path + validation["fieldPath"] if path else validation["fieldPath"].lstrip(".")
        try:
            passed = bindings.evaluate(expression, transition)
        except (celpy.CELEvalError, TypeError, KeyError) as error:  # apiserver: an Invalid cause
            causes.append(
                _cause("FieldValueInvalid", field, f"Invalid value: {_shown(value)}: {expression}: {error}")
            )
            continue
        if passed is True or passed == celpy.celtypes.BoolType(True):
            continue
        message = validation.get("message") or f"failed rule: {expression}"
        if validation.get("messageExpression"):
            try:
                message = str(bindings.evaluate(validation["messageExpression"], transition))
            except celpy.CELEvalError:
                pass  # the apiserver falls back to message
        causes.append(
            _cause(
                validation.get("reason") or "FieldValueInvalid",
                field,
                f"Invalid value: {_shown(value)}: {message}",
            )
        )
