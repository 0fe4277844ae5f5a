"""coordination.k8s.io/v1 Lease, checked as the apiserver checks it on create and update.

Stored like any built-in (resourceVersion preconditions: a replace with a stale version is 409
Conflict, a create of an existing name 409 AlreadyExists; watch, list with label selectors), and
its spec decoded and validated as kube-apiserver does:
- decoding (400 BadRequest, "cannot be handled as a Lease"): holderIdentity a string,
  leaseDurationSeconds and leaseTransitions 32-bit integers, acquireTime and renewTime
  `MicroTime`s (RFC 3339 with fractional seconds, as client-go writes them: metav1.RFC3339Micro);
- validation (pkg/apis/coordination/validation ValidateLeaseSpec, 422 Invalid):
  leaseDurationSeconds > 0, leaseTransitions >= 0.
Not checked: spec.strategy and spec.preferredHolder (coordinated leader election, 1.31+ alpha).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from . import errors

GROUP, PLURAL, KIND = "coordination.k8s.io", "leases", "Lease"
_MICRO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_INT32 = (-(2**31), 2**31 - 1)


def _cannot_decode(field: str, detail: str) -> errors.ApiError:
    return errors.bad_request(
        f'Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal {detail} into Go '
        f"struct field LeaseSpec.spec.{field}"
    )


def check(obj: dict[str, Any]) -> None:
    """Raise the apiserver's answer to a Lease it would refuse."""
    spec = obj.get("spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise errors.bad_request('Lease in version "v1" cannot be handled as a Lease: spec must be an object')
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        raise _cannot_decode("holderIdentity", f"{type(holder).__name__} of type string")
    for field in ("leaseDurationSeconds", "leaseTransitions"):
        value = spec.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not _INT32[0] <= value <= _INT32[1]:
            raise _cannot_decode(field, f"{value!r} of type int32")
    for field in ("acquireTime", "renewTime"):
        value = spec.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not _MICRO_TIME.fullmatch(value) or not _parses(value):
            raise errors.bad_request(
                f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}" as '
                f'"2006-01-02T15:04:05.000000Z07:00": cannot parse (spec.{field})'
            )
    causes = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "spec.leaseDurationSeconds",
                "message": f"Invalid value: {duration}: must be greater than 0",
            }
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "spec.leaseTransitions",
                "message": f"Invalid value: {transitions}: must be greater than or equal to 0",
            }
        )
    if causes:
        raise errors.invalid(GROUP, KIND, str((obj.get("metadata") or {}).get("name") or ""), causes)


def _parses(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
