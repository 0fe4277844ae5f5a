"""The `model-registry-operator run` process itself: configuration errors are one sentence."""

import os
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.e2e


def run_operator(env_overrides, *args):
    env = {**os.environ, "AWS_REGION": "us-east-2", "PYTHONPATH": str(REPO / "operator"), **env_overrides}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "model_registry_operator.cli", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


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


@pytest.mark.parametrize(
    "env, words",
    [({"AWS_PROFILE": "no-such-profile"}, "no-such-profile"), ({"AWS_MAX_ATTEMPTS": "abc"}, "abc")],
)
def test_unusable_aws_configuration_is_one_sentence(kube, env, words):
    result = run_operator({**kube.env, **env}, "--metrics", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "model-registry-operator: the AWS configuration is not usable" in result.stderr
        and words in result.stderr
    )


def test_a_taken_liveness_port_is_one_sentence(kube):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        url = f"http://127.0.0.1:{taken.getsockname()[1]}/healthz"
        result = run_operator(kube.env, "--liveness", url, "--metrics", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot serve the liveness endpoint {url}" in result.stderr and "--liveness" in result.stderr


def test_a_liveness_value_that_is_not_a_url_is_one_sentence(kube):
    result = run_operator(kube.env, "--liveness", "nonsense", "--metrics", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--liveness 'nonsense' is not a URL like http://0.0.0.0:8080/healthz" in result.stderr


def test_crds_of_an_earlier_release_are_one_sentence(crds):
    # an earlier release's status schema has no status.kopf: the API server would prune kopf's
    # records, and the operator would lose every retry it schedules
    kube = crds
    crd = yaml.safe_load((REPO / "crds" / "modelpackages.yaml").read_text())
    for version in crd["spec"]["versions"]:
        del version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["kopf"]
    kube.apply_crd(crd)
    result = run_operator(kube.env, "--metrics", "", "--liveness", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "older than this operator (modelpackages.registry.mlops.dev do not keep status.kopf)" in result.stderr
    )
    assert "kubectl apply -f crds/" in result.stderr


def test_namespaced_run_with_peering_handles_only_its_namespace(kube, operator_env, tmp_path, aws):
    from conftest import OperatorProcess, package_spec, resource, wait_ready

    watched, other = "team-a", "team-b"
    kube.create_namespace(watched)
    kube.create_namespace(other)
    # kopf only joins a peering that exists (the install manifests create it)
    kube.create(
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "model-registry"}},
        namespace=watched,
    )
    process = OperatorProcess(
        operator_env, tmp_path / "operator.log", ["-n", watched, "--peering", "model-registry"]
    ).start()
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


def apply_manifest(kube, path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        if document["kind"] == "CustomResourceDefinition":
            kube.apply_crd(document)
        else:
            kube.create(document)
    return documents


def test_replicas_with_peering_take_turns(kube, kube_namespace, operator_env, tmp_path, aws):
    from conftest import OperatorProcess, resource, wait_ready, wait_until

    ns = kube_namespace
    documents = apply_manifest(kube, REPO / "manifests" / "install" / "peering.yaml")
    (peering,) = [d["metadata"]["name"] for d in documents if d["kind"] == "ClusterKopfPeering"]

    def peers():
        return kube.get("clusterkopfpeerings", peering).get("status") or {}

    # kopf names a peer by $POD_ID (the pod's name in a Deployment)
    replicas = {
        name: OperatorProcess(
            {**operator_env, "POD_ID": name}, tmp_path / f"{name}.log", ["-A", "--peering", peering]
        ).start()
        for name in ("replica-a", "replica-b")
    }
    try:
        status = wait_until(
            lambda: (lambda s: s if set(replicas) <= set(s) else None)(peers()),
            "both replicas to join the peering",
        )
        # kopf runs the peer with the highest priority only, and freezes all peers on a tie
        priorities = {name: status[name]["priority"] for name in replicas}
        assert len(set(priorities.values())) == 2, priorities
        active, standby = sorted(replicas, key=priorities.get, reverse=True)
        kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
        wait_ready(kube, "mpg", "churn", ns, replicas[active])

        # a replica that stops leaves the peering; the other one resumes at once
        replicas[active].stop()
        wait_until(lambda: active not in peers(), f"{active} to leave the peering")
        kube.create(resource("ModelPackageGroup", "fraud", {}), namespace=ns)
        wait_ready(kube, "mpg", "fraud", ns, replicas[standby])
    finally:
        for replica in replicas.values():
            replica.stop()


def test_an_api_server_that_cannot_be_reached_at_start_is_one_sentence(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
        "current-context": "gone",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    result = run_operator({"KUBECONFIG": str(path)}, "--metrics", "", "--liveness", "")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"model-registry-operator: cannot reach the Kubernetes API server at http://127.0.0.1:{port} "
        "(Connection refused); check the kubeconfig or the network"
    ]
