"""Objects waiting for another are woken by its change, not by their retry timer: a Model
waiting for its package's approval and a ModelPackage waiting for its group act within
seconds of the change, however long they waited; a Model whose package is rejected or
deleted later keeps its model and says so. Generous bounds: the benchmark
(bench/reaction.py) measures the real figures."""

import time

import pytest

from conftest import (
    ROLE,
    OperatorProcess,
    condition,
    event_reasons,
    package_spec,
    resource,
    wait_condition,
    wait_event,
    wait_ready,
    wait_until,
)
from model_registry_operator.controllers.wiring import handler_progress

pytestmark = pytest.mark.e2e
# a wait this long would have seen a retry timer (2 to 3 s at first) come due several times
WAITED = 24.0
BOUND = 3.0


def after_waiting_without_a_write(kube, plural: str, name: str, ns: str) -> None:
    """Wait WAITED seconds and check that the waiting object cost nothing meanwhile: its kopf
    handler is done (no retry pending: the change it waits for wakes it, its resync is the
    safety net) and nobody wrote it while it waited."""
    since = len(kube.requests)
    time.sleep(WAITED)
    obj = kube.get(plural, name, namespace=ns)
    assert not handler_progress(obj), f"kopf still has a retry of {plural}/{name}: {handler_progress(obj)}"
    writes = [
        f"{r.user_agent.split('/')[0]} {r.verb} {r.resource}/{r.subresource or ''}"
        for r in kube.requests[since:]
        if (r.resource, r.name) == (plural, name) and r.verb in ("patch", "update")
    ]
    assert writes == [], f"{plural}/{name} was written while it waited: {writes}"


def model_spec(package: str) -> dict:
    return {"executionRoleArn": ROLE, "primaryContainer": {"modelPackageRef": {"name": package}}}


def left_kopf_nothing_to_do(kube, plural: str, name: str, ns: str, since: int) -> None:
    """The woken object's handler's work was done outside kopf (take_over) and written with
    kopf's records as kopf leaves them: the records of the handler that waited are gone (else
    the object would look owned by a handler and its resyncs skip it), and kopf, seeing that
    write, had nothing to handle or record: no write of its own to the object since the change
    (it has no retry timer: after_waiting_without_a_write)."""
    wait_until(
        lambda: not handler_progress(kube.get(plural, name, namespace=ns)),
        f"kopf's progress record of {plural}/{name} purged",
        timeout=5.0,
    )
    time.sleep(2.0)  # what kopf would do on the write's event
    kopf_writes = [
        f"{r.verb} {r.resource}/{r.subresource or ''}"
        for r in kube.requests[since:]
        if (r.resource, r.name) == (plural, name)
        and r.verb in ("patch", "update")
        and r.user_agent.startswith("kopf")
    ]
    assert kopf_writes == [], f"kopf wrote {plural}/{name} after its wake-up: {kopf_writes}"


def test_a_model_waiting_for_approval_is_created_within_seconds_of_it(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
    wait_ready(kube, "mp", "churn-v1", ns, operator)
    kube.create(resource("Model", "churn", model_spec("churn-v1")), namespace=ns)
    wait_condition(kube, "mdl", "churn", ns, "Reconciling", "WaitingForApproval", operator)
    after_waiting_without_a_write(kube, "models", "churn", ns)
    approved, since = time.monotonic(), len(kube.requests)
    kube.patch("mp", "churn-v1", {"spec": {"modelApprovalStatus": "Approved"}}, namespace=ns)
    wait_ready(kube, "mdl", "churn", ns, operator, timeout=BOUND + 2.0)
    took = time.monotonic() - approved
    assert took <= BOUND + 2.0, f"the Model was Ready {took:.1f} s after the approval"
    assert aws.count("CreateModel") == 1
    left_kopf_nothing_to_do(kube, "models", "churn", ns, since)


def test_a_package_waiting_for_its_group_is_registered_within_seconds_of_it(
    kube, kube_namespace, operator, aws
):
    ns = kube_namespace
    kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
    wait_condition(kube, "mp", "churn-v1", ns, "Reconciling", "WaitingForGroup", operator)
    after_waiting_without_a_write(kube, "modelpackages", "churn-v1", ns)
    created, since = time.monotonic(), len(kube.requests)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    wait_ready(kube, "mp", "churn-v1", ns, operator, timeout=BOUND + 4.0)
    took = time.monotonic() - created
    assert took <= BOUND + 4.0, f"the package was Ready {took:.1f} s after its group was applied"
    assert aws.count("CreateModelPackage") == 1
    left_kopf_nothing_to_do(kube, "modelpackages", "churn-v1", ns, since)


def test_a_model_whose_package_is_rejected_keeps_its_model_and_says_so_until_approved_again(
    kube, kube_namespace, operator, aws
):
    ns = kube_namespace
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn", modelApprovalStatus="Approved")),
        namespace=ns,
    )
    kube.create(resource("Model", "churn", model_spec("churn-v1")), namespace=ns)
    ready = wait_ready(kube, "mdl", "churn", ns, operator)
    kube.patch("mp", "churn-v1", {"spec": {"modelApprovalStatus": "Rejected"}}, namespace=ns)

    def warned():
        obj = kube.find("mdl", "churn", namespace=ns)
        message = condition(obj, "Ready").get("message", "")
        return obj if "ModelPackage churn-v1 is now Rejected" in message else None

    warned_obj = wait_until(
        warned, "the Model to say its package was rejected", timeout=BOUND + 2.0, operator=operator
    )
    assert condition(warned_obj, "Ready")["status"] == "True"  # the model exists and matches its spec
    wait_event(kube, ns, "churn", "PackageNoLongerApproved", operator, timeout=BOUND)
    assert aws.count("DeleteModel") == 0 and aws.count("CreateModel") == 1

    kube.patch("mp", "churn-v1", {"spec": {"modelApprovalStatus": "Approved"}}, namespace=ns)
    wait_until(
        lambda: (
            condition(kube.find("mdl", "churn", namespace=ns), "Ready").get("message")
            == condition(ready, "Ready")["message"]
        ),
        "the notice to clear",
        timeout=BOUND + 2.0,
        operator=operator,
    )


def test_a_package_whose_wake_up_cannot_write_is_registered_moments_later(
    kube, kube_namespace, operator_env, tmp_path, aws
):
    """The API server refuses the woken package's status writes twice (503; the group's reconcile
    and its Ready coming through the watch may each wake it): it is tried again a moment later
    (timing.WAKE_FAILURE_DELAY), not at its resync (set to 5 minutes here), registered once, and
    its Created Event posted once; the log says so in a sentence per failure."""
    ns = kube_namespace
    env = {**operator_env, "MRO_RESYNC_SECONDS": "300"}
    operator = OperatorProcess(env, tmp_path / "operator.log", ["-A"]).start()
    try:
        kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
        wait_condition(kube, "mp", "churn-v1", ns, "Reconciling", "WaitingForGroup", operator)
        kube.inject_fault("patch", "modelpackages", subresource="status", name="churn-v1", code=503, count=2)
        created = time.monotonic()
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
        wait_ready(kube, "mp", "churn-v1", ns, operator, timeout=BOUND + 12.0)
        took = time.monotonic() - created
        assert took <= BOUND + 12.0, f"the package was Ready {took:.1f} s after its group was applied"
        assert aws.count("CreateModelPackage") == 1
        time.sleep(1.0)  # the Events are posted in the background
        assert event_reasons(kube, ns, "churn-v1").count("Created") == 1, event_reasons(kube, ns, "churn-v1")
        log = operator.log()
        assert log.count(f"cannot write the status of {ns}/churn-v1") == 2, log[-5000:]
        assert "Traceback" not in log, log[-5000:]
    finally:
        operator.stop()
