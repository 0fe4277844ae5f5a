"""SageMaker models (CreateModel / DescribeModel / DeleteModel).

moto 5.2.5 replaces an existing model on CreateModel with the same name, accepts a
container naming a model package that does not exist, and names the model rather than its
ARN in the not-found message.
"""

from __future__ import annotations

import threading

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import Model, SageMakerModelBackend

from ._common import arn_of, backend_method

original_create_model = SageMakerModelBackend.create_model
_lock = threading.Lock()


def apply() -> None:
    """The replacements are registered by the decorators; nothing else to patch."""


def _missing(backend: SageMakerModelBackend, model_name: str) -> ValidationError:
    # AWS: ValidationException 'Could not find model "arn:aws:sagemaker:...:model/<name>".'
    # for DescribeModel and DeleteModel of a model that does not exist (DeleteModel lists
    # no specific error in the API reference: the common ValidationException applies).
    return ValidationError(f'Could not find model "{arn_of(backend, "model", model_name)}".')


@backend_method
def create_model(self: SageMakerModelBackend, model_name, execution_role_arn, primary_container,
                 vpc_config, containers, tags) -> Model:
    # CreateModel.ModelName: "The name of the new model." A name that exists is refused
    # with ValidationException 'Cannot create already existing model "<arn>".', the
    # message SDKs match on (moto silently replaced the model).
    with _lock:
        if model_name in self._models:
            raise ValidationError(
                f'Cannot create already existing model "{arn_of(self, "model", model_name)}".'
            )
        # ContainerDefinition.ModelPackageName: "The name or Amazon Resource Name (ARN) of
        # the model package to use to create the model." The package must exist (moto
        # accepted any string): resolving it raises "ModelPackage <arn> does not exist."
        for container in [primary_container or {}, *(containers or [])]:
            if container.get("ModelPackageName"):
                self._harness_package(container["ModelPackageName"])
        return original_create_model(
            self, model_name, execution_role_arn, primary_container, vpc_config, containers, tags
        )


@backend_method
def describe_model(self: SageMakerModelBackend, model_name: str) -> Model:
    model = self._models.get(model_name)
    if model is None:
        raise _missing(self, model_name)
    return model


@backend_method
def delete_model(self: SageMakerModelBackend, model_name: str) -> None:
    with _lock:
        if self._models.pop(model_name, None) is None:
            raise _missing(self, model_name)
