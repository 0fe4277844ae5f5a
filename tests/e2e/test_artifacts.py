"""ModelPackage artifacts copied into the registry's bucket before the version is registered."""

import hashlib
import io
import re
import tarfile
import time

import pytest

from conftest import (
    ARTIFACT_BUCKET,
    condition,
    event_reasons,
    free_port,
    is_ready,
    package_spec,
    resource,
    wait_condition,
    wait_ready,
    wait_until,
)
from harness.httpserver import FileServer, Generated

pytestmark = pytest.mark.e2e
WEIGHTS = b"weights " * 1000
MiB = 1024**2


def with_artifact(sha256: str) -> dict:
    spec = package_spec(
        "churn",
        artifacts=[
            {
                "name": "model",
                "files": [
                    {
                        "path": "model.joblib",
                        "source": "s3://team-models/churn/model.joblib",
                        "sha256": sha256,
                    }
                ],
            }
        ],
    )
    spec["inferenceSpecification"]["containers"][0].pop("modelDataUrl")
    spec["inferenceSpecification"]["containers"][0]["modelDataArtifact"] = "model"
    return spec


def test_artifacts_are_copied_and_become_the_model_data_url(kube, kube_namespace, operator, aws):
    ns, sm, s3 = kube_namespace, aws.client("sagemaker"), aws.client("s3")
    aws.make_bucket(ARTIFACT_BUCKET)
    aws.make_bucket("team-models")
    s3.put_object(Bucket="team-models", Key="churn/model.joblib", Body=WEIGHTS)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource("ModelPackage", "churn-v1", with_artifact(hashlib.sha256(WEIGHTS).hexdigest())), namespace=ns
    )
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)
    (artifact,) = package["status"]["artifacts"]
    uid = package["metadata"]["uid"]
    assert artifact["name"] == "model"
    assert artifact["uri"] == f"s3://{ARTIFACT_BUCKET}/model-registry/{ns}/churn-v1/{uid}/model/model.tar.gz"
    described = sm.describe_model_package(ModelPackageName=package["status"]["arn"])
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == artifact["uri"]
    archive = s3.get_object(Bucket=ARTIFACT_BUCKET, Key=artifact["uri"].split("/", 3)[3])["Body"].read()
    assert hashlib.sha256(archive).hexdigest() == artifact["sha256"] and len(archive) == artifact["size"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.extractfile("model.joblib").read() == WEIGHTS


def test_checksum_mismatch_is_stalled_and_registers_nothing(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    aws.make_bucket(ARTIFACT_BUCKET)
    aws.make_bucket("team-models")
    aws.client("s3").put_object(Bucket="team-models", Key="churn/model.joblib", Body=WEIGHTS)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", with_artifact("0" * 64)), namespace=ns)
    package = wait_condition(kube, "mp", "churn-v1", ns, "Stalled", "ChecksumMismatch", operator)
    assert "model.joblib" in condition(package, "Stalled")["message"]
    assert aws.count("CreateModelPackage") == 0


# --- long copies: progress, unreachable sources, restarts ---------------------------------

SLOW_SIZE = 16 * MiB
SLOW_DELAY = 0.25  # seconds before each 1 MiB chunk: a 16 MiB source takes ~4 s
PROGRESS = re.compile(r"Copying artifact model: \d+ MiB of 16 MiB \((\d+)%\)")


@pytest.fixture
def operator_env(operator_env):
    return {**operator_env, "MRO_ALLOW_HTTP": "true"}  # the test's file server: plain http on 127.0.0.1


@pytest.fixture
def files():
    with FileServer() as server:
        yield server


def from_url(url: str) -> dict:
    spec = package_spec(
        "churn", artifacts=[{"name": "model", "files": [{"path": "model.bin", "source": url}]}]
    )
    spec["inferenceSpecification"]["containers"][0].pop("modelDataUrl")
    spec["inferenceSpecification"]["containers"][0]["modelDataArtifact"] = "model"
    return spec


def progress_seen(kube, name: str, ns: str) -> list[int]:
    """Percentages read in the Reconciling message of `name` until it is Ready."""
    seen: list[int] = []

    def check():
        obj = kube.find("mp", name, namespace=ns)
        match = PROGRESS.search(condition(obj, "Reconciling").get("message", ""))
        reconciling = condition(obj, "Reconciling").get("status") == "True"
        if match and reconciling and int(match.group(1)) not in seen:
            seen.append(int(match.group(1)))
        return obj if is_ready(obj) else None

    wait_until(check, f"mp/{name} to be Ready", interval=0.1)
    return seen


def status_patches(kube, name: str) -> list:
    return [
        r
        for r in kube.requests
        if r.verb == "patch"
        and r.resource == "modelpackages"
        and r.subresource == "status"
        and r.name == name
    ]


def test_a_long_copy_reports_progress_without_flooding_the_api_server(
    kube, kube_namespace, operator, aws, files
):
    ns = kube_namespace
    aws.make_bucket(ARTIFACT_BUCKET)
    files.add("/model.bin", Generated(SLOW_SIZE), delay=SLOW_DELAY)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    wait_ready(kube, "mpg", "churn", ns, operator)
    started = time.monotonic()
    kube.create(resource("ModelPackage", "big", from_url(files.url("/model.bin"))), namespace=ns)
    percentages = progress_seen(kube, "big", ns)
    elapsed = time.monotonic() - started
    assert percentages and all(0 <= p <= 100 for p in percentages) and percentages == sorted(percentages)
    package = kube.find("mp", "big", namespace=ns)
    assert package["status"]["artifacts"][0]["size"] > SLOW_SIZE
    progress_writes = [r for r in status_patches(kube, "big") if not r.user_agent.startswith("kopf/")]
    # one write per ~2 s of copy (not one per MiB read: 16), and kopf's own final write
    assert 1 <= len(progress_writes) <= elapsed / 2 + 2
    assert len(status_patches(kube, "big")) <= len(progress_writes) + 2


def test_an_unreachable_source_is_stalled_naming_artifact_and_file(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    aws.make_bucket(ARTIFACT_BUCKET)
    closed = f"http://127.0.0.1:{free_port()}/model.bin"  # nothing listens there: connections are refused
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", from_url(closed)), namespace=ns)
    package = wait_condition(kube, "mp", "churn-v1", ns, "Stalled", "SourceUnreachable", operator)
    message = condition(package, "Stalled")["message"]
    assert "artifact model, file model.bin" in message and closed in message
    assert aws.count("CreateModelPackage") == 0
    assert package["status"]["observedGeneration"] == package["metadata"]["generation"]
    assert "SourceUnreachable" in event_reasons(kube, ns, "churn-v1")


def test_restart_mid_copy_ends_ready_with_one_version_and_no_leaked_upload(
    kube, kube_namespace, operator, aws, files
):
    ns, s3 = kube_namespace, aws.client("s3")
    aws.make_bucket(ARTIFACT_BUCKET)
    files.add("/model.bin", Generated(SLOW_SIZE), delay=SLOW_DELAY)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "big", from_url(files.url("/model.bin"))), namespace=ns)
    wait_until(
        lambda: PROGRESS.search(
            condition(kube.find("mp", "big", namespace=ns), "Reconciling").get("message", "")
        ),
        "a copy under way",
        operator=operator,
    )
    operator.kill()
    assert s3.list_multipart_uploads(Bucket=ARTIFACT_BUCKET).get("Uploads")  # the crash left one behind
    operator.start()
    package = wait_ready(kube, "mp", "big", ns, operator)
    versions = aws.client("sagemaker").list_model_packages(ModelPackageGroupName="churn")[
        "ModelPackageSummaryList"
    ]
    assert [v["ModelPackageArn"] for v in versions] == [package["status"]["arn"]]
    assert not s3.list_multipart_uploads(Bucket=ARTIFACT_BUCKET).get("Uploads")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACT_BUCKET).get("Contents", [])]
    assert [k for k in keys if k.endswith(".tar.gz")] == [
        package["status"]["artifacts"][0]["uri"].split("/", 3)[3]
    ]
