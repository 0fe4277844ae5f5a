import kopf
import pytest

from model_registry_operator import FINALIZER
from model_registry_operator.controllers.common import Result
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.wiring import IndexLookup, apply_result, change_pending, settled
from model_registry_operator.main import configure_kopf


def body(status, generation=1, annotations=None):
    return kopf.Body({"apiVersion": "registry.mlops.dev/v1alpha1", "kind": "ModelPackage",
                      "metadata": {"name": "p", "namespace": "ml", "uid": "u", "generation": generation,
                                   "annotations": annotations or {}},
                      "spec": {}, "status": status})


def test_apply_result_patches_only_what_changed_and_removes_what_is_gone():
    previous = {"arn": "a", "modelPackageStatus": "Pending", "observedGeneration": 1}
    patch = kopf.Patch()
    apply_result(Result({"arn": "a", "observedGeneration": 1, "modelApprovalStatus": "Approved"}),
                 body(previous), patch, previous)
    assert dict(patch.status) == {"modelPackageStatus": None, "modelApprovalStatus": "Approved"}


def test_apply_result_asks_kopf_to_come_back_with_the_condition_message():
    conditions = build_conditions(Outcome.reconciling("WaitingForGroup", "Waiting for group g."), 1, None)
    with pytest.raises(kopf.TemporaryError) as raised:
        apply_result(Result({"conditions": conditions}, retry=2.0), body({}), kopf.Patch(), {})
    assert raised.value.delay == 2.0 and "Waiting for group g." in str(raised.value)


def test_settled_means_ready_or_stalled_for_this_generation():
    ready = {"observedGeneration": 2, "conditions": build_conditions(Outcome.ready("Synced", "ok"), 2, None)}
    stalled = {"observedGeneration": 2, "conditions": build_conditions(Outcome.stalled("InvalidSpec", "x"), 2, None)}
    waiting = {"observedGeneration": 2, "conditions": build_conditions(Outcome.reconciling("Creating", "x"), 2, None)}
    assert settled(body(ready, 2)) and settled(body(stalled, 2))
    assert not settled(body(waiting, 2))
    assert not settled(body(ready, 3))  # a newer spec is not reconciled yet
    assert not settled(body({}, 1))


def test_a_change_handler_waiting_for_its_retry_keeps_the_resync_away():
    waiting = {"observedGeneration": 2, "conditions": build_conditions(Outcome.reconciling("Throttling", "x"), 2, None)}
    assert not change_pending(body(waiting, 2))  # e.g. a resync that failed: the next resync retries
    assert change_pending(body(waiting, 2, {"registry.mlops.dev/reconcile-update": '{"retries": 1}'}))
    assert change_pending(body(waiting, 3))


def test_index_lookup_reads_kopf_indexes():
    lookup = IndexLookup({"modelpackagegroup_index": {("ml", "g"): [{"status": {"arn": "x"}}]}})
    assert lookup.get("ModelPackageGroup", "ml", "g") == {"status": {"arn": "x"}}
    assert lookup.get("ModelPackageGroup", "ml", "other") is None
    assert lookup.get("ModelPackage", "ml", "g") is None


def test_kopf_is_configured_with_the_products_own_names():
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    assert settings.persistence.finalizer == FINALIZER
    assert settings.persistence.progress_storage.prefix == "registry.mlops.dev"
    assert settings.persistence.diffbase_storage.prefix == "registry.mlops.dev"
    assert settings.posting.reporting_component == "model-registry-operator"
