"""The two kinds of failure every module raises, so controllers classify them in one place.

`RetryableError`: the world may change by itself (throttling, 5xx, a timeout, a referenced
object not ready yet); the controller reports Reconciling and retries with backoff, never
sooner than the error's `delay` (timing.py holds every value it takes).
`TerminalError`: nothing changes until a person edits the spec or fixes access; the
controller reports Stalled with `reason` and `message` and does not retry in a loop.
"""

from __future__ import annotations

from .reasons import Reason
from .timing import DEFAULT_RETRY_DELAY


class ReconcileError(Exception):
    def __init__(self, reason: Reason | str, message: str):
        super().__init__(message)
        self.reason = Reason(reason)  # an unknown word fails here, not in a user's status
        self.message = message  # a sentence a person can act on


class RetryableError(ReconcileError):
    def __init__(self, reason: Reason | str, message: str, delay: float = DEFAULT_RETRY_DELAY):
        super().__init__(reason, message)
        self.delay = delay


class TerminalError(ReconcileError):
    pass
