"""Building blocks shared by the three kinds: the base model, constrained strings named after
the botocore shapes they mirror, tags, references, conditions, and the request/error helpers.

Field names are the SageMaker member names in lowerCamelCase (`ModelDataUrl` ->
`modelDataUrl`), so the API member of a field is its name with the first letter upper-cased.
Each model class names the botocore structure it mirrors in `botocore_shape`; a field that
has no API member (a Kubernetes-only field) is declared with `kubernetes_only(...)`.
tests/unit/test_api_botocore.py walks every field and checks its constraints against
botocore's SageMaker service model, which is the reference for all patterns and limits here.

Patterns are anchored (`^(?:...)$`) because SageMaker matches the whole value while both
pydantic and the apiserver search for a match anywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from .. import GROUP
from ..settings import DeletionPolicy
from .cel import rule, validations

# Marks a field that exists only in the Kubernetes resource and never reaches SageMaker.
KUBERNETES_ONLY = "x-mro-kubernetes-only"
# Marks a field holding a JSON document as a YAML object where the API member is the
# document's text (a string): its value is the member's maximum length, in characters of
# the compact serialization (`json_text`). tests/unit/test_api_botocore.py checks it.
JSON_DOCUMENT = "x-mro-json-document"

# Extra bounds where botocore sets none. The apiserver estimates the cost of every CEL rule
# from the largest value a schema allows, so unbounded strings and lists make rules (such as
# the immutability checks) too expensive to install. The limits are generous for real use.
UNBOUNDED_STRING_MAX = 1024
UNBOUNDED_LIST_MAX = 64


# botocore patterns spelled differently here, each for the same language (given the
# field's length limits). tests/unit/test_api_botocore.py checks every schema pattern is
# the botocore one or its spelling from this table.
PATTERN_SPELLINGS: dict[str, str] = {
    # The counted repeat compiles past pydantic's regex size limit; max_length=1024 bounds it.
    r"[\p{L}\p{M}\p{Z}\p{N}\p{P}]{0,1024}": r"[\p{L}\p{M}\p{Z}\p{N}\p{P}]*",
}


def anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def kubernetes_only(
    default: Any = None, *, json_schema_extra: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """A field with no SageMaker member: omitted from requests by `to_api`."""
    return Field(default, json_schema_extra={KUBERNETES_ONLY: True, **(json_schema_extra or {})}, **kwargs)


def json_document(max_chars: int, *, description: str) -> Any:
    """A JSON document written as a YAML object (`type: object` with
    x-kubernetes-preserve-unknown-fields in the CRD) whose API member is its JSON text of at
    most `max_chars` characters: `to_api` serializes it, the model checks the size."""
    return Field(None, description=description, json_schema_extra={JSON_DOCUMENT: max_chars})


def json_text(document: Any) -> str:
    """The compact JSON text of a document, as sent to SageMaker (non-ASCII kept as is, so
    its length is what SageMaker counts)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_json_document(document: dict[str, Any] | None, max_chars: int) -> dict[str, Any] | None:
    """A field validator's body: the document serializes to at most `max_chars` characters."""
    if document is None:
        return None
    try:
        size = len(json_text(document))
    except (TypeError, ValueError) as err:
        raise ValueError(f"must be a JSON object ({err})") from None
    if size > max_chars:
        raise ValueError(
            f"is {size} characters as JSON; SageMaker takes at most {max_chars}: shorten the document"
        )
    return document


def api_string(min_length: int | None, max_length: int | None, pattern: str | None) -> Any:
    """Constraints of a botocore string shape, with the pattern anchored."""
    return StringConstraints(
        min_length=min_length or None,
        max_length=max_length,
        pattern=anchored(PATTERN_SPELLINGS.get(pattern, pattern)) if pattern is not None else None,
    )


def lookaround_pattern(botocore_pattern: str, re2_pattern: str) -> tuple[Any, ...]:
    """A botocore pattern that uses look-around, which neither the apiserver's RE2 nor
    pydantic's default regex engine supports. pydantic checks the original with Python's
    `re`; the JSON schema (and so the CRD) carries `re2_pattern`, an equivalent form
    without look-around (tests/unit/test_api_botocore.py checks they agree)."""
    compiled = re.compile(botocore_pattern)
    PATTERN_SPELLINGS[botocore_pattern] = re2_pattern

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"String should match pattern '{anchored(botocore_pattern)}'")
        return value

    return AfterValidator(check), SchemaPattern(anchored(re2_pattern))


@dataclass(frozen=True)
class SchemaPattern:
    """Sets the JSON schema pattern without making pydantic compile it."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


class ApiModel(BaseModel):
    """A structure of the SageMaker API (or a Kubernetes-only one when botocore_shape is None)."""

    model_config = ConfigDict(extra="forbid")

    # The botocore structure(s) this model mirrors; fields are looked up in them in order.
    botocore_shape: ClassVar[str | tuple[str, ...] | None] = None

    @classmethod
    def botocore_shapes(cls) -> tuple[str, ...]:
        shape = cls.botocore_shape
        if shape is None:
            return ()
        return (shape,) if isinstance(shape, str) else shape

    @classmethod
    def is_kubernetes_only(cls, field_name: str) -> bool:
        extra = cls.model_fields[field_name].json_schema_extra
        return isinstance(extra, dict) and bool(extra.get(KUBERNETES_ONLY))

    @classmethod
    def is_json_document(cls, field_name: str) -> bool:
        extra = cls.model_fields[field_name].json_schema_extra
        return isinstance(extra, dict) and JSON_DOCUMENT in extra

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Fields without a description of their own get the API reference's first sentence,
        # so `kubectl explain` tells what SageMaker does with them.
        schema = handler.resolve_ref_schema(handler(core_schema))
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop and not cls.is_kubernetes_only(name):
                summary = api_documentation(cls.botocore_shapes(), api_member_name(name))
                if summary:
                    prop["description"] = summary
        return schema


_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.])\s")


@lru_cache(maxsize=1)
def sagemaker_model() -> Any:
    """botocore's SageMaker service model: the reference for every constraint here. Read with
    botocore's loader alone: a session would read the AWS configuration (a missing
    AWS_PROFILE would fail the import of the API types, before the operator can say so)."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    return ServiceModel(create_loader().load_service_model("sagemaker", "service-2"), "sagemaker")


@cache
def api_documentation(shapes: tuple[str, ...], member: str, limit: int = 300) -> str | None:
    """The first sentence of botocore's documentation of `member`, as plain text."""
    model = sagemaker_model()
    for shape in shapes:
        found = model.shape_for(shape).members.get(member)
        if found is None or not found.documentation:
            continue
        first_paragraph = re.split(r"</p>", found.documentation, maxsplit=1)[0]
        text = " ".join(re.sub(r"<[^>]+>", " ", first_paragraph).split())
        text = _SENTENCE_END.split(text, maxsplit=1)[0]
        return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."
    return None


def api_member_name(field_name: str) -> str:
    return field_name[0].upper() + field_name[1:]


def to_api(value: Any) -> Any:
    """The SageMaker request shape of a model (or list/dict of them): PascalCase members,
    unset (None) fields and Kubernetes-only fields left out, JSON documents as their text."""
    if isinstance(value, ApiModel):
        request: dict[str, Any] = {}
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if field_value is None or type(value).is_kubernetes_only(name):
                continue
            if type(value).is_json_document(name):
                request[api_member_name(name)] = json_text(field_value)
                continue
            request[api_member_name(name)] = to_api(field_value)
        return request
    if isinstance(value, list):
        return [to_api(item) for item in value]
    if isinstance(value, dict):
        return {key: to_api(item) for key, item in value.items()}
    return value


# --- String shapes used by more than one kind (named after the botocore shape) -------------

EntityName = Annotated[str, api_string(1, 63, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")]
EntityDescription = Annotated[str, api_string(0, 1024, r"[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*")]
ContainerHostname = Annotated[str, api_string(0, 63, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")]
ContainerImage = Annotated[str, api_string(0, 255, r"[\S]+")]
Url = Annotated[str, api_string(0, 1024, r"(https|s3)://([^/]+)/?(.*)")]
S3Uri = Annotated[str, api_string(0, 1024, r"(https|s3)://([^/]+)/?(.*)")]
EnvironmentKey = Annotated[str, api_string(0, 1024, r"[a-zA-Z_][a-zA-Z0-9_]*")]
EnvironmentValue = Annotated[str, api_string(0, 1024, r"[\S\s]*")]
EnvironmentMap = Annotated[dict[EnvironmentKey, EnvironmentValue], Field(max_length=100)]
RoleArn = Annotated[str, api_string(20, 2048, r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")]
KmsKeyId = Annotated[str, api_string(0, 2048, r"[a-zA-Z0-9:/_-]*")]
ContentType = Annotated[str, api_string(0, 256, r".*")]
# botocore's "String" shape has no limits; see UNBOUNDED_STRING_MAX.
String = Annotated[str, StringConstraints(max_length=UNBOUNDED_STRING_MAX)]
CompressionType = Literal["None", "Gzip"]
ModelApprovalStatus = Literal["Approved", "Rejected", "PendingManualApproval"]


def botocore_enum(shape_name: str) -> Any:
    """A Literal of a botocore enum too long to copy here (the instance types: hundreds of
    values, growing with every botocore release). Regenerate the CRDs after a botocore
    upgrade (`make crds`); the staleness test says when."""
    values = sagemaker_model().shape_for(shape_name).enum
    return Literal[tuple(values)]


TransformInstanceType = botocore_enum("TransformInstanceType")
ProductionVariantInstanceType = botocore_enum("ProductionVariantInstanceType")

# An AWS region name: us-east-2, eu-central-1, ap-southeast-3, us-gov-west-1, cn-north-1.
AWS_REGION_PATTERN = r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}"
AwsRegion = Annotated[str, StringConstraints(max_length=32, pattern=anchored(AWS_REGION_PATTERN))]
REGION_IMMUTABLE = (
    "the SageMaker object stays in the region it was made in (unset: the operator's region); "
    "create a new object for another region"
)


def region_field() -> Any:
    """`spec.region` of every kind: where its SageMaker object is (Kubernetes-only, immutable)."""
    return kubernetes_only(
        description="AWS region of the SageMaker object (us-east-2, eu-west-1, ...). Defaults to the operator's "
        "region (AWS_REGION). Cannot be set, changed or removed once the object exists."
    )


KUBERNETES_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
KubernetesName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=anchored(KUBERNETES_NAME_PATTERN))
]


class Tag(ApiModel):
    botocore_shape = "Tag"

    key: Annotated[str, api_string(1, 128, r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)")]
    value: Annotated[str, api_string(0, 256, r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)")]


TagList = Annotated[list[Tag], Field(max_length=50)]

# The operator tags each group and model it creates with its object's identity (identity.py)
# to tell its own from another object's of the same account-wide name: users cannot set keys
# of its prefix, and SageMaker's limit of 50 tags leaves them 49.
RESERVED_KEY_PREFIX = f"{GROUP}/"
OWNER_TAG_RESERVED = (
    f"tags may hold at most 49 entries and no key starting with {RESERVED_KEY_PREFIX}:"
    " the operator keeps those to recognise the SageMaker objects it manages"
)


def _no_owner_tag(tags: list[Tag]) -> list[Tag]:
    if len(tags) > 49 or any(tag.key.startswith(RESERVED_KEY_PREFIX) for tag in tags):
        raise ValueError(OWNER_TAG_RESERVED)
    return tags


# Tags of a kind whose SageMaker object carries the operator's owner tag.
OwnedTagList = Annotated[
    list[Tag],
    Field(
        max_length=50,
        json_schema_extra=validations(
            rule(
                f"size(self) <= 49 && !self.exists(t, t.key.startsWith('{RESERVED_KEY_PREFIX}'))",
                OWNER_TAG_RESERVED,
            )
        ),
    ),
    AfterValidator(_no_owner_tag),
]


class ModelAccessConfig(ApiModel):
    botocore_shape = "ModelAccessConfig"

    acceptEula: bool


class S3ModelDataSource(ApiModel):
    botocore_shape = "S3ModelDataSource"

    s3Uri: Annotated[str, api_string(0, 1024, r"(https|s3)://([^/]+)/?(.*)")]
    s3DataType: Literal["S3Prefix", "S3Object"]
    compressionType: Literal["None", "Gzip"]
    modelAccessConfig: ModelAccessConfig | None = None


class ModelDataSource(ApiModel):
    """Model data that is not a single .tar.gz (an S3 prefix of uncompressed files)."""

    botocore_shape = "ModelDataSource"

    s3DataSource: S3ModelDataSource | None = None


class ObjectRef(ApiModel):
    """A reference to another custom resource in the same namespace."""

    name: KubernetesName = Field(description="metadata.name of the referenced object.")


# --- Status ---------------------------------------------------------------------------------


class StatusModel(BaseModel):
    """Written by the operator only; unknown fields are ignored so an older operator can read
    the status a newer one wrote."""

    model_config = ConfigDict(extra="ignore")


class Condition(StatusModel):
    """A kstatus condition: Ready, Reconciling or Stalled."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: datetime | None = None
    observedGeneration: int | None = None


# kopf's own part of the status (main.py configure_kopf): the last handled spec, which tells
# a change from an event that changes nothing, and the retries of a handler not done yet.
# kopf writes it in the same status patch as the operator's outcome; the reconcilers never
# write or remove it (a waiting object's take-over does, as kopf would: wiring.kopf_records).
KOPF_STATUS = "kopf"
KOPF_PROGRESS_FIELD = f"status.{KOPF_STATUS}.progress"
KOPF_TOUCH_FIELD = f"status.{KOPF_STATUS}.dummy"
KOPF_DIFFBASE_FIELD = f"status.{KOPF_STATUS}.lastHandledConfiguration"
# what kopf's update handler watches (a change elsewhere, a label, is not an update to handle)
UPDATE_FIELD = "spec"


class CommonStatus(StatusModel):
    arn: str | None = Field(None, description="ARN of the SageMaker object.")
    observedGeneration: int | None = Field(None, description="metadata.generation the conditions describe.")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    deletionPolicy: DeletionPolicy | None = Field(
        None,
        description="The deletionPolicy in effect: spec.deletionPolicy, else the operator's default when this "
        "object was first reconciled (a later change of that default does not apply to it).",
    )
    # An open object (x-kubernetes-preserve-unknown-fields in the CRD): kopf owns its content.
    kopf: dict[str, Any] | None = Field(
        None,
        description="The operator framework's (kopf's) records: the last handled spec, retries. Not for users.",
    )


# --- Errors ---------------------------------------------------------------------------------


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _format_location(location: tuple[int | str, ...], prefix: str) -> str:
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        elif _PLAIN_NAME.fullmatch(part):
            path += f".{part}"
        else:  # a map key or unknown field with dots, spaces, newlines...: quoted
            path += f"[{json.dumps(part)}]"
    return path


def format_validation_error(error: ValidationError, prefix: str = "spec") -> str:
    """One sentence naming each invalid field by its path, e.g.
    `spec.inferenceSpecification.containers[0].image: String should have at most 255 characters`."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(f"{_format_location(tuple(item['loc']), prefix)}: {message}")
    return "; ".join(problems) + "."


__all__ = [
    "KUBERNETES_ONLY",
    "ApiModel",
    "CommonStatus",
    "Condition",
    "DeletionPolicy",
    "ObjectRef",
    "OwnedTagList",
    "Tag",
    "TagList",
    "format_validation_error",
    "kubernetes_only",
    "to_api",
]
