"""ModelPackage artifacts copied into the registry's bucket before the version is registered."""
import hashlib
import io
import tarfile

import pytest

from conftest import ARTIFACT_BUCKET, condition, package_spec, resource, wait_condition, wait_ready

pytestmark = pytest.mark.e2e
WEIGHTS = b"weights " * 1000


def with_artifact(sha256: str) -> dict:
    spec = package_spec("churn", artifacts=[{"name": "model", "files": [
        {"path": "model.joblib", "source": "s3://team-models/churn/model.joblib", "sha256": sha256}]}])
    spec["inferenceSpecification"]["containers"][0].pop("modelDataUrl")
    spec["inferenceSpecification"]["containers"][0]["modelDataArtifact"] = "model"
    return spec


def test_artifacts_are_copied_and_become_the_model_data_url(kube, kube_namespace, operator, aws):
    ns, sm, s3 = kube_namespace, aws.client("sagemaker"), aws.client("s3")
    aws.make_bucket(ARTIFACT_BUCKET)
    aws.make_bucket("team-models")
    s3.put_object(Bucket="team-models", Key="churn/model.joblib", Body=WEIGHTS)
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", with_artifact(hashlib.sha256(WEIGHTS).hexdigest())),
                namespace=ns)
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
