"""A kind's controller: its spec type, its status fields and its two steps lists
(`reconcile`, `delete`), run the same way for every kind.

`Kind.reconcile(call, ctx)` and `Kind.delete(call, ctx)` are what the kopf layer calls:
the spec is parsed here (an invalid one is Stalled/InvalidSpec and never reaches
SageMaker), a `Stop` or a classified error ends the call with its outcome, and an
unexpected exception (a bug, a full disk) is Reconciling/InternalError with backoff and
the traceback in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from ..accounts import arn_account, arn_region
from ..api import KINDS, format_validation_error
from ..api.common import ApiModel, DeletionPolicy
from ..errors import ReconcileError, RetryableError
from ..reasons import Reason
from ..timing import FAILED_DELETE_RETRY_DELAY
from .call import Call, Event, Result, Stop, carried
from .conditions import Outcome
from .context import Context

log = logging.getLogger(__name__)
SpecT = TypeVar("SpecT", bound=ApiModel)


@dataclass(frozen=True)
class Kind(Generic[SpecT]):
    name: str  # "ModelPackage"
    spec_type: type[SpecT]
    status_fields: tuple[str, ...]  # the kind's own fields, carried until observed again
    reconcile_steps: Callable[[Call, SpecT, Context], Result]
    delete_steps: Callable[[Call, Context], Result]  # retry None: done, the finalizer may go
    # failed reconciles in a row after which a retryable error of this reason is Stalled
    stall_after: dict[Reason, int] | None = None
    # the deletionPolicy of an object whose spec sets none, when it is not the operator's
    # (an adopted version is Retain: the operator did not create it)
    default_policy: Callable[[dict[str, Any]], DeletionPolicy | None] | None = None
    # the objects of other kinds in its namespace a raw spec waits for: [(kind, name)]; their
    # changes wake this object (wiring.py) instead of a timer
    references: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None
    # the account a raw spec puts the SageMaker object in whatever its namespace's account is
    # (a version registered in a group another account shares by ARN); None: its namespace's
    spec_account: Callable[[dict[str, Any]], str | None] | None = None

    @property
    def plural(self) -> str:
        return KINDS[self.name].plural

    def reconcile(self, call: Call, ctx: Context) -> Result:
        self._start(call, ctx)
        try:
            spec = self.parse(call)
            ctx = ctx.scoped(call, self.region(call))
            moved = self.account_changed(call, ctx)
            if moved is not None:
                raise Stop(Outcome.stalled(Reason.ACCOUNT_CHANGED, moved))
            return self.reconcile_steps(call, spec, ctx)
        except Stop as stop:
            return call.finish(
                stop.outcome, retry=stop.delay, short=stop.short, patient=stop.patient, woken=stop.woken
            )
        except ReconcileError as err:
            call.events.clear()  # what the failed attempt did is said by the attempt that completes
            return call.failed(err, (self.stall_after or {}).get(err.reason))
        except Exception as exc:  # noqa: BLE001 - a bug is reported on the object, not hidden
            call.events.clear()
            return self._internal_error(call, exc)

    def delete(self, call: Call, ctx: Context) -> Result:
        self._start(call, ctx)
        try:
            ctx = ctx.scoped(call, self.region(call, deleting=True))
            if self.account_changed(call, ctx) is not None:
                return call.unchanged(Event.warning(Reason.ACCOUNT_CHANGED, self.left_behind(call, ctx)))
            return self.delete_steps(call, ctx)
        except Stop as stop:
            return call.finish(
                stop.outcome, retry=stop.delay, short=stop.short, patient=stop.patient, woken=stop.woken
            )
        except ReconcileError as err:
            call.events.clear()
            result = call.failed(err)
            # a terminal error is still retried, slowly: the finalizer stays until it succeeds
            result.retry = result.retry or FAILED_DELETE_RETRY_DELAY
            return result
        except Exception as exc:  # noqa: BLE001 - a bug is reported on the object, not hidden
            call.events.clear()
            return self._internal_error(call, exc)

    def parse(self, call: Call) -> SpecT:
        try:
            return self.spec_type.model_validate(call.raw_spec, strict=True)
        except ValidationError as err:
            raise Stop(
                Outcome.stalled(
                    Reason.INVALID_SPEC,
                    f"The {self.name} spec is invalid, fix it: {format_validation_error(err)}",
                )
            ) from None

    def region(self, call: Call, deleting: bool = False) -> str | None:
        """The object's region: spec.region; else the region of what it made (status.arn), so
        that an object stays where it is when the operator's region changes; else None (the
        operator's). A spec.region that differs from what was made (possible only with a CRD
        without the immutability rule) is Stalled/InvalidSpec; a delete goes where it was made."""
        wanted = call.raw_spec.get("region")
        made = arn_region(call.previous.get("arn"))
        if isinstance(wanted, str) and wanted and not (deleting and made):
            if made is not None and made != wanted:
                raise Stop(
                    Outcome.stalled(
                        Reason.INVALID_SPEC,
                        f"spec.region is {wanted}, but this {self.name}'s SageMaker object {call.previous['arn']} is "
                        f"in {made}: an object cannot move to another region. Set spec.region back to {made}, or "
                        f"create a new {self.name} for {wanted}.",
                    )
                )
            return wanted
        return made

    def account_changed(self, call: Call, ctx: Context) -> str | None:
        """Why the object may not go on in `ctx`'s account (a message), or None: its
        SageMaker object (status.arn) is in another account than its namespace maps to now
        (the role annotation was added, changed or removed after it was made)."""
        arn = call.previous.get("arn")
        made, now = arn_account(arn), ctx.account
        if made is None or now is None or made == now:
            return None
        if self.spec_account is not None and self.spec_account(call.raw_spec) == made:
            return None  # its group is another account's, shared with this one: it stays there
        assert ctx.target is not None
        return (
            f"This {self.name}'s SageMaker object {arn} is in AWS account {made}, but {ctx.target.describe(call.meta.namespace)}. "
            f"Nothing is made in account {now} for it behind your back: to keep managing {arn}, map namespace "
            f"{call.meta.namespace} back to account {made} (its registry.mlops.dev/aws-role-arn annotation); to move it, "
            f"delete this {self.name} (its SageMaker object in account {made} is left as it is) and create it again."
        )

    def left_behind(self, call: Call, ctx: Context) -> str:
        """The Warning of a delete whose SageMaker object is in an account the namespace no
        longer maps to: nothing is deleted in either account."""
        arn = call.previous.get("arn")
        assert ctx.target is not None
        return (
            f"{arn} is in AWS account {arn_account(arn)}, but {ctx.target.describe(call.meta.namespace)}: the "
            f"operator deletes nothing in an account the namespace no longer maps to and left it untouched; "
            f"delete it in account {arn_account(arn)} if it is no longer needed."
        )

    def _start(self, call: Call, ctx: Context) -> None:
        call.fields = carried(call.previous, *self.status_fields)
        kind_default = self.default_policy(call.raw_spec) if self.default_policy else None
        call.fields["deletionPolicy"] = call.deletion_policy(kind_default or ctx.settings.deletion_policy)

    def _internal_error(self, call: Call, exc: Exception) -> Result:
        """The object's status says what happened instead of kopf retrying silently. The
        message names only the exception type: its text may carry URLs or other details
        meant for the log."""
        log.exception(
            "reconcile of %s %s/%s failed unexpectedly", self.name, call.meta.namespace, call.meta.name
        )
        error = RetryableError(
            Reason.INTERNAL_ERROR,
            f"The operator failed unexpectedly ({type(exc).__name__}); its log has the details.",
        )
        return call.failed(error)
