"""The real operator process serves Prometheus metrics over HTTP (--metrics ADDR:PORT)."""

import hashlib
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ARTIFACT_BUCKET, package_spec, resource, wait_ready, wait_until

pytestmark = pytest.mark.e2e
P = "model_registry_operator_"
WEIGHTS = b"weights " * 1000


def scrape(operator) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} from http://127.0.0.1:<metrics port>/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples, name, **labels) -> float:
    return samples.get((P + name, frozenset(labels.items())), 0.0)


def test_metrics_count_reconciles_objects_sagemaker_requests_and_copies(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    aws.make_bucket(ARTIFACT_BUCKET)
    aws.make_bucket("team-models")
    aws.client("s3").put_object(Bucket="team-models", Key="churn/model.joblib", Body=WEIGHTS)
    spec = package_spec(
        "churn",
        artifacts=[
            {
                "name": "model",
                "files": [
                    {
                        "path": "model.joblib",
                        "source": "s3://team-models/churn/model.joblib",
                        "sha256": hashlib.sha256(WEIGHTS).hexdigest(),
                    }
                ],
            }
        ],
    )
    container = spec["inferenceSpecification"]["containers"][0]
    container.pop("modelDataUrl")
    container["modelDataArtifact"] = "model"
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", spec), namespace=ns)
    wait_ready(kube, "mpg", "churn", ns, operator)
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)

    # counted and gauged before the status is patched: what the API server shows is scraped too
    samples = scrape(operator)
    for kind in ("ModelPackageGroup", "ModelPackage"):
        assert sample(samples, "reconciles_total", kind=kind, outcome="ready") >= 1
        assert sample(samples, "reconcile_duration_seconds_count", kind=kind) >= 1
        assert sample(samples, "objects", kind=kind, condition="Ready") == 1
        assert sample(samples, "objects", kind=kind, condition="Stalled") == 0
    assert sample(samples, "objects", kind="Model", condition="Ready") == 0
    # the registry's own request counters, equal to what the SageMaker endpoint received, per
    # AWS account and region (the operator's own here)
    here = {"account": aws.account_id, "region": aws.region}
    assert sample(samples, "sagemaker_requests_total", operation="CreateModelPackageGroup", **here) == 1
    assert (
        sample(samples, "sagemaker_requests_total", operation="CreateModelPackage", **here)
        == aws.count("CreateModelPackage")
        == 1
    )
    # the group was described before it existed: SageMaker answers that with a ValidationException
    assert (
        sample(
            samples,
            "sagemaker_errors_total",
            operation="DescribeModelPackageGroup",
            code="ValidationException",
            **here,
        )
        >= 1
    )
    (artifact,) = package["status"]["artifacts"]
    assert sample(samples, "artifact_copies_total", result="copied") == 1
    assert sample(samples, "artifact_copied_bytes_total") == artifact["size"]
    assert samples[("process_resident_memory_bytes", frozenset())] > 0  # prometheus_client's process metrics

    # a deleted object leaves the gauge once its delete is done
    kube.delete("mp", "churn-v1", namespace=ns)
    wait_until(
        lambda: kube.find("mp", "churn-v1", namespace=ns) is None, "churn-v1 to be deleted", operator=operator
    )
    samples = scrape(operator)  # the finalizer goes after the delete handler, which leaves the gauge
    assert sample(samples, "reconciles_total", kind="ModelPackage", outcome="deleted") == 1
    assert (
        sum(
            sample(samples, "objects", kind="ModelPackage", condition=c)
            for c in ("Ready", "Reconciling", "Stalled")
        )
        == 0
    )
    assert sample(samples, "objects", kind="ModelPackageGroup", condition="Ready") == 1
    assert sample(samples, "sagemaker_requests_total", operation="DeleteModelPackage", **here) >= 1
