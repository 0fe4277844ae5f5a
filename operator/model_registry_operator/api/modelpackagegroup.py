"""ModelPackageGroup: a SageMaker model package group (CreateModelPackageGroup)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Required, get_args

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator
from typing_extensions import TypedDict  # pydantic wants it before Python 3.12 (its own dependency)

from .cel import immutable, validations
from .common import (
    REGION_IMMUTABLE,
    ApiModel,
    AwsRegion,
    CommonStatus,
    DeletionPolicy,
    EntityDescription,
    EntityName,
    OwnedTagList,
    check_json_document,
    json_document,
    kubernetes_only,
    region_field,
)

NO_UPDATE_API = "SageMaker has no API to change a model package group; create a new ModelPackageGroup instead"

# botocore's PolicyString: the ResourcePolicy of PutModelPackageGroupPolicy, 1-20480 characters.
RESOURCE_POLICY_MAX = 20480
# IAM's policy language versions (https://docs.aws.amazon.com/IAM/latest/UserGuide/
# reference_policies_elements_version.html); 2012-10-17 is the current one.
PolicyVersion = Literal["2012-10-17", "2008-10-17"]
POLICY_VERSIONS = get_args(PolicyVersion)


# An IAM policy document written as a YAML object with IAM's own (PascalCase) keys, kept as
# written: a JSON object whose two required elements are declared (Version, one of IAM's
# versions; Statement, any JSON: one statement or a list) and whose other keys (Id, ...) are
# kept as they are. The CRD says the same; the rest (principals, actions, conditions) is
# SageMaker's (IAM's) to judge, and a document it refuses is Stalled with its message.
class _PolicyDocument(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]  # pydantic reads it

    Version: Required[PolicyVersion]
    Statement: Required[Any]


PolicyDocument = Annotated[
    _PolicyDocument,
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "Version": {"type": "string", "enum": list(POLICY_VERSIONS)},
                "Statement": {
                    "description": "IAM policy statements: one statement (an object) or a list of them.",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
            "required": ["Version", "Statement"],
            "x-kubernetes-preserve-unknown-fields": True,
        }
    ),
]


class ModelPackageGroupSpec(ApiModel):
    # resourcePolicy is PutModelPackageGroupPolicy's member
    botocore_shape = ("CreateModelPackageGroupInput", "PutModelPackageGroupPolicyInput")
    model_config = ConfigDict(
        json_schema_extra=validations(
            immutable("modelPackageGroupName", NO_UPDATE_API),
            immutable("modelPackageGroupDescription", NO_UPDATE_API),
            immutable("region", REGION_IMMUTABLE),
        )
    )

    # Required by the API; the operator defaults it to metadata.name.
    modelPackageGroupName: EntityName | None = Field(
        None, description="Name of the group in SageMaker. Defaults to metadata.name."
    )
    modelPackageGroupDescription: EntityDescription | None = None
    tags: OwnedTagList | None = Field(
        None, description="Tags on the group; changes are applied with AddTags/DeleteTags."
    )
    resourcePolicy: PolicyDocument | None = json_document(
        RESOURCE_POLICY_MAX,
        description="The group's resource policy (PutModelPackageGroupPolicy): an IAM policy document written as "
        "a YAML object with IAM's keys (Version, Statement, ...), e.g. to share the group with other accounts. "
        "Sent as its JSON text (at most 20480 characters) and compared with SageMaker's as parsed JSON; "
        "removing it deletes the policy the operator set.",
    )
    region: AwsRegion | None = region_field()
    deletionPolicy: DeletionPolicy | None = kubernetes_only(
        description="Delete the group in SageMaker when this object is deleted (Delete) or keep it (Retain). "
        "Defaults to the operator's setting."
    )

    @field_validator("resourcePolicy")
    @classmethod
    def _policy_fits(cls, document: _PolicyDocument | None) -> _PolicyDocument | None:
        if document is not None:
            check_json_document(dict(document), RESOURCE_POLICY_MAX)
        return document


class ModelPackageGroupStatus(CommonStatus):
    modelPackageGroupStatus: str | None = Field(
        None, description="Pending, InProgress, Completed, Failed, Deleting or DeleteFailed."
    )
    creationTime: datetime | None = None
    resourcePolicy: Literal["Applied"] | None = Field(
        None,
        description="Applied: the operator put spec.resourcePolicy on the group, and deletes that policy when "
        "the field is removed. Absent: the operator set no policy (one set elsewhere is left alone).",
    )
