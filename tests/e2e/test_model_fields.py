"""Model spec fields beyond the containers reach SageMaker, and changing one replaces the
model (SageMaker has no UpdateModel)."""

import pytest

from conftest import IMAGE, ROLE, resource, wait_event, wait_ready, wait_until

pytestmark = pytest.mark.e2e

VPC = {"securityGroupIds": ["sg-0a1b2c"], "subnets": ["subnet-1", "subnet-2"]}


def test_network_isolation_and_vpc_reach_sagemaker_and_a_change_replaces_the_model(
    kube, kube_namespace, operator, aws
):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(
        resource(
            "Model",
            "isolated",
            {
                "primaryContainer": {"image": IMAGE, "modelDataUrl": "s3://models/churn/model.tar.gz"},
                "executionRoleArn": ROLE,
                "enableNetworkIsolation": True,
                "vpcConfig": VPC,
            },
        ),
        namespace=ns,
    )
    model = wait_ready(kube, "mdl", "isolated", ns, operator)
    described = sm.describe_model(ModelName="isolated")
    assert described["EnableNetworkIsolation"] is True
    assert described["VpcConfig"] == {"SecurityGroupIds": VPC["securityGroupIds"], "Subnets": VPC["subnets"]}
    assert described["ExecutionRoleArn"] == ROLE
    assert model["status"]["arn"] == described["ModelArn"]

    kube.patch("mdl", "isolated", {"spec": {"enableNetworkIsolation": False}}, namespace=ns)
    wait_event(kube, ns, "isolated", "Replaced", operator)
    wait_until(
        lambda: sm.describe_model(ModelName="isolated")["EnableNetworkIsolation"] is False,
        "the replaced model without network isolation",
        operator=operator,
    )
    assert wait_ready(kube, "mdl", "isolated", ns, operator)["status"]["observedGeneration"] == 2
    assert sm.describe_model(ModelName="isolated")["VpcConfig"]["Subnets"] == VPC["subnets"]
    assert (aws.count("DeleteModel"), aws.count("CreateModel")) == (1, 2)


def test_pipeline_containers_and_inference_execution_config_reach_sagemaker(
    kube, kube_namespace, operator, aws
):
    ns, sm = kube_namespace, aws.client("sagemaker")
    kube.create(
        resource(
            "Model",
            "pipeline",
            {
                "containers": [
                    {"containerHostname": "prepare", "image": IMAGE, "environment": {"STAGE": "prepare"}},
                    {"containerHostname": "predict", "image": IMAGE},
                ],
                "inferenceExecutionConfig": {"mode": "Direct"},
                "executionRoleArn": ROLE,
            },
        ),
        namespace=ns,
    )
    wait_ready(kube, "mdl", "pipeline", ns, operator)
    described = sm.describe_model(ModelName="pipeline")
    assert described["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert [c["ContainerHostname"] for c in described["Containers"]] == ["prepare", "predict"]
    assert described["Containers"][0]["Environment"] == {"STAGE": "prepare"}
    assert "PrimaryContainer" not in described
    assert described["EnableNetworkIsolation"] is False
