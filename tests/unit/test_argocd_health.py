"""The Argo CD health check (manifests/argocd/health.lua), run by real Lua 5.1 (Argo CD's
gopher-lua implements 5.1) on hand-written statuses and on the statuses the controllers
write; and the generated argocd-cm patch, which must embed exactly that script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from controller_calls import DictLookup, delete, reconcile
from fakes import FakeRegistry
from model_registry_operator import GROUP, VERSION
from model_registry_operator.api import KINDS
from model_registry_operator.controllers import model as mdl
from model_registry_operator.controllers import modelpackage as mp
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.context import Context
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
DELETED_AT = "2025-01-02T03:04:05Z"


def to_lua(lua: Any, value: Any) -> Any:
    """As Argo CD hands `obj` to Lua: objects and arrays are tables (arrays from 1), every
    JSON number a float64."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        return lua.table(*(to_lua(lua, item) for item in value))
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def health(body: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    lua = lua51.LuaRuntime()
    assert lua.execute("return _VERSION") == "Lua 5.1"
    lua.globals().obj = to_lua(lua, json.loads(json.dumps(body)))  # only what the API server can store
    result = lua.execute(script)
    assert result["status"] in HEALTH_STATUSES
    return result["status"], result["message"]


def body(
    kind: str, status: dict[str, Any] | None, generation: int = 1, deleting: bool = False
) -> dict[str, Any]:
    metadata = {"name": "churn", "namespace": "ml", "uid": "uid-1", "generation": generation}
    if deleting:
        metadata["deletionTimestamp"] = DELETED_AT
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


def written(state: str, reason: str, message: str, generation: int = 1, **fields: Any) -> dict[str, Any]:
    """A status as common.finish writes it."""
    outcome = {"Ready": Outcome.ready, "Reconciling": Outcome.reconciling, "Stalled": Outcome.stalled}[state]
    return {
        **fields,
        "observedGeneration": generation,
        "conditions": build_conditions(outcome(reason, message), generation, None, "2025-01-01T00:00:00Z"),
    }


def only(conditions: list[dict[str, Any]], generation: int = 1, **fields: Any) -> dict[str, Any]:
    return {**fields, "observedGeneration": generation, "conditions": conditions}


WAITING_1 = ("Progressing", "Waiting for the operator to observe generation 1.")
WAITING_2 = ("Progressing", "Waiting for the operator to observe generation 2.")
READY_GROUP = written("Ready", "Synced", "Model package group churn exists.")

# (kind, status, generation, deleting, expected health): what every kind shares
COMMON = [
    pytest.param(None, 1, False, WAITING_1, id="no-status"),
    pytest.param({}, 1, False, WAITING_1, id="empty-status"),
    pytest.param({"arn": "arn:x"}, 1, False, WAITING_1, id="status-without-generation"),
    pytest.param(READY_GROUP, 2, False, WAITING_2, id="spec-edited-since-ready"),
    pytest.param(
        written("Stalled", "InvalidSpec", "Fix spec.x."), 2, False, WAITING_2, id="spec-edited-since-stalled"
    ),
    pytest.param({**READY_GROUP, "observedGeneration": 2}, 2, False, WAITING_2, id="ready-condition-stale"),
    pytest.param(
        written("Stalled", "InvalidSpec", "Fix spec.x."),
        1,
        False,
        ("Degraded", "InvalidSpec: Fix spec.x."),
        id="stalled",
    ),
    pytest.param(
        written("Reconciling", "Creating", "Creating it."),
        1,
        False,
        ("Progressing", "Creating: Creating it."),
        id="reconciling",
    ),
    pytest.param(
        written("Reconciling", "Throttled", "Slow down. Retrying in 15s.", 7),
        7,
        False,
        ("Progressing", "Throttled: Slow down. Retrying in 15s."),
        id="reconciling-later-generation",
    ),
    pytest.param(
        written("Ready", "Synced", "It exists.", 3), 3, False, ("Healthy", "It exists."), id="ready"
    ),
    # kstatus readers other than this operator may write conditions without observedGeneration
    pytest.param(
        only([{"type": "Ready", "status": "True", "message": "Fine."}]),
        1,
        False,
        ("Healthy", "Fine."),
        id="ready-without-condition-generation",
    ),
    pytest.param(
        only([{"type": "Stalled", "status": "True"}]), 1, False, ("Degraded", ""), id="stalled-without-words"
    ),
    pytest.param(
        only([{"type": "Stalled", "status": "True", "reason": "Bad"}]),
        1,
        False,
        ("Degraded", "Bad"),
        id="stalled-reason-only",
    ),
    # Stalled wins over Reconciling, and both over Ready, should more than one be True
    pytest.param(
        only(
            [
                {"type": "Ready", "status": "True", "message": "ok"},
                {"type": "Reconciling", "status": "True", "reason": "Creating", "message": "wait"},
                {"type": "Stalled", "status": "True", "reason": "Bad", "message": "fix"},
            ]
        ),
        1,
        False,
        ("Degraded", "Bad: fix"),
        id="stalled-first",
    ),
    pytest.param(
        only(
            [
                {"type": "Ready", "status": "True", "message": "ok"},
                {"type": "Reconciling", "status": "True", "reason": "Creating", "message": "wait"},
            ]
        ),
        1,
        False,
        ("Progressing", "Creating: wait"),
        id="reconciling-before-ready",
    ),
    pytest.param(
        only(
            [
                {"type": "Ready", "status": "False", "reason": "Unknown", "message": "hm"},
                {"type": "Stalled", "status": "False"},
            ]
        ),
        1,
        False,
        ("Progressing", "Ready is False, and neither Reconciling nor Stalled is True: Unknown: hm"),
        id="nothing-true",
    ),
    pytest.param(
        only([]),
        1,
        False,
        ("Progressing", "The operator has not written the Ready, Reconciling and Stalled conditions yet."),
        id="no-conditions",
    ),
    pytest.param(
        written("Ready", "Synced", "It exists."),
        1,
        True,
        ("Progressing", "Being deleted: Synced: It exists."),
        id="deleting",
    ),
    pytest.param(None, 1, True, ("Progressing", "Being deleted."), id="deleting-without-status"),
    pytest.param(
        written("Stalled", "VersionsRemain", "Delete them."),
        1,
        True,
        ("Progressing", "Being deleted: VersionsRemain: Delete them."),
        id="deleting-stalled",
    ),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("status, generation, deleting, expected", COMMON)
def test_health_of_every_kind(kind, status, generation, deleting, expected):
    assert health(body(kind, status, generation, deleting)) == expected


PACKAGE_ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/2"
PACKAGE_READY = f"{PACKAGE_ARN} is registered and matches the spec."


@pytest.mark.parametrize(
    "kind, fields, message",
    [
        (
            "ModelPackage",
            {"modelPackageVersion": 2, "modelPackageGroupName": "churn", "modelApprovalStatus": "Approved"},
            f"Version 2 of churn, Approved. {PACKAGE_READY}",
        ),
        (
            "ModelPackage",
            {"modelPackageVersion": 2, "modelApprovalStatus": "PendingManualApproval"},
            f"Version 2, PendingManualApproval. {PACKAGE_READY}",
        ),
        ("ModelPackage", {"modelApprovalStatus": "Rejected"}, f"Rejected. {PACKAGE_READY}"),  # unversioned
        ("ModelPackage", {}, PACKAGE_READY),
        (
            "Model",
            {"containers": [{"modelPackageName": PACKAGE_ARN}, {"containerHostname": "b"}]},
            f"From {PACKAGE_ARN}. {PACKAGE_READY}",
        ),
        ("Model", {"containers": [{"containerHostname": "a"}]}, PACKAGE_READY),
        ("ModelPackageGroup", {"modelPackageVersion": 2, "modelApprovalStatus": "Approved"}, PACKAGE_READY),
    ],
)
def test_healthy_message_leads_with_what_matters_per_kind(kind, fields, message):
    assert health(body(kind, written("Ready", "Synced", PACKAGE_READY, **fields))) == ("Healthy", message)


# Statuses the controllers really write.

IMAGE = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sklearn:1.2"
PACKAGE_SPEC = {
    "modelPackageGroupRef": {"name": "churn"},
    "inferenceSpecification": {
        "containers": [{"image": IMAGE, "modelDataUrl": "s3://models/churn/model.tar.gz"}],
        "supportedContentTypes": ["text/csv"],
        "supportedResponseMIMETypes": ["text/csv"],
    },
}
MODEL_SPEC = {
    "primaryContainer": {"modelPackageRef": {"name": "churn-v1"}},
    "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker",
}
GROUP_META, PACKAGE_META, MODEL_META = (
    Meta("churn", "ml", "uid-g", 1),
    Meta("churn-v1", "ml", "uid-p", 1),
    Meta("churn", "ml", "uid-m", 1),
)


@pytest.fixture
def ctx():
    return Context.create(FakeRegistry(), Settings())


def of(kind: str, result: Any, generation: int = 1, deleting: bool = False) -> tuple[str, str]:
    return health(body(kind, result.status, generation, deleting))


def group_lookup(ctx) -> DictLookup:
    group = reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx)
    return DictLookup({("ModelPackageGroup", "ml", "churn"): {"spec": {}, "status": group.status}})


def ready_package(ctx, spec=PACKAGE_SPEC) -> Any:
    lookup, status = group_lookup(ctx), {}
    for _ in range(5):
        result = reconcile(mp.CONTROLLER, spec, PACKAGE_META, status, ctx, lookup)
        status = result.status
        if result.retry is None:
            return result
    raise AssertionError(f"not converged: {status}")


def test_group_from_the_controller(ctx):
    assert of("ModelPackageGroup", reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx)) == (
        "Healthy",
        "Model package group churn exists in SageMaker and matches the spec.",
    )
    invalid = reconcile(mpg.CONTROLLER, {"modelPackageGroupName": "bad_name!"}, GROUP_META, {}, ctx)
    health_, message = of("ModelPackageGroup", invalid)
    assert (
        health_ == "Degraded"
        and message.startswith("InvalidSpec: ")
        and "spec.modelPackageGroupName" in message
    )


def test_group_pending_in_sagemaker_is_progressing(ctx):
    ctx.registry.create_group({"ModelPackageGroupName": "churn"})
    ctx.registry.groups["churn"]["ModelPackageGroupStatus"] = "Pending"
    assert of("ModelPackageGroup", reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx)) == (
        "Progressing",
        "Pending: Model package group churn is Pending in SageMaker.",
    )
    ctx.registry.groups["churn"]["ModelPackageGroupStatus"] = "Failed"
    health_, message = of("ModelPackageGroup", reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx))
    assert health_ == "Degraded" and message.startswith("GroupFailed: ")


def test_group_throttled_is_progressing_then_terminal_error_degraded(ctx):
    ctx.registry.fail_next("describe_group", RetryableError("Throttled", "Rate exceeded.", 15))
    health_, message = of("ModelPackageGroup", reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx))
    assert health_ == "Progressing" and message.startswith("Throttled: Rate exceeded. Retrying in")
    ctx.registry.fail_next("describe_group", TerminalError("AccessDenied", "Not allowed."))
    assert of("ModelPackageGroup", reconcile(mpg.CONTROLLER, {}, GROUP_META, {}, ctx)) == (
        "Degraded",
        "AccessDenied: Not allowed.",
    )


def test_group_being_deleted_with_versions_left_is_progressing(ctx):
    ready_package(ctx)
    waiting = delete(mpg.CONTROLLER, {}, GROUP_META, {}, ctx)
    health_, message = of("ModelPackageGroup", waiting, deleting=True)
    assert health_ == "Progressing" and message.startswith("Being deleted: WaitingForVersions: ")


def test_package_waiting_for_approval_is_healthy_and_its_model_progressing(ctx):
    package = ready_package(ctx)
    version_arn = package.status["arn"]
    assert of("ModelPackage", package) == (
        "Healthy",
        f"Version 1 of churn, PendingManualApproval. {version_arn} is registered and matches the spec.",
    )
    lookup = DictLookup(
        {("ModelPackage", "ml", "churn-v1"): {"spec": PACKAGE_SPEC, "status": package.status}}
    )
    health_, message = of("Model", reconcile(mdl.CONTROLLER, MODEL_SPEC, MODEL_META, {}, ctx, lookup))
    assert health_ == "Progressing"
    assert message.startswith("WaitingForApproval: Waiting for ModelPackage churn-v1 to be Approved")


def test_approved_package_and_its_model_are_healthy(ctx):
    package = ready_package(ctx, {**PACKAGE_SPEC, "modelApprovalStatus": "Approved"})
    version_arn = package.status["arn"]
    assert of("ModelPackage", package) == (
        "Healthy",
        f"Version 1 of churn, Approved. {version_arn} is registered and matches the spec.",
    )
    lookup = DictLookup(
        {("ModelPackage", "ml", "churn-v1"): {"spec": PACKAGE_SPEC, "status": package.status}}
    )
    model = reconcile(mdl.CONTROLLER, MODEL_SPEC, MODEL_META, {}, ctx, lookup)
    assert of("Model", model) == (
        "Healthy",
        f"From {version_arn}. Model churn exists in SageMaker and matches the spec.",
    )
    # the spec edited, not yet seen by the operator
    assert of("Model", model, generation=2) == WAITING_2


def test_model_whose_name_is_taken_is_degraded(ctx):
    ctx.registry.create_model({"ModelName": "churn", "ExecutionRoleArn": "arn:aws:iam::1:role/other"})
    spec = {"primaryContainer": {"image": IMAGE}, "executionRoleArn": MODEL_SPEC["executionRoleArn"]}
    health_, message = of("Model", reconcile(mdl.CONTROLLER, spec, MODEL_META, {}, ctx, DictLookup()))
    assert health_ == "Degraded" and message.startswith("AlreadyExists: A SageMaker model named churn")


def test_package_progress_and_failures(ctx):
    missing_group = reconcile(mp.CONTROLLER, PACKAGE_SPEC, PACKAGE_META, {}, ctx, DictLookup())
    health_, message = of("ModelPackage", missing_group)
    assert health_ == "Progressing" and message.startswith(
        "WaitingForGroup: ModelPackageGroup churn does not exist"
    )
    invalid = reconcile(
        mp.CONTROLLER, {**PACKAGE_SPEC, "modelPackageName": "other"}, PACKAGE_META, {}, ctx, DictLookup()
    )
    health_, message = of("ModelPackage", invalid)
    assert health_ == "Degraded" and message.startswith("InvalidSpec: ") and "exactly one of" in message

    ctx.registry.package_status = "InProgress"
    lookup = group_lookup(ctx)
    created = reconcile(mp.CONTROLLER, PACKAGE_SPEC, PACKAGE_META, {}, ctx, lookup)
    assert of("ModelPackage", created)[0] == "Progressing"
    in_progress = reconcile(mp.CONTROLLER, PACKAGE_SPEC, PACKAGE_META, created.status, ctx, lookup)
    version_arn = in_progress.status["arn"]
    assert of("ModelPackage", in_progress) == (
        "Progressing",
        f"InProgress: SageMaker reports {version_arn} as InProgress.",
    )

    package = ctx.registry.packages[version_arn]
    package["ModelPackageStatus"] = "Failed"
    package["ModelPackageStatusDetails"] = {
        "ValidationStatuses": [{"Name": "v", "Status": "Failed", "FailureReason": "image not found"}]
    }
    ctx.listings.forget("churn")
    health_, message = of(
        "ModelPackage", reconcile(mp.CONTROLLER, PACKAGE_SPEC, PACKAGE_META, in_progress.status, ctx, lookup)
    )
    assert health_ == "Degraded" and message.startswith("PackageFailed: ") and "image not found" in message


# The generated patch.


def load_render():
    spec = importlib.util.spec_from_file_location("argocd_render", ARGOCD / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_patch_is_generated_from_the_script():
    committed = ARGOCD / "argocd-cm-patch.yaml"
    assert committed.exists(), "manifests/argocd/argocd-cm-patch.yaml is missing: run `make argocd`"
    assert committed.read_text() == load_render().render(), "argocd-cm-patch.yaml is stale: run `make argocd`"


def test_patch_embeds_the_script_for_each_kind_byte_for_byte():
    render = load_render()
    patch = yaml.safe_load(render.render())
    assert (patch["apiVersion"], patch["kind"], patch["metadata"]) == (
        "v1",
        "ConfigMap",
        {"name": "argocd-cm"},
    )
    assert patch["data"] == {f"resource.customizations.health.{GROUP}_{kind}": SCRIPT for kind in KINDS}
    # also for a script whose shape a careless indentation would break
    tricky = "-- a\n\n  local x = 1\nreturn {status = 'Healthy', message = ''}\n"
    assert set(yaml.safe_load(render.render(tricky))["data"].values()) == {tricky}


def test_script_is_lua_51_without_later_syntax():
    # gopher-lua also has no goto or integer division; Lua 5.1 refuses both at parse time,
    # which is what the tests above run, so this only pins that the runtime is 5.1
    lua = lua51.LuaRuntime()
    with pytest.raises(lua51.LuaSyntaxError):
        lua.execute("local a = 3 // 2")
    lua.globals().obj = to_lua(lua, body("Model", None))
    assert lua.execute(SCRIPT)["status"] == "Progressing"
