"""What a reconcile needs besides the object: built once at operator start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import OWNER_UID_KEY
from ..identity import Identity, Ownership, ownership
from ..registry.base import Registry
from ..settings import Settings
from .call import Meta
from .listings import GroupListings

# artifacts.copy_artifacts bound to an S3 client and the bucket (main.artifact_copier):
# (spec.artifacts, key_prefix=, progress=) -> the copies' records for status.artifacts
CopyArtifacts = Callable[..., list[dict[str, Any]]]


@dataclass
class Context:
    registry: Registry
    settings: Settings
    listings: GroupListings
    copy_artifacts: CopyArtifacts | None = None  # None: no artifact bucket, or no library

    def identity(self, meta: Meta) -> Identity:
        return Identity(self.settings.instance, meta.namespace, meta.name)

    def ownership(self, marks: Mapping[str, str], meta: Meta) -> Ownership:
        """Whose the SageMaker object with these tags or customer metadata is."""
        return ownership(marks, self.identity(meta), meta.uid)

    def marks(self, meta: Meta) -> dict[str, str]:
        """What this object's versions may be marked with: its identity, and the UID an
        earlier release wrote (find_package looks for either)."""
        return {**self.identity(meta).marks(), OWNER_UID_KEY: meta.uid}

    @classmethod
    def create(
        cls, registry: Registry, settings: Settings, copy_artifacts: CopyArtifacts | None = None
    ) -> Context:
        return cls(
            registry, settings, GroupListings(registry.list_packages, settings.resync_seconds), copy_artifacts
        )
