"""Corrections for SageMaker models and tags (harness/aws/corrections/models.py, tags.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
INFERENCE = {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"}]}


def _error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def _model(sm, name="churn-model", image=IMAGE):
    return sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})


# -- models ------------------------------------------------------------------------------


def test_existing_model_name_is_refused_not_overwritten(aws):
    sm = aws.client("sagemaker")
    arn = _model(sm)["ModelArn"]
    code, message = _error(lambda: _model(sm, image="other:latest"))
    assert code == "ValidationException"
    assert message == f'Cannot create already existing model "{arn}".'
    assert sm.describe_model(ModelName="churn-model")["PrimaryContainer"]["Image"] == IMAGE


def test_model_can_be_recreated_after_delete(aws):
    sm = aws.client("sagemaker")
    _model(sm)
    sm.delete_model(ModelName="churn-model")
    _model(sm, image="new:1")
    assert sm.describe_model(ModelName="churn-model")["PrimaryContainer"]["Image"] == "new:1"


@pytest.mark.parametrize("operation", ["describe_model", "delete_model"])
def test_missing_model_is_a_validation_error_naming_its_arn(aws, operation):
    sm = aws.client("sagemaker")
    code, message = _error(lambda: getattr(sm, operation)(ModelName="ghost"))
    assert code == "ValidationException"
    assert message == f'Could not find model "arn:aws:sagemaker:us-east-2:{aws.account_id}:model/ghost".'


def test_describe_model_answers_network_isolation_vpc_and_role_as_created(aws):
    sm = aws.client("sagemaker")
    vpc = {"SecurityGroupIds": ["sg-0a1b"], "Subnets": ["subnet-1", "subnet-2"]}
    sm.create_model(
        ModelName="isolated",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE},
        EnableNetworkIsolation=True,
        VpcConfig=vpc,
    )
    described = sm.describe_model(ModelName="isolated")
    assert described["EnableNetworkIsolation"] is True
    assert described["VpcConfig"] == vpc
    assert described["ExecutionRoleArn"] == ROLE
    assert "Containers" not in described
    _model(sm, name="open")
    described = sm.describe_model(ModelName="open")
    assert described["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in described


def test_describe_pipeline_model_answers_containers_and_execution_config_as_created(aws):
    sm = aws.client("sagemaker")
    containers = [
        {"ContainerHostname": "pre", "Image": IMAGE, "Environment": {"STAGE": "pre"}},
        {"ContainerHostname": "predict", "Image": IMAGE},
    ]
    sm.create_model(ModelName="pipeline", Containers=containers, InferenceExecutionConfig={"Mode": "Direct"})
    described = sm.describe_model(ModelName="pipeline")
    assert described["Containers"] == containers
    assert described["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert "PrimaryContainer" not in described
    assert "ExecutionRoleArn" not in described  # optional, and none was specified


# -- tags --------------------------------------------------------------------------------


@pytest.fixture
def arns(aws):
    sm = aws.client("sagemaker")
    group = sm.create_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]
    version = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    unversioned = sm.create_model_package(ModelPackageName="solo", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    model = _model(sm)["ModelArn"]
    return {"group": group, "version": version, "unversioned": unversioned, "model": model}


@pytest.mark.parametrize("kind", ["group", "version", "unversioned", "model"])
def test_add_list_delete_tags(aws, arns, kind):
    sm, arn = aws.client("sagemaker"), arns[kind]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ml"}, {"Key": "tier", "Value": "1"}])
    sm.delete_tags(ResourceArn=arn, TagKeys=["tier"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


@pytest.mark.parametrize("kind", ["group", "version", "model"])
def test_add_tags_with_an_existing_key_overwrites_it(aws, arns, kind):
    sm, arn = aws.client("sagemaker"), arns[kind]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ml"}, {"Key": "keep", "Value": "x"}])
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "data"}])
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "data", "keep": "x"}
    assert len(sm.list_tags(ResourceArn=arn)["Tags"]) == 2


def test_tags_given_at_creation_are_listed(aws):
    sm = aws.client("sagemaker")
    arn = sm.create_model_package_group(
        ModelPackageGroupName="tagged", Tags=[{"Key": "team", "Value": "ml"}]
    )["ModelPackageGroupArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_tags_on_a_versioned_create_are_refused_and_addtags_works(aws):
    # botocore's CreateModelPackage.Tags: a version uses its group's tags, "you cannot supply
    # a tag argument"; tagging the version afterwards (AddTags) is how it gets its own
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    tags = [{"Key": "team", "Value": "ml"}]
    code, message = _error(
        lambda: sm.create_model_package(
            ModelPackageGroupName="churn", InferenceSpecification=INFERENCE, Tags=tags
        )
    )
    assert code == "ValidationException" and "Tags" in message
    assert sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"] == []
    arn = sm.create_model_package(
        ModelPackageGroupName="churn", InferenceSpecification=INFERENCE, ClientToken="token-1"
    )["ModelPackageArn"]
    # a repeated ClientToken does not make the request valid, and an empty list is still a tag argument
    for refused_tags in (tags, []):
        code, _ = _error(
            lambda: sm.create_model_package(
                ModelPackageGroupName="churn",
                InferenceSpecification=INFERENCE,
                Tags=refused_tags,
                ClientToken="token-1",
            )
        )
        assert code == "ValidationException"
    sm.add_tags(ResourceArn=arn, Tags=tags)
    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags
    unversioned = sm.create_model_package(
        ModelPackageName="solo", InferenceSpecification=INFERENCE, Tags=tags
    )
    assert sm.list_tags(ResourceArn=unversioned["ModelPackageArn"])["Tags"] == tags


def test_tags_of_a_missing_resource_are_a_validation_error(aws, arns):
    sm = aws.client("sagemaker")
    sm.delete_model_package(ModelPackageName=arns["version"])
    code, _ = _error(lambda: sm.list_tags(ResourceArn=arns["version"]))
    assert code == "ValidationException"
    code, _ = _error(
        lambda: sm.add_tags(
            ResourceArn=arns["model"].replace("churn-model", "ghost"), Tags=[{"Key": "k", "Value": "v"}]
        )
    )
    assert code == "ValidationException"


def test_model_from_a_model_package_needs_the_package_to_exist(aws):
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    version = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=INFERENCE)[
        "ModelPackageArn"
    ]
    sm.create_model(
        ModelName="from-package", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": version}
    )
    assert sm.describe_model(ModelName="from-package")["PrimaryContainer"]["ModelPackageName"] == version
    code, message = _error(
        lambda: sm.create_model(
            ModelName="dangling",
            ExecutionRoleArn=ROLE,
            Containers=[{"Image": IMAGE}, {"ModelPackageName": version.replace("/1", "/7")}],
        )
    )
    assert code == "ValidationException" and "churn/7 does not exist" in message
    _error(lambda: sm.describe_model(ModelName="dangling"))  # nothing was created
