"""Lifecycle of each kind, through the real operator process, the Kubernetes API emulator
and the SageMaker harness."""

import pytest
from botocore.exceptions import ClientError

from conftest import (
    IMAGE,
    ROLE,
    condition,
    event_reasons,
    package_spec,
    resource,
    wait_condition,
    wait_event,
    wait_ready,
    wait_until,
)
from harness.kube import KubeApiError

pytestmark = pytest.mark.e2e
IDENTITY_KEY = "registry.mlops.dev/identity"


def tags_of(sm, arn):
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def versions(sm, group):
    return sm.list_model_packages(ModelPackageGroupName=group, MaxResults=100)["ModelPackageSummaryList"]


def test_group_tags_follow_spec_and_delete_waits_for_versions(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(
        resource(
            "ModelPackageGroup",
            "churn",
            {"modelPackageGroupDescription": "Churn models", "tags": [{"key": "team", "value": "risk"}]},
        ),
        namespace=ns,
    )
    group = wait_ready(kube, "mpg", "churn", ns, operator)
    arn = group["status"]["arn"]
    assert sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"] == arn
    assert group["status"]["modelPackageGroupStatus"] == "Completed"
    owner = {IDENTITY_KEY: f"default/{ns}/churn"}  # the operator's identity tag
    assert tags_of(sm, arn) == {"team": "risk", **owner}

    kube.patch("mpg", "churn", {"spec": {"tags": [{"key": "owner", "value": "ana"}]}}, namespace=ns)
    wait_until(
        lambda: tags_of(sm, arn) == {"owner": "ana", **owner}, "tags to follow the spec", operator=operator
    )
    assert wait_ready(kube, "mpg", "churn", ns, operator)["status"]["observedGeneration"] == 2

    kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
    wait_ready(kube, "mp", "churn-v1", ns, operator)
    kube.delete("mpg", "churn", namespace=ns)
    waiting = wait_condition(kube, "mpg", "churn", ns, "Reconciling", "WaitingForVersions", operator)
    assert "1 model package version" in condition(waiting, "Reconciling")["message"]
    assert sm.describe_model_package_group(ModelPackageGroupName="churn")

    kube.delete("mp", "churn-v1", namespace=ns)
    kube.wait_gone("mp", "churn-v1", namespace=ns, timeout=30)
    kube.wait_gone("mpg", "churn", namespace=ns, timeout=30)
    with pytest.raises(ClientError):
        sm.describe_model_package_group(ModelPackageGroupName="churn")
    reasons = event_reasons(kube, ns, "churn")
    assert {"Created", "Updated", "Deleted"} <= set(reasons)


def test_package_approval_workflow_and_metadata(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource(
            "ModelPackage",
            "churn-v1",
            package_spec(
                "churn",
                modelApprovalStatus="PendingManualApproval",
                customerMetadataProperties={"team": "risk", "stage": "dev"},
            ),
        ),
        namespace=ns,
    )
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)
    arn = package["status"]["arn"]
    assert package["status"]["modelPackageVersion"] == 1
    assert package["status"]["modelPackageGroupName"] == "churn"
    assert package["status"]["modelPackageStatus"] == "Completed"
    assert package["status"]["modelApprovalStatus"] == "PendingManualApproval"
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {
        "team": "risk",
        "stage": "dev",
        IDENTITY_KEY: f"default/{ns}/churn-v1",
    }

    for generation, approval in ((2, "Approved"), (3, "Rejected")):
        kube.patch(
            "mp",
            "churn-v1",
            {"spec": {"modelApprovalStatus": approval, "approvalDescription": f"{approval} by QA"}},
            namespace=ns,
        )
        package = wait_until(
            lambda: (
                lambda o: (
                    o
                    if o["status"].get("observedGeneration") == generation
                    and condition(o, "Ready").get("status") == "True"
                    else None
                )
            )(kube.get("mp", "churn-v1", namespace=ns)),
            f"generation {generation} Ready",
            operator=operator,
        )
        assert package["status"]["modelApprovalStatus"] == approval
        assert package["status"]["approvalDescription"] == f"{approval} by QA"
        described = sm.describe_model_package(ModelPackageName=arn)
        assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
            approval,
            f"{approval} by QA",
        )

    kube.patch("mp", "churn-v1", {"spec": {"customerMetadataProperties": {"stage": None}}}, namespace=ns)
    wait_until(
        lambda: (
            sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
            == {"team": "risk", IDENTITY_KEY: f"default/{ns}/churn-v1"}
        ),
        "the removed key to go",
        operator=operator,
    )
    wait_event(kube, ns, "churn-v1", "Updated", operator)
    assert {"Created", "ApprovalChanged"} <= set(event_reasons(kube, ns, "churn-v1"))
    assert [v["ModelPackageArn"] for v in versions(sm, "churn")] == [arn]


def test_model_waits_for_approval_then_is_created_and_replaced(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns
    )  # approval not managed
    kube.create(
        resource(
            "Model",
            "churn",
            {"primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}, "executionRoleArn": ROLE},
        ),
        namespace=ns,
    )
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)
    wait_condition(kube, "mdl", "churn", ns, "Reconciling", "WaitingForApproval", operator)
    assert aws.count("CreateModel") == 0

    # approved elsewhere (SageMaker Studio): observed by the package's resync, then the model goes ahead
    sm.update_model_package(ModelPackageArn=package["status"]["arn"], ModelApprovalStatus="Approved")
    model = wait_ready(kube, "mdl", "churn", ns, operator)
    described = sm.describe_model(ModelName="churn")
    assert described["PrimaryContainer"]["ModelPackageName"] == package["status"]["arn"]
    assert model["status"]["containers"] == [{"modelPackageName": package["status"]["arn"]}]
    assert model["status"]["arn"] == described["ModelArn"]
    assert kube.get("mp", "churn-v1", namespace=ns)["status"]["modelApprovalStatus"] == "Approved"

    kube.patch(
        "mdl", "churn", {"spec": {"primaryContainer": {"environment": {"MODE": "fast"}}}}, namespace=ns
    )
    wait_event(kube, ns, "churn", "Replaced", operator)
    wait_until(
        lambda: (
            sm.describe_model(ModelName="churn")["PrimaryContainer"].get("Environment") == {"MODE": "fast"}
        ),
        "the replaced model",
        operator=operator,
    )
    assert wait_ready(kube, "mdl", "churn", ns, operator)["status"]["observedGeneration"] == 2
    assert (aws.count("DeleteModel"), aws.count("CreateModel")) == (1, 2)

    kube.delete("mdl", "churn", namespace=ns)
    kube.wait_gone("mdl", "churn", namespace=ns, timeout=30)
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="churn")


def test_model_name_is_the_identity_someone_elses_model_is_left_alone(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    sm.create_model(ModelName="taken", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE + "-theirs"})
    sm.create_model(ModelName="twin", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    spec = {"primaryContainer": {"image": IMAGE}, "executionRoleArn": ROLE}
    kube.create(resource("Model", "taken", spec), namespace=ns)
    kube.create(resource("Model", "twin", spec), namespace=ns)

    stalled = wait_condition(kube, "mdl", "taken", ns, "Stalled", "AlreadyExists", operator)
    assert "was not created by this object" in condition(stalled, "Stalled")["message"]
    assert "arn" not in stalled["status"]
    # the one that already is what the spec asks for is taken on (as after a crash before the status write)
    assert wait_ready(kube, "mdl", "twin", ns, operator)["status"]["specHash"]
    wait_event(kube, ns, "twin", "Adopted", operator)

    with pytest.raises(KubeApiError) as refused:
        kube.patch("mdl", "taken", {"spec": {"modelName": "taken-2"}}, namespace=ns)
    assert refused.value.status == 422
    assert [c["field"] for c in refused.value.causes] == ["spec.modelName"]
    assert "create a new Model instead" in refused.value.causes[0]["message"]

    kube.delete("mdl", "taken", namespace=ns)
    kube.delete("mdl", "twin", namespace=ns)
    kube.wait_gone("mdl", "taken", namespace=ns, timeout=30)
    kube.wait_gone("mdl", "twin", namespace=ns, timeout=30)
    assert sm.describe_model(ModelName="taken")["PrimaryContainer"]["Image"] == IMAGE + "-theirs"
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="twin")
    # made: the two above (the operator's first creates were refused, the names are taken); deleted: the adopted one
    made = [r for r in aws.requests("CreateModel") if r.status < 300]
    assert (len(made), aws.count("DeleteModel")) == (2, 1)


def test_a_group_whose_retained_versions_remain_is_stalled_naming_them_and_goes_after_them(
    kube, kube_namespace, operator, aws
):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(
        resource("ModelPackage", "churn-v1", package_spec("churn", deletionPolicy="Retain")), namespace=ns
    )
    arn = wait_ready(kube, "mp", "churn-v1", ns, operator)["status"]["arn"]
    kube.delete("mp", "churn-v1", namespace=ns)
    kube.wait_gone("mp", "churn-v1", namespace=ns, timeout=30)
    kube.delete("mpg", "churn", namespace=ns)
    # the bound is two resync periods (the operator here resyncs every 3 s)
    stalled = wait_condition(kube, "mpg", "churn", ns, "Stalled", "VersionsRemain", operator, timeout=30)
    assert arn in condition(stalled, "Stalled")["message"]
    wait_event(kube, ns, "churn", "VersionsRemain", operator)

    sm.delete_model_package(ModelPackageName=arn)  # what the message asks for
    kube.wait_gone("mpg", "churn", namespace=ns, timeout=30)
    with pytest.raises(ClientError):
        sm.describe_model_package_group(ModelPackageGroupName="churn")
    assert event_reasons(kube, ns, "churn").count("VersionsRemain") == 1


def test_retain_leaves_sagemaker_untouched(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "kept", {"deletionPolicy": "Retain"}), namespace=ns)
    kube.create(
        resource("ModelPackage", "kept-v1", package_spec("kept", deletionPolicy="Retain")), namespace=ns
    )
    arn = wait_ready(kube, "mp", "kept-v1", ns, operator)["status"]["arn"]
    kube.delete("mp", "kept-v1", namespace=ns)
    kube.delete("mpg", "kept", namespace=ns)
    kube.wait_gone("mp", "kept-v1", namespace=ns, timeout=30)
    kube.wait_gone("mpg", "kept", namespace=ns, timeout=30)
    assert [v["ModelPackageArn"] for v in versions(sm, "kept")] == [arn]
    assert sm.describe_model_package_group(ModelPackageGroupName="kept")
    assert aws.count("DeleteModelPackage") == aws.count("DeleteModelPackageGroup") == 0


def test_unversioned_package_in_a_named_group_and_alone(kube, kube_namespace, operator, aws):
    ns, sm = kube_namespace, aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="external")
    named = package_spec("unused", modelPackageGroupName="external")
    del named["modelPackageGroupRef"]
    alone = package_spec("unused", modelPackageName="churn-standalone")
    del alone["modelPackageGroupRef"]
    kube.create(resource("ModelPackage", "in-external", named), namespace=ns)
    kube.create(resource("ModelPackage", "standalone", alone), namespace=ns)
    versioned = wait_ready(kube, "mp", "in-external", ns, operator)
    assert versioned["status"]["modelPackageGroupName"] == "external"
    unversioned = wait_ready(kube, "mp", "standalone", ns, operator)
    assert unversioned["status"]["arn"].endswith("model-package/churn-standalone")
    assert sm.describe_model_package(ModelPackageName="churn-standalone")["ModelPackageStatus"] == "Completed"
