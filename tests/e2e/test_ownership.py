"""SageMaker names are account-wide, Kubernetes objects namespaced: a ModelPackageGroup named
churn in two namespaces maps to one SageMaker group. The first object's owner tag keeps it
its own: the second is Stalled/AlreadyExists and never touches the group, not even on delete."""

import uuid

import pytest

from conftest import condition, resource, wait_condition, wait_event, wait_ready, wait_until

pytestmark = pytest.mark.e2e
IDENTITY_KEY = "registry.mlops.dev/identity"


def tags_of(sm, arn):
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


@pytest.fixture
def other_namespace(kube):
    name = f"test-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    yield name
    kube.delete("namespaces", name, missing_ok=True)


def test_a_group_of_the_same_name_in_another_namespace_leaves_the_first_ones_alone(
    kube, kube_namespace, other_namespace, operator, aws
):
    sm = aws.client("sagemaker")
    kube.create(
        resource("ModelPackageGroup", "churn", {"tags": [{"key": "team", "value": "a"}]}),
        namespace=kube_namespace,
    )
    first = wait_ready(kube, "mpg", "churn", kube_namespace, operator)
    arn = first["status"]["arn"]
    assert tags_of(sm, arn) == {"team": "a", IDENTITY_KEY: f"default/{kube_namespace}/churn"}

    kube.create(
        resource(
            "ModelPackageGroup",
            "churn",
            {"tags": [{"key": "team", "value": "b"}], "deletionPolicy": "Delete"},
        ),
        namespace=other_namespace,
    )
    second = wait_condition(kube, "mpg", "churn", other_namespace, "Stalled", "AlreadyExists", operator)
    message = condition(second, "Stalled")["message"]
    assert (
        "group churn" in message
        and f"the Kubernetes object {kube_namespace}/churn of operator instance default" in message
    )
    assert "arn" not in second["status"]
    wait_event(kube, other_namespace, "churn", "AlreadyExists", operator)

    # several resyncs of both (every 3 s) later: no tag was written, the first is still Ready
    listed = aws.count("ListTags")
    wait_until(lambda: aws.count("ListTags") >= listed + 6, "both groups to be resynced", operator=operator)
    assert aws.count("AddTags") == aws.count("DeleteTags") == 0
    assert tags_of(sm, arn) == {"team": "a", IDENTITY_KEY: f"default/{kube_namespace}/churn"}
    assert wait_ready(kube, "mpg", "churn", kube_namespace, operator)["status"]["arn"] == arn

    kube.delete("mpg", "churn", namespace=other_namespace)
    kube.wait_gone("mpg", "churn", namespace=other_namespace, timeout=30)
    wait_event(kube, other_namespace, "churn", "NotOwned", operator)  # says why the group was left
    assert sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"] == arn
    assert tags_of(sm, arn) == {"team": "a", IDENTITY_KEY: f"default/{kube_namespace}/churn"}
    assert aws.count("DeleteModelPackageGroup") == 0
