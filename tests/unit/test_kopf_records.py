"""kopf's records (the last handled spec, a handler's retries) live in status.kopf, as
main.py configures kopf: the CRDs keep that one sub-object as it is (an apiserver prunes
what its schema does not know, and kopf would then take every event for a new object),
and the operator's own status patches never write or remove it."""

from __future__ import annotations

import copy

import kopf
import pytest

from harness import crd_validation
from model_registry_operator.api import KINDS
from model_registry_operator.api.common import KOPF_STATUS
from model_registry_operator.api.crdgen import crd
from model_registry_operator.controllers.call import Result
from model_registry_operator.controllers.wiring import apply_result
from model_registry_operator.main import configure_kopf


def configured() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    return settings


def package(status: dict) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "registry.mlops.dev/v1alpha1",
            "kind": "ModelPackage",
            "metadata": {"name": "p", "namespace": "ml", "uid": "u", "generation": 1},
            "spec": {"modelPackageName": "p"},
            "status": status,
        }
    )


def kopf_writes(body: kopf.Body) -> kopf.Patch:
    """What kopf puts into its patch for a handler that is retried, and for a handled change."""
    settings, patch = configured(), kopf.Patch()
    progress, diffbase = settings.persistence.progress_storage, settings.persistence.diffbase_storage
    progress.store(
        key="reconcile-update/spec",
        record={"started": "2024-01-01T00:00:00", "retries": 1},
        body=body,
        patch=patch,
    )
    progress.touch(body=body, patch=patch, value="2024-01-01T00:00:05")
    diffbase.store(body=body, patch=patch, essence=diffbase.build(body=body))
    return patch


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_crd_keeps_kopfs_records_and_prunes_other_unknown_status_fields(kind):
    status = crd(KINDS[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"][KOPF_STATUS]["x-kubernetes-preserve-unknown-fields"] is True
    assert "x-kubernetes-preserve-unknown-fields" not in status  # only kopf's sub-object is open

    records = dict(kopf_writes(package({})).status)
    obj = {
        "apiVersion": "registry.mlops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": {},
        "status": {**copy.deepcopy(records), "observedGeneration": 1, "notInTheSchema": "x"},
    }
    pruned = crd_validation.prune(crd(KINDS[kind]), obj)["status"]
    assert pruned == {**records, "observedGeneration": 1}


def test_kopf_writes_its_records_into_the_status_only():
    body = package({"observedGeneration": 1})
    patch = kopf_writes(body)
    assert set(patch) == {"status"} and set(patch.status) == {KOPF_STATUS}  # no metadata patch of its own
    stored = package({"observedGeneration": 1, **copy.deepcopy(dict(patch.status))})
    diffbase = configured().persistence.diffbase_storage
    assert diffbase.fetch(body=stored) == diffbase.build(body=stored)  # read back: nothing to handle


def test_the_operators_status_patch_leaves_kopfs_records_to_kopf():
    previous = {"arn": "a", "observedGeneration": 1, KOPF_STATUS: {"lastHandledConfiguration": "{}"}}
    body, patch = package(previous), kopf.Patch()
    apply_result(Result({"arn": "a", "observedGeneration": 1}), body, patch, previous)
    assert KOPF_STATUS not in patch.status
    diffbase = configured().persistence.diffbase_storage
    diffbase.store(body=body, patch=patch, essence=diffbase.build(body=body))  # kopf adds its record after
    assert set(patch.status) == {KOPF_STATUS}
