"""Which AWS account and region an object's calls go to (README "Several accounts").

- Region per object: `spec.region`, else the region of the SageMaker object the object
  already has (status.arn: an object stays where it was made when the operator's region
  changes), else the operator's (AWS_REGION).
- Account per namespace: a namespace annotated with ROLE_ANNOTATION (and optionally
  EXTERNAL_ID_ANNOTATION) has the operator assume that role (STS AssumeRole) for every
  SageMaker and S3 call of its objects; BUCKET_ANNOTATION names that account's artifact
  bucket. Without the role annotation, the operator's own identity (its credential chain,
  IRSA in clusters) is used, as with a single account.

`Accounts.target(namespace, annotations, region)` answers where one object's calls go: a
`Target` with the registry (one SageMaker client per identity and region, created once and
shared by every thread), its group listings and its artifact copier. One assumed-role
session per (role, external id, namespace): the session name names the namespace, so
CloudTrail tells whose calls they were and a role's trust policy may admit only some
namespaces (`sts:RoleSessionName`). Its credentials are botocore's own refreshable ones
(AssumeRoleCredentialFetcher behind DeferredRefreshableCredentials): fetched when the
namespace's objects first need them, refreshed before they expire by whichever thread
notices; never logged or written anywhere.

Failures: a role STS refuses (or an unusable annotation) is `TerminalError(AssumeRoleFailed)`
naming the role and the trust-policy statement to add, raised before any SageMaker call, also
when a later refresh fails; throttling, 5xx and network errors of STS are retryable like any
other AWS call's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from . import GROUP
from .controllers.listings import GroupListings
from .errors import ReconcileError, RetryableError, TerminalError
from .reasons import Reason
from .registry.base import Registry
from .registry.classify import classify_error, error_code, error_message
from .settings import Settings
from .timing import (
    ASSUME_ROLE_REFUSAL_MEMORY,
    ASSUMED_ROLE_ADVISORY_REFRESH,
    ASSUMED_ROLE_MANDATORY_REFRESH,
    SAGEMAKER_CONNECT_TIMEOUT,
    SAGEMAKER_MAX_ATTEMPTS,
    SAGEMAKER_READ_TIMEOUT,
)

ROLE_ANNOTATION = f"{GROUP}/aws-role-arn"
EXTERNAL_ID_ANNOTATION = f"{GROUP}/aws-external-id"
BUCKET_ANNOTATION = f"{GROUP}/artifact-bucket"
ANNOTATIONS = (ROLE_ANNOTATION, EXTERNAL_ID_ANNOTATION, BUCKET_ANNOTATION)

SESSION_PREFIX = "model-registry-operator-"
# STS: RoleSessionName is 2-64 of [\w+=,.@-]; ExternalId 2-1224 of [\w+=,.@:/-]
_SESSION_NAME_MAX = 64
_SESSION_CHARACTER = re.compile(r"[^\w+=,.@-]")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+")

# artifacts.copy_artifacts bound to an S3 client and a bucket (main.artifact_copier)
CopyArtifacts = Callable[..., list[dict[str, Any]]]
RegistryFactory = Callable[[botocore.session.Session, str], Registry]  # (session, region)
CopierFactory = Callable[[botocore.session.Session, str, str], CopyArtifacts | None]  # (..., bucket)
RoleKey = tuple[str, str | None, str]  # (role ARN, external id, session name)


def arn_account(arn: Any) -> str | None:
    """`arn:aws:sagemaker:us-east-2:123456789012:model/churn` -> `123456789012`."""
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] or None if len(parts) > 5 and parts[0] == "arn" else None


def arn_region(arn: Any) -> str | None:
    """`arn:aws:sagemaker:us-east-2:123456789012:model/churn` -> `us-east-2`."""
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


def session_name(namespace: str) -> str:
    """The RoleSessionName of a namespace's session: the operator and the namespace, within
    STS's 64 characters (a long name keeps its start and gets a hash of the whole)."""
    name = SESSION_PREFIX + _SESSION_CHARACTER.sub("-", namespace)
    if len(name) <= _SESSION_NAME_MAX:
        return name
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:8]
    return f"{name[: _SESSION_NAME_MAX - 9]}-{digest}"


def trust_principal(caller_arn: str) -> str:
    """The principal a trust policy names for the operator: its role for an assumed-role
    session (`arn:aws:sts::1:assumed-role/R/s` -> `arn:aws:iam::1:role/R`), else the ARN."""
    match = re.fullmatch(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
    if match is None:
        return caller_arn
    partition, account, role = match.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


@dataclass(frozen=True)
class Placement:
    """What a namespace's annotations ask for."""

    role_arn: str | None = None
    external_id: str | None = None
    artifact_bucket: str | None = None

    @classmethod
    def of(cls, annotations: Mapping[str, str]) -> Placement:
        def value(key: str) -> str | None:
            found = annotations.get(key)
            return found.strip() or None if isinstance(found, str) else None

        return cls(value(ROLE_ANNOTATION), value(EXTERNAL_ID_ANNOTATION), value(BUCKET_ANNOTATION))


@dataclass(frozen=True)
class Target:
    """Where one object's calls go."""

    account: str
    region: str
    registry: Registry
    listings: GroupListings
    copy_artifacts: CopyArtifacts | None
    artifact_bucket: str | None
    role_arn: str | None = None  # None: the operator's own identity

    def describe(self, namespace: str) -> str:
        """How the namespace maps to the account, for messages."""
        if self.role_arn is None:
            return (
                f"namespace {namespace} has no {ROLE_ANNOTATION} annotation: the operator's own account "
                f"{self.account}"
            )
        return f"namespace {namespace}'s {ROLE_ANNOTATION} annotation names role {self.role_arn} in account {self.account}"


class _NoCache(dict[str, Any]):
    """The fetcher's response cache, unused: the refreshable credentials hold what STS gave
    and decide when to ask again (the fetcher's own cache would hand the same answer back
    until 15 minutes before it expires, judged by the wall clock alone)."""

    def __contains__(self, key: object) -> bool:
        return False

    def __setitem__(self, key: str, value: Any) -> None:
        pass


class _AssumedRoleCredentials(DeferredRefreshableCredentials):
    _advisory_refresh_timeout = int(ASSUMED_ROLE_ADVISORY_REFRESH)
    _mandatory_refresh_timeout = int(ASSUMED_ROLE_MANDATORY_REFRESH)


class _Given(CredentialProvider):
    """A session's only credential provider: the assumed role's credentials."""

    METHOD = "assume-role"

    def __init__(self, credentials: _AssumedRoleCredentials):
        super().__init__()
        self._credentials = credentials

    def load(self) -> _AssumedRoleCredentials:
        return self._credentials


@dataclass
class _Role:
    key: RoleKey
    account: str
    session: botocore.session.Session
    credentials: _AssumedRoleCredentials
    lock: threading.Lock
    refused: tuple[float, TerminalError] | None = None  # the last refusal, and when


@dataclass
class _Entry:
    registry: Registry
    listings: GroupListings
    account: str | None  # None: the operator's own, known once asked


def sts_config() -> Config:
    """STS calls: botocore's standard retries (throttling, 5xx, network), short timeouts."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": SAGEMAKER_MAX_ATTEMPTS},
        connect_timeout=SAGEMAKER_CONNECT_TIMEOUT,
        read_timeout=SAGEMAKER_READ_TIMEOUT,
        user_agent_extra="model-registry-operator",
    )


class Accounts:
    """Where each object's calls go: one registry (SageMaker client), group listings and
    artifact copier per identity and region, created on first use and shared by every thread.

    `session`: the operator's own botocore session (its credential chain, endpoints and
    configuration), the source credentials of every AssumeRole. `registry_factory(session,
    region)` and `copier_factory(session, region, bucket)` make the per-target parts (main.py:
    SageMakerRegistry and an S3 copier; unit tests: fakes). `own`: the registry and listings
    already made for the operator's own identity in `region`. `sts_client`: makes STS clients
    like `session.create_client` (tests pass a fake). `clock`: the credentials' time source.
    """

    def __init__(
        self,
        settings: Settings,
        region: str,
        *,
        session: botocore.session.Session,
        registry_factory: RegistryFactory,
        copier_factory: CopierFactory | None = None,
        own: tuple[Registry, GroupListings] | None = None,
        sts_client: Callable[..., Any] | None = None,
        clock: Callable[[], Any] | None = None,
        refusal_memory: float = ASSUME_ROLE_REFUSAL_MEMORY,
    ):
        self.settings, self.region = settings, region
        self._session = session
        self._registry_factory, self._copier_factory = registry_factory, copier_factory
        # botocore sessions create clients one at a time (also the STS client a refresh makes,
        # from whichever thread signs a request when the credentials are due)
        self._create = threading.RLock()
        make_sts = sts_client or functools.partial(
            session.create_client, region_name=region, config=sts_config()
        )

        def create_sts(service: str, **credentials: Any) -> Any:
            with self._create:
                return make_sts(service, **credentials)

        self._sts_client = create_sts
        self._clock = clock
        self._refusal_memory = refusal_memory
        self._guard = threading.Lock()
        self._entries: dict[tuple[RoleKey | None, str], _Entry] = {}
        self._copiers: dict[tuple[RoleKey | None, str, str], CopyArtifacts | None] = {}
        self._roles: dict[RoleKey, _Role] = {}
        self._identity: tuple[str, str] | None = None  # (account, ARN) of the operator's own
        self._identity_lock = threading.Lock()
        self._sts: Any = None
        if own is not None:
            self._entries[(None, region)] = _Entry(own[0], own[1], None)

    # --- the operator's own identity -----------------------------------------------------

    def own_identity(self) -> tuple[str, str]:
        """(account, caller ARN) of the operator's own credentials: STS GetCallerIdentity,
        asked once (it needs no permission)."""
        with self._identity_lock:
            if self._identity is None:
                try:
                    answer = self._own_sts().get_caller_identity()
                except (ClientError, BotoCoreError) as exc:
                    raise _sts_error(exc, "GetCallerIdentity (the operator's own AWS account)") from None
                self._identity = (str(answer["Account"]), str(answer["Arn"]))
            return self._identity

    def _own_sts(self) -> Any:
        with self._create:
            if self._sts is None:
                self._sts = self._sts_client("sts")
            return self._sts

    # --- targets ---------------------------------------------------------------------------

    def target(self, namespace: str, annotations: Mapping[str, str], region: str | None = None) -> Target:
        """Where the calls of an object of `namespace` (with these annotations) in `region`
        (None: the operator's) go. With a role, the role is assumed first (once, then cached
        and refreshed): a refusal is raised here, before anything calls SageMaker."""
        placement = Placement.of(annotations)
        region = region or self.region
        if placement.role_arn is None:
            if placement.external_id is not None:
                raise TerminalError(
                    Reason.ASSUME_ROLE_FAILED,
                    f"Namespace {namespace} has the {EXTERNAL_ID_ANNOTATION} annotation but no {ROLE_ANNOTATION}: "
                    "an external ID is only used to assume a role. Add the role annotation (or remove the external "
                    "ID to use the operator's own account); nothing is called until then.",
                )
            account = self.own_identity()[0]
            entry = self._entry(None, self._session, region, None)
            bucket = placement.artifact_bucket or self.settings.artifact_bucket
            copier = self._copier(None, self._session, region, bucket)
            return Target(account, region, entry.registry, entry.listings, copier, bucket)
        role = self._role(namespace, placement)
        entry = self._entry(role.key, role.session, region, role.account)
        copier = self._copier(role.key, role.session, region, placement.artifact_bucket)
        return Target(
            role.account,
            region,
            entry.registry,
            entry.listings,
            copier,
            placement.artifact_bucket,
            placement.role_arn,
        )

    def _entry(
        self, key: RoleKey | None, session: botocore.session.Session, region: str, account: str | None
    ) -> _Entry:
        with self._guard:
            entry = self._entries.get((key, region))
        if entry is not None:
            return entry
        with self._create:
            entry = self._entries.get((key, region))
            if entry is None:
                registry = self._registry_factory(session, region)
                entry = _Entry(
                    registry, GroupListings(registry.list_packages, self.settings.resync_seconds), account
                )
                with self._guard:
                    self._entries[(key, region)] = entry
            return entry

    def _copier(
        self, key: RoleKey | None, session: botocore.session.Session, region: str, bucket: str | None
    ) -> CopyArtifacts | None:
        if self._copier_factory is None or not bucket:
            return None
        with self._guard:
            if (key, region, bucket) in self._copiers:
                return self._copiers[(key, region, bucket)]
        with self._create:
            if (key, region, bucket) not in self._copiers:
                copier = self._copier_factory(session, region, bucket)
                with self._guard:
                    self._copiers[(key, region, bucket)] = copier
            return self._copiers[(key, region, bucket)]

    # --- assumed roles ---------------------------------------------------------------------

    def _role(self, namespace: str, placement: Placement) -> _Role:
        role_arn, external_id = placement.role_arn or "", placement.external_id
        match = _ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise TerminalError(
                Reason.ASSUME_ROLE_FAILED,
                f"Namespace {namespace}'s {ROLE_ANNOTATION} annotation {role_arn!r} is not an IAM role ARN "
                "(arn:aws:iam::<account>:role/<name>); correct it. Nothing is called until then.",
            )
        if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
            raise TerminalError(
                Reason.ASSUME_ROLE_FAILED,
                f"Namespace {namespace}'s {EXTERNAL_ID_ANNOTATION} annotation is not an STS external ID (2 to "
                "1224 letters, digits and +=,.@:/-); correct it. Nothing is called until then.",
            )
        key: RoleKey = (role_arn, external_id, session_name(namespace))
        with self._guard:
            role = self._roles.get(key)
        if role is None:
            with self._create:
                role = self._roles.get(key)
                if role is None:
                    role = self._new_role(key, match.group(1), namespace)
                    with self._guard:
                        self._roles[key] = role
        self._ensure(role, namespace)
        return role

    def _new_role(self, key: RoleKey, account: str, namespace: str) -> _Role:
        role_arn, external_id, name = key
        source = self._session.get_credentials()
        if source is None:
            raise TerminalError(
                Reason.MISSING_CREDENTIALS,
                f"The operator has no AWS credentials of its own to assume role {role_arn} (namespace {namespace}) "
                "with; configure its credential chain (IRSA in clusters).",
            )
        extra: dict[str, Any] = {"RoleSessionName": name}
        if external_id is not None:
            extra["ExternalId"] = external_id
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=self._sts_client,
            source_credentials=source,
            role_arn=role_arn,
            extra_args=extra,
            cache=_NoCache(),
        )

        def refresh() -> dict[str, Any]:
            # botocore calls this for the first credentials and before they expire, also from
            # inside a SageMaker or S3 call: a failure is the operator's error, never a traceback
            try:
                credentials: dict[str, Any] = fetcher.fetch_credentials()
            except (ClientError, BotoCoreError) as exc:
                raise self._assume_error(exc, role_arn, external_id, namespace) from None
            return credentials

        kwargs: dict[str, Any] = {"time_fetcher": self._clock} if self._clock is not None else {}
        credentials = _AssumedRoleCredentials(refresh_using=refresh, method="assume-role", **kwargs)
        session = botocore.session.Session()
        # the service models are read once per process, not once per role
        session.register_component("data_loader", self._session.get_component("data_loader"))
        session.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
        return _Role(key, account, session, credentials, threading.Lock())

    def _ensure(self, role: _Role, namespace: str) -> None:
        """The role's credentials are usable: assumed the first time, refreshed when due. A
        refusal is remembered for a short while, so that the objects of a namespace whose role
        STS refuses do not each ask again at once."""
        with role.lock:
            if role.refused is not None and time.monotonic() - role.refused[0] < self._refusal_memory:
                raise role.refused[1]
            try:
                role.credentials.get_frozen_credentials()
            except TerminalError as err:
                role.refused = (time.monotonic(), err)
                raise
            except ReconcileError:
                raise
            except (ClientError, BotoCoreError) as exc:  # not through `refresh`: classify the same way
                raise self._assume_error(exc, role.key[0], role.key[1], namespace) from None
            role.refused = None

    def _assume_error(
        self, exc: ClientError | BotoCoreError, role_arn: str, external_id: str | None, namespace: str
    ) -> ReconcileError:
        classified = classify_error(exc)
        if isinstance(classified, RetryableError):
            return _sts_error(exc, f"AssumeRole of {role_arn} (namespace {namespace})")
        if isinstance(exc, ClientError):
            answer = f"{error_code(exc) or 'an error'}: {error_message(exc) or 'no message'}"
        else:
            answer = str(exc)
        return TerminalError(
            Reason.ASSUME_ROLE_FAILED, self.refused_message(role_arn, external_id, namespace, answer)
        )

    def refused_message(self, role_arn: str, external_id: str | None, namespace: str, answer: str) -> str:
        """The message of a refused AssumeRole: the role, STS's answer, and the trust-policy
        statement that lets the operator in (the external ID by its annotation: the value
        stays where the namespace's admins keep it)."""
        try:
            principal = trust_principal(self.own_identity()[1])
        except ReconcileError:
            principal = "<the operator's role ARN>"
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
        }
        if external_id is not None:
            statement["Condition"] = {
                "StringEquals": {
                    "sts:ExternalId": f"<the value of namespace {namespace}'s {EXTERNAL_ID_ANNOTATION}>"
                }
            }
        return (
            f"The operator cannot assume role {role_arn}, which namespace {namespace}'s {ROLE_ANNOTATION} annotation "
            f"names: STS answered {' '.join(answer.split()).rstrip('.')}. Let the operator in: add the statement "
            f"{json.dumps(statement)} to the role's trust policy, and allow sts:AssumeRole on the role in the "
            "operator's own IAM policy. Nothing is called in that account until then; the operator tries again "
            "on the next resync."
        )

    # --- metrics ----------------------------------------------------------------------------

    def metrics(self) -> dict[tuple[str, str], dict[str, dict[Any, int]]]:
        """The SageMaker counters of every registry, summed per (account, region): bounded by
        the configured roles and regions (several namespaces may share an account)."""
        with self._guard:
            entries = list(self._entries.items())
        with self._identity_lock:
            own = self._identity[0] if self._identity else ""
        summed: dict[tuple[str, str], dict[str, Counter[Any]]] = {}
        for (_, region), entry in entries:
            read = getattr(entry.registry, "metrics", None)
            if read is None:
                continue
            counters = summed.setdefault(
                (entry.account or own, region),
                {"calls": Counter(), "attempts": Counter(), "errors": Counter()},
            )
            for name, values in read().items():
                counters.setdefault(name, Counter()).update(values)
        return {
            key: {name: dict(values) for name, values in counters.items()} for key, counters in summed.items()
        }


def _sts_error(exc: ClientError | BotoCoreError, what: str) -> ReconcileError:
    """An STS failure in the operator's words: retryable like any AWS call's when waiting
    may help (throttling, 5xx, network), else terminal with the classified reason."""
    classified = classify_error(exc)
    if isinstance(exc, ClientError):
        detail = f"STS answered {error_code(exc) or 'an error'}: {' '.join((error_message(exc) or 'no message').split())}"
    else:
        detail = " ".join(str(exc).split())
    if isinstance(classified, RetryableError):
        return RetryableError(classified.reason, f"STS {what} failed; retrying. {detail}", classified.delay)
    return TerminalError(classified.reason, f"STS {what} failed: {detail}")
