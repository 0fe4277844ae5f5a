"""What a reconcile needs besides the object: built once at operator start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import OWNER_UID_KEY
from ..identity import Identity, Ownership, ownership
from ..reasons import Reason
from ..registry.base import Registry
from ..settings import Settings
from ..timing import WAIT_FOR_NAMESPACE_DELAY
from .call import Call, Meta, Waiting
from .conditions import Outcome
from .listings import GroupListings

if TYPE_CHECKING:
    from ..accounts import Accounts, Target

# artifacts.copy_artifacts bound to an S3 client and the bucket (main.artifact_copier):
# (spec.artifacts, key_prefix=, progress=) -> the copies' records for status.artifacts
CopyArtifacts = Callable[..., list[dict[str, Any]]]


@dataclass
class Context:
    registry: Registry
    settings: Settings
    listings: GroupListings
    copy_artifacts: CopyArtifacts | None = None  # None: no artifact bucket, or no library
    # Where each object's calls go (its namespace's account, its region); None: one account
    # and region, this context's registry for every object (unit tests)
    accounts: Accounts | None = None
    # of a context scoped to one object (`scoped`): the AWS account and region its registry calls
    target: Target | None = None

    @property
    def account(self) -> str | None:
        return self.target.account if self.target is not None else None

    @property
    def region(self) -> str | None:
        return self.target.region if self.target is not None else None

    def identity(self, meta: Meta) -> Identity:
        return Identity(self.settings.instance, meta.namespace, meta.name)

    def ownership(self, marks: Mapping[str, str], meta: Meta) -> Ownership:
        """Whose the SageMaker object with these tags or customer metadata is."""
        return ownership(marks, self.identity(meta), meta.uid)

    def marks(self, meta: Meta) -> dict[str, str]:
        """What this object's versions may be marked with: its identity, and the UID an
        earlier release wrote (find_package looks for either)."""
        return {**self.identity(meta).marks(), OWNER_UID_KEY: meta.uid}

    def scoped(self, call: Call, region: str | None) -> Context:
        """This context for one object: same settings, the registry, listings and artifact
        copier of its namespace's account in `region` (None: the operator's). Its namespace's
        annotations come from the operator's namespace index (call.lookup): an object whose
        namespace is not indexed yet waits for it, never calls with the wrong account."""
        if self.accounts is None:
            return self
        namespace = call.lookup.get("Namespace", "", call.meta.namespace)
        if namespace is None:
            raise Waiting(
                Outcome.reconciling(
                    Reason.WAITING_FOR_NAMESPACE,
                    f"Waiting for namespace {call.meta.namespace} to be known to the operator (its annotations say "
                    "which AWS account to use).",
                ),
                WAIT_FOR_NAMESPACE_DELAY,
                short=True,
            )
        annotations = (namespace.get("metadata") or {}).get("annotations") or {}
        target = self.accounts.target(call.meta.namespace, annotations, region)
        return replace(
            self,
            registry=target.registry,
            listings=target.listings,
            copy_artifacts=target.copy_artifacts,
            settings=replace(self.settings, artifact_bucket=target.artifact_bucket),
            accounts=None,
            target=target,
        )

    @classmethod
    def create(
        cls,
        registry: Registry,
        settings: Settings,
        copy_artifacts: CopyArtifacts | None = None,
        accounts: Accounts | None = None,
    ) -> Context:
        return cls(
            registry,
            settings,
            GroupListings(registry.list_packages, settings.resync_seconds),
            copy_artifacts,
            accounts,
        )
