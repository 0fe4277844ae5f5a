"""`make demo`: the operator against a local Kubernetes API and SageMaker, with every sample.

    .venv/bin/python demo/run.py [--keep] [--timeout SECONDS]

Starts, on free loopback ports: the Kubernetes API emulator (tests/harness/kube) with the
CRDs from crds/, the SageMaker/S3 endpoint (tests/harness/aws) with the artifact bucket and
a source bucket, and a web server for artifact files; then the operator
(`model-registry-operator run -A`). It applies every manifest in manifests/samples/ plus
demo/model-awaiting-approval.yaml, waits until the samples are Ready, approves the package
that waits for manual approval so the Model waiting for it is created, prints the objects
as `kubectl get` does and their Events, and stops everything. With --keep it keeps running
(printing the KUBECONFIG and AWS settings to use) until Ctrl-C.

The artifact sources of the samples are placeholders (https://models.example.org/...,
s3://ml-src/...): the demo serves the files under demo/files/<host or bucket>/<path>, and
rewrites each https:// source to its local web server when it applies the sample.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness.httpserver import FileServer  # noqa: E402
from harness.kube import KubeCluster  # noqa: E402
from harness.kube.client import KubeApiError  # noqa: E402

SAMPLES = REPO / "manifests" / "samples"
EXTRA = [REPO / "demo" / "model-awaiting-approval.yaml"]
FILES = REPO / "demo" / "files"
GROUP_VERSION = "registry.mlops.dev/v1alpha1"
NAMESPACE = "default"
ARTIFACT_BUCKET = "registry-artifacts"
# who applies the samples and approves, as the approval history and `kubectl get mp` name it
# (kubectl names itself "kubectl-client-side-apply", Argo CD "argocd-controller")
FIELD_MANAGER = "make-demo"
# The kinds in the order they are applied and shown, with their plural names.
KINDS = {"ModelPackageGroup": "modelpackagegroups", "ModelPackage": "modelpackages", "Model": "models"}
START_TIMEOUT = 30.0


class DemoError(Exception):
    """A failure the demo reports as one sentence (its message) and exit status 1."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: stop everything and leave."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def say(text: str = "") -> None:
    print(text, flush=True)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256_of(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------- manifests


def load_manifests() -> list[tuple[pathlib.Path, dict[str, Any]]]:
    found = []
    for path in [*sorted(SAMPLES.glob("*.yaml")), *EXTRA]:
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise DemoError(f"cannot read {path.relative_to(REPO)}: {exc}") from None
        for document in documents:
            if document.get("kind") not in KINDS or document.get("apiVersion") != GROUP_VERSION:
                raise DemoError(
                    f"{path.relative_to(REPO)} holds a {document.get('kind')!r}, not one of the operator's kinds"
                )
            found.append((path, document))
    # Groups first, then packages, then models: what a user would apply in order.
    order = list(KINDS)
    return sorted(found, key=lambda item: order.index(item[1]["kind"]))


def local_file(source: str) -> pathlib.Path:
    """Where the demo keeps the file a sample's https:// or s3:// source names."""
    url = urllib.parse.urlsplit(source)
    if url.scheme not in ("https", "s3") or not url.hostname:
        raise DemoError(f"the demo serves only https:// and s3:// sources, not {source}")
    return FILES / url.hostname / url.path.lstrip("/")


def artifact_files(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for artifact in obj.get("spec", {}).get("artifacts") or []:
        yield from artifact.get("files") or []


def check_sources(manifests: list[tuple[pathlib.Path, dict[str, Any]]]) -> tuple[set[str], set[str]]:
    """The hosts and buckets the samples' sources name; each file must be in demo/files/ with
    the sha256 its sample pins."""
    hosts, buckets = set(), set()
    for path, obj in manifests:
        for entry in artifact_files(obj):
            source = entry["source"]
            local = local_file(source)
            if not local.is_file():
                raise DemoError(
                    f"{path.relative_to(REPO)} names {source}, which the demo does not have at "
                    f"{local.relative_to(REPO)}"
                )
            if entry.get("sha256") and entry["sha256"] != sha256_of(local):
                raise DemoError(
                    f"{path.relative_to(REPO)} pins sha256 {entry['sha256']} for {source}, but "
                    f"{local.relative_to(REPO)} has {sha256_of(local)}"
                )
            (hosts if source.startswith("https://") else buckets).add(urllib.parse.urlsplit(source).hostname)
    return hosts, buckets  # type: ignore[return-value]


def rewritten(obj: dict[str, Any], web: FileServer) -> tuple[dict[str, Any], list[str]]:
    """`obj` with every https:// source pointing at the demo's web server, and what changed."""
    obj = copy.deepcopy(obj)
    changes = []
    for entry in artifact_files(obj):
        source = entry["source"]
        if source.startswith("https://"):
            url = urllib.parse.urlsplit(source)
            entry["source"] = web.url(f"/{url.hostname}{url.path}")
            changes.append(f"{source} -> {entry['source']}")
    return obj, changes


# ------------------------------------------------------------------------- processes


class Stack:
    """Everything the demo starts, stopped in reverse order by `stop` (idempotent)."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.kube: KubeCluster | None = None
        self.web: FileServer | None = None
        self.aws: subprocess.Popen[str] | None = None
        self.aws_url = ""
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = workdir / "operator.log"
        self.aws_log = workdir / "aws.log"

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.workdir / "kubeconfig"

    @property
    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_REGION": "us-east-2",
            "AWS_DEFAULT_REGION": "us-east-2",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def start_aws(self) -> None:
        """The SageMaker/S3 endpoint in its own process (moto takes a CPU of its own)."""
        with open(self.aws_log, "wb") as log:
            self.aws = subprocess.Popen(
                [sys.executable, "-m", "harness.aws", "--port", "0"],
                cwd=REPO / "tests",
                env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                process_group=0,  # Ctrl-C reaches the demo only; it stops its children itself
            )

    def wait_aws(self) -> None:
        assert self.aws is not None and self.aws.stdout is not None
        if not select.select([self.aws.stdout], [], [], START_TIMEOUT)[0]:
            raise DemoError(f"the SageMaker/S3 endpoint did not start within {START_TIMEOUT:g} s")
        line = self.aws.stdout.readline()  # "SageMaker/S3 endpoint on http://127.0.0.1:N (region ...); ..."
        if not line.startswith("SageMaker/S3 endpoint on "):
            self.aws.wait(5)
            raise DemoError(
                f"the SageMaker/S3 endpoint did not start (status {self.aws.returncode}; see {self.aws_log})"
            )
        self.aws_url = line.split()[3]

    def make_buckets(self, buckets: set[str]) -> None:
        import boto3  # after the servers started: the import takes a moment

        s3 = boto3.client(
            "s3",
            region_name="us-east-2",
            endpoint_url=self.aws_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for bucket in [ARTIFACT_BUCKET, *sorted(buckets)]:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        for bucket in sorted(buckets):
            for path in sorted(p for p in (FILES / bucket).rglob("*") if p.is_file()):
                s3.put_object(
                    Bucket=bucket, Key=str(path.relative_to(FILES / bucket)), Body=path.read_bytes()
                )

    def start_kube(self) -> None:
        self.kube = KubeCluster.start_emulator(self.kubeconfig, host="127.0.0.1")
        try:
            self.kube.apply_crds_from(REPO / "crds")
        except (KubeApiError, ValueError) as exc:
            raise DemoError(f"the CRDs in crds/ were refused: {exc}") from None

    def start_web(self, hosts: set[str]) -> None:
        self.web = FileServer().start()
        for host in sorted(hosts):
            for path in sorted(p for p in (FILES / host).rglob("*") if p.is_file()):
                self.web.add(f"/{host}/{path.relative_to(FILES / host)}", path.read_bytes())

    def start_operator(self, hosts: set[str], buckets: set[str]) -> int:
        """Start the operator; its metrics port."""
        liveness, metrics = free_port(), free_port()
        env = {
            # the demo's settings only, whatever MRO_* the shell has
            **{k: v for k, v in os.environ.items() if not k.startswith("MRO_")},
            **self.aws_env,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(REPO / "operator"),
            "MRO_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
            # The demo's web server is plain http on 127.0.0.1 (loopback needs MRO_ALLOW_HTTP),
            # and sources may come only from it and the demo's source bucket.
            "MRO_ALLOW_HTTP": "true",
            "MRO_SOURCE_HOSTS": "127.0.0.1" if hosts else "",
            "MRO_SOURCE_BUCKETS": ",".join(sorted(buckets)),
        }
        with open(self.operator_log, "wb") as log:
            self.operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "model_registry_operator.cli",
                    "run",
                    "-A",
                    "--liveness",
                    f"http://127.0.0.1:{liveness}/healthz",
                    "--metrics",
                    f"127.0.0.1:{metrics}",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        return metrics

    def check_operator(self) -> None:
        if self.operator is not None and self.operator.poll() is not None:
            last = [
                line for line in self.operator_log.read_text(errors="replace").splitlines() if line.strip()
            ]
            detail = f" (last log line: {last[-1].strip()})" if last else ""
            raise DemoError(f"the operator exited with status {self.operator.returncode}{detail}")

    def stop(self) -> None:
        for process in (self.operator, self.aws):
            if process is not None and process.poll() is None:
                process.terminate()
        for process in (self.operator, self.aws):
            if process is not None:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
                if process.stdout is not None:
                    process.stdout.close()
        self.operator = self.aws = None
        if self.web is not None:
            self.web.stop()
            self.web = None
        if self.kube is not None:
            self.kube.stop()
            self.kube = None


# ------------------------------------------------------------------------- status


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return condition(obj, "Ready").get("status") == "True" and status.get("observedGeneration") == obj[
        "metadata"
    ].get("generation")


def state(obj: dict[str, Any] | None) -> str:
    """Which condition is True, with its reason and message: `Reconciling/WaitingForGroup: ...`."""
    if obj is None:
        return "not found"
    for ctype in ("Stalled", "Reconciling", "Ready"):
        c = condition(obj, ctype)
        if c.get("status") == "True":
            return f"{ctype}/{c.get('reason')}: {str(c.get('message', '')).rstrip('.')}"
    return "no status from the operator yet"


def wait_for(
    stack: Stack, objects: list[dict[str, Any]], done: Any, what: str, timeout: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """Poll `objects` until `done(obj)` holds for each; DemoError naming the first that did not."""
    assert stack.kube is not None
    deadline = time.monotonic() + timeout
    current: dict[tuple[str, str], dict[str, Any] | None] = {}
    while True:
        stack.check_operator()
        for obj in objects:
            key = (obj["kind"], obj["metadata"]["name"])
            current[key] = stack.kube.find(KINDS[obj["kind"]], key[1], namespace=NAMESPACE)
        pending = [key for key, found in current.items() if found is None or not done(found)]
        if not pending:
            return current  # type: ignore[return-value]
        if time.monotonic() > deadline:
            kind, name = pending[0]
            others = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
            raise DemoError(
                f"{kind} {name}{others} did not {what} within {timeout:g} s: {state(current[pending[0]])}"
            )
        time.sleep(0.25)


# ------------------------------------------------------------------------- tables


TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def get_table(stack: Stack, plural: str, group_version: str) -> tuple[list[str], list[list[str]], list[str]]:
    """`kubectl get`'s view: the server's Table (printer columns) for `plural` in NAMESPACE:
    the column names, the rows, and each row's object name."""
    assert stack.kube is not None
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    table = stack.kube.call("GET", f"{prefix}/namespaces/{NAMESPACE}/{plural}", headers={"Accept": TABLE})
    shown = [i for i, c in enumerate(table["columnDefinitions"]) if not c.get("priority")]
    header = [table["columnDefinitions"][i]["name"].upper() for i in shown]
    rows = [["" if row["cells"][i] is None else str(row["cells"][i]) for i in shown] for row in table["rows"]]
    return header, rows, [row["object"]["metadata"]["name"] for row in table["rows"]]


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def show_tables(stack: Stack) -> None:
    assert stack.kube is not None
    for plural in KINDS.values():
        header, rows, _ = get_table(stack, plural, GROUP_VERSION)
        say(f"$ kubectl get {plural}")
        say(render(header, rows))
        say()
    header, rows, names = get_table(stack, "events", "v1")
    stamps = {
        e["metadata"]["name"]: (e.get("lastTimestamp") or "", e["metadata"].get("resourceVersion", ""))
        for e in stack.kube.list("v1/events", namespace=NAMESPACE)
    }
    order = sorted(range(len(rows)), key=lambda i: stamps.get(names[i], ("", "")))
    say("$ kubectl get events --sort-by=.lastTimestamp")
    say(render(header, [rows[i] for i in order]))
    say()


# ------------------------------------------------------------------------- the demo


def run(stack: Stack, keep: bool, timeout: float) -> None:
    started = time.monotonic()
    manifests = load_manifests()
    hosts, buckets = check_sources(manifests)

    stack.start_aws()
    stack.start_kube()
    stack.start_web(hosts)
    stack.wait_aws()
    stack.make_buckets(buckets)
    assert stack.kube is not None and stack.web is not None
    say(f"Kubernetes API (emulated)  {stack.kube.url}   CRDs from crds/ installed")
    say(
        f"SageMaker and S3           {stack.aws_url}   buckets: {', '.join([ARTIFACT_BUCKET, *sorted(buckets)])}"
    )
    say(f"artifact web server        {stack.web.url('/')}")
    metrics = stack.start_operator(hosts, buckets)
    log = f", log {stack.operator_log}" if keep else ""
    say(
        f"operator                   model-registry-operator run -A   (metrics http://127.0.0.1:{metrics}/metrics{log})"
    )
    say()

    applied = []
    for path, sample in manifests:
        obj, changes = rewritten(sample, stack.web)
        try:
            stack.kube.create(obj, namespace=NAMESPACE, fieldManager=FIELD_MANAGER)
        except KubeApiError as exc:
            raise DemoError(f"{path.relative_to(REPO)} was refused: {exc}") from None
        kind = obj["kind"].lower()
        say(f"applied {path.relative_to(REPO)}: {kind}/{obj['metadata']['name']} created")
        for change in changes:
            say(f"  (the demo serves this source itself: {change})")
        applied.append(obj)

    samples = [obj for (path, _), obj in zip(manifests, applied, strict=True) if path.parent == SAMPLES]
    extras = [obj for obj in applied if obj not in samples]
    say()
    say(f"waiting for the {len(samples)} samples to be Ready ...")
    wait_for(stack, samples, is_ready, "become Ready", timeout)
    say(f"every sample is Ready ({time.monotonic() - started:.1f} s after start)")

    # The Model that waits for an approval, and the approval (as a reviewer would merge it).
    waiting = wait_for(
        stack,
        extras,
        lambda obj: condition(obj, "Reconciling").get("reason") == "WaitingForApproval",
        "wait for an approval",
        timeout,
    )
    for (kind, name), obj in waiting.items():
        ref = obj["spec"].get("primaryContainer", {}).get("modelPackageRef", {}).get("name")
        say(f"{kind.lower()}/{name} is {state(obj)}")
        say(f"approving modelpackage/{ref}: spec.modelApprovalStatus=Approved")
        approval = {"spec": {"modelApprovalStatus": "Approved"}}
        stack.kube.patch(KINDS["ModelPackage"], ref, approval, NAMESPACE, field_manager=FIELD_MANAGER)
    wait_for(stack, applied, is_ready, "become Ready after the approval", timeout)
    say(f"everything is Ready ({time.monotonic() - started:.1f} s after start)")
    say()
    show_tables(stack)

    if keep:
        exports = {"KUBECONFIG": str(stack.kubeconfig), **stack.aws_env}
        say("Still running. In another shell:")
        say()
        for name, value in exports.items():
            say(f"  export {name}={value}")
        say("  kubectl get mpg,mp,mdl")
        say("  kubectl describe mp churn-v2")
        say("  kubectl get events")
        say("  aws sagemaker list-model-packages --model-package-group-name churn")
        say(f"  aws s3 ls --recursive s3://{ARTIFACT_BUCKET}/")
        say()
        say(f"Operator log: {stack.operator_log}. Press Ctrl-C to stop.")
        while True:
            stack.check_operator()
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo/run.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for each step (default 90)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mro-demo-"))
    stack = Stack(workdir)
    status, message = 0, ""
    try:
        run(stack, args.keep, args.timeout)
        say("stopping ...")
    except DemoError as exc:
        status, message = 1, f"demo failed: {one_line(exc)}."
    except Interrupted:
        status, message = (0 if args.keep else 130), "interrupted; stopping ..."
    except Exception as exc:  # noqa: BLE001 (a sentence, not a traceback, whatever went wrong)
        status, message = 1, f"demo failed: {type(exc).__name__}: {one_line(exc)}."
    finally:
        # A second Ctrl-C must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if status == 1 and stack.operator_log.exists():
            kept = pathlib.Path(tempfile.gettempdir()) / f"mro-demo-operator-{os.getpid()}.log"
            shutil.copyfile(stack.operator_log, kept)
            message = f"{message.removesuffix('.')}; the operator's log is in {kept}."
        if message:
            print(message, file=sys.stderr if status else sys.stdout, flush=True)
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if status == 0:
        say("stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
