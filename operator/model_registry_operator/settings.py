"""Operator settings: flags with MRO_* environment variables, read once at start-up."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Literal

DeletionPolicy = Literal["Delete", "Retain"]


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


@dataclass(frozen=True)
class Settings:
    artifact_bucket: str | None = None
    artifact_prefix: str = "model-registry"
    resync_seconds: float = 300.0
    deletion_policy: DeletionPolicy = "Delete"
    allow_http: bool = False
    max_artifact_bytes: int = 50 * 1024**3
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    all_namespaces: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Read MRO_* variables; a bad value raises ValueError naming the variable."""
        env = dict(os.environ if env is None else env)
        values: dict = {}
        parsers = {
            "MRO_ARTIFACT_BUCKET": ("artifact_bucket", str),
            "MRO_ARTIFACT_PREFIX": ("artifact_prefix", lambda v: v.strip("/")),
            "MRO_RESYNC_SECONDS": ("resync_seconds", _positive_seconds),
            "MRO_DELETION_POLICY": ("deletion_policy", _deletion_policy),
            "MRO_ALLOW_HTTP": ("allow_http", _bool),
            "MRO_MAX_ARTIFACT_BYTES": ("max_artifact_bytes", _positive_int),
        }
        for var, (name, parse) in parsers.items():
            if var in env and env[var] != "":
                try:
                    values[name] = parse(env[var])
                except ValueError as exc:
                    raise ValueError(f"{var}: {exc}") from None
        if overrides.get("resync_seconds") is not None:
            try:
                overrides["resync_seconds"] = _positive_seconds(str(overrides["resync_seconds"]))
            except ValueError as exc:
                raise ValueError(f"--resync-seconds: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _positive_seconds(value: str) -> float:
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return number


def _deletion_policy(value: str) -> DeletionPolicy:
    if value not in ("Delete", "Retain"):
        raise ValueError(f"expected Delete or Retain, got {value!r}")
    return value  # type: ignore[return-value]
