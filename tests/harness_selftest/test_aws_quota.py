"""Quota mode (harness.aws.quota): SageMaker's request rate limit per account and region, seen
from boto3 over HTTP. The fixture's clients make one attempt per call (no botocore retries), so
every request the quota refuses reaches the test."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

OTHER_ACCOUNT = "222222222222"


def _throttled(call) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value
    assert error.response["Error"]["Code"] == "ThrottlingException"
    assert error.response["Error"]["Message"] == "Rate exceeded"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error


def _control(aws, method: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{aws.endpoint_url}/_harness/quota",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_requests_within_the_rate_all_pass(aws):
    sm = aws.client("sagemaker")
    aws.set_quota(20, burst=5)
    for _ in range(5):  # a burst up to its size
        sm.list_model_package_groups()
    time.sleep(0.5)  # 10 tokens accrued, 5 kept
    for _ in range(10):  # 10/s, half the rate
        sm.list_model_package_groups()
        time.sleep(0.1)
    assert aws.count("ListModelPackageGroups") == 15
    assert aws.throttled() == []


def test_a_burst_beyond_the_quota_is_throttled_and_not_executed(aws):
    sm = aws.client("sagemaker")
    aws.set_quota(1, burst=3)
    for _ in range(3):
        sm.list_model_package_groups()
    _throttled(lambda: sm.create_model_package_group(ModelPackageGroupName="churn"))
    _throttled(sm.list_model_package_groups)
    (refused,) = aws.throttled("CreateModelPackageGroup")
    assert refused.status == 400 and refused.fault == "quota"
    assert refused.account == aws.account_id and refused.region == aws.region
    assert len(aws.throttled()) == 2
    aws.set_quota(None)
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []  # nothing was created


def test_tokens_accrue_at_the_rate(aws):
    sm = aws.client("sagemaker")
    # one token a second: the second call comes well within it even on a loaded machine (at 5/s,
    # a call 0.2 s late under a parallel test run found a token already back)
    aws.set_quota(1, burst=1)
    sm.list_model_package_groups()
    _throttled(sm.list_model_package_groups)
    time.sleep(1.05)  # > 1 s: one token again
    sm.list_model_package_groups()
    assert [r.fault for r in aws.requests("ListModelPackageGroups")] == [None, "quota", None]


def test_botocore_classifies_the_answer_as_throttling_and_retries_it(aws):
    sm = aws.client("sagemaker", Config(retries={"mode": "standard", "total_max_attempts": 5}))
    aws.set_quota(2, burst=1)
    sm.list_model_package_groups()
    sm.list_model_package_groups()  # refused at first, served by a retry after the backoff
    faults = [r.fault for r in aws.requests("ListModelPackageGroups")]
    assert faults[0] is None and faults[-1] is None and "quota" in faults


def test_each_account_and_region_has_its_own_bucket(aws):
    sm = aws.client("sagemaker")
    tenant = aws.client_in(OTHER_ACCOUNT, "sagemaker")  # STS and IAM are not subject to the quota
    west = aws.client("sagemaker", region="us-west-2")
    aws.set_quota(1, burst=2)
    for _ in range(2):
        sm.list_model_package_groups()
    _throttled(sm.list_model_package_groups)
    for client in (tenant, west):
        client.list_model_package_groups()
        client.list_model_package_groups()
        _throttled(client.list_model_package_groups)
    by_origin = {(r.account, r.region) for r in aws.throttled()}
    assert by_origin == {
        (aws.account_id, aws.region),
        (OTHER_ACCOUNT, aws.region),
        (aws.account_id, "us-west-2"),
    }


def test_other_services_are_not_throttled(aws):
    aws.make_bucket("art")
    s3 = aws.client("s3")
    aws.set_quota(1, burst=1)
    for _ in range(5):
        s3.put_object(Bucket="art", Key="k", Body=b"data")
    assert aws.throttled() == []


def test_a_reset_turns_quota_mode_off(aws):
    sm = aws.client("sagemaker")
    aws.set_quota(1, burst=1)
    sm.list_model_package_groups()
    _throttled(sm.list_model_package_groups)
    aws.reset()
    for _ in range(10):
        sm.list_model_package_groups()
    assert aws.throttled() == []
    assert _control(aws, "GET") == (200, {"requestsPerSecond": None, "burst": None, "throttled": 0})


def test_the_control_api_sets_and_clears_the_quota(aws):
    sm = aws.client("sagemaker")
    assert _control(aws, "POST", {"requestsPerSecond": 1, "burst": 2}) == (
        200,
        {"requestsPerSecond": 1.0, "burst": 2.0, "throttled": 0},
    )
    sm.list_model_package_groups()
    sm.list_model_package_groups()
    _throttled(sm.list_model_package_groups)
    assert _control(aws, "GET")[1]["throttled"] == 1
    status, answer = _control(aws, "POST", {"requestsPerSecond": 20})
    assert status == 200 and answer["burst"] == 20.0  # default burst: one second's worth
    assert _control(aws, "POST", {"requestsPerSecond": None})[1]["requestsPerSecond"] is None
    for _ in range(30):
        sm.list_model_package_groups()
    assert len(aws.throttled()) == 1


@pytest.mark.parametrize(
    "body, words",
    [
        ({"requestsPerSecond": 0}, "requestsPerSecond: must be a positive number"),
        ({"requestsPerSecond": "fast"}, "requestsPerSecond: must be a positive number"),
        ({"requestsPerSecond": 5, "burst": 0.5}, "burst: must be a number >= 1"),
        ({"burst": 5}, "requestsPerSecond: required"),
        ({"requestsPerSecond": 5, "rate": 5}, "rate: unknown member"),
    ],
)
def test_the_control_api_refuses_a_bad_quota(aws, body, words):
    status, answer = _control(aws, "POST", body)
    assert status == 400 and words in answer["error"]
