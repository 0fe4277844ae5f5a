"""Generates the CustomResourceDefinitions in crds/ from the API types.

    python -m model_registry_operator.api.crdgen crds      (what `make crds` runs)

The pydantic JSON schema is turned into a structural schema as the apiserver requires:
references inlined, `X | None` reduced to X (optional = not required), and only the
OpenAPI keywords a CRD accepts kept. Constraints the CRD cannot express (patterns on map
keys, look-around) stay in pydantic; the operator checks them before calling SageMaker.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .. import GROUP, VERSION
from . import KINDS, Kind
from .cel import VALIDATIONS, rule

HEADER = "# Generated from operator/model_registry_operator/api by `make crds`. Do not edit.\n"
CATEGORIES = ["mlops", "sagemaker"]

# Keywords of a structural schema that the types produce; everything else (title,
# propertyNames, additionalProperties: false, markers) is dropped.
KEPT_KEYWORDS = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minProperties",
    "maxProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    # set by a type itself: an object with declared properties that keeps its other keys as
    # written (the group's resource policy), or a node of any JSON (its Statement)
    "x-kubernetes-preserve-unknown-fields",
    VALIDATIONS,
)

SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MODEL_NAME = r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$"


def _name_rule(field: str, pattern: str, what: str) -> dict[str, Any]:
    # The SageMaker name defaults to metadata.name, which Kubernetes allows to hold dots and
    # to be 253 characters long; refuse at admission a name SageMaker would refuse later.
    return rule(
        f"has(self.spec.{field}) || (size(self.metadata.name) <= 63 && self.metadata.name.matches('{pattern}'))",
        f"metadata.name is not a valid {what} name (at most 63 letters, digits and hyphens); set spec.{field}",
    )


READY = {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
# shown by default: a Stalled object's reason (ChecksumMismatch, AlreadyExists) without -o wide
REASON = {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'}
AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _arn(priority: int) -> dict[str, Any]:
    column = {"name": "ARN", "type": "string", "jsonPath": ".status.arn"}
    return {**column, "priority": priority} if priority else column


PRESENTATION: dict[str, dict[str, Any]] = {
    "ModelPackageGroup": {
        "description": "A SageMaker model package group: the versions of one model.",
        "root_rules": [_name_rule("modelPackageGroupName", SAGEMAKER_NAME, "model package group")],
        "columns": [
            READY,
            {"name": "Status", "type": "string", "jsonPath": ".status.modelPackageGroupStatus"},
            REASON,
            _arn(1),
            AGE,
        ],
    },
    "ModelPackage": {
        "description": "A SageMaker model package: a registered version of a model (or an unversioned package).",
        "root_rules": [],
        "columns": [
            READY,
            {"name": "Version", "type": "integer", "jsonPath": ".status.modelPackageVersion"},
            {"name": "Approval", "type": "string", "jsonPath": ".status.modelApprovalStatus"},
            # who made the last approval change (approvalHistory's newest entry): a field manager
            # or an IAM identity; a printer column's JSONPath cannot index a list from its end
            {"name": "Approval By", "type": "string", "jsonPath": ".status.lastApprovalChangedBy"},
            {"name": "Status", "type": "string", "jsonPath": ".status.modelPackageStatus"},
            REASON,
            _arn(1),
            AGE,
        ],
    },
    "Model": {
        "description": "A SageMaker model, as used by endpoints and batch transform.",
        "root_rules": [_name_rule("modelName", MODEL_NAME, "SageMaker model")],
        "columns": [READY, REASON, _arn(0), AGE],
    },
}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema node as a structural OpenAPI v3 schema."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        return _merge(structural(target, defs), schema)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            choices = [choice for choice in schema[combinator] if choice.get("type") != "null"]
            if len(choices) != 1:
                raise ValueError(f"unions have no structural schema: {schema}")
            return _merge(structural(choices[0], defs), schema)

    node: dict[str, Any] = {key: schema[key] for key in KEPT_KEYWORDS if key in schema}
    if node.get("default", ...) is None or node.get("default") == []:
        del node["default"]
    if "enum" in node:
        node["type"] = "string"
    if "const" in schema:
        node.update(type="string", enum=[schema["const"]])
    if "properties" in schema:
        node["type"] = "object"
        node["properties"] = {name: structural(prop, defs) for name, prop in schema["properties"].items()}
        if schema.get("required"):
            node["required"] = list(schema["required"])
    elif schema.get("type") == "object":
        values = schema.get("additionalProperties")
        if "patternProperties" in schema:
            # A map with constrained keys: the CRD cannot check keys (the operator does).
            (values,) = schema["patternProperties"].values()
        if isinstance(values, dict):
            node["additionalProperties"] = structural(values, defs)
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in schema:
        node["items"] = structural(schema["items"], defs)
    return _ordered(node)


def _annotations(schema: dict[str, Any]) -> dict[str, Any]:
    """What a field adds to its type: description, default, rules, list markers."""
    extra: dict[str, Any] = {
        key: schema[key]
        for key in ("description", "default", "x-kubernetes-list-type", "x-kubernetes-list-map-keys")
        if key in schema and schema[key] is not None
    }
    if "pattern" in schema:
        extra["pattern"] = schema["pattern"]
    return extra


def _merge(node: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    """A type's schema with what its field adds; rules from both levels apply."""
    merged = {**node, **_annotations(field)}
    rules = node.get(VALIDATIONS, []) + field.get(VALIDATIONS, [])
    if rules:
        merged[VALIDATIONS] = rules
    return _ordered(merged)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    if VALIDATIONS in node:
        keys = ("rule", "message", "messageExpression", "fieldPath", "reason")
        node[VALIDATIONS] = [{key: item[key] for key in keys if key in item} for item in node[VALIDATIONS]]
    order = [
        "description",
        "type",
        "format",
        *KEPT_KEYWORDS,
        "required",
        "properties",
        "additionalProperties",
        "items",
    ]
    return {
        key: node[key]
        for key in sorted(node, key=lambda key: order.index(key) if key in order else len(order))
    }


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return structural(schema, schema.get("$defs", {}))


def crd(kind: Kind) -> dict[str, Any]:
    presentation = PRESENTATION[kind.kind]
    spec_schema = model_schema(kind.spec)
    spec_schema.setdefault("description", f"Desired state of the {kind.kind}.")
    status_schema = model_schema(kind.status)
    status_schema["description"] = f"Observed state of the {kind.kind}, written by the operator."
    root: dict[str, Any] = {
        "description": presentation["description"],
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            # Bounding the name keeps the cost of the rules reading it low; 253 is Kubernetes' own limit.
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 253}}},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if presentation["root_rules"]:
        root[VALIDATIONS] = presentation["root_rules"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": CATEGORIES,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": presentation["columns"],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    return HEADER + yaml.safe_dump(crd(kind), sort_keys=False, width=120, allow_unicode=True)


def render_all() -> dict[str, str]:
    """File name -> content of every CRD file."""
    return {f"{kind.plural}.yaml": render(kind) for kind in KINDS.values()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m model_registry_operator.api.crdgen OUTPUT_DIRECTORY", file=sys.stderr)
        return 2
    directory = Path(args[0])
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (directory / name).write_text(text)
        print(f"wrote {directory / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
