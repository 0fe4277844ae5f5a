"""The Helm chart through Helm's own engine, and every install manifest through Kubernetes' schemas.

helm-python-sdk binds Helm's Go SDK (libhelm_c, shipped inside the wheel) with ctypes: rendering,
`helm lint --strict` and values.schema.json are Helm's code, offline, with no helm binary.
kubernetes-validate ships the OpenAPI schemas of each Kubernetes release; --strict refuses unknown
fields. Both check against the oldest Kubernetes the README supports.
"""

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "model-registry-operator"
INSTALL = ROOT / "manifests" / "install"
RELEASE, NAMESPACE = "mro", "mlops"
IRSA_ROLE = "arn:aws:iam::123456789012:role/model-registry-operator"


def _min_kubernetes() -> str:
    install = (ROOT / "README.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"Kubernetes (\d+\.\d+) or newer", install)
    assert match, "the README's Install section states no oldest supported Kubernetes version"
    return match.group(1)


MIN_K8S = _min_kubernetes()  # e.g. "1.28"


def _older(version: str) -> str:
    major, minor = version.split(".")
    return f"{major}.{int(minor) - 1}"


# -- rendering ----------------------------------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "replicas": {"replicas": 3},
    "namespaces": {"watch": {"allNamespaces": False, "namespaces": ["team-a", "team-b"]}},
    "namespaces-replicas": {"replicas": 2, "watch": {"allNamespaces": False, "namespaces": ["team-a"]}},
    "sharding": {"replicas": 3, "sharding": {"enabled": True}},
    "sharding-namespaces": {
        "replicas": 2,
        "sharding": {"enabled": True},
        "watch": {"allNamespaces": False, "namespaces": ["team-a"]},
    },
    "servicemonitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}}},
    "irsa": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": IRSA_ROLE}}},
    "metrics-off": {"metrics": {"enabled": False}},
    "own-service-account": {"serviceAccount": {"create": False, "name": "registry-operator"}},
    "settings": {
        "aws": {"region": "eu-west-1", "endpointUrl": "https://sagemaker.example.org"},
        "settings": {
            "artifactBucket": "ml-artifacts",
            "instance": "prod",
            "sourceBuckets": ["ml-models"],
            "sagemakerRate": 20,
        },
    },
    "sagemaker-rate-off": {"settings": {"sagemakerRate": "off"}},
    "sagemaker-rate-zero": {"settings": {"sagemakerRate": 0}},  # a rate: no limiter, as "off"
    "sagemaker-rate-null": {"settings": {"sagemakerRate": None}},  # --set settings.sagemakerRate=null
}


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart, values: dict[str, Any] | None = None) -> list[dict]:
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


def one(docs: list[dict], kind: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def container(docs: list[dict]) -> dict:
    (operator,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator


def lint_problems(values: dict[str, Any] | None = None) -> list[str]:
    """What `helm lint --strict --kube-version <oldest>` reports at warning level or above."""
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{MIN_K8S}.0")
    return report["errors"] + [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_chart_lints_strict_and_renders_valid_objects(chart, values):
    assert lint_problems(values) == []
    docs = render(chart, values)
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding"} <= {d["kind"] for d in docs}
    for doc in docs:
        validate(doc)


def test_variants_render_what_they_ask_for(chart):
    default = render(chart)
    assert container(default)["args"] == ["run", "--all-namespaces"]
    assert "annotations" not in one(default, "ServiceAccount")["metadata"]
    assert {d["kind"] for d in default} == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",  # leases, for sharding (test_sharded_replicas_...)
        "RoleBinding",
        "Deployment",
    }

    namespaced = render(chart, VARIANTS["namespaces"])
    assert container(namespaced)["args"] == ["run", "--namespace=team-a", "--namespace=team-b"]

    irsa = one(render(chart, VARIANTS["irsa"]), "ServiceAccount")
    assert irsa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": IRSA_ROLE}

    monitored = render(chart, VARIANTS["servicemonitor"])
    service, monitor = one(monitored, "Service"), one(monitored, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert (
        service["spec"]["selector"].items()
        <= one(monitored, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )

    unmetered = render(chart, VARIANTS["metrics-off"])
    assert {"name": "MRO_METRICS", "value": ""} in container(unmetered)["env"]
    assert "annotations" not in one(unmetered, "Deployment")["spec"]["template"]["metadata"]

    own = render(chart, VARIANTS["own-service-account"])
    assert "ServiceAccount" not in {d["kind"] for d in own}
    assert one(own, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "registry-operator"
    assert one(own, "ClusterRoleBinding")["subjects"][0]["name"] == "registry-operator"

    env = {e["name"]: e.get("value") for e in container(render(chart, VARIANTS["settings"]))["env"]}
    assert env["AWS_ENDPOINT_URL"] == "https://sagemaker.example.org"
    assert (env["MRO_INSTANCE"], env["MRO_SOURCE_BUCKETS"]) == ("prod", "ml-models")
    assert "MRO_INSTANCE" not in {e["name"] for e in container(default)["env"]}
    assert env["MRO_SAGEMAKER_RATE"] == "20"
    assert "MRO_SAGEMAKER_RATE" not in {e["name"] for e in container(default)["env"]}  # adapts
    for variant, rate in {
        "sagemaker-rate-off": "off",
        "sagemaker-rate-zero": "0",
        "sagemaker-rate-null": None,
    }.items():
        rendered = {e["name"]: e.get("value") for e in container(render(chart, VARIANTS[variant]))["env"]}
        assert rendered.get("MRO_SAGEMAKER_RATE") == rate, variant  # null: unset, the operator's default


@pytest.mark.parametrize(
    "values",
    [VARIANTS["replicas"], VARIANTS["namespaces-replicas"]],
    ids=["all-namespaces", "namespaces"],
)
def test_several_replicas_run_with_the_peering_object_they_name(chart, values):
    docs = render(chart, values)
    args = container(docs)["args"]
    (flag,) = [a for a in args if a.startswith("--peering=")]
    peerings = [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    assert peerings and {p["metadata"]["name"] for p in peerings} == {flag.removeprefix("--peering=")}
    if "--all-namespaces" in args:
        assert [p["kind"] for p in peerings] == ["ClusterKopfPeering"]
    else:  # one KopfPeering in each watched namespace
        assert {p["kind"] for p in peerings} == {"KopfPeering"}
        assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(values["watch"]["namespaces"])
    deployment = one(docs, "Deployment")
    assert "strategy" not in deployment["spec"]  # a rolling update: peering keeps one active
    pod_id = {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert pod_id in container(docs)["env"]  # kopf names each replica in the peering status by it


@pytest.mark.parametrize(
    "values", [VARIANTS["sharding"], VARIANTS["sharding-namespaces"]], ids=["sharding", "sharding-namespaces"]
)
def test_sharded_replicas_are_all_active_with_one_shard_each_and_no_peering(chart, values):
    docs = render(chart, values)
    operator = container(docs)
    assert not [a for a in operator["args"] if a.startswith("--peering")]
    assert not [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    env = {e["name"]: e for e in operator["env"]}
    assert env["MRO_SHARDS"]["value"] == str(values["replicas"])  # one shard per replica
    assert env["MRO_SHARD_LEASE_NAME"]["value"] == RELEASE
    assert env["MRO_SHARD_LEASE_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # the lease holder
    assert "POD_ID" not in env
    assert "strategy" not in one(docs, "Deployment")["spec"]  # rolled: a new shard count waits for the old
    role, binding = one(docs, "Role"), one(docs, "RoleBinding")
    assert role["metadata"]["namespace"] == NAMESPACE == binding["metadata"]["namespace"]
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"],
        }
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "model-registry-operator", "namespace": NAMESPACE}
    ]


def test_a_single_replica_is_replaced_not_rolled(chart):
    # without peering, a rolling update would run two operators at once
    docs = render(chart)
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in container(docs)["args"] if a.startswith("--peering")]
    assert not [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    installed = [d for d in yaml.safe_load_all((INSTALL / "operator.yaml").read_text()) if d]
    assert one(installed, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


# -- values.schema.json ----------------------------------------------------------------------------

REFUSED = {
    "replicas-a-string": ({"replicas": "two"}, "/replicas"),
    "replicas-negative": ({"replicas": -1}, "/replicas"),
    "replicas-fractional": ({"replicas": 1.5}, "/replicas"),
    "sharding-a-string": ({"sharding": {"enabled": "yes"}}, "/sharding/enabled"),
    "sharding-unknown-key": ({"sharding": {"enabled": True, "shards": 4}}, "'shards' not allowed"),
    "no-namespace-to-watch": ({"watch": {"allNamespaces": False}}, "/watch"),
    "namespaces-beside-all": ({"watch": {"namespaces": ["team-a"]}}, "/watch"),
    "namespace-not-a-name": ({"watch": {"allNamespaces": False, "namespaces": ["Team_A"]}}, "/watch"),
    "allnamespaces-a-string": ({"watch": {"allNamespaces": "false", "namespaces": ["a"]}}, "/watch"),
    "servicemonitor-without-metrics": (
        {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
        "/metrics",
    ),
    "metrics-on-the-health-port": ({"metrics": {"port": 8080}}, "/metrics/port"),
    "port-a-string": ({"metrics": {"port": "9090"}}, "/metrics/port"),
    "interval-not-a-duration": ({"metrics": {"serviceMonitor": {"interval": "30"}}}, "/interval"),
    "annotation-not-a-string": ({"serviceAccount": {"annotations": {"a": 1}}}, "/annotations/a"),
    "unknown-key": ({"replica": 2}, "'replica' not allowed"),
    "unknown-nested-key": ({"settings": {"artifactBuckets": "x"}}, "'artifactBuckets' not allowed"),
    "deletion-policy": ({"settings": {"deletionPolicy": "Keep"}}, "/settings/deletionPolicy"),
    "resync-zero": ({"settings": {"resyncSeconds": 0}}, "/settings/resyncSeconds"),
    "allowhttp-a-string": ({"settings": {"allowHttp": "yes"}}, "/settings/allowHttp"),
    "instance-not-a-label": ({"settings": {"instance": "Prod Cluster"}}, "/settings/instance"),
    "sagemaker-rate-negative": ({"settings": {"sagemakerRate": -1}}, "/settings/sagemakerRate"),
    "sagemaker-rate-a-word": ({"settings": {"sagemakerRate": "fast"}}, "/settings/sagemakerRate"),
    "pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
}


@pytest.mark.parametrize(("values", "where"), REFUSED.values(), ids=REFUSED.keys())
def test_schema_refuses_wrong_types_and_contradictions(chart, values, where):
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert any(where in problem for problem in lint_problems(values))


@pytest.fixture(scope="module")
def unchecked_chart(tmp_path_factory):
    """The chart as `helm install --skip-schema-validation` sees it."""
    copy = shutil.copytree(CHART, tmp_path_factory.mktemp("chart") / CHART.name)
    (copy / "values.schema.json").unlink()
    with helm.Chart.load(copy) as loaded:
        yield loaded


def test_the_template_refuses_no_namespace_even_without_the_schema(unchecked_chart):
    # skipping the schema must not turn "no namespaces" into "all namespaces"
    with pytest.raises(helm.HelmRenderError, match="list the namespaces to watch"):
        render(unchecked_chart, {"watch": {"allNamespaces": False}})


# -- Kubernetes schemas ----------------------------------------------------------------------------

PEERING_CRDS = {
    (crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd
    for crd in yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text())
    if crd
}
# prometheus-operator's CRD is not shipped here: the ServiceMonitor is checked by hand above only
UNCHECKED_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def validate(doc: dict) -> None:
    """kubernetes-validate --strict at the oldest supported version; kopf's peering objects
    against the peering CRDs the chart and manifests/install/peering.yaml ship."""
    group = doc["apiVersion"].rpartition("/")[0]
    if (group, doc["kind"]) in PEERING_CRDS:
        crd = PEERING_CRDS[group, doc["kind"]]
        (version,) = crd["spec"]["versions"]
        assert doc["apiVersion"] == f"{group}/{version['name']}"
        assert ("namespace" in doc["metadata"]) is (crd["spec"]["scope"] == "Namespaced")
        jsonschema.validate(doc, version["schema"]["openAPIV3Schema"])
    elif (doc["apiVersion"], doc["kind"]) not in UNCHECKED_KINDS:
        kubernetes_validate.validate(doc, f"{MIN_K8S}.0", strict=True)


STATIC = sorted(
    [*(ROOT / "crds").glob("*.yaml"), *(CHART / "crds").glob("*.yaml"), *INSTALL.glob("*.yaml")],
)


@pytest.mark.parametrize("path", STATIC, ids=[str(p.relative_to(ROOT)) for p in STATIC])
def test_crds_and_install_manifests_validate_strict(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        validate(doc)


def test_the_stated_oldest_kubernetes_is_the_real_floor():
    assert f"{MIN_K8S}.0" in all_versions(), f"kubernetes-validate has no schemas for {MIN_K8S}"
    crds = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]
    for crd in crds:
        kubernetes_validate.validate(crd, f"{MIN_K8S}.0", strict=True)
    # one release older refuses them (CEL rules with fieldPath): the README states the real floor
    with pytest.raises(kubernetes_validate.ValidationError):
        for crd in crds:
            kubernetes_validate.validate(crd, f"{_older(MIN_K8S)}.0", strict=True)
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart_yaml["kubeVersion"] == f">={MIN_K8S}.0-0"  # helm install refuses older clusters
    assert f"Kubernetes {MIN_K8S} or newer" in (INSTALL / "operator.yaml").read_text()


def test_kubernetes_validate_catches_a_wrong_type(unchecked_chart):
    # what the chart rendered before values.schema.json, for `--set replicas=two`
    deployment = one(render(unchecked_chart, {"replicas": "two"}), "Deployment")
    assert deployment["spec"]["replicas"] == "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="'two' is not of type 'integer'"):
        validate(deployment)


# -- manifests/install/operator.yaml ---------------------------------------------------------------


def _install_renderer():
    spec = importlib.util.spec_from_file_location("install_render", INSTALL / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaves(values: dict[str, Any]) -> list[Any]:
    return [leaf for v in values.values() for leaf in (_leaves(v) if isinstance(v, dict) else [v])]


def test_install_manifest_is_the_charts_render(chart):
    renderer = _install_renderer()
    assert (INSTALL / "operator.yaml").read_text() == renderer.render(), (
        "manifests/install/operator.yaml is stale: run `python manifests/install/render.py`"
    )
    # the render sets nothing but the placeholders: the rest is the chart's defaults
    assert sorted(_leaves(renderer.VALUES)) == sorted(renderer.PLACEHOLDERS)
    installed = [d for d in yaml.safe_load_all((INSTALL / "operator.yaml").read_text()) if d]
    assert installed[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": renderer.NAMESPACE}}
    rendered = chart.render(renderer.VALUES, name=renderer.NAME, namespace=renderer.NAMESPACE)
    docs = [d for text in rendered.values() for d in yaml.safe_load_all(text) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(installed[1:], key=key) == sorted(docs, key=key)


def test_install_manifest_calls_out_its_placeholders():
    renderer = _install_renderer()
    text = (INSTALL / "operator.yaml").read_text()
    header = text.split("\napiVersion:", 1)[0]
    for value, what in renderer.PLACEHOLDERS.items():
        assert f"#   {value}: {what}" in header
        lines = [line for line in text.splitlines() if value in line and not line.startswith("#")]
        assert lines and all(line.endswith(f"# PLACEHOLDER: {what}") for line in lines)
