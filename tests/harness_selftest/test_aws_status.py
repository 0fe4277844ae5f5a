"""ModelPackageStatus passes through Pending and InProgress before Completed.

The delay is read through a patched clock, not waited for: no timed assertions.
"""

from __future__ import annotations

import pytest

import harness.aws.corrections.model_packages as model_packages

INFERENCE = {"Containers": [{"Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/x:1"}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(model_packages, "clock", fake.monotonic)
    return fake


def _statuses(sm, arn):
    described = sm.describe_model_package(ModelPackageName=arn)
    listed = sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    (summary,) = [p for p in listed if p["ModelPackageArn"] == arn]
    assert summary["ModelPackageStatus"] == described["ModelPackageStatus"]
    return described["ModelPackageStatus"], described["ModelPackageStatusDetails"]


def test_completed_at_once_by_default(aws, clock):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    arn = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    assert _statuses(sm, arn)[0] == "Completed"


def test_pending_then_in_progress_then_completed(aws, clock):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    aws.set_status_delay(10)
    arn = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    status, details = _statuses(sm, arn)
    assert status == "Pending"
    assert {s["Status"] for s in details["ValidationStatuses"]} == {"NotStarted"}
    clock.now += 6
    assert _statuses(sm, arn)[0] == "InProgress"
    clock.now += 4
    status, details = _statuses(sm, arn)
    assert status == "Completed"
    assert {s["Status"] for s in details["ValidationStatuses"]} == {"Completed"}


def test_delay_applies_to_packages_created_after_it_is_set(aws, clock):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    before = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    aws.set_status_delay(5)
    after = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    assert _statuses(sm, before)[0] == "Completed"
    assert _statuses(sm, after)[0] == "Pending"


def test_bad_delay_is_refused_naming_the_setting(aws):
    with pytest.raises(ValueError, match="^statusDelaySeconds"):
        aws.set_status_delay(-1)
