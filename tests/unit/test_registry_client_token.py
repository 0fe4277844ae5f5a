"""client_token_for: deterministic, from the stable identity (and the request), within the
API's ClientToken constraints."""

from __future__ import annotations

import re

import botocore.session
import pytest

from model_registry_operator.registry import client_token_for

IDENTITY = "default/ml/churn-v1"
REQUEST = {
    "ModelPackageGroupName": "churn",
    "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.2", "ModelDataUrl": "s3://m/1.tar.gz"}]},
    "CustomerMetadataProperties": {"registry.mlops.dev/identity": IDENTITY},
}


def client_token_shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateModelPackage").input_shape.members["ClientToken"]


def test_same_identity_same_token_in_every_process():
    assert client_token_for(IDENTITY) == client_token_for(IDENTITY)
    assert client_token_for(IDENTITY, salt=3) == client_token_for(IDENTITY, "3")


def test_identity_and_salt_both_change_the_token():
    assert client_token_for(IDENTITY) != client_token_for("default/ml/churn-v2")
    assert client_token_for(IDENTITY) != client_token_for("blue/ml/churn-v1")
    assert client_token_for(IDENTITY) != client_token_for(IDENTITY, salt=1)


def test_the_same_request_gives_the_same_token_whatever_its_key_order_or_token():
    reordered = dict(reversed(list(REQUEST.items())))
    assert client_token_for(IDENTITY, request=REQUEST) == client_token_for(IDENTITY, request=reordered)
    with_token = {**REQUEST, "ClientToken": "something-else"}
    assert client_token_for(IDENTITY, request=REQUEST) == client_token_for(IDENTITY, request=with_token)


def test_a_changed_request_is_a_new_token():
    """SageMaker (as AWS does) may refuse a token reused with other parameters: a changed
    request is a new call, and the identity index says whether a version already exists."""
    changed = {**REQUEST, "ModelApprovalStatus": "Approved"}
    assert client_token_for(IDENTITY, request=REQUEST) != client_token_for(IDENTITY, request=changed)
    assert client_token_for(IDENTITY, request=REQUEST) != client_token_for(IDENTITY)


@pytest.mark.parametrize("salt", ["", 1, "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/3"])
@pytest.mark.parametrize("request_", [None, REQUEST])
def test_token_fits_the_api_constraints(salt, request_):
    shape = client_token_shape()
    token = client_token_for(IDENTITY, salt, request_)
    assert shape.metadata["min"] <= len(token) <= shape.metadata["max"]
    assert re.fullmatch(shape.metadata["pattern"], token)


def test_an_empty_owner_is_refused_by_name():
    with pytest.raises(ValueError, match="owner"):
        client_token_for("")
