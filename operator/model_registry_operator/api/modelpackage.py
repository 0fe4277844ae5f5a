"""ModelPackage: a versioned (or unversioned) SageMaker model package (CreateModelPackage,
UpdateModelPackage)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from .cel import at_most_one_of, exactly_one_of, immutable, rule, validations
from .common import (
    REGION_IMMUTABLE,
    RESERVED_KEY_PREFIX,
    UNBOUNDED_LIST_MAX,
    ApiModel,
    AwsRegion,
    CommonStatus,
    CompressionType,
    ContainerHostname,
    ContainerImage,
    ContentType,
    DeletionPolicy,
    EntityDescription,
    EntityName,
    EnvironmentMap,
    KmsKeyId,
    ModelApprovalStatus,
    ModelDataSource,
    ObjectRef,
    ProductionVariantInstanceType,
    RoleArn,
    S3Uri,
    StatusModel,
    String,
    TagList,
    TransformInstanceType,
    Url,
    anchored,
    api_string,
    check_json_document,
    json_document,
    kubernetes_only,
    lookaround_pattern,
    region_field,
)

# --- Artifacts (Kubernetes-only: files the operator packs into the registry's bucket) -------

ARTIFACT_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
ArtifactName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=anchored(ARTIFACT_NAME_PATTERN))
]
# A relative path with no empty, "." or ".." segment, so a file cannot escape the archive.
_PATH_SEGMENT = r"(?:[^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)"
ARCHIVE_PATH_PATTERN = rf"(?:{_PATH_SEGMENT}/)*{_PATH_SEGMENT}"
ARTIFACT_SOURCE_PATTERN = (
    r"(s3|https|http)://[^/\x00-\x20\x7f]+(/.*)?"  # no control characters or spaces in the host
)
SHA256_PATTERN = r"[0-9a-fA-F]{64}"


class ArtifactFile(ApiModel):
    path: Annotated[
        str, StringConstraints(min_length=1, max_length=1024, pattern=anchored(ARCHIVE_PATH_PATTERN))
    ] = Field(description="Path of the file inside model.tar.gz, e.g. code/inference.py.")
    source: Annotated[str, StringConstraints(max_length=2048, pattern=anchored(ARTIFACT_SOURCE_PATTERN))] = (
        Field(
            description="Where to fetch the file: s3://bucket/key or https://... (http:// only if the operator allows it)."
        )
    )
    sha256: Annotated[str, StringConstraints(max_length=64, pattern=anchored(SHA256_PATTERN))] | None = Field(
        None, description="Expected SHA-256 of the file (hex); the copy fails when it differs."
    )


class Artifact(ApiModel):
    """Files packed into one model.tar.gz and copied into the registry's bucket; a container
    uses it with modelDataArtifact: <name>."""

    name: ArtifactName
    files: Annotated[list[ArtifactFile], Field(min_length=1, max_length=100)] = Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]}
    )

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, files: list[ArtifactFile]) -> list[ArtifactFile]:
        _check_unique([file.path for file in files], "path")
        return files


def _check_unique(keys: list[str], what: str) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"duplicate {what} {key!r}")
        seen.add(key)


# --- Inference specification -----------------------------------------------------------------


class ModelInput(ApiModel):
    botocore_shape = "ModelInput"

    dataInputConfig: Annotated[str, api_string(1, 16384, r"[\S\s]+")]


class ModelPackageContainer(ApiModel):
    botocore_shape = "ModelPackageContainerDefinition"
    model_config = ConfigDict(
        json_schema_extra=validations(at_most_one_of("modelDataUrl", "modelDataSource", "modelDataArtifact"))
    )

    containerHostname: ContainerHostname | None = None
    image: ContainerImage | None = None
    imageDigest: Annotated[str, api_string(0, 72, r"[Ss][Hh][Aa]256:[0-9a-fA-F]{64}")] | None = None
    modelDataUrl: Url | None = None
    modelDataSource: ModelDataSource | None = None
    modelDataArtifact: ArtifactName | None = kubernetes_only(
        description="Name of an entry of spec.artifacts; its copied archive becomes the container's modelDataUrl."
    )
    productId: Annotated[str, api_string(0, 256, r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")] | None = None
    environment: EnvironmentMap | None = None
    modelInput: ModelInput | None = None
    framework: String | None = None
    frameworkVersion: Annotated[str, api_string(3, 10, r"[0-9]\.[A-Za-z0-9.-]+")] | None = None
    nearestModelName: String | None = None

    @model_validator(mode="after")
    def _one_model_data(self) -> ModelPackageContainer:
        given = [
            name
            for name in ("modelDataUrl", "modelDataSource", "modelDataArtifact")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"set at most one of modelDataUrl, modelDataSource or modelDataArtifact (got {', '.join(given)})"
            )
        return self


ContainerList = Annotated[list[ModelPackageContainer], Field(min_length=1, max_length=15)]
TransformInstanceTypes = Annotated[
    list[TransformInstanceType], Field(min_length=1, max_length=UNBOUNDED_LIST_MAX)
]
RealtimeInferenceInstanceTypes = Annotated[
    list[ProductionVariantInstanceType], Field(max_length=UNBOUNDED_LIST_MAX)
]
ContentTypes = Annotated[list[ContentType], Field(max_length=UNBOUNDED_LIST_MAX)]
ResponseMIMEType = Annotated[str, api_string(0, 1024, r"[-\w]+\/.+")]
ResponseMIMETypes = Annotated[list[ResponseMIMEType], Field(max_length=UNBOUNDED_LIST_MAX)]


class InferenceSpecification(ApiModel):
    botocore_shape = "InferenceSpecification"

    containers: ContainerList
    supportedTransformInstanceTypes: TransformInstanceTypes | None = None
    supportedRealtimeInferenceInstanceTypes: RealtimeInferenceInstanceTypes | None = None
    supportedContentTypes: ContentTypes | None = None
    supportedResponseMIMETypes: ResponseMIMETypes | None = None


ADDITIONAL_SPEC_NO_ARTIFACT = "modelDataArtifact is only supported in spec.inferenceSpecification.containers"


class AdditionalInferenceSpecification(ApiModel):
    botocore_shape = "AdditionalInferenceSpecificationDefinition"
    model_config = ConfigDict(
        json_schema_extra=validations(
            rule("self.containers.all(c, !has(c.modelDataArtifact))", ADDITIONAL_SPEC_NO_ARTIFACT),
            # Transition rule: the list is keyed by name, so the apiserver pairs each entry
            # with its previous version. UpdateModelPackage can only add entries.
            rule(
                "self == oldSelf",
                "an additional inference specification cannot be changed once added; add a new one with another name",
            ),
        )
    )

    name: EntityName
    description: EntityDescription | None = None
    containers: ContainerList
    supportedTransformInstanceTypes: TransformInstanceTypes | None = None
    supportedRealtimeInferenceInstanceTypes: RealtimeInferenceInstanceTypes | None = None
    supportedContentTypes: ContentTypes | None = None
    supportedResponseMIMETypes: ResponseMIMETypes | None = None

    @model_validator(mode="after")
    def _no_artifacts(self) -> AdditionalInferenceSpecification:
        if any(container.modelDataArtifact is not None for container in self.containers):
            raise ValueError(ADDITIONAL_SPEC_NO_ARTIFACT)
        return self


# --- Source algorithm and validation ---------------------------------------------------------

# botocore's ArnOrName ends with the look-behind (?<!-) (the name does not end with "-"),
# which RE2 refuses; the CRD gets the same language spelled without it.
ArnOrName = Annotated[
    str,
    api_string(1, 170, None),
    *lookaround_pattern(
        r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)",
        r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*\/)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)",
    ),
]


class SourceAlgorithm(ApiModel):
    botocore_shape = "SourceAlgorithm"

    algorithmName: ArnOrName
    modelDataUrl: Url | None = None
    modelDataSource: ModelDataSource | None = None


class SourceAlgorithmSpecification(ApiModel):
    botocore_shape = "SourceAlgorithmSpecification"

    sourceAlgorithms: Annotated[list[SourceAlgorithm], Field(min_length=1, max_length=1)]


class TransformS3DataSource(ApiModel):
    botocore_shape = "TransformS3DataSource"

    s3DataType: Literal["ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"]
    s3Uri: S3Uri


class TransformDataSource(ApiModel):
    botocore_shape = "TransformDataSource"

    s3DataSource: TransformS3DataSource


class TransformInput(ApiModel):
    botocore_shape = "TransformInput"

    dataSource: TransformDataSource
    contentType: ContentType | None = None
    compressionType: CompressionType | None = None
    splitType: Literal["None", "Line", "RecordIO", "TFRecord"] | None = None


class TransformOutput(ApiModel):
    botocore_shape = "TransformOutput"

    s3OutputPath: S3Uri
    accept: Annotated[str, api_string(0, 256, r".*")] | None = None
    assembleWith: Literal["None", "Line"] | None = None
    kmsKeyId: KmsKeyId | None = None


class TransformResources(ApiModel):
    botocore_shape = "TransformResources"

    instanceType: TransformInstanceType
    instanceCount: Annotated[int, Field(ge=1)]
    volumeKmsKeyId: KmsKeyId | None = None
    transformAmiVersion: Annotated[str, api_string(1, 63, r"[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*")] | None = None


class TransformJobDefinition(ApiModel):
    botocore_shape = "TransformJobDefinition"

    transformInput: TransformInput
    transformOutput: TransformOutput
    transformResources: TransformResources
    maxConcurrentTransforms: Annotated[int, Field(ge=0)] | None = None
    maxPayloadInMB: Annotated[int, Field(ge=0)] | None = None
    batchStrategy: Literal["MultiRecord", "SingleRecord"] | None = None
    environment: (
        Annotated[
            dict[
                Annotated[str, api_string(0, 1024, r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")],
                Annotated[str, api_string(0, 10240, r"[\S\s]*")],
            ],
            Field(max_length=16),
        ]
        | None
    ) = None


class ModelPackageValidationProfile(ApiModel):
    botocore_shape = "ModelPackageValidationProfile"

    profileName: EntityName
    transformJobDefinition: TransformJobDefinition


class ModelPackageValidationSpecification(ApiModel):
    botocore_shape = "ModelPackageValidationSpecification"

    validationRole: RoleArn
    validationProfiles: Annotated[list[ModelPackageValidationProfile], Field(max_length=1)]


# --- Metadata, metrics and baselines ---------------------------------------------------------

MetadataPropertyValue = Annotated[str, api_string(0, 1024, r".*")]
ContentDigest = Annotated[str, api_string(0, 72, r"[Ss][Hh][Aa]256:[0-9a-fA-F]{64}")]


class MetadataProperties(ApiModel):
    botocore_shape = "MetadataProperties"

    commitId: MetadataPropertyValue | None = None
    repository: MetadataPropertyValue | None = None
    generatedBy: MetadataPropertyValue | None = None
    projectId: MetadataPropertyValue | None = None


class MetricsSource(ApiModel):
    botocore_shape = "MetricsSource"

    contentType: ContentType
    s3Uri: S3Uri
    contentDigest: ContentDigest | None = None


class FileSource(ApiModel):
    botocore_shape = "FileSource"

    s3Uri: S3Uri
    contentType: ContentType | None = None
    contentDigest: ContentDigest | None = None


class ModelQuality(ApiModel):
    botocore_shape = "ModelQuality"

    statistics: MetricsSource | None = None
    constraints: MetricsSource | None = None


class ModelDataQuality(ApiModel):
    botocore_shape = "ModelDataQuality"

    statistics: MetricsSource | None = None
    constraints: MetricsSource | None = None


class Bias(ApiModel):
    botocore_shape = "Bias"

    report: MetricsSource | None = None
    preTrainingReport: MetricsSource | None = None
    postTrainingReport: MetricsSource | None = None


class Explainability(ApiModel):
    botocore_shape = "Explainability"

    report: MetricsSource | None = None


class ModelMetrics(ApiModel):
    botocore_shape = "ModelMetrics"

    modelQuality: ModelQuality | None = None
    modelDataQuality: ModelDataQuality | None = None
    bias: Bias | None = None
    explainability: Explainability | None = None


class DriftCheckBias(ApiModel):
    botocore_shape = "DriftCheckBias"

    configFile: FileSource | None = None
    preTrainingConstraints: MetricsSource | None = None
    postTrainingConstraints: MetricsSource | None = None


class DriftCheckExplainability(ApiModel):
    botocore_shape = "DriftCheckExplainability"

    constraints: MetricsSource | None = None
    configFile: FileSource | None = None


class DriftCheckModelQuality(ApiModel):
    botocore_shape = "DriftCheckModelQuality"

    statistics: MetricsSource | None = None
    constraints: MetricsSource | None = None


class DriftCheckModelDataQuality(ApiModel):
    botocore_shape = "DriftCheckModelDataQuality"

    statistics: MetricsSource | None = None
    constraints: MetricsSource | None = None


class DriftCheckBaselines(ApiModel):
    botocore_shape = "DriftCheckBaselines"

    bias: DriftCheckBias | None = None
    explainability: DriftCheckExplainability | None = None
    modelQuality: DriftCheckModelQuality | None = None
    modelDataQuality: DriftCheckModelDataQuality | None = None


class ModelPackageSecurityConfig(ApiModel):
    botocore_shape = "ModelPackageSecurityConfig"

    kmsKeyId: KmsKeyId


# The operator marks each version it creates with its object's identity (identity.py) in the
# customer metadata, to find it again: users cannot set keys of its prefix, and SageMaker's
# limit of 50 entries leaves them 49.
CUSTOMER_METADATA_RESERVED = (
    f"customerMetadataProperties may hold at most 49 entries and no key starting with {RESERVED_KEY_PREFIX}:"
    " the operator keeps those to recognise the versions it created"
)

CustomerMetadataKey = Annotated[str, api_string(1, 128, r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}")]
CustomerMetadataValue = Annotated[str, api_string(1, 256, r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}")]


# --- Lifecycle stage and model card (UpdateModelPackage keeps both equal to the spec) --------


class ModelLifeCycle(ApiModel):
    botocore_shape = "ModelLifeCycle"

    stage: EntityName = Field(description="The stage of the version, e.g. Development, Staging, Production.")
    stageStatus: EntityName = Field(description="The status of the stage, e.g. InReview, Approved.")
    stageDescription: Annotated[str, api_string(0, 1024, r".{0,1024}")] | None = None


# botocore ModelCardContent: a string of at most 100,000 characters holding the card's JSON.
MODEL_CARD_CONTENT_MAX = 100_000


class ModelPackageModelCard(ApiModel):
    botocore_shape = "ModelPackageModelCard"

    modelCardContent: dict[str, Any] | None = json_document(
        MODEL_CARD_CONTENT_MAX,
        description="The model card's JSON document (SageMaker's model card schema: model_overview, "
        "intended_uses, ...) written as a YAML object; sent as its JSON text, at most 100,000 characters, "
        "and compared with SageMaker's as parsed JSON.",
    )
    modelCardStatus: Literal["Draft", "PendingReview", "Approved", "Archived"] | None = None

    @field_validator("modelCardContent")
    @classmethod
    def _content_fits(cls, content: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_json_document(content, MODEL_CARD_CONTENT_MAX)


# --- Spec and status -------------------------------------------------------------------------

NO_UPDATE_API = "UpdateModelPackage cannot change it; create a new ModelPackage (a new version) instead"
GROUP_CHOICE = ("modelPackageGroupRef", "modelPackageGroupName", "modelPackageName")
# Members UpdateModelPackage cannot change (botocore's UpdateModelPackageInput lists the
# ones it can: approval, customer metadata, inference specification, additional inference
# specifications (append only), source URI; tags have AddTags/DeleteTags).
IMMUTABLE_FIELDS = (
    *GROUP_CHOICE,
    "modelPackageDescription",
    "sourceAlgorithmSpecification",
    "validationSpecification",
    "metadataProperties",
    "modelMetrics",
    "driftCheckBaselines",
    "certifyForMarketplace",
    "domain",
    "task",
    "samplePayloadUrl",
    "skipModelValidation",
    "securityConfig",
)
ADDITIONAL_APPEND_ONLY = (
    "additionalInferenceSpecifications is append-only: SageMaker can add entries but not remove them"
)
ARTIFACT_UNDECLARED = "every modelDataArtifact must name an entry of spec.artifacts"
ADOPT_IN_A_GROUP = (
    "modelPackageVersion adopts a version of a group: use it with modelPackageGroupRef or "
    "modelPackageGroupName, not modelPackageName"
)
ADOPT_WITHOUT_ARTIFACTS = (
    "modelPackageVersion adopts a version whose model data is already registered: remove spec.artifacts"
)
ADOPT_ONE_VERSION = (
    "a ModelPackage adopts one version, or registers its own, for its whole life; create another "
    "ModelPackage for another version"
)
# The copied archive is this version's model data: other files make another version.
ARTIFACTS_FIXED = (
    "spec.artifacts cannot change once set (they are the version's model data); to correct them, "
    "delete this ModelPackage and create it again, or create a new one"
)


class ModelPackageSpec(ApiModel):
    botocore_shape = ("CreateModelPackageInput", "UpdateModelPackageInput")
    model_config = ConfigDict(
        json_schema_extra=validations(
            exactly_one_of(*GROUP_CHOICE),
            *(immutable(field, NO_UPDATE_API) for field in IMMUTABLE_FIELDS),
            immutable("artifacts", ARTIFACTS_FIXED),
            immutable("modelPackageVersion", ADOPT_ONE_VERSION),
            immutable("region", REGION_IMMUTABLE),
            rule(
                "!has(self.modelPackageVersion) || !has(self.modelPackageName)",
                ADOPT_IN_A_GROUP,
                field_path=".modelPackageVersion",
            ),
            rule(
                "!has(self.modelPackageVersion) || !has(self.artifacts)",
                ADOPT_WITHOUT_ARTIFACTS,
                field_path=".modelPackageVersion",
            ),
            rule(
                "!has(oldSelf.additionalInferenceSpecifications) || (has(self.additionalInferenceSpecifications)"
                " && oldSelf.additionalInferenceSpecifications.all(old,"
                " self.additionalInferenceSpecifications.exists(new, new.name == old.name)))",
                ADDITIONAL_APPEND_ONLY,
                field_path=".additionalInferenceSpecifications",
            ),
            rule(
                "!has(self.inferenceSpecification) || self.inferenceSpecification.containers.all(c,"
                " !has(c.modelDataArtifact) || (has(self.artifacts) && self.artifacts.exists(a, a.name == c.modelDataArtifact)))",
                ARTIFACT_UNDECLARED,
                field_path=".inferenceSpecification",
            ),
        )
    )

    modelPackageGroupRef: ObjectRef | None = kubernetes_only(
        description="A ModelPackageGroup in this namespace: the package is a new version in its group."
    )
    modelPackageGroupName: ArnOrName | None = Field(
        None, description="An existing group (name or ARN) not managed by this cluster."
    )
    modelPackageName: EntityName | None = Field(None, description="Name of an unversioned model package.")
    modelPackageVersion: Annotated[int, Field(ge=1)] | None = kubernetes_only(
        description="Adopt version N of the group, registered elsewhere (SageMaker Pipelines, a notebook), "
        "instead of registering a new one: the operator waits for it, manages the members this spec sets "
        "(approval, ...) and observes the rest. Needs modelPackageGroupRef or modelPackageGroupName. "
        "deletionPolicy defaults to Retain."
    )
    modelPackageDescription: EntityDescription | None = None
    inferenceSpecification: InferenceSpecification | None = None
    sourceAlgorithmSpecification: SourceAlgorithmSpecification | None = None
    validationSpecification: ModelPackageValidationSpecification | None = None
    modelApprovalStatus: ModelApprovalStatus | None = Field(
        None,
        description="Enforced when set (drift is corrected); when omitted, approval is managed elsewhere and only observed.",
    )
    approvalDescription: Annotated[str, api_string(0, 1024, r".*")] | None = None
    metadataProperties: MetadataProperties | None = None
    modelMetrics: ModelMetrics | None = None
    driftCheckBaselines: DriftCheckBaselines | None = None
    customerMetadataProperties: (
        Annotated[dict[CustomerMetadataKey, CustomerMetadataValue], Field(min_length=1, max_length=50)] | None
    ) = Field(
        None,
        description="Keys removed here are removed in SageMaker.",
        json_schema_extra=validations(
            rule(
                f"size(self) <= 49 && !self.exists(k, k.startsWith('{RESERVED_KEY_PREFIX}'))",
                CUSTOMER_METADATA_RESERVED,
            )
        ),
    )
    additionalInferenceSpecifications: (
        Annotated[list[AdditionalInferenceSpecification], Field(min_length=1, max_length=15)] | None
    ) = Field(
        None,
        description="Append-only: entries can be added later, never changed or removed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    certifyForMarketplace: bool | None = None
    domain: String | None = None
    task: String | None = None
    samplePayloadUrl: S3Uri | None = None
    skipModelValidation: Literal["All", "None"] | None = None
    sourceUri: Annotated[str, api_string(0, 1024, r"[\p{L}\p{M}\p{Z}\p{N}\p{P}]{0,1024}")] | None = None
    securityConfig: ModelPackageSecurityConfig | None = None
    modelLifeCycle: ModelLifeCycle | None = Field(
        None,
        description="The version's lifecycle stage: kept equal with UpdateModelPackage (drift corrected); "
        "when omitted, only observed.",
    )
    modelCard: ModelPackageModelCard | None = Field(
        None,
        description="The version's model card: kept equal with UpdateModelPackage (drift corrected); "
        "when omitted, only observed.",
    )
    tags: TagList | None = None
    artifacts: Annotated[list[Artifact], Field(min_length=1, max_length=16)] | None = kubernetes_only(
        description="Model files the operator copies into the registry's bucket before registering.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    region: AwsRegion | None = region_field()
    deletionPolicy: DeletionPolicy | None = kubernetes_only(
        description="Delete the package in SageMaker when this object is deleted (Delete) or keep it (Retain). "
        "Defaults to the operator's setting."
    )

    @model_validator(mode="after")
    def _check_choices(self) -> ModelPackageSpec:
        given = [name for name in GROUP_CHOICE if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of modelPackageGroupRef, modelPackageGroupName or modelPackageName must be set"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.modelPackageVersion is not None and self.modelPackageName is not None:
            raise ValueError(ADOPT_IN_A_GROUP)
        if self.modelPackageVersion is not None and self.artifacts is not None:
            raise ValueError(ADOPT_WITHOUT_ARTIFACTS)
        declared = {artifact.name for artifact in self.artifacts or ()}
        containers = self.inferenceSpecification.containers if self.inferenceSpecification else []
        for index, container in enumerate(containers):
            if container.modelDataArtifact is not None and container.modelDataArtifact not in declared:
                raise ValueError(
                    f"{ARTIFACT_UNDECLARED}: inferenceSpecification.containers[{index}].modelDataArtifact"
                    f" names {container.modelDataArtifact!r}, which is not declared"
                )
        return self

    @field_validator("customerMetadataProperties")
    @classmethod
    def _no_reserved_metadata(cls, properties: dict[str, str] | None) -> dict[str, str] | None:
        if properties is not None and (
            len(properties) > 49 or any(key.startswith(RESERVED_KEY_PREFIX) for key in properties)
        ):
            raise ValueError(CUSTOMER_METADATA_RESERVED)
        return properties

    @field_validator("artifacts")
    @classmethod
    def _unique_artifacts(cls, artifacts: list[Artifact] | None) -> list[Artifact] | None:
        _check_unique([artifact.name for artifact in artifacts or ()], "artifact name")
        return artifacts

    @field_validator("additionalInferenceSpecifications")
    @classmethod
    def _unique_additional(
        cls, specs: list[AdditionalInferenceSpecification] | None
    ) -> list[AdditionalInferenceSpecification] | None:
        _check_unique([spec.name for spec in specs or ()], "name")
        return specs


class ArtifactStatus(StatusModel):
    name: str
    uri: str | None = Field(None, description="s3:// URI of the copied archive.")
    sha256: str | None = None
    size: int | None = None


APPROVAL_HISTORY_MAX = 20


class ApprovalRecord(StatusModel):
    """One approval change: the approval and its description after it, when, and who made it."""

    modelApprovalStatus: str | None = None
    approvalDescription: str | None = None
    time: datetime | None = None
    changedBy: str | None = Field(
        None,
        description="Who: the Kubernetes field manager that last set spec.modelApprovalStatus (a change applied "
        "from the spec), or SageMaker's LastModifiedBy, an IAM identity ARN or a Studio user profile (a change "
        "observed in SageMaker).",
    )


class ModelPackageStatus(CommonStatus):
    modelPackageVersion: int | None = None
    modelPackageGroupName: str | None = None
    modelPackageStatus: str | None = Field(
        None, description="Pending, InProgress, Completed, Failed or Deleting."
    )
    modelApprovalStatus: str | None = Field(None, description="Approval status as observed in SageMaker.")
    approvalDescription: str | None = None
    approvalHistory: Annotated[list[ApprovalRecord], Field(max_length=APPROVAL_HISTORY_MAX)] = Field(
        default_factory=list,
        description=f"Each approval change the operator made or observed, newest last, at most {APPROVAL_HISTORY_MAX}.",
    )
    lastApprovalChangedBy: str | None = Field(
        None,
        description="changedBy of the newest approvalHistory entry (a printer column cannot index a list from its end).",
    )
    artifacts: list[ArtifactStatus] = Field(default_factory=list)
    creationTime: datetime | None = None
    lastModifiedTime: datetime | None = None
