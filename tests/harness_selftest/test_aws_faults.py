"""Fault injection and per-operation request counts, seen from boto3 over HTTP."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.aws.faults import FaultSpecError


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def test_throttle_fails_the_next_n_sagemaker_calls_as_botocore_expects(aws):
    sm = aws.client("sagemaker")
    aws.faults.throttle("ListModelPackageGroups", count=2)
    for _ in range(2):
        error = _error(sm.list_model_package_groups)
        assert error.response["Error"]["Code"] == "ThrottlingException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sm.list_model_package_groups()
    assert aws.count("ListModelPackageGroups") == 3
    assert [r.fault for r in aws.requests()] == ["throttle", "throttle", None]


def test_only_the_named_operation_is_affected(aws):
    sm = aws.client("sagemaker")
    aws.faults.throttle("CreateModelPackageGroup", count=1)
    sm.list_model_package_groups()
    assert aws.count("ListModelPackageGroups") == 1
    _error(lambda: sm.create_model_package_group(ModelPackageGroupName="g"))


def test_botocore_standard_retries_absorb_a_throttle(aws):
    # What the operator relies on: botocore classifies the injected answer as throttling.
    sm = aws.client("sagemaker", Config(retries={"mode": "standard", "total_max_attempts": 2}))
    aws.faults.throttle("ListModelPackageGroups", count=1)
    sm.list_model_package_groups()
    assert [r.fault for r in aws.requests("ListModelPackageGroups")] == ["throttle", None]


def test_s3_throttle_is_slowdown_503(aws):
    aws.make_bucket("art")
    s3 = aws.client("s3")
    aws.faults.throttle("PutObject", count=1)
    error = _error(lambda: s3.put_object(Bucket="art", Key="k", Body=b"data" * 1000))
    assert error.response["Error"]["Code"] == "SlowDown"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # The body of the refused request was drained: the same connection serves the next one.
    s3.put_object(Bucket="art", Key="k", Body=b"data")
    assert s3.get_object(Bucket="art", Key="k")["Body"].read() == b"data"


@pytest.mark.parametrize(
    "status, sagemaker_code, s3_code",
    [(500, "InternalFailure", "InternalError"), (503, "ServiceUnavailable", "ServiceUnavailable")],
)
def test_server_errors(aws, status, sagemaker_code, s3_code):
    aws.make_bucket("art")
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    aws.faults.error("DescribeModelPackageGroup", status=status, count=1)
    aws.faults.error("ListObjectsV2", status=status, count=1)
    error = _error(lambda: sm.describe_model_package_group(ModelPackageGroupName="g"))
    assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        sagemaker_code,
        status,
    )
    error = _error(lambda: s3.list_objects_v2(Bucket="art"))
    assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        s3_code,
        status,
    )


def test_head_request_fault_has_no_body(aws):
    aws.make_bucket("art")
    aws.faults.error("HeadBucket", status=500, count=1)
    error = _error(lambda: aws.client("s3").head_bucket(Bucket="art"))
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert aws.requests("HeadBucket")[0].bytes_out == 0


def test_probability_with_a_seed_is_reproducible(aws):
    sm = aws.client("sagemaker")

    def pattern() -> list[bool]:
        aws.faults.clear()
        aws.faults.add("ListModelPackageGroups", "error500", probability=0.5, seed=42)
        failed = []
        for _ in range(20):
            try:
                sm.list_model_package_groups()
                failed.append(False)
            except ClientError:
                failed.append(True)
        return failed

    first, second = pattern(), pattern()
    assert first == second
    assert 0 < sum(first) < 20


def test_probability_and_count_together_cap_the_failures(aws):
    sm = aws.client("sagemaker")
    aws.faults.add("ListModelPackageGroups", "throttle", probability=1.0, count=3, seed=1)
    outcomes = []
    for _ in range(5):
        try:
            sm.list_model_package_groups()
            outcomes.append("ok")
        except ClientError:
            outcomes.append("throttled")
    assert outcomes == ["throttled"] * 3 + ["ok"] * 2


def test_wildcard_rule_hits_every_operation(aws):
    sm = aws.client("sagemaker")
    aws.faults.error("*", status=503, count=2)
    _error(sm.list_model_package_groups)
    _error(sm.list_models)
    sm.list_models()


def test_latency_delays_then_serves(aws, monkeypatch):
    # Observe the sleep instead of timing it (no timed assertions).
    import harness.aws.faults as faults_module

    slept = []
    monkeypatch.setattr(faults_module, "sleep", slept.append)
    sm = aws.client("sagemaker")
    aws.faults.latency("ListModels", seconds=0.25, count=2)
    for _ in range(3):
        assert sm.list_models()["Models"] == []
    assert slept == [0.25, 0.25]
    assert [r.status for r in aws.requests("ListModels")] == [200, 200, 200]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"operation": "", "kind": "throttle", "count": 1}, "operation"),
        ({"operation": "CreateModelPackages", "kind": "throttle", "count": 1}, "operation"),
        ({"operation": "PutObject", "kind": "boom", "count": 1}, "kind"),
        ({"operation": "PutObject", "kind": "throttle", "count": -1}, "count"),
        ({"operation": "PutObject", "kind": "throttle", "count": True}, "count"),
        ({"operation": "PutObject", "kind": "throttle", "probability": 1.5}, "probability"),
        ({"operation": "PutObject", "kind": "throttle", "probability": "x"}, "probability"),
        ({"operation": "PutObject", "kind": "throttle", "count": 1, "seed": "s"}, "seed"),
        ({"operation": "PutObject", "kind": "latency", "count": 1, "seconds": -1}, "seconds"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(aws, kwargs, field):
    with pytest.raises(FaultSpecError, match=f"^{field}"):
        aws.faults.add(**kwargs)


def test_error_shorthand_accepts_only_500_and_503(aws):
    with pytest.raises(FaultSpecError, match="^status"):
        aws.faults.error("PutObject", status=404)
