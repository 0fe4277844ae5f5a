"""Operator settings: flags with MRO_* environment variables, read once at start-up."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeGuard, Unpack, get_args

# The one definition; api/common.py re-exports it. It lives here, not in the api package,
# so that reading settings (and `model-registry-operator --help`) does not import pydantic.
DeletionPolicy = Literal["Delete", "Retain"]


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


class SettingsOverrides(TypedDict, total=False):
    """What the command line may set over the MRO_* variables; None: not given."""

    artifact_bucket: str | None
    artifact_prefix: str | None
    resync_seconds: float | str | None  # a flag's text, checked like MRO_RESYNC_SECONDS
    audit_seconds: float | None
    deletion_policy: DeletionPolicy | None
    allow_http: bool | None
    max_artifact_bytes: int | None
    source_buckets: tuple[str, ...] | None
    source_hosts: tuple[str, ...] | None
    namespaces: tuple[str, ...] | None
    all_namespaces: bool | None
    instance: str | None
    sagemaker_rate: float | str | None  # a flag's text, checked like MRO_SAGEMAKER_RATE
    shards: int | str | None  # a flag's text, checked like MRO_SHARDS


@dataclass(frozen=True)
class Settings:
    artifact_bucket: str | None = None
    artifact_prefix: str = "model-registry"
    resync_seconds: float = 300.0
    # every version described in full once per this period, turns spread by UID; 0: never
    audit_seconds: float = 0.0
    deletion_policy: DeletionPolicy = "Delete"
    allow_http: bool = False
    max_artifact_bytes: int = 50 * 1024**3
    # Where artifact sources may be read from; empty: anywhere (see artifacts/sources.py)
    source_buckets: tuple[str, ...] = ()  # "bucket" or "bucket/key-prefix"; "*" within a bucket name
    source_hosts: tuple[str, ...] = ()  # "host" or "*.domain", lower case
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    all_namespaces: bool = False
    # The first part of every object's identity <instance>/<namespace>/<name> in SageMaker
    # (identity.py): clusters sharing an AWS account set it differently.
    instance: str = "default"
    # SageMaker requests per second per AWS account and region (the account's quota), the
    # ceiling of each client's limiter (registry/ratelimit.py); None: no ceiling, the limiter
    # only slows down once SageMaker throttles; 0: no limiter at all.
    sagemaker_rate: float | None = None
    # Replicas that share the work (sharding.py): objects are split into this many shards, each
    # reconciled by the replica holding its Lease <shard_lease_name>-shard-<i> in
    # shard_lease_namespace (None: the service account's namespace, else "default"). 1: no
    # sharding, one replica does all the work (kopf peering may keep standbys).
    shards: int = 1
    shard_lease_name: str = "model-registry-operator"
    shard_lease_namespace: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Unpack[SettingsOverrides]) -> Settings:
        """Read MRO_* variables; a bad value raises ValueError naming the variable."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}  # field name -> value of that field's type
        parsers: dict[str, tuple[str, Callable[[str], object]]] = {
            "MRO_ARTIFACT_BUCKET": ("artifact_bucket", str),
            "MRO_ARTIFACT_PREFIX": ("artifact_prefix", lambda v: v.strip("/")),
            "MRO_RESYNC_SECONDS": ("resync_seconds", _positive_seconds),
            "MRO_AUDIT_SECONDS": ("audit_seconds", _seconds_or_zero),
            "MRO_DELETION_POLICY": ("deletion_policy", _deletion_policy),
            "MRO_ALLOW_HTTP": ("allow_http", _bool),
            "MRO_MAX_ARTIFACT_BYTES": ("max_artifact_bytes", _size),
            "MRO_SOURCE_BUCKETS": ("source_buckets", _source_buckets),
            "MRO_SOURCE_HOSTS": ("source_hosts", _source_hosts),
            "MRO_INSTANCE": ("instance", _instance),
            "MRO_SAGEMAKER_RATE": ("sagemaker_rate", _rate),
            "MRO_SHARDS": ("shards", _shards),
            "MRO_SHARD_LEASE_NAME": ("shard_lease_name", _lease_name),
            "MRO_SHARD_LEASE_NAMESPACE": ("shard_lease_namespace", _instance),
        }
        for var, (name, parse) in parsers.items():
            if var in env and env[var] != "":
                try:
                    values[name] = parse(env[var])
                except ValueError as exc:
                    raise ValueError(f"{var}: {exc}") from None
        given: dict[str, Any] = dict(overrides)
        parse_of = dict(parsers.values())
        for name in ("resync_seconds", "instance", "sagemaker_rate", "shards"):  # flags given as text
            if given.get(name) is not None:
                try:
                    given[name] = parse_of[name](str(given[name]))
                except ValueError as exc:
                    raise ValueError(f"--{name.replace('_', '-')}: {exc}") from None
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)


# A DNS label: it goes into SageMaker tag values and customer metadata as the identity's first part.
_INSTANCE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _instance(value: str) -> str:
    if not _INSTANCE.fullmatch(value):
        raise ValueError(
            f"expected a name of lower-case letters, digits and '-' (at most 63, like a namespace), got {value!r}"
        )
    return value


def _shards(value: str) -> int:
    """How many shards the objects are split into: a whole number from 1 (no sharding) to 1000."""
    try:
        shards = int(value.strip())
    except ValueError:
        raise ValueError(f"expected a whole number of shards (1: no sharding), got {value!r}") from None
    if not 1 <= shards <= 1000:
        raise ValueError(f"expected a whole number of shards from 1 (no sharding) to 1000, got {value!r}")
    return shards


def _lease_name(value: str) -> str:
    """The first part of the shard Leases' names (<name>-shard-<i>); also a label value."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", value):
        raise ValueError(
            f"expected a name of lower-case letters, digits and '-' (at most 42), like a Helm release, got {value!r}"
        )
    return value


def _number(value: str, expected: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected {expected}, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected {expected}, got {value!r}")
    return number


def _rate(value: str) -> float:
    """Requests per second: a positive number, or 0 (or `off`) for no limiter at all."""
    if value.strip().lower() == "off":
        return 0.0
    rate = _number(value, "a number of requests per second (0 or off: no limiter)")
    if rate < 0:
        raise ValueError(f"expected a number of requests per second (0 or off: no limiter), got {value!r}")
    return rate


def _positive_seconds(value: str) -> float:
    seconds = _number(value, "a positive number of seconds")
    if seconds <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _seconds_or_zero(value: str) -> float:
    seconds = _number(value, "a number of seconds (0: off)")
    if seconds < 0:
        raise ValueError(f"expected a number of seconds (0: off), got {value!r}")
    return seconds


_SIZE = re.compile(r"\s*(\d+)\s*(|B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*")
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


def _size(value: str) -> int:
    """Bytes, as a whole number with an optional unit: 53687091200, 50GiB, 500 MB."""
    match = _SIZE.fullmatch(value)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"expected a positive size in bytes, optionally with a unit (50GiB, 500MB), got {value!r}"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def _is_deletion_policy(value: str) -> TypeGuard[DeletionPolicy]:
    return value in get_args(DeletionPolicy)


def _deletion_policy(value: str) -> DeletionPolicy:
    if not _is_deletion_policy(value):
        raise ValueError(f"expected Delete or Retain, got {value!r}")
    return value


def _entries(value: str) -> list[str]:
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:  # "," must not quietly mean "no restriction"
        raise ValueError("expected a comma-separated list, got no entry; leave it unset to allow any")
    return entries


# A bucket name (S3's rules, with the upper case and "_" of old us-east-1 buckets), "*" allowed
_BUCKET_PATTERN = re.compile(r"[A-Za-z0-9*][A-Za-z0-9._*-]{0,62}")


def _source_buckets(value: str) -> tuple[str, ...]:
    entries = []
    for entry in _entries(value):
        if "://" in entry:
            raise ValueError(f"{entry!r}: write a bucket name or bucket/prefix, without a scheme")
        bucket, _, prefix = entry.partition("/")
        if not _BUCKET_PATTERN.fullmatch(bucket) or bucket.strip("*") == "":
            raise ValueError(f"{entry!r}: {bucket!r} is not an S3 bucket name")
        if "*" in prefix:
            raise ValueError(
                f"{entry!r}: '*' is allowed in the bucket name only; a key prefix matches as a prefix"
            )
        entries.append(f"{bucket}/{prefix}" if prefix else bucket)
    return tuple(entries)


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _source_hosts(value: str) -> tuple[str, ...]:
    entries = []
    for entry in _entries(value):
        host = entry.lower().rstrip(".").removeprefix("[").removesuffix("]")  # [::1] as in a URL
        name = host.removeprefix("*.")
        if _is_ip(name) and name == host:
            entries.append(str(ipaddress.ip_address(name)))
            continue
        if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
            raise ValueError(
                f"{entry!r}: expected a host name (models.example.org), '*.' and a domain (*.example.org) "
                "or an IP address, without scheme, port or path"
            )
        entries.append(host)
    return tuple(entries)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
