"""ModelPackageGroup: a SageMaker model package group (CreateModelPackageGroup)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from .cel import immutable, validations
from .common import (
    ApiModel,
    CommonStatus,
    DeletionPolicy,
    EntityDescription,
    EntityName,
    OwnedTagList,
    kubernetes_only,
)

NO_UPDATE_API = "SageMaker has no API to change a model package group; create a new ModelPackageGroup instead"


class ModelPackageGroupSpec(ApiModel):
    botocore_shape = "CreateModelPackageGroupInput"
    model_config = ConfigDict(
        json_schema_extra=validations(
            immutable("modelPackageGroupName", NO_UPDATE_API),
            immutable("modelPackageGroupDescription", NO_UPDATE_API),
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
    deletionPolicy: DeletionPolicy | None = kubernetes_only(
        description="Delete the group in SageMaker when this object is deleted (Delete) or keep it (Retain). "
        "Defaults to the operator's setting."
    )


class ModelPackageGroupStatus(CommonStatus):
    modelPackageGroupStatus: str | None = Field(
        None, description="Pending, InProgress, Completed, Failed, Deleting or DeleteFailed."
    )
    creationTime: datetime | None = None
