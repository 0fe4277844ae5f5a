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
