"""How the ModelPackage controller uses the identity index: what it tells the registry about
the versions other objects record, the ClientToken it sends, and what a version found after a
crash costs."""

from __future__ import annotations

import datetime

import pytest

from controller_calls import DictLookup, reconcile
from fakes import FakeRegistry
from model_registry_operator.controllers import modelpackage as mp
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.context import Context
from model_registry_operator.identity import IDENTITY_KEY
from model_registry_operator.settings import Settings

IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
SPEC = {
    "modelPackageGroupRef": {"name": "churn"},
    "inferenceSpecification": {
        "containers": [{"image": IMAGE, "modelDataUrl": "s3://models/churn/model.tar.gz"}],
        "supportedContentTypes": ["text/csv"],
        "supportedResponseMIMETypes": ["text/csv"],
    },
}
ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/{}"


def meta(name="churn-v1", uid="uid-1", generation=1, created=None):
    return Meta(name, "ml", uid, generation, created)


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


@pytest.fixture
def lookup(ctx):
    group = reconcile(mpg.CONTROLLER, {}, Meta("churn", "ml", "uid-g", 1), {}, ctx)
    return DictLookup({("ModelPackageGroup", "ml", "churn"): {"spec": {}, "status": group.status}})


def package(lookup, name, status, **spec):
    lookup.objects[("ModelPackage", "ml", name)] = {"spec": {**SPEC, **spec}, "status": status}


def test_the_lookup_is_told_which_versions_other_objects_record(ctx, lookup):
    package(lookup, "churn-v2", {"arn": ARN.format(2)})
    package(lookup, "churn-v3", {"arn": ARN.format(3)})
    package(lookup, "adopted", {"arn": ARN.format(4)}, modelPackageVersion=4)  # any mark: not told
    package(lookup, "new", {})
    package(lookup, "churn-v1", {"arn": ARN.format(1)})  # the object itself (its lost version)
    reconcile(mp.CONTROLLER, SPEC, meta(), {}, ctx, lookup)
    assert ctx.registry.recorded == {
        ARN.format(2): "default/ml/churn-v2",
        ARN.format(3): "default/ml/churn-v3",
    }


def test_the_client_token_follows_the_identity_and_the_request_not_the_uid(ctx, lookup):
    reconcile(mp.CONTROLLER, SPEC, meta(uid="uid-1"), {}, ctx, lookup)
    ctx.registry.packages.clear()  # as if the version were looked for and not found
    reconcile(mp.CONTROLLER, SPEC, meta(uid="uid-2"), {}, ctx, lookup)
    changed = {**SPEC, "modelApprovalStatus": "Approved"}
    ctx.registry.packages.clear()
    reconcile(mp.CONTROLLER, changed, meta(uid="uid-3"), {}, ctx, lookup)
    tokens = [request["ClientToken"] for op, request in ctx.registry.requests if op == "create_package"]
    assert tokens[0] == tokens[1] != tokens[2]
    assert len(tokens[0]) == 36


def found_after_a_crash(ctx, lookup, created, generation=1, **spec):
    """churn-v1 registered its version, and the operator died before the status write."""
    first = reconcile(
        mp.CONTROLLER, {**SPEC, **spec}, meta(generation=generation, created=created), {}, ctx, lookup
    )
    assert first.status["arn"]
    before = ctx.registry.calls["list_tags"]
    again = reconcile(
        mp.CONTROLLER, {**SPEC, **spec}, meta(generation=generation, created=created), {}, ctx, lookup
    )
    assert again.status["arn"] == first.status["arn"] and ctx.registry.calls["create_package"] == 1
    return ctx.registry.calls["list_tags"] - before


def test_a_version_its_own_create_made_before_a_crash_needs_no_tag_listing(ctx, lookup):
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    assert found_after_a_crash(ctx, lookup, created) == 0


def test_a_version_an_earlier_object_of_the_identity_made_has_its_tags_read(ctx, lookup):
    """Re-applied after a delete with Retain: the old object's spec may have had other tags."""
    created = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    assert found_after_a_crash(ctx, lookup, created) == 1


def test_a_version_made_for_an_older_generation_has_its_tags_read(ctx, lookup):
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    assert found_after_a_crash(ctx, lookup, created, generation=2) == 1


def test_a_spec_with_tags_always_has_them_applied(ctx, lookup):
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    found_after_a_crash(ctx, lookup, created, tags=[{"key": "team", "value": "risk"}])
    arn = next(iter(ctx.registry.packages))
    assert ctx.registry.tags[arn] == {"team": "risk"}
    assert ctx.registry.packages[arn]["CustomerMetadataProperties"] == {IDENTITY_KEY: "default/ml/churn-v1"}


def test_the_operators_index_lists_every_package_for_the_lookup():
    from model_registry_operator.controllers.wiring import IndexLookup

    body = {"spec": SPEC, "status": {"arn": ARN.format(2)}, "deleting": False}
    lookup = IndexLookup({"modelpackage_index": {("ml", "churn-v2"): [body]}})
    assert list(lookup.each("ModelPackage")) == [("ml", "churn-v2", body)]
    assert list(lookup.each("Model")) == []
    assert mp.recorded_versions(
        mp.Call(meta(), SPEC, {}, lookup), Context.create(FakeRegistry(), Settings())
    ) == {ARN.format(2): "default/ml/churn-v2"}
