"""Several accounts and regions, through the real operator process (README "Several accounts").

A namespace annotated with `registry.mlops.dev/aws-role-arn` (and `aws-external-id`) has its
objects made in the role's account with assumed-role credentials; one without, in the
operator's own (123456789012, the harness's default); `spec.region` puts an object in another
region. Checked through the harness with clients of each account and region, and its request
log (AssumeRole's parameters). STS refusing the role is Stalled/AssumeRoleFailed; a namespace
mapped to another account after its objects exist is Stalled/AccountChanged, and deleting such
an object deletes nothing in either account.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import (
    IMAGE,
    OperatorProcess,
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
OTHER = "222222222222"
ROLE_ANNOTATION = "registry.mlops.dev/aws-role-arn"
EXTERNAL_ID_ANNOTATION = "registry.mlops.dev/aws-external-id"
BUCKET_ANNOTATION = "registry.mlops.dev/artifact-bucket"
IDENTITY_KEY = "registry.mlops.dev/identity"
WEIGHTS = b"tenant weights " * 400


@pytest.fixture
def make_namespace(kube) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(annotations: dict[str, str] | None = None) -> str:
        name = f"acct-{uuid.uuid4().hex[:8]}"
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "annotations": annotations or {}},
            }
        )
        made.append(name)
        return name

    yield make
    for name in made:
        kube.delete("namespaces", name, missing_ok=True)


def annotate(kube, namespace: str, annotations: dict[str, str | None]) -> None:
    kube.patch("namespaces", namespace, {"metadata": {"annotations": annotations}})


def tags_of(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def group_names(sm) -> set[str]:
    return {
        g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    }


def assumed(aws, role: str) -> list[dict[str, str]]:
    """The operator's AssumeRole requests for `role` (the test's own clients use other roles)."""
    return [r.params or {} for r in aws.requests("AssumeRole") if (r.params or {}).get("RoleArn") == role]


def message(obj: dict[str, Any] | None, ctype: str = "Stalled") -> str:
    return str(condition(obj, ctype).get("message"))


def test_objects_land_in_their_namespaces_account_and_region(
    kube, aws, operator_env, tmp_path, make_namespace
):
    role = aws.create_role(OTHER, "registry", external_id="tenant-a")
    tenant_s3 = aws.client_in(OTHER, "s3")
    aws.make_bucket("tenant-a-artifacts", client=tenant_s3)
    aws.make_bucket("tenant-a-sources", client=tenant_s3)
    tenant_s3.put_object(Bucket="tenant-a-sources", Key="churn/model.joblib", Body=WEIGHTS)
    aws.make_bucket("registry-artifacts")  # the operator's own (MRO_ARTIFACT_BUCKET)
    tenant = make_namespace(
        {ROLE_ANNOTATION: role, EXTERNAL_ID_ANNOTATION: "tenant-a", BUCKET_ANNOTATION: "tenant-a-artifacts"}
    )
    own = make_namespace()
    # -n: the operator watches only these two, and namespaces (cluster-scoped) still cluster-wide
    operator = OperatorProcess(operator_env, tmp_path / "operator.log", ["-n", tenant, "-n", own]).start()
    try:
        for namespace in (tenant, own):
            kube.create(resource("ModelPackageGroup", "churn", {}), namespace=namespace)
        kube.create(resource("ModelPackageGroup", "west", {"region": "us-west-2"}), namespace=own)
        spec = package_spec("churn", modelApprovalStatus="Approved")
        container = spec["inferenceSpecification"]["containers"][0]
        container.pop("modelDataUrl")
        container["modelDataArtifact"] = "model"
        spec["artifacts"] = [
            {
                "name": "model",
                "files": [
                    {
                        "path": "model.joblib",
                        "source": "s3://tenant-a-sources/churn/model.joblib",
                        "sha256": hashlib.sha256(WEIGHTS).hexdigest(),
                    }
                ],
            }
        ]
        kube.create(resource("ModelPackage", "churn-v1", spec), namespace=tenant)
        model = {
            "executionRoleArn": f"arn:aws:iam::{OTHER}:role/sagemaker",
            "primaryContainer": {"modelPackageRef": {"name": "churn-v1"}},
        }
        kube.create(resource("Model", "churn", model), namespace=tenant)

        theirs = wait_ready(kube, "mpg", "churn", tenant, operator)
        ours = wait_ready(kube, "mpg", "churn", own, operator)
        west = wait_ready(kube, "mpg", "west", own, operator)
        version = wait_ready(kube, "mp", "churn-v1", tenant, operator)
        made = wait_ready(kube, "mdl", "churn", tenant, operator)
    finally:
        operator.stop()
    if operator.process and operator.process.returncode not in (0, -15):
        print(operator.log()[-20000:])

    # status: the same group name in two accounts (names are account-wide: no AlreadyExists)
    assert theirs["status"]["arn"] == f"arn:aws:sagemaker:{aws.region}:{OTHER}:model-package-group/churn"
    assert (
        ours["status"]["arn"] == f"arn:aws:sagemaker:{aws.region}:{aws.account_id}:model-package-group/churn"
    )
    assert west["status"]["arn"] == f"arn:aws:sagemaker:us-west-2:{aws.account_id}:model-package-group/west"
    assert version["status"]["arn"].startswith(f"arn:aws:sagemaker:{aws.region}:{OTHER}:model-package/churn/")
    assert made["status"]["arn"] == f"arn:aws:sagemaker:{aws.region}:{OTHER}:model/churn"

    # SageMaker, as each account and region sees it: each object where it belongs, and only there
    tenant_sm, own_sm = aws.client_in(OTHER, "sagemaker"), aws.client("sagemaker")
    west_sm = aws.client("sagemaker", region="us-west-2")
    assert group_names(tenant_sm) == {"churn"} and group_names(own_sm) == {"churn"}
    assert group_names(west_sm) == {"west"}
    assert tags_of(tenant_sm, theirs["status"]["arn"])[IDENTITY_KEY] == f"default/{tenant}/churn"
    assert tags_of(own_sm, ours["status"]["arn"])[IDENTITY_KEY] == f"default/{own}/churn"
    assert (
        tenant_sm.describe_model(ModelName="churn")["PrimaryContainer"]["ModelPackageName"]
        == (version["status"]["arn"])
    )
    assert own_sm.list_models()["Models"] == []
    # the artifact went to the namespace's bucket, in its account, with its credentials
    (artifact,) = version["status"]["artifacts"]
    assert artifact["uri"].startswith(f"s3://tenant-a-artifacts/model-registry/{tenant}/churn-v1/")
    key = artifact["uri"].split("/", 3)[3]
    assert tenant_s3.head_object(Bucket="tenant-a-artifacts", Key=key)["ContentLength"] == artifact["size"]
    assert aws.client("s3").list_objects_v2(Bucket="registry-artifacts").get("KeyCount") == 0

    # the role was assumed once (cached for every object and call), with the namespace's session
    # name and its External ID; every call in account 222222222222 was made with its credentials
    assert assumed(aws, role) == [
        {"RoleArn": role, "RoleSessionName": f"model-registry-operator-{tenant}", "ExternalId": "tenant-a"}
    ]
    creates = {r.operation: r.account for r in aws.requests() if r.operation.startswith("Create")}
    assert creates["CreateModel"] == OTHER
    assert {r.account for r in aws.requests("CreateModelPackageGroup")} == {OTHER, aws.account_id}
    assert {r.region for r in aws.requests("CreateModelPackageGroup")} == {aws.region, "us-west-2"}
    assert {r.account for r in aws.requests("CreateModelPackage")} == {OTHER}


def test_a_refused_role_stalls_with_the_trust_policy_to_add(kube, aws, operator, make_namespace):
    role = aws.create_role(OTHER, "registry", external_id="tenant-a")  # trusts only with this External ID
    namespace = make_namespace({ROLE_ANNOTATION: role, EXTERNAL_ID_ANNOTATION: "guessed"})
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=namespace)
    stalled = wait_condition(kube, "mpg", "churn", namespace, "Stalled", "AssumeRoleFailed", operator)
    text = message(stalled)
    assert role in text and "AccessDenied" in text and f"namespace {namespace}" in text
    assert '"Action": "sts:AssumeRole"' in text and '"Principal": {"AWS": "arn:aws:' in text
    assert "sts:ExternalId" in text and "guessed" not in text  # the value stays in the annotation
    assert "AssumeRoleFailed" in event_reasons(kube, namespace, "churn")
    assert aws.count("CreateModelPackageGroup") == 0 and aws.count("DescribeModelPackageGroup") == 0
    assert [p.get("ExternalId") for p in assumed(aws, role)][:1] == ["guessed"]

    # the admin corrects the annotation: the object goes on by itself (its resync)
    annotate(kube, namespace, {EXTERNAL_ID_ANNOTATION: "tenant-a"})
    ready = wait_ready(kube, "mpg", "churn", namespace, operator)
    assert ready["status"]["arn"] == f"arn:aws:sagemaker:{aws.region}:{OTHER}:model-package-group/churn"


def test_an_annotation_changed_after_objects_exist_is_account_changed(kube, aws, operator, make_namespace):
    role = aws.create_role(OTHER, "registry")
    namespace = make_namespace()
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=namespace)
    kube.create(
        resource(
            "Model",
            "churn",
            {
                "executionRoleArn": f"arn:aws:iam::{aws.account_id}:role/s",
                "primaryContainer": {"image": IMAGE},
            },
        ),
        namespace=namespace,
    )
    group = wait_ready(kube, "mpg", "churn", namespace, operator)
    wait_ready(kube, "mdl", "churn", namespace, operator)

    annotate(kube, namespace, {ROLE_ANNOTATION: role})  # the namespace moves to 222222222222
    for plural in ("mpg", "mdl"):
        moved = wait_condition(kube, plural, "churn", namespace, "Stalled", "AccountChanged", operator)
        text = message(moved)
        assert aws.account_id in text and OTHER in text and role in text
        assert moved["status"]["arn"].split(":")[4] == aws.account_id  # still its record
    tenant_sm = aws.client_in(OTHER, "sagemaker")
    assert group_names(tenant_sm) == set() and tenant_sm.list_models()["Models"] == []
    assert not [r for r in aws.requests() if r.operation.startswith("Create") and r.account == OTHER]

    # deleting it deletes nothing, in either account, and says so
    kube.delete("mpg", "churn", namespace=namespace)
    kube.wait_gone("mpg", "churn", namespace=namespace, timeout=30)
    wait_event(kube, namespace, "churn", "AccountChanged", operator)
    assert aws.count("DeleteModelPackageGroup") == 0
    own_sm = aws.client("sagemaker")
    assert (
        own_sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
        == (group["status"]["arn"])
    )

    # and back: the role annotation removed, the Model is the operator's own account's again
    annotate(kube, namespace, {ROLE_ANNOTATION: None})
    wait_until(
        lambda: condition(kube.find("mdl", "churn", namespace=namespace), "Ready").get("status") == "True",
        "the Model to be Ready again",
        operator=operator,
    )
