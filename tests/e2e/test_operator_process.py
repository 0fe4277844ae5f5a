"""The `model-registry-operator run` process itself: configuration errors are one sentence."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def run_operator(env_overrides, *args):
    env = {**os.environ, "AWS_REGION": "us-east-2", "PYTHONPATH": str(REPO / "operator"), **env_overrides}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run([sys.executable, "-m", "model_registry_operator.cli", "run", *args],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("content", [None, "this: [is not a kubeconfig"])
def test_bad_kubeconfig_is_one_sentence_and_a_failure_code(tmp_path, content):
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    result = run_operator({"KUBECONFIG": str(path)})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "model-registry-operator: cannot read Kubernetes credentials" in result.stderr


def test_missing_region_is_one_sentence(kube):
    env = {**kube.env, "AWS_CONFIG_FILE": "/dev/null", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""}
    result = run_operator(env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "AWS_REGION" in result.stderr


def test_namespaced_run_with_peering_handles_only_its_namespace(kube, operator_env, tmp_path, aws):
    from conftest import OperatorProcess, package_spec, resource, wait_ready

    watched, other = "team-a", "team-b"
    kube.create_namespace(watched)
    kube.create_namespace(other)
    # kopf only joins a peering that exists (the install manifests create it)
    kube.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "model-registry"}},
                namespace=watched)
    process = OperatorProcess(operator_env, tmp_path / "operator.log",
                              ["-n", watched, "--peering", "model-registry"]).start()
    try:
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace=other)
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace=watched)
        kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=watched)
        try:
            wait_ready(kube, "mp", "churn-v1", watched, process)
        except BaseException:
            print(process.log()[-6000:])
            raise
        assert not (kube.get("mpg", "churn", namespace=other).get("status") or {})
        assert aws.count("CreateModelPackageGroup") == 1
    finally:
        process.stop()
