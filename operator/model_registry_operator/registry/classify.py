"""The one place where boto3/botocore failures become `RetryableError` or `TerminalError`.

The rule: an error is retryable when waiting alone can make the call succeed, terminal when
a person has to act (edit the spec, grant access, raise a quota, fix credentials).

Retryable (the controller reports Reconciling and backs off):
- throttling (the codes botocore's own retry logic treats as throttling, HTTP 429): `Throttled`;
- SageMaker-side failures (HTTP 5xx, InternalFailure, ServiceUnavailable, request timeouts):
  `SageMakerUnavailable`;
- the network (connection refused or reset, connect/read timeouts): `SageMakerUnreachable`;
- `ConflictException`: AWS documents it as a concurrent modification of the same entity
  (and a group still being emptied answers with it); the next attempt sees the settled state;
- "already exists" answers to a create (a ValidationException for groups, packages and
  models): typically our own earlier attempt succeeded but its answer was lost (a read
  timeout retried by botocore, a crash); the next reconcile describes the object and
  decides. Reason `CreateUnconfirmed`: a name taken by someone else is found by that next
  look and reported as `Stalled/AlreadyExists`;
- expired credentials or request signatures: botocore refreshes credentials (IRSA) and
  corrects clock skew by itself, so the next attempt normally succeeds;
- credential provider failures (the STS/IMDS call behind IRSA failed).

Terminal (the controller reports Stalled with this reason and the API's message):
- `ValidationException` and its relatives, and botocore's client-side parameter validation:
  `ValidationError` (or `NotFound` when the message says an object does not exist);
- access: `AccessDenied`; unknown or malformed credentials: `InvalidCredentials`;
  no credentials or no region configured: `MissingCredentials`, `MissingRegion`;
- `ResourceLimitExceeded`: an account quota; only a quota increase or a clean-up by a person
  helps, and retrying every few seconds would only add load;
- `ResourceInUse`: the object is held by another resource that the operator does not manage;
- any other 4xx code: SageMaker refused the request as such, repeating it cannot help.

Not-found is *not* decided here for describe/delete calls: `is_not_found` answers it and the
registry turns it into `None` or success. SageMaker has no dedicated code for most of these
objects: a missing group or package is a `ValidationException` "... does not exist.", a
missing model a `ValidationException` "Could not find model ...", and some operations use
`ResourceNotFound`. The phrases are the ones the AWS controllers for Kubernetes and the
Terraform provider match for the same operations.
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.exceptions import (
    ValidationError as BotoValidationError,
)

from ..errors import ReconcileError, RetryableError, TerminalError
from ..reasons import Reason
from ..timing import (
    CONFLICT_DELAY,
    CREATE_UNCONFIRMED_DELAY,
    CREDENTIALS_EXPIRED_DELAY,
    THROTTLED_DELAY,
    UNAVAILABLE_DELAY,
)

# botocore's standard retry mode treats these as throttling (botocore/retries/standard.py);
# a unit test keeps this set a superset of botocore's list.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
VALIDATION_CODES = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MissingParameter",
        "SerializationException",
    }
)
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "NotAuthorized",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "UnrecognizedClient",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NotFoundException"})
RETRYABLE_CODES = {"ConflictException": Reason.CONFLICT}
TERMINAL_CODES = {
    "ResourceLimitExceeded": Reason.RESOURCE_LIMIT_EXCEEDED,
    "ResourceInUse": Reason.RESOURCE_IN_USE,
}

# How a ValidationException says "no such object" for groups, packages and models.
_NOT_FOUND_MESSAGE = re.compile(r"does not exist|could not find|cannot find|not found", re.IGNORECASE)
# "Model Package Group already exists: <arn>", 'Cannot create already existing model "<arn>".'
_ALREADY_EXISTS_MESSAGE = re.compile(r"already exist", re.IGNORECASE)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "") or ""


def error_message(exc: ClientError) -> str:
    return (exc.response.get("Error", {}).get("Message", "") or "").strip()


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_not_found(exc: BaseException) -> bool:
    """True when SageMaker answered that the object named in the request does not exist."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    return code in VALIDATION_CODES and bool(_NOT_FOUND_MESSAGE.search(error_message(exc)))


def classify_error(exc: BaseException) -> ReconcileError:
    """Map a botocore failure to the operator's two kinds of error; anything else is re-raised.

    Exceptions that are not botocore's (programming errors) are not classified: hiding them
    behind a condition would make bugs look like SageMaker trouble.
    """
    if isinstance(exc, ReconcileError):
        return exc
    if isinstance(exc, ClientError):
        return _classify_client_error(exc)
    if isinstance(exc, BotoCoreError):
        return _classify_botocore_error(exc)
    raise TypeError(f"not a botocore error: {exc!r}") from exc


def _classify_client_error(exc: ClientError) -> ReconcileError:
    code = error_code(exc)
    status = http_status(exc)
    operation = exc.operation_name or "the SageMaker call"
    api_message = error_message(exc) or "no message"
    detail = f"{operation} failed with {code or f'HTTP {status}'}: {_sentence(api_message)}"

    def retry(reason: Reason, why: str, delay: float) -> RetryableError:
        return RetryableError(reason, f"{why} {detail}", delay)

    def stop(reason: Reason, why: str = "") -> TerminalError:
        return TerminalError(reason, f"{why} {detail}".strip())

    if code in THROTTLING_CODES or status == 429:
        return retry(
            Reason.THROTTLED, "SageMaker is throttling requests; retrying with backoff.", THROTTLED_DELAY
        )
    if code in UNAVAILABLE_CODES or status >= 500:
        return retry(
            Reason.SAGEMAKER_UNAVAILABLE,
            "SageMaker is unavailable; retrying with backoff.",
            UNAVAILABLE_DELAY,
        )
    if code in RETRYABLE_CODES:
        return retry(
            RETRYABLE_CODES[code], "SageMaker reported a conflicting change; retrying.", CONFLICT_DELAY
        )
    if code in EXPIRED_CODES:
        return retry(
            Reason.CREDENTIALS_EXPIRED,
            "The AWS credentials or request signature expired; retrying.",
            CREDENTIALS_EXPIRED_DELAY,
        )
    if code in VALIDATION_CODES and _ALREADY_EXISTS_MESSAGE.search(api_message):
        why = "The object already exists in SageMaker; it is looked at again before anything is created."
        return retry(Reason.CREATE_UNCONFIRMED, why, CREATE_UNCONFIRMED_DELAY)
    if is_not_found(exc):
        return stop(Reason.NOT_FOUND)
    if code in VALIDATION_CODES:
        return stop(Reason.VALIDATION_ERROR, "SageMaker rejected the request.")
    if code in ACCESS_CODES:
        return stop(Reason.ACCESS_DENIED, "The operator's AWS identity lacks this permission; grant it.")
    if code in CREDENTIAL_CODES:
        return stop(Reason.INVALID_CREDENTIALS, "SageMaker does not accept the operator's AWS credentials.")
    if code in TERMINAL_CODES:
        return stop(TERMINAL_CODES[code])
    return stop(Reason.SAGEMAKER_ERROR)


def _classify_botocore_error(exc: BotoCoreError) -> ReconcileError:
    text = _sentence(str(exc))
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        # connection refused/reset, DNS, connect and read timeouts, truncated responses
        return RetryableError(
            Reason.SAGEMAKER_UNREACHABLE, f"Cannot reach SageMaker; retrying. {text}", UNAVAILABLE_DELAY
        )
    if isinstance(exc, CredentialRetrievalError):
        return RetryableError(
            Reason.CREDENTIALS_UNAVAILABLE,
            f"Fetching AWS credentials failed; retrying. {text}",
            UNAVAILABLE_DELAY,
        )
    if isinstance(exc, (ParamValidationError, BotoValidationError)):
        return TerminalError(Reason.VALIDATION_ERROR, f"The request is not valid for SageMaker. {text}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return TerminalError(Reason.MISSING_CREDENTIALS, f"No usable AWS credentials are configured. {text}")
    if isinstance(exc, NoRegionError):
        return TerminalError(
            Reason.MISSING_REGION, "No AWS region is configured for the operator; set AWS_REGION."
        )
    return TerminalError(Reason.AWS_CLIENT_ERROR, text)


def _sentence(text: str) -> str:
    """One line, ending with a full stop (botocore messages span lines)."""
    flat = " ".join(text.split())
    return flat if flat.endswith((".", "!", "?")) else f"{flat}."
