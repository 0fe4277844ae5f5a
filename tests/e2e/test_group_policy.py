"""ModelPackageGroup.spec.resourcePolicy through the real operator process, the Kubernetes API
emulator and the SageMaker harness: created with the group, unchanged when only key order
or whitespace differ (counted in the harness's request log), changed, put back after a
change in SageMaker, removed; a document SageMaker refuses stalls with its message."""

from __future__ import annotations

import copy
import json

import pytest
from botocore.exceptions import ClientError

from conftest import (
    condition,
    event_reasons,
    package_spec,
    resource,
    wait_condition,
    wait_event,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.e2e
PRODUCTION = "222222222222"
GROUP_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ProductionReadsChurn",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PRODUCTION}:root"},
            "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"],
            "Resource": [GROUP_ARN, "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/*"],
        }
    ],
}


def policy_in_sagemaker(sm, group="churn"):
    """The group's policy as parsed JSON, None when it has none."""
    try:
        return json.loads(sm.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"])
    except ClientError as err:
        assert "Cannot find resource policy" in str(err), err
        return None


def test_policy_created_changed_put_back_and_removed(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    mine = {"Put": 0, "Get": 0}  # this test's own calls, in the same request log as the operator's

    def operator_calls(operation):
        return aws.count(f"{operation}ModelPackageGroupPolicy") - mine.get(operation, 0)

    def sagemaker_policy():
        mine["Get"] += 1
        return policy_in_sagemaker(sm)

    kube.create(resource("ModelPackageGroup", "churn", {"resourcePolicy": POLICY}), namespace=ns)
    group = wait_ready(kube, "mpg", "churn", ns, operator)
    assert group["status"]["resourcePolicy"] == "Applied"
    assert sagemaker_policy() == POLICY
    assert operator_calls("Put") == 1
    assert "Updated" in event_reasons(kube, ns, "churn")

    # only key order and whitespace differ: in the spec (with a tag change, so that the spec's
    # generation moves on and the operator reconciles) and in SageMaker: no Put
    reordered = {
        "Statement": [dict(reversed(list(POLICY["Statement"][0].items())))],
        "Version": POLICY["Version"],
    }
    current = kube.get("mpg", "churn", namespace=ns)
    current["spec"] = {"tags": [{"key": "team", "value": "risk"}], "resourcePolicy": reordered}
    kube.replace(current)
    group = wait_ready(kube, "mpg", "churn", ns, operator)
    assert group["metadata"]["generation"] == 2
    sm.put_model_package_group_policy(
        ModelPackageGroupName="churn", ResourcePolicy=json.dumps(POLICY, indent=4, sort_keys=True)
    )
    mine["Put"] += 1
    reads = operator_calls("Get")
    wait_until(
        lambda: operator_calls("Get") >= reads + 2, "two resyncs reading the policy", operator=operator
    )
    assert operator_calls("Put") == 1, "key order and whitespace made the operator put the policy again"

    # a change in the spec is put
    changed = copy.deepcopy(POLICY)
    changed["Statement"][0]["Action"].append("sagemaker:ListModelPackages")
    kube.patch("mpg", "churn", {"spec": {"resourcePolicy": changed}}, namespace=ns)
    wait_until(lambda: sagemaker_policy() == changed, "the changed policy in SageMaker", operator=operator)
    wait_ready(kube, "mpg", "churn", ns, operator)
    assert operator_calls("Put") == 2

    # a policy deleted in SageMaker is put back by a resync
    sm.delete_model_package_group_policy(ModelPackageGroupName="churn")
    wait_event(kube, ns, "churn", "DriftCorrected", operator)
    assert sagemaker_policy() == changed and operator_calls("Put") == 3

    # removing the field deletes the policy
    kube.patch("mpg", "churn", {"spec": {"resourcePolicy": None}}, namespace=ns)
    wait_until(lambda: sagemaker_policy() is None, "the policy to be deleted", operator=operator)
    group = wait_ready(kube, "mpg", "churn", ns, operator)
    assert "resourcePolicy" not in group["status"]
    assert aws.count("DeleteModelPackageGroupPolicy") == 2  # this test's and the operator's

    # from then on a policy set elsewhere is left alone
    sm.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=json.dumps(POLICY))
    mine["Put"] += 1
    gets = operator_calls("Get")
    resyncs = aws.count("ListModelPackages")
    wait_until(lambda: aws.count("ListModelPackages") >= resyncs + 2, "two resyncs", operator=operator)
    assert operator_calls("Get") == gets and aws.count("DeleteModelPackageGroupPolicy") == 2
    assert sagemaker_policy() == POLICY


def test_a_policy_sagemaker_refuses_is_stalled_with_its_message(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    bad = copy.deepcopy(POLICY)
    bad["Statement"][0]["Effect"] = "Permit"  # the CRD lets it through; IAM's grammar does not
    kube.create(resource("ModelPackageGroup", "churn", {"resourcePolicy": bad}), namespace=ns)
    stalled = wait_condition(kube, "mpg", "churn", ns, "Stalled", "ValidationError", operator)
    message = condition(stalled, "Stalled")["message"]
    assert "spec.resourcePolicy" in message and "Invalid policy provided" in message, message
    assert stalled["status"]["arn"] == GROUP_ARN and "resourcePolicy" not in stalled["status"]
    assert policy_in_sagemaker(sm) is None
    wait_event(kube, ns, "churn", "ValidationError", operator)

    kube.patch("mpg", "churn", {"spec": {"resourcePolicy": POLICY}}, namespace=ns)
    assert wait_ready(kube, "mpg", "churn", ns, operator)["status"]["resourcePolicy"] == "Applied"
    assert policy_in_sagemaker(sm) == POLICY


def test_the_api_server_refuses_a_document_without_statement(kube, kube_namespace, crds):
    from harness.kube import KubeApiError

    with pytest.raises(KubeApiError) as refused:
        kube.create(
            resource("ModelPackageGroup", "churn", {"resourcePolicy": {"Version": "2012-10-17"}}),
            namespace=kube_namespace,
        )
    assert "spec.resourcePolicy.Statement" in str(refused.value)


def test_a_model_in_another_account_uses_the_shared_package(kube, kube_namespace, operator, aws):
    """The central registry: the group and its versions in the operator's own account
    (123456789012), shared by the group's resource policy with production (222222222222), where a
    namespace's Model names the version's ARN and waits for its approval."""
    registry_ns, sm = kube_namespace, aws.client("sagemaker")
    role = aws.create_role(PRODUCTION, "model-registry-operator")  # trusts the operator's account
    prod_ns = f"{registry_ns}-prod"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": prod_ns, "annotations": {"registry.mlops.dev/aws-role-arn": role}},
        }
    )
    try:
        kube.create(resource("ModelPackageGroup", "churn", {"resourcePolicy": POLICY}), namespace=registry_ns)
        version = package_spec("churn", modelApprovalStatus="PendingManualApproval")
        kube.create(resource("ModelPackage", "churn-v1", version), namespace=registry_ns)
        package_arn = wait_ready(kube, "mp", "churn-v1", registry_ns, operator)["status"]["arn"]
        assert package_arn == "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/1"

        prod_role = f"arn:aws:iam::{PRODUCTION}:role/SageMakerExecution"
        model = {"executionRoleArn": prod_role, "primaryContainer": {"modelPackageName": package_arn}}
        kube.create(resource("Model", "churn", model), namespace=prod_ns)
        waiting = wait_condition(kube, "mdl", "churn", prod_ns, "Reconciling", "WaitingForApproval", operator)
        assert package_arn in condition(waiting, "Reconciling")["message"]
        described = [r for r in aws.requests("DescribeModelPackage") if r.account == PRODUCTION]
        assert described and all(r.status == 200 for r in described), "read with the production role"

        kube.patch("mp", "churn-v1", {"spec": {"modelApprovalStatus": "Approved"}}, namespace=registry_ns)
        made = wait_ready(kube, "mdl", "churn", prod_ns, operator)
        assert made["status"]["arn"] == f"arn:aws:sagemaker:us-east-2:{PRODUCTION}:model/churn"
        assert made["status"]["containers"] == [{"modelPackageName": package_arn}]
        prod = aws.client_in(role, "sagemaker")
        assert prod.describe_model(ModelName="churn")["PrimaryContainer"]["ModelPackageName"] == package_arn
        with pytest.raises(ClientError):  # nothing in the registry account
            sm.describe_model(ModelName="churn")
    finally:
        kube.delete("namespaces", prod_ns, missing_ok=True)
