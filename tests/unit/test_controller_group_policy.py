"""ModelPackageGroup.spec.resourcePolicy: the group's resource policy (Put/Get/Delete
ModelPackageGroupPolicy), compared as parsed JSON, owned by the object once it set one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller_calls import delete, reconcile
from fakes import FakeRegistry, sagemaker_error
from harness.crd_validation import validate
from model_registry_operator.api import parse_spec
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.context import Context
from model_registry_operator.settings import Settings

CRDS = Path(__file__).resolve().parents[2] / "crds"
PRODUCTION = "222222222222"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ProductionReads",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{PRODUCTION}:root"},
            "Action": ["sagemaker:DescribeModelPackageGroup", "sagemaker:DescribeModelPackage"],
            "Resource": "arn:aws:sagemaker:us-east-2:123456789012:model-package-group/churn",
        }
    ],
}


def meta(generation: int = 1) -> Meta:
    return Meta("churn", "ml", "uid-1", generation)


def with_policy(policy=POLICY, **spec):
    return {**spec, "resourcePolicy": policy}


def state(result):
    return next(
        (c["type"], c["reason"], c["message"]) for c in result.status["conditions"] if c["status"] == "True"
    )


def reasons(result):
    return [e.reason for e in result.events]


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


def applied(ctx):
    """A group made with POLICY: (its status, the registry's call counts reset)."""
    first = reconcile(mpg.CONTROLLER, with_policy(), meta(), {}, ctx)
    ctx.registry.calls.clear()
    return first.status


def test_created_with_the_group(ctx):
    result = reconcile(mpg.CONTROLLER, with_policy(), meta(), {}, ctx)
    assert state(result)[:2] == ("Ready", "Synced")
    assert json.loads(ctx.registry.group_policies["churn"]) == POLICY
    assert result.status["resourcePolicy"] == "Applied"
    assert reasons(result) == ["Created", "Updated"]
    assert "resource policy of model package group churn" in result.events[1].message
    # the document is sent as its compact JSON text, never in the create request
    (create,) = [r for op, r in ctx.registry.requests if op == "create_group"]
    assert "ResourcePolicy" not in create
    (put,) = [r for op, r in ctx.registry.requests if op == "put_group_policy"]
    assert put["ResourcePolicy"] == json.dumps(POLICY, separators=(",", ":"))


def test_updated_when_the_spec_changes(ctx):
    status = applied(ctx)
    changed = json.loads(json.dumps(POLICY))
    changed["Statement"][0]["Action"].append("sagemaker:ListModelPackages")
    result = reconcile(mpg.CONTROLLER, with_policy(changed), meta(2), status, ctx)
    assert state(result)[:2] == ("Ready", "Synced")
    assert ctx.registry.calls["put_group_policy"] == 1
    assert json.loads(ctx.registry.group_policies["churn"]) == changed
    assert reasons(result) == ["Updated"] and "another resource policy" in result.events[0].message


def test_key_order_and_whitespace_never_cause_an_update(ctx):
    status = applied(ctx)
    # SageMaker holds the same document, pretty-printed with its keys in another order
    ctx.registry.group_policies["churn"] = json.dumps(POLICY, indent=4, sort_keys=True)
    reordered = {
        "Statement": [dict(reversed(list(POLICY["Statement"][0].items())))],
        "Version": "2012-10-17",
    }
    result = reconcile(mpg.CONTROLLER, with_policy(reordered), meta(2), status, ctx)
    assert state(result)[:2] == ("Ready", "Synced") and result.events == []
    assert ctx.registry.calls["get_group_policy"] == 1 and ctx.registry.calls["put_group_policy"] == 0
    resync = reconcile(mpg.CONTROLLER, with_policy(), meta(2), result.status, ctx, resync=True)
    assert resync.events == [] and ctx.registry.calls["put_group_policy"] == 0


def test_iam_equivalences_are_not_applied(ctx):
    """Documented in same_policy: a one-statement object and a list of it differ."""
    status = applied(ctx)
    single = {**POLICY, "Statement": POLICY["Statement"][0]}
    reconcile(mpg.CONTROLLER, with_policy(single), meta(2), status, ctx)
    assert ctx.registry.calls["put_group_policy"] == 1
    assert mpg.same_policy(json.dumps(POLICY), POLICY) and not mpg.same_policy("not json", POLICY)


def test_removing_the_field_deletes_the_policy_it_set(ctx):
    status = applied(ctx)
    result = reconcile(mpg.CONTROLLER, {}, meta(2), status, ctx)
    assert state(result)[:2] == ("Ready", "Synced")
    assert "churn" not in ctx.registry.group_policies
    assert "resourcePolicy" not in result.status
    assert reasons(result) == ["Updated"] and "deleted the resource policy" in result.events[0].message
    # from then on the group's policy is not looked at
    ctx.registry.calls.clear()
    again = reconcile(mpg.CONTROLLER, {}, meta(2), result.status, ctx, resync=True)
    assert again.events == [] and ctx.registry.calls["get_group_policy"] == 0


def test_a_policy_set_elsewhere_is_left_alone_while_the_spec_is_silent(ctx):
    # a group made by hand with a policy of its own, adopted by an object without the field
    ctx.registry.create_group({"ModelPackageGroupName": "churn"})
    ctx.registry.group_policies["churn"] = json.dumps(POLICY)
    result = reconcile(mpg.CONTROLLER, {}, meta(), {}, ctx)
    assert state(result)[:2] == ("Ready", "Synced") and "resourcePolicy" not in result.status
    assert ctx.registry.group_policies["churn"] == json.dumps(POLICY)
    assert ctx.registry.calls["get_group_policy"] == ctx.registry.calls["delete_group_policy"] == 0


def test_an_adopted_groups_equal_policy_becomes_the_objects(ctx):
    ctx.registry.create_group({"ModelPackageGroupName": "churn"})
    ctx.registry.group_policies["churn"] = json.dumps(POLICY, indent=2)
    result = reconcile(mpg.CONTROLLER, with_policy(), meta(), {}, ctx)
    assert result.status["resourcePolicy"] == "Applied" and ctx.registry.calls["put_group_policy"] == 0
    removed = reconcile(mpg.CONTROLLER, {}, meta(2), result.status, ctx)
    assert "churn" not in ctx.registry.group_policies and reasons(removed) == ["Updated"]


@pytest.mark.parametrize("outside", ["changed", "deleted"])
def test_drift_is_put_back_on_resync(ctx, outside):
    status = applied(ctx)
    if outside == "changed":
        ctx.registry.group_policies["churn"] = json.dumps({**POLICY, "Statement": []})
    else:
        del ctx.registry.group_policies["churn"]
    result = reconcile(mpg.CONTROLLER, with_policy(), meta(), status, ctx, resync=True)
    assert state(result)[:2] == ("Ready", "Synced")
    assert json.loads(ctx.registry.group_policies["churn"]) == POLICY
    assert reasons(result) == ["DriftCorrected"] and f"was {outside} in SageMaker" in result.events[0].message


def test_a_resync_reads_the_policy_only_of_a_group_whose_spec_sets_one(ctx):
    status = applied(ctx)
    resync = reconcile(mpg.CONTROLLER, with_policy(), meta(), status, ctx, resync=True)
    assert resync.events == [] and ctx.registry.calls["get_group_policy"] == 1
    assert ctx.registry.calls["put_group_policy"] == 0

    plain = Context.create(FakeRegistry(), Settings())
    first = reconcile(mpg.CONTROLLER, {}, meta(), {}, plain)
    reconcile(mpg.CONTROLLER, {}, meta(), first.status, plain, resync=True)
    assert not any("policy" in op for op in plain.registry.calls)


def test_a_policy_sagemaker_refuses_is_stalled_with_its_message(ctx):
    refusal = "The resource policy is not valid: Invalid principal in policy: 'AWS':'arn:aws:iam::2222:root'"
    ctx.registry.fail_next("put_group_policy", sagemaker_error("ValidationException", refusal))
    bad = with_policy({**POLICY, "Statement": [{**POLICY["Statement"][0], "Principal": {"AWS": "2222"}}]})
    result = reconcile(mpg.CONTROLLER, bad, meta(), {}, ctx)
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "ValidationError")
    assert "spec.resourcePolicy" in message and refusal in message
    assert "resourcePolicy" not in result.status and result.status["arn"].endswith("/churn")
    assert [(e.type, e.reason) for e in result.events] == [
        ("Normal", "Created"),
        ("Warning", "ValidationError"),
    ]
    # the same refusal again posts no second Event; a corrected spec goes through
    ctx.registry.fail_next("put_group_policy", sagemaker_error("ValidationException", refusal))
    again = reconcile(mpg.CONTROLLER, bad, meta(), result.status, ctx)
    assert state(again)[:2] == ("Stalled", "ValidationError") and again.events == []
    fixed = reconcile(mpg.CONTROLLER, with_policy(), meta(2), again.status, ctx)
    assert state(fixed)[:2] == ("Ready", "Synced") and fixed.status["resourcePolicy"] == "Applied"


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"Version": "2012-10-17"}, "spec.resourcePolicy.Statement: Field required"),
        ({"Statement": []}, "spec.resourcePolicy.Version: Field required"),
        (
            {"Version": "2024-01-01", "Statement": []},
            "spec.resourcePolicy.Version: Input should be '2012-10-17'",
        ),
        ({"Version": "2012-10-17", "Statement": ["x" * 20480]}, "SageMaker takes at most 20480"),
        ("{}", "spec.resourcePolicy: Input should be a valid dictionary"),
    ],
)
def test_an_invalid_document_is_refused_before_any_call(ctx, policy, problem):
    result = reconcile(mpg.CONTROLLER, with_policy(policy), meta(), {}, ctx)
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "InvalidSpec")
    assert problem in message, message
    assert sum(ctx.registry.calls.values()) == 0


def test_iam_keys_are_kept_as_written():
    spec = parse_spec("ModelPackageGroup", with_policy({**POLICY, "Id": "share-churn"}))
    assert list(spec.resourcePolicy) == ["Version", "Statement", "Id"]
    assert spec.resourcePolicy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{PRODUCTION}:root"}


def test_the_crd_refuses_obviously_wrong_documents_at_admission():
    crd = yaml.safe_load((CRDS / "modelpackagegroups.yaml").read_text())

    def causes(policy):
        obj = {
            "apiVersion": "registry.mlops.dev/v1alpha1",
            "kind": "ModelPackageGroup",
            "metadata": {"name": "churn"},
            "spec": {"resourcePolicy": policy},
        }
        return {(c["field"], c["reason"]) for c in validate(crd, obj)}

    assert causes({**POLICY, "Id": "kept", "Statement": POLICY["Statement"][0]}) == set()
    assert causes({"Version": "2012-10-17"}) == {("spec.resourcePolicy.Statement", "FieldValueRequired")}
    assert causes({"Statement": []}) == {("spec.resourcePolicy.Version", "FieldValueRequired")}
    assert ("spec.resourcePolicy.Version", "FieldValueNotSupported") in causes({**POLICY, "Version": "2024"})
    assert ("spec.resourcePolicy", "FieldValueTypeInvalid") in causes("{}")


def test_deleting_the_group_takes_its_policy_and_retain_keeps_both(ctx):
    status = applied(ctx)
    kept = delete(mpg.CONTROLLER, with_policy(deletionPolicy="Retain"), meta(), status, ctx)
    assert reasons(kept) == ["Retained"] and "churn" in ctx.registry.group_policies
    delete(mpg.CONTROLLER, with_policy(), meta(), status, ctx)
    assert "churn" not in ctx.registry.groups and "churn" not in ctx.registry.group_policies
