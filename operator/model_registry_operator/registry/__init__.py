"""The SageMaker backend behind a small interface (`Registry`), with error classification."""

from .base import OWNER_UID_KEY, Registry, Shape
from .classify import classify_error, is_not_found
from .sagemaker import SageMakerRegistry, client_token_for, default_config, registry_for

__all__ = [
    "OWNER_UID_KEY",
    "Registry",
    "SageMakerRegistry",
    "Shape",
    "classify_error",
    "client_token_for",
    "default_config",
    "is_not_found",
    "registry_for",
]
