"""Accounts, regions and STS AssumeRole.

How moto 5.2.5 attributes a request to an account (moto/core/responses.py,
``BaseResponse.get_current_account``): ``MOTO_ACCOUNT_ID``, else the ``x-moto-account-id``
header, else ``moto.iam.models.get_account_id_from(access_key)``: the account whose IAM
backend holds that access key, else the default 123456789012. STS AssumeRole
(moto/sts/models.py, ``_create_access_key``) creates a temporary ``ASIA...`` key in the IAM
backend of the account named by the RoleArn, so every call signed with the returned
credentials (SageMaker, S3, IAM, STS GetCallerIdentity) lands in the role's account, as in
AWS ("You can use the role's temporary credentials in subsequent Amazon Web Services API
calls to access resources in the account that owns the role", botocore AssumeRole
documentation). The region is the one of the SigV4 credential scope, so one endpoint serves
every region. Nothing to correct there; the self-tests (test_aws_accounts.py) pin it.

Corrected here:

- moto's AssumeRole accepts any RoleArn ("Note that the role does not need to exist"), from
  any caller, with any ExternalId. AWS (botocore AssumeRole documentation): "When you create
  a role, you create two policies: a role trust policy that specifies who can assume the
  role [...]. To assume a role from a different account, your Amazon Web Services account
  must be trusted by the role. The trust relationship is defined in the role's trust
  policy"; and ExternalId: "If the administrator of the account to which the role belongs
  provided you with an external ID, then provide that value in the ExternalId parameter
  [...] only someone with the ID can assume the role" (the trust policy's
  ``"Condition": {"StringEquals": {"sts:ExternalId": "..."}}``, IAM User Guide "How to use
  an external ID when granting access to your AWS resources to a third party"). So the role
  must exist in its account and its trust policy (AssumeRolePolicyDocument) must allow
  ``sts:AssumeRole`` to the caller (account root, account id, the caller's ARN, its role's
  ARN, ``*``) with its conditions met (``sts:ExternalId``, ``sts:RoleSessionName``,
  ``aws:PrincipalArn``, ``aws:PrincipalAccount``); see _policy.py for the evaluation.
  Otherwise AccessDenied, HTTP 403, "User: <caller arn> is not authorized to perform:
  sts:AssumeRole on resource: <role arn>": the same answer whether the role is missing or
  does not trust the caller (AWS does not tell the two apart). The caller's identity-based
  policy (which AWS also requires for a cross-account AssumeRole) is not modelled: the
  harness grants every identity every action.
- RoleSessionName and ExternalId are checked against their documented patterns
  (``[\\w+=,.@-]*``, 2-64 characters; ``[\\w+=,.@:\\/-]*``, 2-1224 characters): a session
  name derived from a Kubernetes object (``ns/name``) is refused with ValidationError as in
  AWS, not accepted.
- DurationSeconds beyond the role's MaxSessionDuration is refused (ValidationError), as
  documented for DurationSeconds; moto ignores the role's setting.
- Keys configured with ``HarnessConfig.set_identity`` (harness API) belong to the account of
  their identity ARN, and STS GetCallerIdentity answers that identity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import moto.iam.models as iam_models
from moto.core.exceptions import AccessDeniedError
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSValidationError
from moto.sts.models import STSBackend, sts_backends
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

from ..config import CONFIG
from . import _policy

DEFAULT_ACCOUNT = "123456789012"
_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z\-]*):iam::(?P<account>[0-9]{12}):role/(?P<path_name>.+)$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_PATH = re.compile(r"^/([\x21-\x7e]{0,510}/)?$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
# botocore sts AssumeRoleRequest: (member, wire name, min, max, pattern)
_PATTERNS = (
    ("RoleSessionName", "roleSessionName", 2, 64, r"[\w+=,.@-]*"),
    ("ExternalId", "externalId", 2, 1224, r"[\w+=,.@:\/-]*"),
)

original_get_account_id_from = iam_models.get_account_id_from
original_get_caller_identity = STSBackend.get_caller_identity
original_assume_role = TokenResponse.assume_role


@dataclass(frozen=True)
class Caller:
    """Who signed a request: what GetCallerIdentity answers for its access key."""

    arn: str
    account: str
    user_id: str


def caller_identity(access_key_id: str, account: str, region: str) -> Caller:
    sts = sts_backends[account][get_partition(region)]
    user_id, arn, caller_account = sts.get_caller_identity(access_key_id, region)
    return Caller(arn=arn, account=caller_account, user_id=user_id)


def apply() -> None:
    iam_models.get_account_id_from = get_account_id_from
    STSBackend.get_caller_identity = get_caller_identity
    TokenResponse.assume_role = assume_role


def get_account_id_from(access_key: str) -> str:
    configured = CONFIG.identity(access_key)
    if configured is not None:
        return configured["IamIdentity"]["Arn"].split(":")[4]
    return original_get_account_id_from(access_key)


def get_caller_identity(self: STSBackend, access_key_id: str, region: str) -> tuple[str, str, str]:
    configured = CONFIG.identity(access_key_id)
    if configured is not None:
        identity = configured["IamIdentity"]
        return identity["PrincipalId"], identity["Arn"], identity["Arn"].split(":")[4]
    return original_get_caller_identity(self, access_key_id, region)


def assume_role(self: TokenResponse):
    role_arn = self._get_param("RoleArn") or ""
    session_name = self._get_param("RoleSessionName")
    external_id = self._get_param("ExternalId")
    _check_patterns({"RoleSessionName": session_name, "ExternalId": external_id})
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise STSValidationError(f"{role_arn} is invalid")
    caller = caller_identity(self.get_access_key(), self.current_account, self.region)
    decision = None
    role = _role(match.group("account"), match.group("partition"), role_arn)
    trust = _trust_policy(role)
    if trust is not None:
        principal_arn = caller.arn
        session = re.match(r"^arn:(aws[a-z\-]*):sts::([0-9]{12}):assumed-role/([^/]+)/", caller.arn)
        if session:  # aws:PrincipalArn of a role session is its role's ARN
            principal_arn = f"arn:{session.group(1)}:iam::{session.group(2)}:role/{session.group(3)}"
        decision = _policy.decide(
            trust,
            _policy.Request(
                principal_arn=caller.arn,
                account=caller.account,
                action="sts:AssumeRole",
                context={
                    "sts:ExternalId": external_id,
                    "sts:RoleSessionName": session_name,
                    "aws:PrincipalArn": principal_arn,
                    "aws:PrincipalAccount": caller.account,
                },
            ),
        )
    if decision != "Allow":
        raise AccessDeniedError(user_arn=caller.arn, action=f"sts:AssumeRole on resource: {role_arn}")
    # DurationSeconds: "If you specify a value higher than this setting [the role's maximum
    # session duration] or the administrator setting (whichever is lower), the operation fails."
    duration = self._get_int_param("DurationSeconds", 3600)
    if duration > int(role.max_session_duration or 3600):
        raise STSValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    return original_assume_role(self)


def _check_patterns(values: dict[str, str | None]) -> None:
    problems = []
    for member, wire, low, high, pattern in _PATTERNS:
        value = values.get(member)
        if value is None:
            continue
        if len(value) < low:
            problems.append(
                f"Value '{value}' at '{wire}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {low}"
            )
        if len(value) > high:
            problems.append(
                f"Value '{value}' at '{wire}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {high}"
            )
        if not re.fullmatch(pattern, value):
            problems.append(
                f"Value '{value}' at '{wire}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        raise STSValidationError(f"{count}: {'; '.join(problems)}")


def _role(account: str, partition: str, role_arn: str):
    if partition not in iam_backends[account]:
        return None
    return next((r for r in list(iam_backends[account][partition].roles.values()) if r.arn == role_arn), None)


def _trust_policy(role) -> dict[str, Any] | None:
    """The parsed trust policy of the role, None when there is no role (or its trust policy
    does not parse: such a role cannot be assumed)."""
    if role is None:
        return None
    try:
        return _policy.load(_unquoted(role.assume_role_policy_document), trust=True)
    except _policy.PolicyError:
        return None


def _unquoted(document: Any) -> Any:
    if isinstance(document, str) and document.lstrip().startswith("%7B"):
        from urllib.parse import unquote

        return unquote(document)
    return document


# -- the harness API: roles in any account ---------------------------------------------


def default_trust(trusted_account: str = DEFAULT_ACCOUNT, external_id: str | None = None) -> dict[str, Any]:
    """A trust policy letting every principal of ``trusted_account`` assume the role
    (with ``external_id``, only when it passes that ExternalId)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def create_role(
    account: str,
    name: str,
    trust: dict[str, Any] | str | None = None,
    external_id: str | None = None,
    path: str = "/",
) -> str:
    """Create IAM role ``name`` in ``account`` (moto's IAM backend of that account) with the
    trust policy ``trust`` (default: trust the harness's default account, optionally only
    with ``external_id``); answer its ARN. Errors are ValueErrors naming the field."""
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise ValueError("account: must be a 12-digit AWS account id")
    if not isinstance(name, str) or not _ROLE_NAME.match(name):
        raise ValueError("name: must be 1-64 characters of letters, digits and +=,.@_-")
    if not isinstance(path, str) or not _ROLE_PATH.match(path):
        raise ValueError("path: must be / or start and end with /")
    if trust is not None and external_id is not None:
        raise ValueError("externalId: give it inside the trust policy when you pass one")
    if trust is None:
        trust = default_trust(external_id=external_id)
    try:
        _policy.load(trust, trust=True)
    except _policy.PolicyError as exc:
        raise ValueError(f"trust: {exc}") from None
    text = trust if isinstance(trust, str) else json.dumps(trust)
    backend = iam_backends[account]["aws"]
    if any(role.name == name for role in list(backend.roles.values())):
        raise ValueError(f"name: role {name} already exists in account {account}")
    role = backend.create_role(
        role_name=name,
        assume_role_policy_document=text,
        path=path,
        permissions_boundary=None,
        description="created by the test harness",
        tags=[],
        max_session_duration="3600",
    )
    return role.arn


def role_arn(account: str, name: str) -> str | None:
    backend = iam_backends[account]["aws"]
    for role in list(backend.roles.values()):
        if role.name == name:
            return role.arn
    return None


def roles() -> list[dict[str, Any]]:
    """Every role of every account (the control API's GET /_harness/roles)."""
    found = []
    for account, backends in list(iam_backends.items()):
        for partition in list(backends.keys()):
            for role in list(backends[partition].roles.values()):
                found.append({"account": account, "arn": role.arn, "trust": role.assume_role_policy_document})
    return found


def create_role_from_dict(payload: Any) -> dict[str, str]:
    """The control API's POST /_harness/roles body: {"account", "name", "trust"?,
    "externalId"?, "path"?}."""
    if not isinstance(payload, dict):
        raise ValueError("body: must be a JSON object")
    names = {
        "account": "account",
        "name": "name",
        "trust": "trust",
        "externalId": "external_id",
        "path": "path",
    }
    unknown = set(payload) - set(names)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown member")
    for required in ("account", "name"):
        if required not in payload:
            raise ValueError(f"{required}: required")
    return {"arn": create_role(**{names[k]: v for k, v in payload.items()})}
