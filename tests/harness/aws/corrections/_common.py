"""Small helpers shared by the correction modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(?P<type>[a-z\-]*)/(?P<id>.+)$")


def name_from(name_or_arn: str, resource_type: str) -> str:
    """``churn`` for ``churn`` or ``arn:...:model-package-group/churn``."""
    match = ARN.match(name_or_arn or "")
    if match and match.group("type") == resource_type:
        return match.group("id")
    return name_or_arn


def arn_of(backend: SageMakerModelBackend, resource_type: str, resource_id: str) -> str:
    return arn_formatter(resource_type, resource_id, backend.account_id, backend.region_name)


# (class, attribute, function) to install when the corrections are applied, not at
# import: a test may import a correction module without patching moto.
PATCHES: list[tuple[type, str, Callable]] = []


def backend_method(function: Callable) -> Callable:
    """Register ``function`` to replace (or add) the moto SageMaker backend method of the
    same name."""
    PATCHES.append((SageMakerModelBackend, function.__name__, function))
    return function


def response_method(function: Callable) -> Callable:
    """Register ``respond_<operation>`` as the handler of that operation (moto dispatches
    ``X-Amz-Target: SageMaker.DeleteModelPackage`` to
    ``SageMakerResponse.delete_model_package``)."""
    PATCHES.append((SageMakerResponse, function.__name__.removeprefix("respond_"), function))
    return function


def install_patches() -> None:
    for owner, attribute, function in PATCHES:
        setattr(owner, attribute, function)


def harness_state(backend: SageMakerModelBackend, name: str, factory: Callable[[], Any]) -> Any:
    """Per-backend state the corrections keep; moto's reset re-runs ``__init__`` and so
    clears it together with moto's own state."""
    attribute = f"_harness_{name}"
    if attribute not in backend.__dict__:
        setattr(backend, attribute, factory())
    return getattr(backend, attribute)
