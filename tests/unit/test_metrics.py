"""Prometheus metrics: counted where the kopf layer knows each reconcile's result, the
objects gauge following the conditions written (and deletions), SageMaker's counters read
at scrape time, artifact copies counted by result, the --metrics / MRO_METRICS setting."""

import socket
import subprocess
import sys
import urllib.request

import kopf
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fakes import ACCOUNT, REGION, FakeRegistry
from model_registry_operator import main as operator_main
from model_registry_operator.cli import main as cli_main
from model_registry_operator.cli import metrics_address
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.context import Context
from model_registry_operator.controllers.wiring import Runtime, register_all
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.metrics import ObjectConditions, OperatorMetrics, parse_address, serve
from model_registry_operator.settings import Settings

P = "model_registry_operator_"


@pytest.fixture
def metrics():
    return OperatorMetrics(CollectorRegistry())


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(P + name, labels) or 0.0


def objects(metrics, kind="ModelPackageGroup"):
    """{condition: count} of `kind`, zeros left out."""
    return {
        c: n
        for c in ("Ready", "Reconciling", "Stalled")
        if (n := value(metrics, "objects", kind=kind, condition=c))
    }


# --- the collector on its own --------------------------------------------------------------


def test_every_series_exists_before_the_first_reconcile(metrics):
    text = generate_latest(metrics.registry).decode()
    for kind in ("ModelPackageGroup", "ModelPackage", "Model"):
        for outcome in ("ready", "reconciling", "stalled", "error", "deleted"):
            assert f'{P}reconciles_total{{kind="{kind}",outcome="{outcome}"}} 0.0' in text
        assert f'{P}objects{{condition="Ready",kind="{kind}"}} 0.0' in text
        assert f'{P}reconcile_duration_seconds_count{{kind="{kind}"}} 0.0' in text
    assert f'{P}artifact_copies_total{{result="copied"}} 0.0' in text


def test_the_gauge_counts_each_object_once_by_its_last_condition(metrics):
    def status(outcome):
        return {"conditions": build_conditions(outcome, 1, None)}

    metrics.written("ModelPackage", "a", status(Outcome.reconciling("Creating", "x")))
    metrics.written("ModelPackage", "b", status(Outcome.reconciling("Creating", "x")))
    assert objects(metrics, "ModelPackage") == {"Reconciling": 2}
    metrics.written("ModelPackage", "a", status(Outcome.ready("Synced", "x")))
    metrics.written("ModelPackage", "b", status(Outcome.stalled("InvalidSpec", "x")))
    assert objects(metrics, "ModelPackage") == {"Ready": 1, "Stalled": 1}
    metrics.written("ModelPackage", "b", {})  # nothing written about conditions: what was known stays
    metrics.gone("a")
    metrics.gone("a")
    assert objects(metrics, "ModelPackage") == {"Stalled": 1}


def test_objects_not_looked_at_for_max_age_leave_the_gauge():
    # a replica that peering paused hears of no deletion and no change: its entries age out
    now = [0.0]
    conditions = ObjectConditions(max_age=900, clock=lambda: now[0])
    conditions.set("kept", "Model", "Ready")
    conditions.set("touched", "Model", "Stalled")
    conditions.set("paused", "Model", "Stalled")
    now[0] = 600
    conditions.set("kept", "Model", "Ready")
    conditions.touch("touched")  # a resync left to a running handler: still this replica's
    conditions.touch("never-written")  # touching is not writing
    now[0] = 1000
    assert conditions.counts() == {("Model", "Ready"): 1, ("Model", "Stalled"): 1}
    now[0] = 1600
    assert conditions.counts() == {}


def test_sagemaker_counters_are_read_at_scrape_time(metrics):
    counters = {
        "calls": {"CreateModelPackageGroup": 1},
        "attempts": {"CreateModelPackageGroup": 3},
        "errors": {("CreateModelPackageGroup", "ThrottlingException"): 2},
    }
    other = {"calls": {"DescribeModel": 5}, "attempts": {"DescribeModel": 5}, "errors": {}}
    metrics.watch_sagemaker(lambda: {(ACCOUNT, REGION): counters, ("222222222222", "eu-west-1"): other})
    here = {"account": ACCOUNT, "region": REGION}
    assert value(metrics, "sagemaker_requests_total", operation="CreateModelPackageGroup", **here) == 3
    counters["attempts"]["CreateModelPackageGroup"] = 4
    assert value(metrics, "sagemaker_requests_total", operation="CreateModelPackageGroup", **here) == 4
    assert value(metrics, "sagemaker_calls_total", operation="CreateModelPackageGroup", **here) == 1
    assert (
        value(
            metrics,
            "sagemaker_errors_total",
            operation="CreateModelPackageGroup",
            code="ThrottlingException",
            **here,
        )
        == 2
    )
    # per account and region: the other account's calls are its own series
    assert (
        value(
            metrics,
            "sagemaker_calls_total",
            operation="DescribeModel",
            account="222222222222",
            region="eu-west-1",
        )
        == 5
    )
    assert value(metrics, "sagemaker_calls_total", operation="DescribeModel", **here) == 0


def test_the_sagemaker_registry_counts_failed_requests_by_operation_and_code(monkeypatch):
    from model_registry_operator.registry.sagemaker import SageMakerRegistry

    registry = SageMakerRegistry("us-east-2")
    events = registry._client.meta.events  # what botocore emits after each HTTP attempt
    events.emit(
        "response-received.sagemaker.DescribeModel",
        response_dict={"status_code": 400},
        parsed_response={"Error": {"Code": "ValidationException"}},
        exception=None,
        context={},
    )
    events.emit(
        "response-received.sagemaker.DescribeModel",
        response_dict=None,
        parsed_response=None,
        exception=ConnectionResetError(),
        context={},
    )
    events.emit(
        "response-received.sagemaker.DescribeModel",
        response_dict={"status_code": 200},
        parsed_response={},
        exception=None,
        context={},
    )
    assert registry.metrics()["errors"] == {
        ("DescribeModel", "ValidationException"): 1,
        ("DescribeModel", "ConnectionResetError"): 1,
    }


# --- the kopf handlers, as kopf calls them -------------------------------------------------


class Operator:
    """register_all's handlers over a FakeRegistry, called the way kopf calls them."""

    def __init__(self, metrics, registry=None, plural="modelpackagegroups"):
        self.registry = registry or FakeRegistry()
        self.ctx = Context.create(self.registry, Settings())
        reg = kopf.OperatorRegistry()
        register_all(reg, self.ctx, metrics, Runtime(status_writer=lambda *_: None))
        self.handlers = {
            h.id: h.fn
            for handlers in (reg._changing, reg._watching)
            for h in handlers.get_all_handlers()
            if h.selector.any_name == plural
        }

    async def call(self, handler_id, obj, **kwargs):
        """Run the handler; apply its status patch to `obj` as the API server would."""
        patch = kopf.Patch()
        try:
            await self.handlers[handler_id](body=kopf.Body(obj), patch=patch, **kwargs)
        except kopf.TemporaryError:
            pass  # kopf calls again later
        obj["status"] = {
            k: v for k, v in {**obj.get("status", {}), **dict(patch.status)}.items() if v is not None
        }
        return obj


def group(name="churn", uid="u1"):
    return {
        "apiVersion": "registry.mlops.dev/v1alpha1",
        "kind": "ModelPackageGroup",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "generation": 1},
        "spec": {},
        "status": {},
    }


@pytest.fixture(autouse=True)
def no_kopf_events(monkeypatch):
    monkeypatch.setattr(
        kopf, "event", lambda *args, **kwargs: None
    )  # kopf's event queue runs only in kopf.run


async def test_a_reconcile_is_counted_timed_and_its_condition_becomes_the_gauge(metrics):
    operator = Operator(metrics)
    obj = await operator.call("reconcile-create", group(), reason="create")
    assert obj["status"]["arn"]
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="ready") == 1
    assert value(metrics, "reconcile_duration_seconds_count", kind="ModelPackageGroup") == 1
    assert objects(metrics) == {"Ready": 1}
    assert objects(metrics, "ModelPackage") == {}


async def test_outcomes_and_the_gauge_follow_errors_and_stalls(metrics):
    operator = Operator(metrics)
    operator.registry.fail_next("create_group", RetryableError("Throttled", "Rate exceeded."))
    obj = await operator.call("reconcile-create", group(), reason="create")
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="error") == 1
    assert objects(metrics) == {"Reconciling": 1}

    operator.registry.fail_next("create_group", TerminalError("AccessDenied", "Not allowed."))
    obj = await operator.call("reconcile-create", obj, reason="create")
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="stalled") == 1
    assert objects(metrics) == {"Stalled": 1}

    await operator.call("reconcile-update/spec", obj, reason="update")
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="ready") == 1
    assert objects(metrics) == {"Ready": 1}


async def test_a_finished_delete_leaves_the_gauge(metrics):
    operator = Operator(metrics)
    await operator.call("reconcile-create", group("a", "u1"), reason="create")
    b = await operator.call("reconcile-create", group("b", "u2"), reason="create")
    assert objects(metrics) == {"Ready": 2}
    await operator.call("delete", b, reason="delete")
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="deleted") == 1
    assert objects(metrics) == {"Ready": 1}
    assert "b" not in operator.registry.groups


async def test_a_delete_still_waiting_keeps_the_object_in_the_gauge(metrics):
    operator = Operator(metrics)
    obj = await operator.call("reconcile-create", group(), reason="create")
    operator.registry.fail_next("delete_group", RetryableError("SageMakerUnavailable", "Try again."))
    await operator.call("delete", obj, reason="delete")
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="error") == 1
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="deleted") == 0
    assert objects(metrics) == {"Reconciling": 1}


async def test_an_object_gone_without_the_delete_handler_leaves_the_gauge(metrics):
    operator = Operator(metrics)
    obj = await operator.call("reconcile-create", group(), reason="create")
    await operator.handlers["metrics"](type="MODIFIED", body=kopf.Body(obj))
    assert objects(metrics) == {"Ready": 1}
    await operator.handlers["metrics"](
        type="DELETED", body=kopf.Body(obj)
    )  # e.g. its finalizer removed by hand
    assert objects(metrics) == {}


async def test_a_restarted_operator_refills_the_gauge_as_it_resumes_each_object(metrics):
    first = Operator(OperatorMetrics(CollectorRegistry()))
    obj = await first.call("reconcile-create", group(), reason="create")
    restarted = Operator(metrics, registry=first.registry)
    assert objects(metrics) == {}
    await restarted.call("reconcile-resume", obj, reason="resume")
    assert objects(metrics) == {"Ready": 1}
    assert value(metrics, "reconciles_total", kind="ModelPackageGroup", outcome="ready") == 1


# --- artifact copies (main.artifact_copier) ------------------------------------------------


class Artifact:
    def __init__(self, name):
        self.name = name


def fake_copy_artifacts(artifacts, *, progress, on_done, **_):
    """Like artifacts.copy_artifacts: progress while bytes move, none for a copy already
    complete; `on_done(status, copied)` after each artifact; a bad source fails the lot."""
    if any(artifact.name == "broken" for artifact in artifacts):
        raise TerminalError("ChecksumMismatch", "artifact broken: checksum mismatch")
    results = []
    for artifact in artifacts:
        copied = artifact.name != "done-before"
        if copied:
            progress(artifact.name, 100, 100)
        status = {
            "name": artifact.name,
            "uri": f"s3://b/{artifact.name}/model.tar.gz",
            "sha256": "0" * 64,
            "size": 100,
        }
        on_done(status, copied)
        results.append(status)
    return results


def test_artifact_copies_are_counted_by_result_and_only_copied_bytes_count(metrics, monkeypatch):
    import model_registry_operator.artifacts as artifacts

    monkeypatch.setattr(artifacts, "copy_artifacts", fake_copy_artifacts)
    copy = operator_main.artifact_copier(Settings(artifact_bucket="b"), "us-east-2", metrics)
    seen = []
    records = copy(
        [Artifact("model"), Artifact("done-before")], key_prefix="p", progress=lambda *args: seen.append(args)
    )
    assert [r["name"] for r in records] == ["model", "done-before"]
    assert seen == [("model", 100, 100)]  # the controller's progress still reported
    with pytest.raises(TerminalError):
        copy([Artifact("broken")], key_prefix="p")
    assert value(metrics, "artifact_copies_total", result="copied") == 1
    assert value(metrics, "artifact_copies_total", result="reused") == 1
    assert value(metrics, "artifact_copies_total", result="failed") == 1
    assert value(metrics, "artifact_copied_bytes_total") == 100


# --- the setting and the endpoint ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.0.0.0:9090", ("0.0.0.0", 9090)),
        (":9191", ("0.0.0.0", 9191)),
        ("[::]:9090", ("::", 9090)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("", None),
        ("off", None),
    ],
)
def test_metrics_address_forms(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9090", "host", "host:", "host:0", "host:65536", "host:http"])
def test_a_bad_metrics_address_is_a_sentence_and_status_2(text, capsys):
    with pytest.raises(ValueError, match="ADDR:PORT"):
        parse_address(text)
    assert cli_main(["run", "--metrics", text]) == 2
    assert "invalid setting: --metrics: expected ADDR:PORT" in capsys.readouterr().err


def test_the_flag_wins_over_mro_metrics_and_an_empty_variable_turns_metrics_off():
    assert metrics_address(None, {}) == ("0.0.0.0", 9090)
    assert metrics_address(None, {"MRO_METRICS": "127.0.0.1:9100"}) == ("127.0.0.1", 9100)
    assert metrics_address(None, {"MRO_METRICS": ""}) is None
    assert metrics_address("127.0.0.1:9200", {"MRO_METRICS": ""}) == ("127.0.0.1", 9200)
    with pytest.raises(ValueError, match="MRO_METRICS"):
        metrics_address(None, {"MRO_METRICS": "nonsense"})


def test_the_endpoint_serves_the_registry_over_http(metrics):
    metrics.reconciles.labels("Model", "ready").inc()
    server = serve(("127.0.0.1", 0), metrics.registry)
    try:
        port = server.server_address[1]
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert f'{P}reconciles_total{{kind="Model",outcome="ready"}} 1.0' in text


def test_a_port_in_use_exits_non_zero_with_a_sentence(tmp_path):
    """The real process: configuration checks pass (a kubeconfig, a region), then the port is taken."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "current-context: c\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as free:  # a free liveness port: the metrics port is the one taken
            free.bind(("127.0.0.1", 0))
            liveness = f"http://127.0.0.1:{free.getsockname()[1]}/healthz"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "model_registry_operator.cli",
                "run",
                "--metrics",
                f"127.0.0.1:{port}",
                "--liveness",
                liveness,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": "/usr/bin:/bin",
                "KUBECONFIG": str(kubeconfig),
                "AWS_REGION": "us-east-2",
                "PYTHONPATH": operator_main.__file__.rsplit("/model_registry_operator/", 1)[0],
            },
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "MRO_METRICS" in result.stderr
