"""Every field of the API types that maps to a SageMaker member carries exactly the
constraints of botocore's SageMaker service model (the reference, read independently of the
types here): lengths, patterns, enums, list and map sizes, ranges, required members."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_registry_operator.api import KINDS, ApiModel
from model_registry_operator.api.common import (
    JSON_DOCUMENT,
    PATTERN_SPELLINGS,
    UNBOUNDED_LIST_MAX,
    UNBOUNDED_STRING_MAX,
    anchored,
    api_member_name,
)

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")

# Members botocore requires that the types leave optional, with the reason.
OPTIONAL_ON_PURPOSE = {
    ("CreateModelPackageGroupInput", "ModelPackageGroupName"): "defaults to metadata.name",
    ("CreateModelInput", "ModelName"): "defaults to metadata.name",
}

# Issue 2 lists these members per kind; the types must cover all of them.
REQUIRED_COVERAGE = {
    "ModelPackageGroup": ["modelPackageGroupName", "modelPackageGroupDescription", "tags"],
    "ModelPackage": [
        "inferenceSpecification",
        "modelPackageDescription",
        "modelApprovalStatus",
        "approvalDescription",
        "customerMetadataProperties",
        "additionalInferenceSpecifications",
        "certifyForMarketplace",
        "sourceAlgorithmSpecification",
        "validationSpecification",
        "metadataProperties",
        "modelMetrics",
        "domain",
        "task",
        "samplePayloadUrl",
        "tags",
        "modelPackageGroupName",
        "modelPackageName",
    ],
    "Model": [
        "primaryContainer",
        "containers",
        "executionRoleArn",
        "enableNetworkIsolation",
        "vpcConfig",
        "inferenceExecutionConfig",
        "tags",
        "modelName",
    ],
}
CONTAINER_COVERAGE = [
    "image",
    "imageDigest",
    "modelDataUrl",
    "containerHostname",
    "environment",
    "framework",
    "frameworkVersion",
    "nearestModelName",
    "productId",
    "modelInput",
]
INFERENCE_SPEC_COVERAGE = [
    "containers",
    "supportedContentTypes",
    "supportedResponseMIMETypes",
    "supportedRealtimeInferenceInstanceTypes",
    "supportedTransformInstanceTypes",
]


def _all_models() -> dict[str, type[ApiModel]]:
    found: dict[str, type[ApiModel]] = {}
    pending = list(ApiModel.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


MODELS = _all_models()
API_MODELS = [cls for cls in MODELS.values() if cls.botocore_shapes()]


def _field_schema(cls: type[ApiModel], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = cls.model_json_schema(mode="validation")
    return schema["properties"][name], schema.get("$defs", {})


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Strip `X | None` and follow $ref, keeping field-level keywords."""
    if "anyOf" in schema:
        (choice,) = [c for c in schema["anyOf"] if c.get("type") != "null"]
        return _resolve({**{k: v for k, v in schema.items() if k != "anyOf"}, **choice}, defs)
    return schema


def _compare(shape: Any, schema: dict[str, Any], defs: dict[str, Any], where: str) -> list[str]:
    schema = _resolve(schema, defs)
    problems: list[str] = []
    if JSON_DOCUMENT in schema:
        # a JSON document written as a YAML object, sent as its compact text: the member is a
        # string, its length limit the marker's (its pattern, if any, is `.*`: compact JSON
        # text has no line break)
        meta = shape.metadata
        if shape.type_name != "string" or schema.get("type") != "object":
            problems.append(f"{where}: a JSON document must be an object for botocore string {shape.name}")
        if schema[JSON_DOCUMENT] != meta.get("max") or meta.get("pattern") not in (None, ".*"):
            problems.append(f"{where}: {schema[JSON_DOCUMENT]} characters, botocore {shape.name} says {meta}")
        return problems

    def expect(keyword: str, wanted: Any) -> None:
        if schema.get(keyword) != wanted:
            problems.append(
                f"{where}: {keyword} is {schema.get(keyword)!r}, botocore {shape.name} says {wanted!r}"
            )

    meta = shape.metadata
    if shape.type_name == "string" and shape.enum:
        expect("enum", list(shape.enum))
    elif shape.type_name == "string":
        expect("type", "string")
        expect("minLength", meta.get("min") or None)
        expect("maxLength", meta.get("max", UNBOUNDED_STRING_MAX))
        pattern = meta.get("pattern")
        expect("pattern", anchored(PATTERN_SPELLINGS.get(pattern, pattern)) if pattern else None)
    elif shape.type_name in ("integer", "long"):
        expect("type", "integer")
        expect("minimum", meta.get("min"))
        expect("maximum", meta.get("max"))
    elif shape.type_name == "boolean":
        expect("type", "boolean")
    elif shape.type_name == "list":
        expect("type", "array")
        expect("minItems", meta.get("min") or None)
        expect("maxItems", meta.get("max", UNBOUNDED_LIST_MAX))
        problems += _compare(shape.member, schema.get("items", {}), defs, f"{where}[]")
    elif shape.type_name == "map":
        expect("type", "object")
        expect("minProperties", meta.get("min") or None)
        expect("maxProperties", meta.get("max"))
        key_schema = {"type": "string", **schema.get("propertyNames", {})}
        values = schema.get("additionalProperties", {})
        if "patternProperties" in schema:  # how pydantic spells a key pattern
            ((key_pattern, values),) = schema["patternProperties"].items()
            key_schema["pattern"] = key_pattern
        problems += _compare(shape.key, key_schema, defs, f"{where} (key)")
        problems += _compare(shape.value, values, defs, f"{where} (value)")
    elif shape.type_name == "structure":
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        cls = MODELS.get(ref)
        if cls is None or shape.name not in cls.botocore_shapes():
            problems.append(f"{where}: is {ref or schema}, botocore wants structure {shape.name}")
    else:
        problems.append(f"{where}: botocore type {shape.type_name} not handled by this test")
    return problems


def _member(cls: type[ApiModel], field: str) -> tuple[Any, Any] | None:
    for shape_name in cls.botocore_shapes():
        shape = SAGEMAKER.shape_for(shape_name)
        if api_member_name(field) in shape.members:
            return shape, shape.members[api_member_name(field)]
    return None


@pytest.mark.parametrize("cls", API_MODELS, ids=lambda cls: cls.__name__)
def test_fields_match_botocore(cls: type[ApiModel]) -> None:
    problems = []
    for name in cls.model_fields:
        found = _member(cls, name)
        if cls.is_kubernetes_only(name):
            assert found is None, f"{cls.__name__}.{name} is marked Kubernetes-only but is a SageMaker member"
            continue
        assert found is not None, (
            f"{cls.__name__}.{name}: no member {api_member_name(name)} in {cls.botocore_shapes()}"
        )
        _, member = found
        schema, defs = _field_schema(cls, name)
        problems += _compare(member, schema, defs, f"{cls.__name__}.{name}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("cls", API_MODELS, ids=lambda cls: cls.__name__)
def test_required_members_are_required(cls: type[ApiModel]) -> None:
    shape = SAGEMAKER.shape_for(cls.botocore_shapes()[0])
    for member in shape.required_members:
        field = member[0].lower() + member[1:]
        if (shape.name, member) in OPTIONAL_ON_PURPOSE or field not in cls.model_fields:
            continue  # members left out of the types are listed in the closing note
        assert cls.model_fields[field].is_required(), (
            f"{cls.__name__}.{field} is required by botocore {shape.name}"
        )


def test_every_field_is_required_only_when_botocore_requires_it() -> None:
    for cls in API_MODELS:
        for name, info in cls.model_fields.items():
            if info.is_required() and not cls.is_kubernetes_only(name):
                parent, _ = _member(cls, name)
                assert api_member_name(name) in parent.required_members, (
                    f"{cls.__name__}.{name} is required here only"
                )


def test_issue_fields_are_covered() -> None:
    for kind, fields in REQUIRED_COVERAGE.items():
        missing = set(fields) - set(KINDS[kind].spec.model_fields)
        assert not missing, f"{kind} lacks {missing}"
    assert not set(CONTAINER_COVERAGE) - set(MODELS["ModelPackageContainer"].model_fields)
    assert not set(INFERENCE_SPEC_COVERAGE) - set(MODELS["InferenceSpecification"].model_fields)


def test_the_checker_catches_a_wrong_constraint() -> None:
    member = SAGEMAKER.shape_for("ModelPackageContainerDefinition").members["Image"]
    good = {"type": "string", "maxLength": 255, "pattern": anchored(r"[\S]+")}
    assert _compare(member, good, {}, "image") == []
    assert _compare(member, {**good, "maxLength": 256}, {}, "image")
    assert _compare(member, {"type": "string", "maxLength": 255}, {}, "image")


LOOKAROUND = {
    original: spelled
    for original, spelled in PATTERN_SPELLINGS.items()
    if "(?<" in original or "(?=" in original
}


def test_lookaround_spellings_exist() -> None:
    assert LOOKAROUND, "ArnOrName and VersionedArnOrName use look-behind in botocore"


NAMEISH = st.text(alphabet="ab9-/:", max_size=12) | st.sampled_from(
    [
        "a",
        "a-",
        "-a",
        "ab-c",
        "a/1",
        "a-/1",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/g-",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/12",
        "x" * 63,
        "x" * 64,
    ]
)


@settings(max_examples=200, deadline=None)
@given(value=NAMEISH)
def test_lookaround_spellings_accept_the_same_strings(value: str) -> None:
    for original, spelled in LOOKAROUND.items():
        assert bool(re.fullmatch(original, value)) == bool(re.fullmatch(spelled, value)), (original, value)


# Members of CreateModelPackage and UpdateModelPackage that are not a spec field of their
# own: how they are covered, or why they are left out. README's "Every SageMaker member of
# a ModelPackage" lists the same.
PACKAGE_MEMBERS_COVERED_OTHERWISE = {
    "AdditionalInferenceSpecificationsToAdd": "additionalInferenceSpecifications: the entries added to the spec",
    "CustomerMetadataPropertiesToRemove": "customerMetadataProperties: the keys removed from the spec",
    "ModelPackageArn": "status.arn: the version the object registered or adopted",
}
PACKAGE_MEMBERS_LEFT_OUT = {
    "ClientToken": "the operator's own, derived from the object's UID",
    "ModelPackageRegistrationType": "every version the operator registers is Registered (the default)",
    "ManagedStorageType": "the operator's artifacts go to the bucket it is configured with",
}
README = Path(__file__).resolve().parents[2] / "README.md"


def _package_members() -> set[str]:
    return {
        member
        for operation in ("CreateModelPackage", "UpdateModelPackage")
        for member in SAGEMAKER.operation_model(operation).input_shape.members
    }


def test_every_create_and_update_model_package_member_is_covered_or_left_out() -> None:
    spec = KINDS["ModelPackage"].spec
    fields = {api_member_name(name) for name in spec.model_fields if not spec.is_kubernetes_only(name)}
    members = _package_members()
    accounted = fields | set(PACKAGE_MEMBERS_COVERED_OTHERWISE) | set(PACKAGE_MEMBERS_LEFT_OUT)
    assert members <= accounted, f"neither covered nor left out: {sorted(members - accounted)}"
    assert not set(PACKAGE_MEMBERS_LEFT_OUT) & fields
    assert {"ModelCard", "ModelLifeCycle", "SourceUri"} <= fields
    # nothing listed that botocore no longer has
    assert set(PACKAGE_MEMBERS_LEFT_OUT) | set(PACKAGE_MEMBERS_COVERED_OTHERWISE) <= members


def test_the_readme_lists_the_members_left_out_with_the_reason() -> None:
    text = README.read_text()
    start = text.index("### Every SageMaker member of a ModelPackage")
    section = text[start : text.index("\n#", start + 1)]
    for member in [*PACKAGE_MEMBERS_LEFT_OUT, *PACKAGE_MEMBERS_COVERED_OTHERWISE]:
        line = next((line for line in section.splitlines() if f"`{member}`" in line), None)
        assert line is not None and len(line) > len(member) + 20, (
            f"README does not say why {member} is left out"
        )
