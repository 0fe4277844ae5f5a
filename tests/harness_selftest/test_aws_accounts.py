"""Several accounts and regions on one endpoint, and STS AssumeRole with trust policies
(harness/aws/corrections/accounts.py), seen from boto3 over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import botocore.session
import pytest
from botocore.credentials import AssumeRoleCredentialFetcher, Credentials, DeferredRefreshableCredentials
from botocore.exceptions import ClientError

TENANT = "222222222222"
OTHER = "333333333333"
ANA = "arn:aws:iam::123456789012:user/ana"
INFERENCE = {
    "Containers": [
        {
            "Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2",
            "ModelDataUrl": "s3://bucket/model.tar.gz",
        }
    ]
}


def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def _trust(principal, condition=None, effect="Allow", action="sts:AssumeRole", key="Principal") -> dict:
    statement = {"Effect": effect, key: principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def _groups(sm) -> list[str]:
    return [
        g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    ]


def _control(aws, method: str, route: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{aws.endpoint_url}/_harness/{route}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# -- accounts ----------------------------------------------------------------------------


def test_a_group_made_with_assumed_credentials_is_the_roles_accounts_alone(aws):
    tenant = aws.client_in(aws.create_role(TENANT, "registry"), "sagemaker")
    home = aws.client("sagemaker")
    arn = tenant.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    assert arn == f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package-group/churn"
    assert _groups(home) == []
    _, code, message = _error(lambda: home.describe_model_package_group(ModelPackageGroupName="churn"))
    assert code == "ValidationException" and "123456789012:model-package-group/churn" in message

    # and the other way round: the default account's group of the same name is its own
    home.create_model_package_group(ModelPackageGroupName="churn", ModelPackageGroupDescription="home")
    home.create_model_package_group(ModelPackageGroupName="fraud")
    assert _groups(tenant) == ["churn"]
    assert "ModelPackageGroupDescription" not in tenant.describe_model_package_group(
        ModelPackageGroupName="churn"
    )
    assert sorted(_groups(home)) == ["churn", "fraud"]


def test_packages_models_and_tags_land_in_the_roles_account(aws):
    tenant = aws.client_in(TENANT, "sagemaker")
    tenant.create_model_package_group(ModelPackageGroupName="churn", Tags=[{"Key": "team", "Value": "a"}])
    version = tenant.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    assert version == f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package/churn/1"
    model = tenant.create_model(
        ModelName="churn-model",
        ExecutionRoleArn=f"arn:aws:iam::{TENANT}:role/sagemaker",
        PrimaryContainer={"ModelPackageName": version},
    )["ModelArn"]
    assert model == f"arn:aws:sagemaker:us-east-2:{TENANT}:model/churn-model"
    tenant.add_tags(ResourceArn=model, Tags=[{"Key": "stage", "Value": "prod"}])
    assert tenant.list_tags(ResourceArn=model)["Tags"] == [{"Key": "stage", "Value": "prod"}]
    created_by = tenant.describe_model_package(ModelPackageName=version)["CreatedBy"]["IamIdentity"]["Arn"]
    assert created_by == f"arn:aws:sts::{TENANT}:assumed-role/harness-access/harness"

    home = aws.client("sagemaker")
    assert home.list_models()["Models"] == []
    assert home.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"] == []
    _, code, _ = _error(lambda: home.describe_model(ModelName="churn-model"))
    assert code == "ValidationException"


def test_s3_sts_and_iam_calls_with_assumed_credentials_are_the_roles_accounts(aws):
    role = aws.create_role(TENANT, "registry")
    s3 = aws.client_in(role, "s3")
    aws.make_bucket("tenant-artifacts", client=s3)
    aws.make_bucket("home-artifacts")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["tenant-artifacts"]
    assert [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]] == ["home-artifacts"]

    identity = aws.client_in(role, "sts").get_caller_identity()
    assert identity["Account"] == TENANT
    assert identity["Arn"] == f"arn:aws:sts::{TENANT}:assumed-role/registry/harness"

    iam = aws.client_in(role, "iam")
    made = iam.create_role(RoleName="made-there", AssumeRolePolicyDocument=json.dumps(_trust("*")))
    assert made["Role"]["Arn"] == f"arn:aws:iam::{TENANT}:role/made-there"
    _, code, _ = _error(lambda: aws.client("iam").get_role(RoleName="made-there"))
    assert code == "NoSuchEntity"


def test_one_endpoint_serves_every_region_by_the_signature(aws):
    east, west = aws.client("sagemaker"), aws.client("sagemaker", region="us-west-2")
    a = east.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    b = west.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    assert a == "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn"
    assert b == "arn:aws:sagemaker:us-west-2:123456789012:model-package-group/churn"
    east.delete_model_package_group(ModelPackageGroupName="churn")
    assert _groups(east) == [] and _groups(west) == ["churn"]
    tenant_west = aws.client_in(TENANT, "sagemaker", region="eu-west-1")
    arn = tenant_west.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    assert arn == f"arn:aws:sagemaker:eu-west-1:{TENANT}:model-package-group/churn"
    assert [(r.account, r.region) for r in aws.requests("CreateModelPackageGroup")] == [
        ("123456789012", "us-east-2"),
        ("123456789012", "us-west-2"),
        (TENANT, "eu-west-1"),
    ]


def test_a_configured_identitys_key_belongs_to_its_account(aws):
    user = f"arn:aws:iam::{OTHER}:user/ops"
    arn = aws.client("sagemaker", identity=user).create_model_package_group(ModelPackageGroupName="g")[
        "ModelPackageGroupArn"
    ]
    assert arn == f"arn:aws:sagemaker:us-east-2:{OTHER}:model-package-group/g"
    identity = aws.client("sts", identity=user).get_caller_identity()
    assert (identity["Arn"], identity["Account"]) == (user, OTHER)
    assert identity["UserId"].startswith("AIDA")


# -- AssumeRole: trust policies ----------------------------------------------------------


def test_a_role_that_does_not_exist_cannot_be_assumed(aws):
    status, code, message = _error(
        lambda: aws.assume_role(f"arn:aws:iam::{TENANT}:role/registry", session_name="mro")
    )
    caller = aws.client("sts").get_caller_identity()["Arn"]
    assert (status, code) == (403, "AccessDenied")
    assert message == (
        f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: "
        f"arn:aws:iam::{TENANT}:role/registry"
    )


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::123456789012:root"},
        {"AWS": "123456789012"},
        {"AWS": ANA},
        {"AWS": [f"arn:aws:iam::{OTHER}:root", ANA]},
        {"AWS": "*"},
        "*",
    ],
    ids=["account-root", "account-id", "caller-arn", "one-of-a-list", "any-aws", "anyone"],
)
def test_the_trust_policy_admits_the_caller(aws, principal):
    role = aws.create_role(TENANT, "registry", _trust(principal))
    credentials = aws.assume_role(role, identity=ANA, session_name="mro-ns")
    assert credentials["AccessKeyId"].startswith("ASIA")
    caller = aws.client("sts", identity=ANA).get_caller_identity()["Arn"]
    assert caller == ANA


@pytest.mark.parametrize(
    "trust",
    [
        pytest.param(_trust({"AWS": f"arn:aws:iam::{OTHER}:root"}), id="another-account"),
        pytest.param(_trust({"AWS": "arn:aws:iam::123456789012:user/bob"}), id="another-user"),
        pytest.param(_trust({"Service": "sagemaker.amazonaws.com"}), id="a-service-principal"),
        pytest.param(
            _trust({"AWS": "123456789012"}, action="sts:AssumeRoleWithWebIdentity"), id="another-action"
        ),
        pytest.param(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "sts:*"},
                    {"Effect": "Deny", "Principal": {"AWS": ANA}, "Action": "sts:AssumeRole"},
                ],
            },
            id="an-explicit-deny",
        ),
        pytest.param(_trust({"AWS": ANA}, key="NotPrincipal"), id="not-principal"),
        pytest.param(
            _trust("*", condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}), id="an-mfa-condition"
        ),
    ],
)
def test_the_trust_policy_refuses_others(aws, trust):
    role = aws.create_role(TENANT, "registry", trust)
    status, code, message = _error(lambda: aws.assume_role(role, identity=ANA))
    assert (status, code) == (403, "AccessDenied")
    assert message == f"User: {ANA} is not authorized to perform: sts:AssumeRole on resource: {role}"


def test_the_external_id_condition_must_be_met(aws):
    role = aws.create_role(TENANT, "registry", external_id="tenant-a-7f3")
    for external_id in (None, "tenant-b-000"):
        status, code, _ = _error(lambda e=external_id: aws.assume_role(role, external_id=e))
        assert (status, code) == (403, "AccessDenied")
    aws.assume_role(role, external_id="tenant-a-7f3", session_name="mro-team-a")
    calls = aws.requests("AssumeRole")
    assert [c.status for c in calls] == [403, 403, 200]
    assert calls[-1].service == "sts" and calls[-1].account == "123456789012"
    assert calls[-1].params == {
        "RoleArn": role,
        "RoleSessionName": "mro-team-a",
        "ExternalId": "tenant-a-7f3",
    }
    assert "ExternalId" not in calls[0].params


def test_trust_conditions_on_the_session_name_and_principal(aws):
    trust = _trust(
        {"AWS": "123456789012"},
        condition={
            "StringLike": {"sts:RoleSessionName": "mro-*"},
            "ArnEquals": {"aws:PrincipalArn": ANA},
        },
    )
    role = aws.create_role(TENANT, "registry", trust)
    aws.assume_role(role, identity=ANA, session_name="mro-team-a")
    _, code, _ = _error(lambda: aws.assume_role(role, identity=ANA, session_name="other"))
    assert code == "AccessDenied"
    _, code, _ = _error(lambda: aws.assume_role(role, session_name="mro-team-a"))  # another principal
    assert code == "AccessDenied"


def test_a_role_session_can_assume_a_role_that_trusts_its_role(aws):
    hub = aws.create_role("123456789012", "operator")
    tenant = aws.create_role(TENANT, "registry", _trust({"AWS": hub}))
    chained = aws.client_in(hub, "sts", session_name="op")
    answer = chained.assume_role(RoleArn=tenant, RoleSessionName="mro")
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{TENANT}:assumed-role/registry/mro"
    _, code, _ = _error(lambda: aws.assume_role(tenant))  # the default keys are not that role
    assert code == "AccessDenied"


def test_a_role_created_through_iam_is_honoured(aws):
    iam = aws.client_in(TENANT, "iam")
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(_trust({"AWS": OTHER})))
    role = f"arn:aws:iam::{TENANT}:role/reader"
    _, code, _ = _error(lambda: aws.assume_role(role))
    assert code == "AccessDenied"
    aws.assume_role(role, identity=f"arn:aws:iam::{OTHER}:user/x")


@pytest.mark.parametrize(
    ("kwargs", "member"),
    [({"RoleSessionName": "team-a/churn"}, "roleSessionName"), ({"ExternalId": "has space"}, "externalId")],
)
def test_session_name_and_external_id_patterns_are_enforced(aws, kwargs, member):
    role = aws.create_role(TENANT, "registry", _trust("*"))
    call = {"RoleArn": role, "RoleSessionName": "mro", **kwargs}
    status, code, message = _error(lambda: aws.client("sts").assume_role(**call))
    assert (status, code) == (400, "ValidationError")
    assert message.startswith("1 validation error detected: Value ") and f"at '{member}'" in message


def test_a_malformed_role_arn_is_a_validation_error(aws):
    status, code, message = _error(lambda: aws.assume_role("registry-role-not-an-arn"))
    assert (status, code, message) == (400, "ValidationError", "registry-role-not-an-arn is invalid")


def test_assume_role_can_be_throttled(aws):
    role = aws.create_role(TENANT, "registry")
    aws.faults.throttle("AssumeRole", count=1)
    status, code, _ = _error(lambda: aws.assume_role(role))
    assert (status, code) == (400, "Throttling")
    assert aws.assume_role(role)["AccessKeyId"]


# -- the control API and fixture helpers ---------------------------------------------------


def test_roles_through_the_control_api(aws):
    status, answer = _control(
        aws, "POST", "roles", {"account": TENANT, "name": "registry", "externalId": "x-1"}
    )
    assert (status, answer) == (200, {"arn": f"arn:aws:iam::{TENANT}:role/registry"})
    aws.assume_role(answer["arn"], external_id="x-1")
    (logged,) = [r for r in _control(aws, "GET", "requests")[1]["requests"] if r["operation"] == "AssumeRole"]
    assert (logged["service"], logged["account"], logged["region"]) == ("sts", "123456789012", "us-east-2")
    assert logged["params"] == {"RoleArn": answer["arn"], "RoleSessionName": "harness", "ExternalId": "x-1"}
    status, answer = _control(aws, "POST", "roles", {"account": TENANT, "name": "registry"})
    assert status == 400 and answer["error"].startswith("name:")
    status, answer = _control(
        aws, "POST", "roles", {"account": TENANT, "name": "r2", "trust": {"Version": "2012-10-17"}}
    )
    assert (status, answer) == (400, {"error": "trust: the policy has no Statement"})
    bad_trust = _trust("*") | {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}]
    }
    status, answer = _control(aws, "POST", "roles", {"account": TENANT, "name": "r3", "trust": bad_trust})
    assert status == 400 and "prohibited field Resource" in answer["error"]
    status, answer = _control(aws, "POST", "roles", {"account": "2222", "name": "r"})
    assert status == 400 and answer["error"].startswith("account:")
    status, answer = _control(aws, "GET", "roles")
    assert [r["arn"] for r in answer["roles"]] == [f"arn:aws:iam::{TENANT}:role/registry"]
    aws.reset()
    assert _control(aws, "GET", "roles")[1] == {"roles": []}


def test_client_in_an_account_makes_its_access_role_once(aws):
    first = aws.client_in(TENANT, "sagemaker")
    second = aws.client_in(TENANT, "sagemaker", region="us-west-2")
    first.create_model_package_group(ModelPackageGroupName="a")
    second.create_model_package_group(ModelPackageGroupName="b")
    assert _groups(first) == ["a"] and _groups(second) == ["b"]
    assert [r["arn"] for r in _control(aws, "GET", "roles")[1]["roles"]] == [
        f"arn:aws:iam::{TENANT}:role/harness-access"
    ]


def test_a_session_longer_than_the_roles_maximum_is_refused(aws):
    role = aws.create_role(TENANT, "registry")
    sts = aws.client("sts")
    status, code, message = _error(
        lambda: sts.assume_role(RoleArn=role, RoleSessionName="mro", DurationSeconds=7200)
    )
    assert (status, code) == (400, "ValidationError")
    assert message == "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    assert sts.assume_role(RoleArn=role, RoleSessionName="mro", DurationSeconds=3600)["Credentials"]


def test_botocores_refreshable_assume_role_credentials_work_against_the_endpoint(aws):
    # what the operator does per namespace: AssumeRoleCredentialFetcher behind
    # DeferredRefreshableCredentials, the source client being a plain STS client
    role = aws.create_role(TENANT, "registry", external_id="tenant-a-7f3")
    session = boto3.session.Session()
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=lambda service, **kw: session.client(
            service, endpoint_url=aws.endpoint_url, region_name=aws.region, **kw
        ),
        source_credentials=Credentials("testing", "testing"),
        role_arn=role,
        extra_args={"ExternalId": "tenant-a-7f3", "RoleSessionName": "mro-team-a"},
    )
    credentials = DeferredRefreshableCredentials(
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    botocore_session = botocore.session.Session()
    botocore_session._credentials = credentials
    sm = boto3.session.Session(botocore_session=botocore_session, region_name=aws.region).client(
        "sagemaker", endpoint_url=aws.endpoint_url
    )
    arn = sm.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    assert arn == f"arn:aws:sagemaker:us-east-2:{TENANT}:model-package-group/churn"
    (call,) = aws.requests("AssumeRole")
    assert call.params == {"RoleArn": role, "RoleSessionName": "mro-team-a", "ExternalId": "tenant-a-7f3"}
