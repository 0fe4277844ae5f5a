"""SageMaker models (CreateModel / DescribeModel / DeleteModel).

moto 5.2.5 replaces an existing model on CreateModel with the same name, accepts a
container naming a model package that does not exist, and names the model rather than its
ARN in the not-found message. Its DescribeModel also differs from what CreateModel was
sent: EnableNetworkIsolation is always false, InferenceExecutionConfig is dropped, a
missing ExecutionRoleArn reads "arn:test", and the members not sent come back empty
(``PrimaryContainer: {}`` next to Containers, ``VpcConfig: {}``) instead of absent.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import Model, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from ._common import arn_of, backend_method, response_method

original_create_model = SageMakerModelBackend.create_model
_lock = threading.Lock()


def apply() -> None:
    # DescribeModelOutput: PrimaryContainer, Containers, VpcConfig, ExecutionRoleArn and
    # InferenceExecutionConfig are optional members, answered as CreateModel was sent. A
    # member that was not sent is absent, not empty: an empty VpcConfig cannot even exist
    # (VpcConfig requires SecurityGroupIds and Subnets). moto keeps {} and [].
    def response_object(self: Model) -> dict[str, Any]:
        response = {k: v for k, v in self.gen_response_object().items() if v not in (None, {}, [], [None])}
        response["ModelArn"] = response.pop("Arn")
        return response

    Model.response_object = property(response_object)


def _missing(backend: SageMakerModelBackend, model_name: str) -> ValidationError:
    # AWS: ValidationException 'Could not find model "arn:aws:sagemaker:...:model/<name>".'
    # for DescribeModel and DeleteModel of a model that does not exist (DeleteModel lists
    # no specific error in the API reference: the common ValidationException applies).
    return ValidationError(f'Could not find model "{arn_of(backend, "model", model_name)}".')


@response_method
def respond_create_model(self: SageMakerResponse) -> ActionResult:
    # moto's handler passes neither EnableNetworkIsolation nor InferenceExecutionConfig on.
    model = self.sagemaker_backend.create_model(
        model_name=self._get_param("ModelName"),
        execution_role_arn=self._get_param("ExecutionRoleArn"),
        primary_container=self._get_param("PrimaryContainer"),
        vpc_config=self._get_param("VpcConfig"),
        containers=self._get_param("Containers"),
        tags=self._get_param("Tags"),
        enable_network_isolation=self._get_param("EnableNetworkIsolation", False),
        inference_execution_config=self._get_param("InferenceExecutionConfig"),
    )
    return ActionResult(model.response_create)


@backend_method
def create_model(
    self: SageMakerModelBackend,
    model_name,
    execution_role_arn,
    primary_container,
    vpc_config,
    containers,
    tags,
    enable_network_isolation=False,
    inference_execution_config=None,
) -> Model:
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
        model = original_create_model(
            self, model_name, execution_role_arn, primary_container, vpc_config, containers, tags
        )
        # CreateModel.EnableNetworkIsolation: "Isolates the model container. No inbound or
        # outbound network calls can be made to or from the model container."
        # DescribeModel.EnableNetworkIsolation: "If True, no inbound or outbound network
        # calls can be made to or from the model container." moto always answered false.
        model.enable_network_isolation = bool(enable_network_isolation)
        # CreateModel.InferenceExecutionConfig: "Specifies details of how containers in a
        # multi-container endpoint are called." DescribeModel returns it; moto dropped it.
        model.inference_execution_config = inference_execution_config
        # DescribeModel.ExecutionRoleArn: "The Amazon Resource Name (ARN) of the IAM role
        # that you specified for the model." (optional in CreateModel; moto invented
        # "arn:test" when none was specified)
        model.execution_role_arn = execution_role_arn
        return model


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
