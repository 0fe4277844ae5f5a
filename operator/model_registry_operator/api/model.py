"""Model: a SageMaker model (CreateModel), the object endpoints and batch transform use.
SageMaker has no update API for models: the operator replaces a Model whose spec changed,
so the spec is mutable, except the model's name, which is its identity in SageMaker."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from .cel import at_most_one_of, immutable, rule, validations
from .common import (
    REGION_IMMUTABLE,
    ApiModel,
    AwsRegion,
    CommonStatus,
    ContainerHostname,
    ContainerImage,
    DeletionPolicy,
    EnvironmentMap,
    ModelDataSource,
    ObjectRef,
    OwnedTagList,
    RoleArn,
    StatusModel,
    Url,
    api_string,
    kubernetes_only,
    lookaround_pattern,
    region_field,
)


class RepositoryAuthConfig(ApiModel):
    botocore_shape = "RepositoryAuthConfig"

    repositoryCredentialsProviderArn: Annotated[str, api_string(1, 2048, r".*")]


class ImageConfig(ApiModel):
    botocore_shape = "ImageConfig"

    repositoryAccessMode: Literal["Platform", "Vpc"]
    repositoryAuthConfig: RepositoryAuthConfig | None = None


class MultiModelConfig(ApiModel):
    botocore_shape = "MultiModelConfig"

    modelCacheSetting: Literal["Enabled", "Disabled"] | None = None


# botocore's VersionedArnOrName uses the look-behind (?<!-) before the optional version;
# the CRD gets the same language spelled without it.
VersionedArnOrName = Annotated[
    str,
    api_string(1, 176, None),
    *lookaround_pattern(
        r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)(\/[0-9]{1,9})?",
        r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\/[0-9]{1,9})?",
    ),
]

MODEL_SOURCE_CHOICE = ("image", "modelPackageName", "modelPackageRef")
MODEL_SOURCE_MESSAGE = "set exactly one of image, modelPackageName or modelPackageRef"


class ContainerDefinition(ApiModel):
    botocore_shape = "ContainerDefinition"
    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "[has(self.image), has(self.modelPackageName), has(self.modelPackageRef)].filter(x, x).size() == 1",
                MODEL_SOURCE_MESSAGE,
            ),
            at_most_one_of("modelDataUrl", "modelDataSource"),
        )
    )

    containerHostname: ContainerHostname | None = None
    image: ContainerImage | None = None
    imageConfig: ImageConfig | None = None
    mode: Literal["SingleModel", "MultiModel"] | None = None
    modelDataUrl: Url | None = None
    modelDataSource: ModelDataSource | None = None
    environment: EnvironmentMap | None = None
    modelPackageName: VersionedArnOrName | None = Field(
        None, description="A model package (name or ARN) not managed by this cluster."
    )
    modelPackageRef: ObjectRef | None = kubernetes_only(
        description="A ModelPackage in this namespace; its ARN becomes the container's ModelPackageName."
    )
    inferenceSpecificationName: (
        Annotated[str, api_string(1, 63, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")] | None
    ) = None
    multiModelConfig: MultiModelConfig | None = None

    @model_validator(mode="after")
    def _check_choices(self) -> ContainerDefinition:
        if sum(getattr(self, name) is not None for name in MODEL_SOURCE_CHOICE) != 1:
            raise ValueError(MODEL_SOURCE_MESSAGE)
        if self.modelDataUrl is not None and self.modelDataSource is not None:
            raise ValueError("set at most one of modelDataUrl or modelDataSource")
        return self


class InferenceExecutionConfig(ApiModel):
    botocore_shape = "InferenceExecutionConfig"

    mode: Literal["Serial", "Direct"]


class VpcConfig(ApiModel):
    botocore_shape = "VpcConfig"

    securityGroupIds: Annotated[
        list[Annotated[str, api_string(0, 32, r"[-0-9a-zA-Z]+")]], Field(min_length=1, max_length=5)
    ]
    subnets: Annotated[
        list[Annotated[str, api_string(0, 32, r"[-0-9a-zA-Z]+")]], Field(min_length=1, max_length=16)
    ]


CONTAINER_CHOICE_MESSAGE = "set exactly one of primaryContainer or containers (with at least one container)"
# Renaming would leave the old model behind or take over another one; setting it after
# creation is refused too (it defaulted to metadata.name, which cannot change either).
MODEL_NAME_IMMUTABLE = "it names the model in SageMaker; create a new Model instead"


class ModelSpec(ApiModel):
    botocore_shape = "CreateModelInput"
    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "has(self.primaryContainer) ? !has(self.containers) : (has(self.containers) && size(self.containers) > 0)",
                CONTAINER_CHOICE_MESSAGE,
            ),
            immutable("modelName", MODEL_NAME_IMMUTABLE),
            immutable("region", REGION_IMMUTABLE),
        )
    )

    # Required by the API; the operator defaults it to metadata.name.
    modelName: Annotated[str, api_string(0, 63, r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")] | None = Field(
        None, description="Name of the model in SageMaker. Defaults to metadata.name."
    )
    primaryContainer: ContainerDefinition | None = None
    containers: Annotated[list[ContainerDefinition], Field(max_length=15)] | None = Field(
        None,
        description="An inference pipeline: containers called in order (or directly, see inferenceExecutionConfig).",
    )
    inferenceExecutionConfig: InferenceExecutionConfig | None = None
    executionRoleArn: RoleArn | None = None
    vpcConfig: VpcConfig | None = None
    enableNetworkIsolation: bool | None = None
    tags: OwnedTagList | None = None
    requireApprovedPackage: bool = kubernetes_only(
        True,
        description="Wait until every package the containers use is Approved before creating the model: a "
        "modelPackageRef's ModelPackage, or a modelPackageName's package (also another account's), read in SageMaker.",
    )
    region: AwsRegion | None = region_field()
    deletionPolicy: DeletionPolicy | None = kubernetes_only(
        description="Delete the model in SageMaker when this object is deleted (Delete) or keep it (Retain). "
        "Defaults to the operator's setting."
    )

    @model_validator(mode="after")
    def _check_choices(self) -> ModelSpec:
        # as the CRD's rule: with primaryContainer, no containers at all (not even []);
        # without it, at least one
        if self.primaryContainer is not None and self.containers is not None:
            raise ValueError(CONTAINER_CHOICE_MESSAGE)
        if self.primaryContainer is None and not self.containers:
            raise ValueError(CONTAINER_CHOICE_MESSAGE)
        return self


class ContainerStatus(StatusModel):
    containerHostname: str | None = None
    modelPackageName: str | None = Field(
        None, description="ARN of the model package the container was resolved to."
    )


class ModelStatus(CommonStatus):
    creationTime: datetime | None = None
    specHash: str | None = Field(
        None,
        description="Hash of the CreateModel request (tags aside) the SageMaker model was created from: a "
        "different one replaces the model. Set only on a model this object created or adopted.",
    )
    containers: list[ContainerStatus] = Field(
        default_factory=list,
        description="One entry per container, in order (the primary container alone when used).",
    )
