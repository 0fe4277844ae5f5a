"""What the operator writes to the Kubernetes API for one package: kopf's record of the
last handled spec rides on the operator's own status patch (no metadata patch of its
own), and survives the API server's pruning, so that an event that changes nothing kopf
compares is not handled again."""

import time

import kopf
import pytest

from conftest import OperatorProcess, package_spec, resource, wait_ready, wait_until
from model_registry_operator.api.common import KOPF_STATUS

pytestmark = pytest.mark.e2e
WRITES = ("create", "update", "patch", "delete")
OPERATOR_AGENTS = ("kopf/", "model-registry-operator")  # kopf's client, the progress writer's


@pytest.fixture
def quiet_operator(operator_env, tmp_path, request):
    # No resync inside the test: every write counted below is a handler's.
    process = OperatorProcess(
        {**operator_env, "MRO_RESYNC_SECONDS": "3600"}, tmp_path / "operator.log", ["-A"]
    ).start()
    yield process
    process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(process.log()[-20000:])


def operator_writes(kube, plural: str, name: str, namespace: str, since: int = 0) -> list[str]:
    """The operator's writes to one object, from the `since`-th request of the log on."""
    return [
        f"{r.verb} {r.resource}" + (f"/{r.subresource}" if r.subresource else "")
        for r in kube.requests[since:]
        if (r.resource, r.name, r.namespace) == (plural, name, namespace)
        and r.verb in WRITES
        and r.user_agent.startswith(OPERATOR_AGENTS)
    ]


def test_one_package_costs_the_finalizer_patch_and_one_status_patch_per_change(
    kube, kube_namespace, quiet_operator
):
    if not hasattr(kube, "requests"):
        pytest.fail("this test reads the emulator's request log; it cannot run against a real cluster")
    ns, operator = kube_namespace, quiet_operator
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
    package = wait_ready(kube, "mp", "churn-v1", ns, operator)
    assert operator_writes(kube, "modelpackages", "churn-v1", ns) == [
        "patch modelpackages",  # kopf adds the finalizer
        "patch modelpackages/status",  # the outcome, with kopf's record of the handled spec
    ]
    assert package["status"]["kopf"]["lastHandledConfiguration"]  # kept by the API server's pruning

    # A change kopf leaves out of its comparison (what `kubectl apply` adds to an object
    # made by `kubectl create`): a watch event that must not be handled as a new object.
    kube.patch(
        "mp",
        "churn-v1",
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}},
        namespace=ns,
    )
    time.sleep(1)  # kopf folds events within 0.1 s into one: keep this one apart from the change below
    kube.patch("mp", "churn-v1", {"spec": {"approvalDescription": "Checked by QA"}}, namespace=ns)
    wait_until(
        lambda: (
            lambda p: (
                p
                and p["status"].get("observedGeneration") == 2
                and p["status"].get("approvalDescription") == "Checked by QA"
            )
        )(kube.find("mp", "churn-v1", namespace=ns)),
        "the description to be applied",
        operator=operator,
    )
    assert operator_writes(kube, "modelpackages", "churn-v1", ns) == [
        "patch modelpackages",
        "patch modelpackages/status",
        "patch modelpackages/status",
    ]


def left_by_annotation_storing_version(kube, plural: str, name: str, namespace: str) -> None:
    """The object as versions before status.kopf leave it: kopf's record in an annotation."""
    body = kopf.Body(kube.get(plural, name, namespace=namespace))
    storage, patch = kopf.AnnotationsDiffBaseStorage(prefix="registry.mlops.dev"), kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    kube.patch(plural, name, {"metadata": dict(patch.metadata)}, namespace=namespace)
    kube.patch_status(plural, name, {KOPF_STATUS: None}, namespace=namespace)


def test_after_an_upgrade_each_object_is_reconciled_once_and_a_change_made_meanwhile_is_applied(
    kube, kube_namespace, quiet_operator, aws
):
    ns, operator, sm = kube_namespace, quiet_operator, aws.client("sagemaker")
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=ns)
    kube.create(resource("ModelPackage", "churn-v1", package_spec("churn")), namespace=ns)
    wait_ready(kube, "mp", "churn-v1", ns, operator)
    operator.stop()
    for plural, name in (("modelpackagegroups", "churn"), ("modelpackages", "churn-v1")):
        left_by_annotation_storing_version(kube, plural, name, ns)
    kube.patch(
        "mp", "churn-v1", {"spec": {"approvalDescription": "Changed during the upgrade"}}, namespace=ns
    )
    before = len(kube.requests)

    operator.start()
    package = wait_until(
        lambda: (lambda p: p if KOPF_STATUS in p["status"] else None)(
            kube.get("mp", "churn-v1", namespace=ns)
        ),
        "kopf's record in the status",
        operator=operator,
    )
    assert package["status"]["observedGeneration"] == 2
    assert package["status"]["approvalDescription"] == "Changed during the upgrade"
    # one reconcile (a create: there was no record to compare with): outcome and record in one patch
    assert operator_writes(kube, "modelpackages", "churn-v1", ns, since=before) == [
        "patch modelpackages/status"
    ]
    assert len(sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]) == 1

    kube.patch("mp", "churn-v1", {"spec": {"approvalDescription": "Checked by QA"}}, namespace=ns)
    wait_until(
        lambda: (
            kube.get("mp", "churn-v1", namespace=ns)["status"].get("approvalDescription") == "Checked by QA"
        ),
        "the description to be applied",
        operator=operator,
    )
    assert operator_writes(kube, "modelpackages", "churn-v1", ns, since=before) == [
        "patch modelpackages/status",
        "patch modelpackages/status",
    ]
