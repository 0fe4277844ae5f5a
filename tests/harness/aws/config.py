"""Settings of the emulated services that tests change at run time.

One instance per process (``CONFIG``), because moto's backends are process-global too.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

# arn:aws:iam::123456789012:user/ana, arn:aws:iam::...:role/R, arn:aws:sts::...:assumed-role/R/session
_IDENTITY_ARN = re.compile(
    r"^arn:aws[a-z\-]*:(iam|sts)::[0-9]{12}:(?P<type>user|role|assumed-role|federated-user|root)"
    r"(/(?P<rest>.+))?$"
)


_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{20}$")


def principal_id_for(arn: str) -> str:
    """A stable unique ID in the form IAM gives one (AIDA... for a user, AROA...:session for
    an assumed role, the account for root), for an identity configured without one."""
    match = _IDENTITY_ARN.match(arn)
    if match is None:
        raise ValueError(f"arn: {arn!r} is not an IAM or STS identity ARN")
    digest = hashlib.sha256(arn.encode()).hexdigest().upper()[:17]
    kind, rest = match.group("type"), match.group("rest") or ""
    if kind == "root":
        return arn.split(":")[4]
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        role_id = hashlib.sha256(role.encode()).hexdigest().upper()[:17]
        return f"AROA{role_id}:{session}"
    if kind == "federated-user":
        return f"{arn.split(':')[4]}:{rest}"
    return ("AROA" if kind == "role" else "AIDA") + digest


def user_context(
    arn: str,
    principal_id: str | None = None,
    source_identity: str | None = None,
    user_profile_name: str | None = None,
    domain_id: str | None = None,
    user_profile_arn: str | None = None,
) -> dict[str, Any]:
    """SageMaker's UserContext (CreatedBy / LastModifiedBy) of a caller."""
    identity: dict[str, Any] = {"Arn": arn, "PrincipalId": principal_id or principal_id_for(arn)}
    if source_identity:
        identity["SourceIdentity"] = source_identity
    context: dict[str, Any] = {}
    if user_profile_name:
        context["UserProfileName"] = user_profile_name
        if user_profile_arn:
            context["UserProfileArn"] = user_profile_arn
    if domain_id:
        context["DomainId"] = domain_id
    context["IamIdentity"] = identity
    return context


@dataclass
class HarnessConfig:
    # How long a new model package stays Pending then InProgress before it is Completed
    # (first half Pending, second half InProgress). 0: Completed at once.
    status_delay_seconds: float = 0.0
    # access key id -> the UserContext SageMaker records for its calls (CreatedBy,
    # LastModifiedBy); a key not here is who moto's STS GetCallerIdentity says it is.
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_status_delay(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("statusDelaySeconds: must be a number >= 0")
        with self._lock:
            self.status_delay_seconds = float(seconds)

    def set_identity(
        self,
        access_key_id: str,
        arn: str,
        principal_id: str | None = None,
        source_identity: str | None = None,
        user_profile_name: str | None = None,
        domain_id: str | None = None,
        user_profile_arn: str | None = None,
    ) -> dict[str, Any]:
        """Calls signed with `access_key_id` come from IAM identity `arn`; answers its UserContext."""
        if not isinstance(access_key_id, str) or not _ACCESS_KEY_ID.match(access_key_id):
            # moto reads the key from the signature only in this form (else: "AKIAEXAMPLE")
            raise ValueError(
                "accessKeyId: must be 20 upper-case letters or digits, e.g. AKIAANAEXAMPLE123456"
            )
        if not isinstance(arn, str):
            raise ValueError("arn: must be a string")
        context = user_context(
            arn, principal_id, source_identity, user_profile_name, domain_id, user_profile_arn
        )
        with self._lock:
            self.identities[access_key_id] = context
        return context

    def identity(self, access_key_id: str) -> dict[str, Any] | None:
        with self._lock:
            context = self.identities.get(access_key_id)
        return None if context is None else {**context, "IamIdentity": dict(context["IamIdentity"])}

    def identities_from_dict(self, payload) -> dict[str, Any]:
        """The control API's POST /_harness/identities body."""
        if not isinstance(payload, dict):
            raise ValueError("body: must be a JSON object")
        names = {
            "accessKeyId": "access_key_id",
            "arn": "arn",
            "principalId": "principal_id",
            "sourceIdentity": "source_identity",
            "userProfileName": "user_profile_name",
            "domainId": "domain_id",
            "userProfileArn": "user_profile_arn",
        }
        unknown = set(payload) - set(names)
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown member")
        for required in ("accessKeyId", "arn"):
            if required not in payload:
                raise ValueError(f"{required}: required")
        return self.set_identity(**{names[k]: v for k, v in payload.items()})

    def reset(self) -> None:
        self.set_status_delay(0.0)
        with self._lock:
            self.identities.clear()

    def update_from_dict(self, payload) -> None:
        if not isinstance(payload, dict):
            raise ValueError("body: must be a JSON object")
        unknown = set(payload) - {"statusDelaySeconds"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown setting")
        if "statusDelaySeconds" in payload:
            self.set_status_delay(payload["statusDelaySeconds"])

    def to_dict(self) -> dict:
        return {"statusDelaySeconds": self.status_delay_seconds}


CONFIG = HarnessConfig()
