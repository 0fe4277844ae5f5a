"""Model package group resource policies and cross-account access through them
(harness/aws/corrections/group_policies.py), seen from boto3 over HTTP."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

TENANT = "222222222222"
HOME = "123456789012"
ANA = f"arn:aws:iam::{HOME}:user/ana"
ROLE = f"arn:aws:iam::{HOME}:role/sagemaker"
INFERENCE = {
    "Containers": [
        {
            "Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2",
            "ModelDataUrl": "s3://bucket/model.tar.gz",
        }
    ]
}
GROUP_ARN = f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package-group/churn"
PACKAGES = f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package/churn/*"


def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def _policy(
    principal=None, action="sagemaker:DescribeModelPackage", resource=PACKAGES, effect="Allow"
) -> str:
    statement = {
        "Sid": "Share",
        "Effect": effect,
        "Principal": principal if principal is not None else {"AWS": f"arn:aws:iam::{HOME}:root"},
        "Action": action,
        "Resource": resource,
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def owner(aws):
    """SageMaker in the tenant account, holding group churn with version 1."""
    sm = aws.client_in(TENANT, "sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)
    return sm


VERSION = f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package/churn/1"


# -- Put / Get / Delete ----------------------------------------------------------------------


def test_put_answers_the_group_arn_and_get_the_policy_verbatim(aws, owner):
    text = '{ "Version":"2012-10-17",\n  "Statement": [' + _policy().split("[", 1)[1]
    answer = owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=text)
    assert answer["ModelPackageGroupArn"] == GROUP_ARN
    assert owner.get_model_package_group_policy(ModelPackageGroupName="churn")["ResourcePolicy"] == text
    replacement = _policy(action="sagemaker:*")
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=replacement)
    assert (
        owner.get_model_package_group_policy(ModelPackageGroupName="churn")["ResourcePolicy"] == replacement
    )


def test_delete_removes_the_policy(aws, owner):
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy())
    owner.delete_model_package_group_policy(ModelPackageGroupName="churn")
    for call in (owner.get_model_package_group_policy, owner.delete_model_package_group_policy):
        status, code, message = _error(lambda c=call: c(ModelPackageGroupName="churn"))
        assert (status, code, message) == (
            400,
            "ValidationException",
            f"Cannot find resource policy for: {GROUP_ARN}",
        )


@pytest.mark.parametrize("operation", ["put", "get", "delete"])
def test_a_missing_group_is_a_validation_error(aws, operation):
    sm = aws.client("sagemaker")
    kwargs = {"ModelPackageGroupName": "ghost"}
    if operation == "put":
        kwargs["ResourcePolicy"] = _policy()
    call = getattr(sm, f"{operation}_model_package_group_policy")
    status, code, message = _error(lambda: call(**kwargs))
    assert (status, code) == (400, "ValidationException")
    assert (
        message
        == f"Cannot find Model Package Group: arn:aws:sagemaker:us-east-2:{HOME}:model-package-group/ghost"
    )


def test_the_group_is_named_not_given_by_arn(aws, owner):
    status, code, message = _error(
        lambda: owner.get_model_package_group_policy(ModelPackageGroupName=GROUP_ARN)
    )
    assert (status, code) == (400, "ValidationException")
    assert message == (
        f"1 validation error detected: Value '{GROUP_ARN}' at 'modelPackageGroupName' failed to satisfy "
        "constraint: Member must have length less than or equal to 63; "
        f"Value '{GROUP_ARN}' at 'modelPackageGroupName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    ).replace("1 validation error detected", "2 validation errors detected")


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ("{not json", "the policy is not JSON"),
        (json.dumps({"Statement": []}), "the policy has no Version"),
        (json.dumps({"Version": "2012-10-17"}), "the policy has no Statement"),
        (json.dumps({"Version": "2012-10-17", "Statement": []}), "Statement is empty"),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Principal": "*", "Action": "sagemaker:*", "Resource": "*"}],
                }
            ),
            "Statement[0] has no Effect",
        ),
        (_policy().replace('"Allow"', '"Maybe"'), "Statement[0].Effect must be Allow or Deny, not 'Maybe'"),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},
                }
            ),
            "Statement[0] has no Principal",
        ),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}],
                }
            ),
            "Statement[0] has no Action",
        ),
        (
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sagemaker:*"}],
                }
            ),
            "Statement[0] has no Resource",
        ),
        (
            _policy(action="DescribeModelPackage"),
            "Statement[0].Action: 'DescribeModelPackage' is not of the form service:action",
        ),
        (
            _policy().replace('"2012-10-17"', '"2020-01-01"'),
            "Version must be one of 2012-10-17, 2008-10-17, not '2020-01-01'",
        ),
    ],
)
def test_a_malformed_policy_is_refused_saying_what_is_wrong(aws, owner, policy, named):
    status, code, message = _error(
        lambda: owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=policy)
    )
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(f"Invalid policy provided: {named}")
    _, code, _ = _error(lambda: owner.get_model_package_group_policy(ModelPackageGroupName="churn"))
    assert code == "ValidationException"  # nothing was stored


def test_deleting_the_group_deletes_its_policy(aws):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    sm.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy())
    sm.delete_model_package_group(ModelPackageGroupName="churn")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    _, code, message = _error(lambda: sm.get_model_package_group_policy(ModelPackageGroupName="churn"))
    assert code == "ValidationException" and message.startswith("Cannot find resource policy for:")


# -- cross-account access ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "action", "resource"),
    [
        ({"AWS": f"arn:aws:iam::{HOME}:root"}, "sagemaker:DescribeModelPackage", PACKAGES),
        ({"AWS": HOME}, "sagemaker:*", "*"),
        ({"AWS": [f"arn:aws:iam::{TENANT}:root", ANA]}, "sagemaker:Describe*", VERSION),
        ("*", ["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"], [GROUP_ARN, PACKAGES]),
    ],
    ids=[
        "root-exact-action-group-packages",
        "account-id-any-action-any-resource",
        "caller-arn-wildcard",
        "anyone",
    ],
)
def test_a_package_shared_by_its_groups_policy_is_described_across_accounts(
    aws, owner, principal, action, resource
):
    owner.put_model_package_group_policy(
        ModelPackageGroupName="churn", ResourcePolicy=_policy(principal, action, resource)
    )
    described = aws.client("sagemaker", identity=ANA).describe_model_package(ModelPackageName=VERSION)
    assert described["ModelPackageArn"] == VERSION
    assert described["ModelPackageGroupName"] == "churn"
    assert described["InferenceSpecification"] == INFERENCE


def test_without_a_policy_another_account_is_denied(aws, owner):
    status, code, message = _error(
        lambda: aws.client("sagemaker", identity=ANA).describe_model_package(ModelPackageName=VERSION)
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert message == (
        f"User: {ANA} is not authorized to perform: sagemaker:DescribeModelPackage on resource: {VERSION} "
        "because no resource-based policy allows the sagemaker:DescribeModelPackage action"
    )


@pytest.mark.parametrize(
    "policy",
    [
        _policy({"AWS": "arn:aws:iam::333333333333:root"}),
        _policy({"AWS": f"arn:aws:iam::{HOME}:user/bob"}),
        _policy(action="sagemaker:ListModelPackages"),
        _policy(resource=f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package/fraud/*"),
        _policy(resource=GROUP_ARN),
    ],
    ids=["other-account", "other-user", "other-action", "other-group", "group-not-packages"],
)
def test_a_policy_that_does_not_name_the_caller_action_and_package_denies(aws, owner, policy):
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=policy)
    status, code, message = _error(
        lambda: aws.client("sagemaker", identity=ANA).describe_model_package(ModelPackageName=VERSION)
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert message.endswith(
        "because no resource-based policy allows the sagemaker:DescribeModelPackage action"
    )


def test_an_explicit_deny_wins(aws, owner):
    policy = json.loads(_policy(action="sagemaker:*", resource="*"))
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": ANA},
            "Action": "sagemaker:DescribeModelPackage",
            "Resource": "*",
        }
    )
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=json.dumps(policy))
    aws.client("sagemaker").describe_model_package(ModelPackageName=VERSION)  # another principal of HOME
    _, code, message = _error(
        lambda: aws.client("sagemaker", identity=ANA).describe_model_package(ModelPackageName=VERSION)
    )
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {ANA} is not authorized to perform: sagemaker:DescribeModelPackage on resource: {VERSION} "
        "with an explicit deny in a resource-based policy"
    )


def test_a_missing_version_of_a_shared_group_does_not_exist(aws, owner):
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy())
    missing = VERSION.replace("/1", "/9")
    status, code, message = _error(
        lambda: aws.client("sagemaker").describe_model_package(ModelPackageName=missing)
    )
    assert (status, code, message) == (400, "ValidationException", f"ModelPackage {missing} does not exist.")


def test_an_arn_of_another_region_names_nothing_here(aws, owner):
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy(resource="*"))
    elsewhere = VERSION.replace("us-east-2", "us-west-2")
    _, code, message = _error(
        lambda: aws.client("sagemaker").describe_model_package(ModelPackageName=elsewhere)
    )
    assert (code, message) == ("ValidationException", f"ModelPackage {elsewhere} does not exist.")
    home = aws.client("sagemaker")
    home.create_model_package_group(ModelPackageGroupName="churn")
    home.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)
    west = f"arn:aws:sagemaker:us-west-2:{HOME}:model-package/churn/1"  # same account, other region
    _, code, _ = _error(lambda: home.describe_model_package(ModelPackageName=west))
    assert code == "ValidationException"


def test_create_model_from_a_shared_package_needs_describe_on_it(aws, owner):
    home = aws.client("sagemaker")
    container = {"ModelPackageName": VERSION}
    status, code, message = _error(
        lambda: home.create_model(ModelName="churn-model", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    )
    assert (status, code) == (400, "AccessDeniedException")
    assert "sagemaker:DescribeModelPackage on resource: " + VERSION in message
    assert home.list_models()["Models"] == []

    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy())
    arn = home.create_model(ModelName="churn-model", ExecutionRoleArn=ROLE, PrimaryContainer=container)[
        "ModelArn"
    ]
    assert arn == f"arn:aws:sagemaker:us-east-2:{HOME}:model/churn-model"  # the caller's own account
    assert home.describe_model(ModelName="churn-model")["PrimaryContainer"]["ModelPackageName"] == VERSION
    assert owner.list_models()["Models"] == []


def test_a_shared_group_can_be_listed_and_described_when_allowed(aws, owner):
    home = aws.client("sagemaker")
    _, code, _ = _error(lambda: home.list_model_packages(ModelPackageGroupName=GROUP_ARN))
    assert code == "AccessDeniedException"
    policy = _policy(
        action=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackageGroup"], resource=GROUP_ARN
    )
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=policy)
    listed = home.list_model_packages(ModelPackageGroupName=GROUP_ARN)["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [VERSION]
    assert (
        home.describe_model_package_group(ModelPackageGroupName=GROUP_ARN)["ModelPackageGroupArn"]
        == GROUP_ARN
    )


def test_same_account_access_needs_no_policy(aws):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    arn = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    assert sm.describe_model_package(ModelPackageName=arn)["ModelPackageArn"] == arn
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": arn})


def test_updates_tags_and_new_versions_of_a_shared_group_need_their_own_actions(aws, owner):
    home = aws.client("sagemaker")
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=_policy())
    _, code, message = _error(
        lambda: home.update_model_package(ModelPackageArn=VERSION, ModelApprovalStatus="Approved")
    )
    assert code == "AccessDeniedException" and "sagemaker:UpdateModelPackage" in message
    policy = _policy(action=["sagemaker:UpdateModelPackage", "sagemaker:ListTags"], resource=PACKAGES)
    policy = json.loads(policy)
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": HOME},
            "Action": "sagemaker:CreateModelPackage",
            "Resource": GROUP_ARN,
        }
    )
    owner.put_model_package_group_policy(ModelPackageGroupName="churn", ResourcePolicy=json.dumps(policy))
    home.update_model_package(ModelPackageArn=VERSION, ModelApprovalStatus="Approved")
    assert owner.describe_model_package(ModelPackageName=VERSION)["ModelApprovalStatus"] == "Approved"
    assert home.list_tags(ResourceArn=VERSION)["Tags"] == []
    _, code, _ = _error(lambda: home.add_tags(ResourceArn=VERSION, Tags=[{"Key": "k", "Value": "v"}]))
    assert code == "AccessDeniedException"
    second = home.create_model_package(ModelPackageGroupName=GROUP_ARN, InferenceSpecification=INFERENCE)
    assert second["ModelPackageArn"] == VERSION.replace("/1", "/2")
    listed = owner.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageVersion"] for p in listed) == [1, 2]  # in the group's account
    assert home.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"] == []
    _, code, _ = _error(lambda: home.delete_model_package(ModelPackageName=VERSION))
    assert code == "AccessDeniedException"
