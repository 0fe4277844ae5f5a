"""What a reconcile needs besides the object: built once at operator start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry.base import Registry
from ..settings import Settings
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

    @classmethod
    def create(
        cls, registry: Registry, settings: Settings, copy_artifacts: CopyArtifacts | None = None
    ) -> Context:
        return cls(
            registry, settings, GroupListings(registry.list_packages, settings.resync_seconds), copy_artifacts
        )
