"""Error classification: every botocore failure becomes RetryableError or TerminalError."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.retries import standard

from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.registry import classify_error, is_not_found
from model_registry_operator.registry.classify import THROTTLING_CODES


def client_error(
    code: str, message: str = "", status: int = 400, operation: str = "CreateModelPackage"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_codes_are_retryable(code):
    error = classify_error(client_error(code, "Rate exceeded"))
    assert isinstance(error, RetryableError)
    assert error.reason == "Throttled"
    assert "Rate exceeded" in error.message and code in error.message
    assert error.delay > 0


def test_our_throttling_codes_cover_botocores():
    # botocore retries these as throttling; we must not call one of them terminal
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= THROTTLING_CODES


def test_http_429_without_a_known_code_is_throttling():
    assert classify_error(client_error("SomethingNew", "slow down", status=429)).reason == "Throttled"


@pytest.mark.parametrize(
    "code,status",
    [
        ("InternalFailure", 500),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
        ("RequestTimeout", 400),
        ("RequestTimeoutException", 408),
        ("", 502),
        ("UnknownServerTrouble", 504),
    ],
)
def test_server_side_failures_are_retryable(code, status):
    error = classify_error(client_error(code, "boom", status))
    assert isinstance(error, RetryableError)
    assert error.reason == "SageMakerUnavailable"
    assert ("HTTP 502" in error.message) if not code else (code in error.message)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_network_failures_are_retryable(exc):
    error = classify_error(exc)
    assert isinstance(error, RetryableError)
    assert error.reason == "SageMakerUnreachable"
    assert "127.0.0.1:1" in error.message


def test_conflict_is_retryable():
    error = classify_error(
        client_error("ConflictException", "There was a conflict when you attempted to modify the entity.")
    )
    assert isinstance(error, RetryableError) and error.reason == "Conflict"
    assert "conflict when you attempted" in error.message


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_are_retryable(code):
    error = classify_error(client_error(code, "The security token included in the request is expired"))
    assert isinstance(error, RetryableError) and error.reason == "CredentialsExpired"


def test_credential_provider_failure_is_retryable():
    error = classify_error(
        CredentialRetrievalError(provider="assume-role-with-web-identity", error_msg="STS is down")
    )
    assert isinstance(error, RetryableError) and error.reason == "CredentialsUnavailable"
    assert "STS is down" in error.message


@pytest.mark.parametrize(
    "code", ["ValidationException", "InvalidParameterValue", "MissingParameter", "SerializationException"]
)
def test_validation_is_terminal_with_the_api_message(code):
    message = (
        "1 validation error detected: Value 'x y' at 'modelPackageGroupName' failed to satisfy constraint"
    )
    error = classify_error(client_error(code, message))
    assert isinstance(error, TerminalError)
    assert error.reason == "ValidationError"
    assert message in error.message
    assert "CreateModelPackage" in error.message
    assert error.message.endswith(".")


def test_validation_about_a_missing_object_is_reported_as_not_found():
    error = classify_error(client_error("ValidationException", "Model Package Group does not exist."))
    assert isinstance(error, TerminalError) and error.reason == "NotFound"
    assert "Model Package Group does not exist." in error.message


@pytest.mark.parametrize(
    "message",
    [
        "Model Package Group already exists: arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn",
        'Cannot create already existing model "arn:aws:sagemaker:us-east-2:123456789012:model/churn".',
    ],
)
def test_already_exists_is_retryable_so_the_next_reconcile_looks_again(message):
    error = classify_error(client_error("ValidationException", message))
    assert isinstance(error, RetryableError) and error.reason == "CreateUnconfirmed"
    assert message in error.message


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_access_denied_is_terminal(code):
    message = "User: arn:aws:sts::1:assumed-role/op is not authorized to perform: sagemaker:CreateModel"
    error = classify_error(client_error(code, message, 403, "CreateModel"))
    assert isinstance(error, TerminalError) and error.reason == "AccessDenied"
    assert message in error.message


@pytest.mark.parametrize(
    "code", ["UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId"]
)
def test_bad_credentials_are_terminal(code):
    error = classify_error(client_error(code, "The security token included in the request is invalid.", 403))
    assert isinstance(error, TerminalError) and error.reason == "InvalidCredentials"


@pytest.mark.parametrize("code", ["ResourceLimitExceeded", "ResourceInUse"])
def test_quota_and_in_use_are_terminal_with_their_code_as_reason(code):
    error = classify_error(client_error(code, "You have reached the limit of model package groups."))
    assert isinstance(error, TerminalError) and error.reason == code


def test_unknown_client_error_is_terminal():
    error = classify_error(client_error("BrandNewException", "something odd"))
    assert isinstance(error, TerminalError) and error.reason == "SageMakerError"
    assert "BrandNewException" in error.message and "something odd" in error.message


def test_client_side_parameter_validation_is_terminal_and_names_the_field():
    exc = ParamValidationError(
        report="Invalid length for parameter ClientToken, value: 0, valid min length: 1"
    )
    error = classify_error(exc)
    assert isinstance(error, TerminalError) and error.reason == "ValidationError"
    assert "ClientToken" in error.message and "\n" not in error.message


@pytest.mark.parametrize(
    "exc,reason",
    [
        (NoCredentialsError(), "MissingCredentials"),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "MissingCredentials"),
        (NoRegionError(), "MissingRegion"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_missing_configuration_is_terminal(exc, reason):
    error = classify_error(exc)
    assert isinstance(error, TerminalError) and error.reason == reason


def test_already_classified_errors_pass_through():
    original = RetryableError("WaitingForGroup", "The group is not ready.")
    assert classify_error(original) is original


def test_non_botocore_exceptions_are_not_hidden():
    with pytest.raises(TypeError):
        classify_error(KeyError("bug"))


def test_empty_message_still_gives_a_sentence():
    error = classify_error(client_error("ValidationException", ""))
    assert error.message.endswith("no message.")


@pytest.mark.parametrize(
    "code,message",
    [
        # what SageMaker answers for a missing group, package and model
        (
            "ValidationException",
            "ModelPackageGroup arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn does not exist.",
        ),
        (
            "ValidationException",
            "ModelPackage arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/3 does not exist.",
        ),
        (
            "ValidationException",
            'Could not find model "arn:aws:sagemaker:us-east-2:123456789012:model/churn".',
        ),
        ("ValidationException", "Cannot find Model Package Group churn"),
        ("ValidationException", "Model package churn/3 not found"),
        ("ResourceNotFound", "Resource not found"),
        ("ResourceNotFoundException", "anything"),
    ],
)
def test_not_found_answers(code, message):
    assert is_not_found(client_error(code, message, operation="DescribeModelPackage"))


@pytest.mark.parametrize(
    "code,message",
    [
        (
            "ValidationException",
            "1 validation error detected: Value at 'modelName' failed to satisfy constraint",
        ),
        (
            "ValidationException",
            "Model Package Group already exists: arn:aws:sagemaker:us-east-2:1:model-package-group/churn",
        ),
        ("ValidationException", ""),
        (
            "AccessDeniedException",
            "User is not authorized; the role does not exist",
        ),  # only validation texts count
        ("ThrottlingException", "Rate exceeded"),
        ("InternalFailure", "not found"),
    ],
)
def test_other_answers_are_not_not_found(code, message):
    assert not is_not_found(client_error(code, message))


def test_only_client_errors_can_be_not_found():
    assert not is_not_found(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))


def test_other_botocore_errors_are_terminal():
    from botocore.exceptions import PaginationError

    error = classify_error(PaginationError(message="bad token"))
    assert isinstance(error, TerminalError) and error.reason == "AWSClientError"
    assert "bad token" in error.message
