"""The two kinds of failure every module raises, so controllers classify them in one place.

`RetryableError`: the world may change by itself (throttling, 5xx, a timeout, a referenced
object not ready yet); the controller reports Reconciling and retries with backoff.
`TerminalError`: nothing changes until a person edits the spec or fixes access; the
controller reports Stalled with `reason` and `message` and does not retry in a loop.
"""


class ReconcileError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # CamelCase word, used as the condition reason
        self.message = message  # a sentence a person can act on


class RetryableError(ReconcileError):
    def __init__(self, reason: str, message: str, delay: float = 10.0):
        super().__init__(reason, message)
        self.delay = delay


class TerminalError(ReconcileError):
    pass
