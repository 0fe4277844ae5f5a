"""API types of the three kinds: the single source of truth for the CRDs in crds/
(`python -m model_registry_operator.api.crdgen crds`) and for validation in the operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .common import (
    ApiModel,
    CommonStatus,
    Condition,
    DeletionPolicy,
    ModelDataSource,
    ObjectRef,
    Tag,
    format_validation_error,
    to_api,
)
from .model import ContainerDefinition, ContainerStatus, ModelSpec, ModelStatus
from .modelpackage import (
    AdditionalInferenceSpecification,
    Artifact,
    ArtifactFile,
    ArtifactStatus,
    InferenceSpecification,
    ModelPackageContainer,
    ModelPackageSpec,
    ModelPackageStatus,
)
from .modelpackagegroup import ModelPackageGroupSpec, ModelPackageGroupStatus


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[ApiModel]
    status: type[BaseModel]


KINDS: dict[str, Kind] = {
    kind.kind: kind
    for kind in (
        Kind(
            "ModelPackageGroup",
            "modelpackagegroups",
            "modelpackagegroup",
            ("mpg",),
            ModelPackageGroupSpec,
            ModelPackageGroupStatus,
        ),
        Kind("ModelPackage", "modelpackages", "modelpackage", ("mp",), ModelPackageSpec, ModelPackageStatus),
        Kind("Model", "models", "model", ("mdl",), ModelSpec, ModelStatus),
    )
}


def parse_spec(kind: str, spec: dict[str, Any] | None) -> Any:
    """The typed spec of a resource of `kind`; raises pydantic.ValidationError when invalid
    (format it with `format_validation_error`). Strict, like the apiserver: no coercion of
    "1" to 1 or 0 to false."""
    return KINDS[kind].spec.model_validate(spec if spec is not None else {}, strict=True)


__all__ = [
    "KINDS",
    "AdditionalInferenceSpecification",
    "ApiModel",
    "Artifact",
    "ArtifactFile",
    "ArtifactStatus",
    "CommonStatus",
    "Condition",
    "ContainerDefinition",
    "ContainerStatus",
    "DeletionPolicy",
    "InferenceSpecification",
    "Kind",
    "ModelDataSource",
    "ModelPackageContainer",
    "ModelPackageGroupSpec",
    "ModelPackageGroupStatus",
    "ModelPackageSpec",
    "ModelPackageStatus",
    "ModelSpec",
    "ModelStatus",
    "ObjectRef",
    "Tag",
    "format_validation_error",
    "parse_spec",
    "to_api",
]
