"""client_token_for: deterministic, within the API's ClientToken constraints."""

from __future__ import annotations

import re

import botocore.session
import pytest

from model_registry_operator.registry import client_token_for

UID = "6f1c2a4e-8d3b-4c5e-9f70-1a2b3c4d5e6f"


def client_token_shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateModelPackage").input_shape.members["ClientToken"]


def test_same_uid_same_token_in_every_process():
    assert client_token_for(UID) == client_token_for(UID)
    assert client_token_for(UID, salt=3) == client_token_for(UID, "3")


def test_uid_and_salt_both_change_the_token():
    assert client_token_for(UID) != client_token_for(UID.replace("6f", "7f", 1))
    assert client_token_for(UID) != client_token_for(UID, salt=1)


@pytest.mark.parametrize("salt", ["", 1, "generation-12"])
def test_token_fits_the_api_constraints(salt):
    shape = client_token_shape()
    token = client_token_for(UID, salt)
    assert shape.metadata["min"] <= len(token) <= shape.metadata["max"]
    assert re.fullmatch(shape.metadata["pattern"], token)


def test_an_empty_uid_is_refused_by_name():
    with pytest.raises(ValueError, match="uid"):
        client_token_for("")
