"""Lifecycle stage, model card and the approval audit trail (status.approvalHistory), through
the real operator process, the Kubernetes API emulator (managedFields name who set a field)
and the SageMaker harness (LastModifiedBy names the IAM identity that updated a version)."""

import datetime
import json
from typing import Any

import pytest

from conftest import (
    OperatorProcess,
    condition,
    package_spec,
    resource,
    wait_condition,
    wait_ready,
    wait_until,
)
from harness.kube import KubeApiError, field_manager

pytestmark = pytest.mark.e2e

ANA = "arn:aws:iam::123456789012:user/ana"
ARGO = "argocd-controller"
KUBECTL = "kubectl-client-side-apply"
CARD = {
    "model_overview": {
        "model_creator": "ML platform team",
        "model_artifact": ["s3://models/churn/model.tar.gz"],
    },
    "intended_uses": {"purpose_of_model": "churn scoring", "risk_rating": "Low"},
    "additional_information": {"custom_details": {"model_type": "SEQ2SEQ", "num_params": "220000000"}},
}


@pytest.fixture
def audited_operator(operator_env, tmp_path, request):
    """The operator describing every version in full on each resync (MRO_AUDIT_SECONDS): what
    puts back a lifecycle stage or model card changed in SageMaker without a spec change."""
    process = OperatorProcess(
        {**operator_env, "MRO_AUDIT_SECONDS": "1"}, tmp_path / "operator.log", ["-A"]
    ).start()
    yield process
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(process.log()[-20000:])


def messages(kube, ns: str, name: str, reason: str) -> list[str]:
    return [
        e.get("message") or ""
        for e in kube.list("events", namespace=ns)
        if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == reason
    ]


def wait_message(kube, ns: str, name: str, reason: str, *parts: str, operator=None) -> str:
    """The first `reason` Event on `name` whose message holds every one of `parts`."""
    return wait_until(
        lambda: next((m for m in messages(kube, ns, name, reason) if all(p in m for p in parts)), None),
        f"a {reason} Event on {name} naming {parts}",
        operator=operator,
    )


def history(kube, ns: str, name: str) -> list[dict[str, Any]]:
    return (kube.get("mp", name, namespace=ns).get("status") or {}).get("approvalHistory") or []


def wait_history(
    kube, ns: str, name: str, check, what: str, operator=None, timeout: float = 60
) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (lambda h: h if check(h) else None)(history(kube, ns, name)),
        what,
        operator=operator,
        timeout=timeout,
    )


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def create_group(kube, ns: str, operator, name: str = "churn") -> None:
    kube.create(resource("ModelPackageGroup", name, {}), namespace=ns, fieldManager=KUBECTL)
    wait_ready(kube, "mpg", name, ns, operator)


# --- 1. lifecycle stage and model card ---------------------------------------------------------


def test_lifecycle_and_card_created_changed_and_drift_corrected(kube, kube_namespace, audited_operator, aws):
    ns, sm, operator = kube_namespace, aws.client("sagemaker"), audited_operator
    create_group(kube, ns, operator)
    lifecycle = {"stage": "Staging", "stageStatus": "InReview", "stageDescription": "Waiting for the board."}
    card = {"modelCardStatus": "Draft", "modelCardContent": CARD}
    kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn", modelLifeCycle=lifecycle, modelCard=card)),
        namespace=ns,
        fieldManager=KUBECTL,
    )
    arn = wait_ready(kube, "mp", "churn-v1", ns, operator)["status"]["arn"]
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelLifeCycle"] == {
        "Stage": "Staging",
        "StageStatus": "InReview",
        "StageDescription": "Waiting for the board.",
    }
    assert described["ModelCard"]["ModelCardStatus"] == "Draft"
    assert json.loads(described["ModelCard"]["ModelCardContent"]) == CARD
    create_call = aws.requests("CreateModelPackage")
    assert len(create_call) == 1  # both went with the version, not in a later update
    assert aws.count("UpdateModelPackage") == 0

    # changed in the spec: one UpdateModelPackage, an Updated Event
    changed_card = {**CARD, "intended_uses": {"purpose_of_model": "churn scoring", "risk_rating": "Medium"}}
    kube.patch(
        "mp",
        "churn-v1",
        {
            "spec": {
                "modelLifeCycle": {"stage": "Production", "stageStatus": "Approved"},
                "modelCard": {"modelCardStatus": "PendingReview", "modelCardContent": changed_card},
            }
        },
        namespace=ns,
    )
    wait_until(
        lambda: (
            lambda d: (
                d["ModelLifeCycle"]["Stage"] == "Production"
                and d["ModelLifeCycle"]["StageStatus"] == "Approved"
                and d["ModelCard"]["ModelCardStatus"] == "PendingReview"
                and json.loads(d["ModelCard"]["ModelCardContent"]) == changed_card
            )
        )(sm.describe_model_package(ModelPackageName=arn)),
        "the stage and card to follow the spec",
        operator=operator,
    )
    updated = wait_message(
        kube, ns, "churn-v1", "Updated", "lifecycle stage", "model card", operator=operator
    )
    assert arn in updated
    assert wait_ready(kube, "mp", "churn-v1", ns, operator)["status"]["observedGeneration"] == 2
    assert aws.count("UpdateModelPackage") == 1

    # the same card in SageMaker, other key order and whitespace: not a difference
    same_text = json.dumps(dict(reversed(list(changed_card.items()))), indent=2)
    # (ModelCard is replaced whole on update: the status goes with it)
    sm.update_model_package(
        ModelPackageArn=arn, ModelCard={"ModelCardStatus": "PendingReview", "ModelCardContent": same_text}
    )
    updates = aws.count("UpdateModelPackage")
    described_after = aws.count("DescribeModelPackage")
    wait_until(
        lambda: aws.count("DescribeModelPackage") >= described_after + 2, "two audits", operator=operator
    )
    assert aws.count("UpdateModelPackage") == updates
    assert not messages(kube, ns, "churn-v1", "DriftCorrected")

    # changed in SageMaker with boto3: put back by the audit, a DriftCorrected Event
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelLifeCycle={"Stage": "Development", "StageStatus": "Rejected"},
        ModelCard={"ModelCardStatus": "Draft", "ModelCardContent": json.dumps({"model_overview": {}})},
    )
    wait_until(
        lambda: (
            lambda d: (
                d["ModelLifeCycle"]["Stage"] == "Production"
                and d["ModelCard"]["ModelCardStatus"] == "PendingReview"
                and json.loads(d["ModelCard"]["ModelCardContent"]) == changed_card
            )
        )(sm.describe_model_package(ModelPackageName=arn)),
        "the stage and card to be put back",
        operator=operator,
    )
    drift = wait_message(kube, ns, "churn-v1", "DriftCorrected", "lifecycle stage", operator=operator)
    assert "model card" in drift and arn in drift
    assert condition(wait_ready(kube, "mp", "churn-v1", ns, operator), "Ready")["reason"] == "Synced"


# --- 2. an approval through the spec -----------------------------------------------------------


def test_an_approval_through_the_spec_is_recorded_with_its_field_manager(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    create_group(kube, ns, operator)
    kube.create(
        resource(
            "ModelPackage", "churn-v1", package_spec("churn", modelApprovalStatus="PendingManualApproval")
        ),
        namespace=ns,
        fieldManager=KUBECTL,
    )
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)
    arn = package["status"]["arn"]
    [initial] = package["status"]["approvalHistory"]
    assert (initial["modelApprovalStatus"], initial["changedBy"]) == ("PendingManualApproval", KUBECTL)
    assert package["status"]["lastApprovalChangedBy"] == KUBECTL

    kube.patch(
        "mp",
        "churn-v1",
        {"spec": {"modelApprovalStatus": "Approved", "approvalDescription": "Reviewed in PR #42"}},
        namespace=ns,
        field_manager=ARGO,
    )
    entries = wait_history(kube, ns, "churn-v1", lambda h: len(h) >= 2, "a second history entry", operator)
    assert len(entries) == 2
    assert entries[0] == initial
    newest = entries[1]
    assert {k: v for k, v in newest.items() if k != "time"} == {
        "modelApprovalStatus": "Approved",
        "approvalDescription": "Reviewed in PR #42",
        "changedBy": ARGO,
    }
    assert parse_time(newest["time"]) >= parse_time(initial["time"])
    obj = wait_ready(kube, "mp", "churn-v1", ns, operator)
    assert field_manager(obj) == ARGO  # who the API server says set spec.modelApprovalStatus
    assert obj["status"]["lastApprovalChangedBy"] == ARGO
    assert obj["status"]["modelApprovalStatus"] == "Approved"
    described = sm.describe_model_package(ModelPackageName=arn)
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Approved",
        "Reviewed in PR #42",
    )
    message = wait_message(kube, ns, "churn-v1", "ApprovalChanged", ARGO, operator=operator)
    assert "Approved" in message and "PendingManualApproval" in message
    assert not messages(kube, ns, "churn-v1", "DriftCorrected")

    # "Approval By" is a printer column showing status.lastApprovalChangedBy
    crd = kube.get("customresourcedefinitions", "modelpackages.registry.mlops.dev")
    columns = {
        c["name"]: c["jsonPath"] for v in crd["spec"]["versions"] for c in v["additionalPrinterColumns"]
    }
    assert columns["Approval By"] == ".status.lastApprovalChangedBy"


# --- 3. an approval made in SageMaker by another identity --------------------------------------


def test_an_approval_in_sagemaker_is_recorded_with_its_identity_observed_only(
    kube, kube_namespace, operator, aws
):
    ns, sm, ana = kube_namespace, aws.client("sagemaker"), aws.client("sagemaker", identity=ANA)
    create_group(kube, ns, operator)
    kube.create(
        resource("ModelPackage", "observed", package_spec("churn")), namespace=ns, fieldManager=KUBECTL
    )
    observed = wait_ready(kube, "mp", "observed", ns, operator)
    arn = observed["status"]["arn"]
    # SageMaker's default approval, attributed to whoever set the group reference
    assert [(e["modelApprovalStatus"], e["changedBy"]) for e in observed["status"]["approvalHistory"]] == [
        ("PendingManualApproval", KUBECTL)
    ]

    ana.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="in Studio"
    )
    # recorded with ana's ARN by a resync (every 3 s here): five of them are plenty
    entries = wait_history(kube, ns, "observed", lambda h: len(h) >= 2, "ana's entry", operator, timeout=15)
    assert len(entries) == 2
    assert {k: v for k, v in entries[1].items() if k != "time"} == {
        "modelApprovalStatus": "Approved",
        "approvalDescription": "in Studio",
        "changedBy": ANA,
    }
    status = kube.get("mp", "observed", namespace=ns)["status"]
    assert (status["modelApprovalStatus"], status["lastApprovalChangedBy"]) == ("Approved", ANA)
    message = wait_message(kube, ns, "observed", "ApprovalChanged", ANA, operator=operator)
    assert "PendingManualApproval" in message and "Approved" in message
    # only observed: left as ana set it
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    assert aws.count("UpdateModelPackage") == 1  # ana's
    assert not messages(kube, ns, "observed", "DriftCorrected")


def test_an_approval_in_sagemaker_against_the_spec_is_recorded_then_corrected(
    kube, kube_namespace, operator, aws
):
    ns, sm, ana = kube_namespace, aws.client("sagemaker"), aws.client("sagemaker", identity=ANA)
    create_group(kube, ns, operator)
    kube.create(
        resource("ModelPackage", "enforced", package_spec("churn", modelApprovalStatus="Approved")),
        namespace=ns,
        fieldManager=ARGO,
    )
    enforced = wait_ready(kube, "mp", "enforced", ns, operator)
    arn = enforced["status"]["arn"]
    assert [(e["modelApprovalStatus"], e["changedBy"]) for e in enforced["status"]["approvalHistory"]] == [
        ("Approved", ARGO)
    ]
    updates = aws.count("UpdateModelPackage")

    ana.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="bias report missing"
    )
    # ana's entry, then the correction attributed to the spec's field manager
    entries = wait_history(
        kube, ns, "enforced", lambda h: len(h) >= 3, "ana's entry and the correction", operator
    )
    assert len(entries) == 3
    assert [(e["modelApprovalStatus"], e["changedBy"]) for e in entries] == [
        ("Approved", ARGO),
        ("Rejected", ANA),
        ("Approved", ARGO),
    ]
    assert entries[1]["approvalDescription"] == "bias report missing"
    assert parse_time(entries[1]["time"]) <= parse_time(entries[2]["time"])
    drift = wait_message(kube, ns, "enforced", "DriftCorrected", ANA, ARGO, operator=operator)
    assert "Rejected" in drift and "Approved" in drift and arn in drift
    status = wait_ready(kube, "mp", "enforced", ns, operator)["status"]
    assert (status["modelApprovalStatus"], status["lastApprovalChangedBy"]) == ("Approved", ARGO)
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    assert aws.count("UpdateModelPackage") == updates + 2  # ana's and the one correction
    assert not messages(kube, ns, "enforced", "ApprovalChanged")  # a correction is not a spec change


# --- 4. the history is capped at 20 ------------------------------------------------------------


def test_the_history_keeps_the_newest_20(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    create_group(kube, ns, operator)
    kube.create(
        resource(
            "ModelPackage", "churn-v1", package_spec("churn", modelApprovalStatus="PendingManualApproval")
        ),
        namespace=ns,
        fieldManager=ARGO,
    )
    wait_ready(kube, "mp", "churn-v1", ns, operator)
    flips = 22
    for i in range(1, flips + 1):
        approval = "Approved" if i % 2 else "Rejected"
        kube.patch(
            "mp",
            "churn-v1",
            {"spec": {"modelApprovalStatus": approval, "approvalDescription": f"flip {i}"}},
            namespace=ns,
            field_manager=ARGO,
        )
        wait_history(
            kube,
            ns,
            "churn-v1",
            lambda h, i=i: bool(h) and h[-1].get("approvalDescription") == f"flip {i}",
            f"flip {i} recorded",
            operator,
        )
    entries = history(kube, ns, "churn-v1")
    assert len(entries) == 20
    # the initial approval and flips 1 and 2 went; the rest are there, oldest first
    assert [e["approvalDescription"] for e in entries] == [f"flip {i}" for i in range(3, flips + 1)]
    assert [e["modelApprovalStatus"] for e in entries] == [
        "Approved" if i % 2 else "Rejected" for i in range(3, flips + 1)
    ]
    assert {e["changedBy"] for e in entries} == {ARGO}
    times = [parse_time(e["time"]) for e in entries]
    assert times == sorted(times)


# --- 5. bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (
            {"modelLifeCycle": {"stage": "Staging", "stageStatus": "In Review!"}},
            "spec.modelLifeCycle.stageStatus",
        ),
        ({"modelCard": {"modelCardContent": "not an object"}}, "spec.modelCard.modelCardContent"),
    ],
    ids=["stage-status-characters", "card-content-not-an-object"],
)
def test_bad_input_is_refused_at_admission(kube, kube_namespace, crds, extra, field):
    with pytest.raises(KubeApiError) as refused:
        kube.create(resource("ModelPackage", "bad", package_spec("churn", **extra)), namespace=kube_namespace)
    assert refused.value.status == 422
    assert field in [c.get("field") for c in refused.value.causes], refused.value.causes
    assert kube.find("mp", "bad", namespace=kube_namespace) is None


def test_a_card_over_the_api_size_is_stalled_with_no_sagemaker_call(kube, kube_namespace, operator, aws):
    ns = kube_namespace
    create_group(kube, ns, operator)
    before = aws.counts()
    big = {"modelCardStatus": "Draft", "modelCardContent": {"text": "x" * 100_000}}  # over 100,000 as JSON
    kube.create(resource("ModelPackage", "big", package_spec("churn", modelCard=big)), namespace=ns)
    stalled = wait_condition(kube, "mp", "big", ns, "Stalled", "InvalidSpec", operator)
    message = condition(stalled, "Stalled")["message"]
    assert "spec.modelCard.modelCardContent" in message
    assert "100000" in message.replace(",", "")
    assert "arn" not in stalled["status"]
    after = aws.counts()
    package_calls = ("CreateModelPackage", "UpdateModelPackage", "DescribeModelPackage")
    assert (
        [after.get(op, 0) for op in package_calls] == [before.get(op, 0) for op in package_calls] == [0, 0, 0]
    )
