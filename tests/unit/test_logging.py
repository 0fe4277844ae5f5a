"""kopf logs every handler's TemporaryError at ERROR, from inside its `except` block. The
operator's own "come back later" (wiring.ComeBackLater) is an expected wait or a retry the
status explains: lowered to DEBUG by its type (shown with --verbose only). Anything else
stays an ERROR."""

import logging

import kopf
import pytest

from model_registry_operator.controllers.wiring import ComeBackLater
from model_registry_operator.main import WaitingIsNotAnError


@pytest.fixture(params=[False, True], ids=["quiet", "verbose"])
def verbose(request):
    return request.param


@pytest.fixture
def records(verbose):
    caught: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("test.kopf.objects")
    handler = Keep()
    handler.addFilter(WaitingIsNotAnError(verbose))
    logger.addHandler(handler)
    yield logger, caught
    logger.removeHandler(handler)


def log_while_handling(logger: logging.Logger, error: Exception) -> None:
    try:
        raise error
    except kopf.TemporaryError as exc:  # as kopf's execution does
        logger.error(f"Handler 'reconcile-create' failed temporarily: {exc}")


def test_the_operators_own_wait_is_debug(records, verbose):
    logger, caught = records
    log_while_handling(logger, ComeBackLater("Waiting for ModelPackage churn-v1 to be Approved.", delay=3))
    assert [r.levelname for r in caught] == (["DEBUG"] if verbose else [])


def test_any_other_temporary_error_or_error_line_stays_an_error(records):
    logger, caught = records
    log_while_handling(logger, kopf.TemporaryError("someone else's handler", delay=3))
    logger.error("Handler 'x' failed temporarily: the same words outside any exception")
    assert [r.levelname for r in caught] == ["ERROR", "ERROR"]


def test_a_credential_refusal_said_on_the_objects_is_not_logged_again_by_botocore():
    """botocore logs a failed refresh of an assumed role's credentials with its traceback; the
    operator's logging drops it when it is a refusal its objects report (a ReconcileError),
    and keeps any other."""
    from model_registry_operator.errors import TerminalError
    from model_registry_operator.main import configure_logging

    root, credentials = logging.getLogger(), logging.getLogger("botocore.credentials")
    saved = root.handlers[:], root.level, credentials.filters[:]
    caught: list[logging.LogRecord] = []
    try:
        configure_logging(verbose=False)
        root.handlers[0].emit = caught.append  # type: ignore[method-assign]
        for error in (TerminalError("AssumeRoleFailed", "refused"), RuntimeError("a bug")):
            try:
                raise error
            except Exception:
                credentials.warning(
                    "Refreshing temporary credentials failed during mandatory refresh period.", exc_info=True
                )
    finally:
        root.handlers[:], credentials.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])
    assert [r.exc_info[1].__class__.__name__ for r in caught if r.exc_info] == ["RuntimeError"]
