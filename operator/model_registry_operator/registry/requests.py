"""SageMaker request shaping, beside the backend: from the API types to the members each
operation accepts, and the comparisons of what SageMaker returns with what was asked for."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api.common import ApiModel
from ..api.common import to_api as api_shape
from .base import Shape

# Members of the create requests (from botocore's SageMaker model; tests/unit/
# test_timing_and_requests.py checks them against it). Listed here rather than read from
# botocore at run time: its SageMaker model is ~18 MB of Python objects, already loaded
# once by the boto3 client.
CREATE_MEMBERS: dict[str, frozenset[str]] = {
    "CreateModelPackageGroup": frozenset(
        {"ManagedConfiguration", "ModelPackageGroupDescription", "ModelPackageGroupName", "Tags"}
    ),
    "CreateModelPackage": frozenset(
        {
            "AdditionalInferenceSpecifications",
            "CertifyForMarketplace",
            "ClientToken",
            "CustomerMetadataProperties",
            "Domain",
            "DriftCheckBaselines",
            "InferenceSpecification",
            "ManagedStorageType",
            "MetadataProperties",
            "ModelApprovalStatus",
            "ModelCard",
            "ModelLifeCycle",
            "ModelMetrics",
            "ModelPackageDescription",
            "ModelPackageGroupName",
            "ModelPackageName",
            "ModelPackageRegistrationType",
            "SamplePayloadUrl",
            "SecurityConfig",
            "SkipModelValidation",
            "SourceAlgorithmSpecification",
            "SourceUri",
            "Tags",
            "Task",
            "ValidationSpecification",
        }
    ),
    "CreateModel": frozenset(
        {
            "Containers",
            "EnableNetworkIsolation",
            "ExecutionRoleArn",
            "InferenceExecutionConfig",
            "ModelName",
            "PrimaryContainer",
            "Tags",
            "VpcConfig",
        }
    ),
}


def to_api(spec: ApiModel) -> Shape:
    """The spec in API shape (PascalCase members), Kubernetes-only fields left out."""
    request: Shape = api_shape(spec)
    return request


def request_for(operation: str, shape: Shape) -> Shape:
    """Only the members `operation` accepts, without empty values (the API types describe
    the whole object; e.g. ApprovalDescription exists on UpdateModelPackage, not on create)."""
    members = CREATE_MEMBERS[operation]
    return {k: v for k, v in shape.items() if k in members and v not in (None, [], {})}


def tag_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """API tags `[{Key, Value}]` as a dict."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}


def stable_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_subset(desired: Any, observed: Any) -> bool:
    """True when every value the spec sets is present and equal in what SageMaker returns
    (SageMaker adds defaults and server-side fields; those are not drift)."""
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(is_subset(v, observed.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(is_subset(d, o) for d, o in zip(desired, observed))
        )
    return bool(desired == observed)


def group_name_of(name_or_arn: str) -> str:
    """`arn:aws:sagemaker:r:a:model-package-group/churn` -> `churn`."""
    return (
        name_or_arn.rsplit("model-package-group/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
    )
