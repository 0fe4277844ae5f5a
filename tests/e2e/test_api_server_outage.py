"""An API server that goes away while the operator runs, and comes back: one sentence when it
goes, one when it answers again, never a traceback or one ERROR line per retried request;
and the operator carries on afterwards."""

import json
import os
import time

import pytest

from conftest import REPO, OperatorProcess, free_port, is_ready, resource, wait_until
from harness.kube import KubeCluster

pytestmark = pytest.mark.e2e
OUTAGE = 25.0  # kopf retries each watch request 9 times over about a minute: several of them


def test_an_api_server_outage_is_one_sentence_each_way_and_the_operator_carries_on(aws, tmp_path):
    port = free_port()
    kube = KubeCluster.start_emulator(tmp_path / "kubeconfig", port=port)
    kube.apply_crds_from(REPO / "crds")
    env = {
        **os.environ,
        **aws.env,
        **kube.env,
        "MRO_RESYNC_SECONDS": "3",
        "PYTHONPATH": str(REPO / "operator"),
    }
    operator = OperatorProcess(env, tmp_path / "operator.log", ["-A"]).start()
    try:
        time.sleep(3.0)  # watching
        kube.stop()
        time.sleep(OUTAGE)
        kube = KubeCluster.start_emulator(tmp_path / "kubeconfig", port=port)
        kube.apply_crds_from(REPO / "crds")
        kube.create_namespace("after")
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace="after")
        wait_until(
            lambda: is_ready(kube.find("mpg", "churn", namespace="after")),
            "the operator to carry on after the outage",
            timeout=60,
            operator=operator,
        )
    finally:
        operator.stop()
        kube.stop()
    records = [json.loads(line) for line in operator.log().splitlines() if line.startswith("{")]
    assert "Traceback" not in operator.log() and "Task exception was never retrieved" not in operator.log()
    assert [r for r in records if r["level"] == "ERROR"] == []
    outage = [r["message"] for r in records if "Kubernetes API server" in r["message"]]
    assert len(outage) == 2, outage
    assert outage[0].startswith("the Kubernetes API server cannot be reached")
    assert outage[1] == "the Kubernetes API server answers again"
