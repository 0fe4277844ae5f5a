"""The operator under a SageMaker request quota (the harness's quota mode: a token bucket per
account and region, throttling beyond it without executing the request, as AWS does): with
`MRO_SAGEMAKER_RATE` set to the quota, its limiter spends the quota on progress, so every package
gets Ready with few throttled requests. Generous bounds: bench/quota.py measures the figures."""

from __future__ import annotations

import pytest

from conftest import OperatorProcess, package_spec, resource, wait_until

pytestmark = pytest.mark.e2e
QUOTA = 10  # requests/s
PACKAGES = 20


@pytest.fixture
def limited_operator(operator_env, tmp_path, request):
    env = {**operator_env, "MRO_SAGEMAKER_RATE": str(QUOTA)}
    process = OperatorProcess(env, tmp_path / "operator.log", ["-A"]).start()
    yield process
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(process.log()[-20000:])


def ready_packages(kube, ns: str) -> int:
    ready = 0
    for obj in kube.list("modelpackages", namespace=ns):
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"].get("generation") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        ):
            ready += 1
    return ready


def test_packages_converge_within_the_quota_with_few_throttled_requests(kube, kube_namespace, aws, request):
    ns = kube_namespace
    aws.set_quota(QUOTA)  # burst: one second's worth
    operator = request.getfixturevalue("limited_operator")
    for group in ("churn", "fraud"):
        kube.create(resource("ModelPackageGroup", group, {}), namespace=ns)
    for index in range(PACKAGES):
        name = f"model-v{index}"
        spec = package_spec(("churn", "fraud")[index % 2], modelApprovalStatus="Approved")
        kube.create(resource("ModelPackage", name, spec), namespace=ns)
    wait_until(
        lambda: ready_packages(kube, ns) == PACKAGES,
        f"{PACKAGES} ModelPackages to be Ready",
        timeout=120,
        interval=0.5,
        operator=operator,
    )
    sagemaker = [r for r in aws.requests() if r.service == "sagemaker"]
    throttled = aws.throttled()
    assert len(throttled) <= 0.2 * len(sagemaker), f"{len(throttled)} of {len(sagemaker)} requests throttled"
    assert aws.count("CreateModelPackage") - len(aws.throttled("CreateModelPackage")) == PACKAGES
    sm = aws.client("sagemaker")
    aws.set_quota(None)
    versions = [
        summary
        for group in ("churn", "fraud")
        for summary in sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    ]
    assert len(versions) == PACKAGES  # not one duplicate for all the throttling
