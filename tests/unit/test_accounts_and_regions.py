"""Accounts and regions (accounts.py, Context.scoped, Kind): which AWS account and region an
object's calls go to, the assumed-role sessions (botocore's refreshable credentials behind a
fake STS), AssumeRoleFailed and AccountChanged, with FakeRegistry standing for SageMaker."""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from controller_calls import DictLookup, delete, reconcile
from fakes import ACCOUNT, REGION, FakeRegistry
from model_registry_operator.accounts import (
    BUCKET_ANNOTATION,
    EXTERNAL_ID_ANNOTATION,
    ROLE_ANNOTATION,
    Accounts,
    arn_account,
    arn_region,
    session_name,
    trust_principal,
)
from model_registry_operator.controllers import model as mdl
from model_registry_operator.controllers import modelpackage as mp
from model_registry_operator.controllers import modelpackagegroup as mpg
from model_registry_operator.controllers.call import Meta
from model_registry_operator.controllers.conditions import Outcome, build_conditions
from model_registry_operator.controllers.context import Context
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.reasons import Reason
from model_registry_operator.settings import Settings

OTHER = "222222222222"
ROLE = f"arn:aws:iam::{OTHER}:role/registry"
OPERATOR = f"arn:aws:sts::{ACCOUNT}:assumed-role/model-registry-operator/botocore-session-1"
SECRET = "s3cr3t-of-the-assumed-role"


class FakeSts:
    """STS: GetCallerIdentity, and AssumeRole answering credentials that expire an hour
    after `now()`, or raising `refuse` (a ClientError or BotoCoreError)."""

    def __init__(self, now) -> None:
        self.now = now
        self.assumed: list[dict[str, Any]] = []
        self.identities = 0
        self.refuse: Exception | None = None
        self.lock = threading.Lock()

    def __call__(self, service: str, **credentials: Any) -> FakeSts:
        assert service == "sts"
        return self

    def get_caller_identity(self) -> dict[str, Any]:
        self.identities += 1
        return {"Account": ACCOUNT, "Arn": OPERATOR, "UserId": "AROA:x"}

    def assume_role(self, **request: Any) -> dict[str, Any]:
        with self.lock:
            self.assumed.append(request)
            count = len(self.assumed)
        if self.refuse is not None:
            raise self.refuse
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAASSUMED{count:09d}",
                "SecretAccessKey": SECRET,
                "SessionToken": "token",
                "Expiration": self.now() + datetime.timedelta(hours=1),
            },
            "AssumedRoleUser": {
                "Arn": f"arn:aws:sts::{OTHER}:assumed-role/registry/{request['RoleSessionName']}",
                "AssumedRoleId": "AROA:x",
            },
        }


def refused(code: str = "AccessDenied", status: int = 403) -> ClientError:
    message = f"User: {OPERATOR} is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "AssumeRole",
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


class World:
    """Accounts over a fake STS; registries are FakeRegistry in the account and region asked for."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.clock = Clock()
        self.sts = FakeSts(self.clock)
        self.session = botocore.session.Session()
        self.session.set_credentials("AKIAOPERATOR00000000", "operator-secret")
        self.made: list[tuple[botocore.session.Session, str]] = []
        self.copiers: list[tuple[str, str]] = []
        self.accounts = Accounts(
            settings or Settings(artifact_bucket="central"),
            REGION,
            session=self.session,
            registry_factory=self.registry,
            copier_factory=self.copier,
            sts_client=self.sts,
            clock=self.clock,
        )

    def registry(self, session: botocore.session.Session, region: str) -> FakeRegistry:
        self.made.append((session, region))
        credentials = session.get_credentials()
        account = OTHER if credentials.access_key.startswith("ASIA") else ACCOUNT
        return FakeRegistry(account, region)

    def copier(self, session: botocore.session.Session, region: str, bucket: str) -> Any:
        self.copiers.append((region, bucket))
        return lambda artifacts, **_: []


@pytest.fixture
def world() -> World:
    return World()


def annotated(external_id: str | None = None, **more: str) -> dict[str, str]:
    annotations = {ROLE_ANNOTATION: ROLE, **more}
    if external_id is not None:
        annotations[EXTERNAL_ID_ANNOTATION] = external_id
    return annotations


# --- names and ARNs ------------------------------------------------------------------------


def test_session_name_names_the_operator_and_the_namespace_within_stss_limits():
    assert session_name("team-a") == "model-registry-operator-team-a"
    long_a, long_b = "a" * 60 + "-one", "a" * 60 + "-two"
    assert len(session_name(long_a)) == 64 and session_name(long_a).startswith("model-registry-operator-aaa")
    assert session_name(long_a) != session_name(long_b)  # cut, then told apart by a hash
    assert session_name("odd name!") == "model-registry-operator-odd-name-"


def test_arn_parts_and_the_trust_principal():
    assert arn_account("arn:aws:sagemaker:eu-west-1:222222222222:model/churn") == OTHER
    assert arn_region("arn:aws:sagemaker:eu-west-1:222222222222:model/churn") == "eu-west-1"
    assert arn_account("churn") is None and arn_region(None) is None
    assert trust_principal(OPERATOR) == f"arn:aws:iam::{ACCOUNT}:role/model-registry-operator"
    assert trust_principal(f"arn:aws:iam::{ACCOUNT}:user/ana") == f"arn:aws:iam::{ACCOUNT}:user/ana"


# --- the operator's own account ------------------------------------------------------------


def test_own_account_asked_once_and_one_registry_per_region(world):
    first = world.accounts.target("ml", {})
    again = world.accounts.target("team-b", {})
    elsewhere = world.accounts.target("ml", {}, "eu-west-1")
    assert (first.account, first.region, first.role_arn) == (ACCOUNT, REGION, None)
    assert again.registry is first.registry and again.listings is first.listings
    assert elsewhere.registry is not first.registry and elsewhere.region == "eu-west-1"
    assert world.sts.identities == 1 and world.sts.assumed == []
    assert [region for _, region in world.made] == [REGION, "eu-west-1"]
    assert all(session is world.session for session, _ in world.made)


def test_own_registry_made_at_start_is_reused():
    world = World()
    own = FakeRegistry()
    listings = object()
    accounts = Accounts(
        Settings(),
        REGION,
        session=world.session,
        registry_factory=world.registry,
        own=(own, listings),  # type: ignore[arg-type]
        sts_client=world.sts,
    )
    target = accounts.target("ml", {})
    assert target.registry is own and target.listings is listings and world.made == []


def test_artifact_bucket_from_the_namespace_else_the_operators(world):
    assert world.accounts.target("ml", {}).artifact_bucket == "central"
    assert world.accounts.target("ml", {BUCKET_ANNOTATION: "ml-artifacts"}).artifact_bucket == "ml-artifacts"
    # another account's namespace never writes to the operator's bucket by default
    role = world.accounts.target("team-a", annotated())
    assert role.artifact_bucket is None and role.copy_artifacts is None
    with_bucket = world.accounts.target("team-a", annotated(**{BUCKET_ANNOTATION: "team-a-artifacts"}))
    assert with_bucket.artifact_bucket == "team-a-artifacts" and with_bucket.copy_artifacts is not None
    assert ("us-east-2", "team-a-artifacts") in world.copiers


# --- assumed roles -------------------------------------------------------------------------


def test_role_assumed_once_per_namespace_with_session_name_and_external_id(world):
    target = world.accounts.target("team-a", annotated("tenant-42"))
    assert (target.account, target.role_arn) == (OTHER, ROLE)
    assert world.sts.assumed == [
        {"RoleArn": ROLE, "RoleSessionName": "model-registry-operator-team-a", "ExternalId": "tenant-42"}
    ]
    for _ in range(3):
        assert world.accounts.target("team-a", annotated("tenant-42")).registry is target.registry
    assert len(world.sts.assumed) == 1  # cached
    ((session, region),) = world.made
    frozen = session.get_credentials().get_frozen_credentials()
    assert frozen.access_key == "ASIAASSUMED000000001" and region == REGION
    # another region of the same namespace: the same session, another client
    eu = world.accounts.target("team-a", annotated("tenant-42"), "eu-west-1")
    assert eu.registry is not target.registry and world.made[1] == (session, "eu-west-1")
    assert len(world.sts.assumed) == 1


def test_without_external_id_none_is_sent_and_namespaces_get_sessions_of_their_own(world):
    world.accounts.target("team-a", annotated())
    world.accounts.target("team-b", annotated())
    assert world.sts.assumed == [
        {"RoleArn": ROLE, "RoleSessionName": "model-registry-operator-team-a"},
        {"RoleArn": ROLE, "RoleSessionName": "model-registry-operator-team-b"},
    ]


def test_concurrent_first_use_assumes_once_and_makes_one_client(world):
    barrier = threading.Barrier(8)
    targets = []

    def use():
        barrier.wait()
        targets.append(world.accounts.target("team-a", annotated()))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(world.sts.assumed) == 1 and len(world.made) == 1
    assert len({id(t.registry) for t in targets}) == 1


def test_credentials_refreshed_before_they_expire(world):
    target = world.accounts.target("team-a", annotated())
    session = world.made[0][0]
    world.clock.now += datetime.timedelta(minutes=40)  # 20 minutes left: still good
    world.accounts.target("team-a", annotated())
    assert len(world.sts.assumed) == 1
    world.clock.now += datetime.timedelta(minutes=12)  # 8 minutes left: refreshed before any call
    assert world.accounts.target("team-a", annotated()).registry is target.registry
    assert len(world.sts.assumed) == 2
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIAASSUMED000000002"


def test_a_refused_refresh_is_assume_role_failed_not_a_traceback(world):
    world.accounts.target("team-a", annotated())
    world.sts.refuse = refused()
    world.clock.now += datetime.timedelta(minutes=52)  # inside the mandatory window
    with pytest.raises(TerminalError) as raised:
        world.accounts.target("team-a", annotated())
    assert raised.value.reason == Reason.ASSUME_ROLE_FAILED
    # also when the refresh happens inside a SageMaker call (botocore signs with them)
    session = world.made[0][0]
    with pytest.raises(TerminalError):
        session.get_credentials().get_frozen_credentials()


def test_refused_role_names_the_trust_policy_statement_to_add(world):
    world.sts.refuse = refused()
    with pytest.raises(TerminalError) as raised:
        world.accounts.target("team-a", annotated("tenant-42"))
    err = raised.value
    assert err.reason == Reason.ASSUME_ROLE_FAILED
    assert ROLE in err.message and "AccessDenied" in err.message and "namespace team-a" in err.message
    statement = json.loads(
        err.message.split("add the statement ", 1)[1].split(" to the role's trust policy")[0]
    )
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:role/model-registry-operator"}
    assert statement["Action"] == "sts:AssumeRole"
    assert "sts:ExternalId" in statement["Condition"]["StringEquals"]
    assert "tenant-42" not in err.message  # the value stays in the annotation
    assert world.made == []  # nothing else was called


def test_without_external_id_the_statement_has_no_condition(world):
    world.sts.refuse = refused()
    with pytest.raises(TerminalError) as raised:
        world.accounts.target("team-a", annotated())
    assert "Condition" not in raised.value.message and "sts:ExternalId" not in raised.value.message


def test_a_refusal_is_remembered_briefly_then_asked_again(world):
    world.sts.refuse = refused()
    for _ in range(5):
        with pytest.raises(TerminalError):
            world.accounts.target("team-a", annotated())
    assert len(world.sts.assumed) == 1  # the namespace's objects do not each ask STS at once
    world.accounts._refusal_memory = 0  # the admin fixed the trust policy; time passed
    world.sts.refuse = None
    assert world.accounts.target("team-a", annotated()).account == OTHER
    assert len(world.sts.assumed) == 2


@pytest.mark.parametrize(
    "error,reason",
    [
        (refused("Throttling", 400), Reason.THROTTLED),
        (refused("InternalFailure", 500), Reason.SAGEMAKER_UNAVAILABLE),
        (
            EndpointConnectionError(endpoint_url="https://sts.us-east-2.amazonaws.com"),
            Reason.SAGEMAKER_UNREACHABLE,
        ),
    ],
)
def test_transient_sts_errors_are_retried(world, error, reason):
    world.sts.refuse = error
    with pytest.raises(RetryableError) as raised:
        world.accounts.target("team-a", annotated())
    assert raised.value.reason == reason and "AssumeRole" in raised.value.message
    world.sts.refuse = None  # not remembered: the next reconcile asks again
    assert world.accounts.target("team-a", annotated()).account == OTHER


@pytest.mark.parametrize(
    "annotations,words",
    [
        ({ROLE_ANNOTATION: "registry"}, "is not an IAM role ARN"),
        ({ROLE_ANNOTATION: ROLE, EXTERNAL_ID_ANNOTATION: "x"}, "is not an STS external ID"),
        ({EXTERNAL_ID_ANNOTATION: "tenant-42"}, "but no registry.mlops.dev/aws-role-arn"),
    ],
)
def test_unusable_annotations_are_assume_role_failed_before_any_call(world, annotations, words):
    with pytest.raises(TerminalError) as raised:
        world.accounts.target("team-a", annotations)
    assert raised.value.reason == Reason.ASSUME_ROLE_FAILED and words in raised.value.message
    assert world.sts.assumed == [] and world.made == []


def test_metrics_summed_per_account_and_region(world):
    class Counting(FakeRegistry):
        def metrics(self):
            return {"calls": {"DescribeModel": 2}, "attempts": {"DescribeModel": 3}, "errors": {}}

    world.registry = lambda session, region: Counting()  # type: ignore[method-assign]
    world.accounts._registry_factory = world.registry
    world.accounts.target("ml", {})
    world.accounts.target("team-a", annotated())
    world.accounts.target("team-b", annotated())  # the same account: summed
    assert world.accounts.metrics() == {
        (ACCOUNT, REGION): {"calls": {"DescribeModel": 2}, "attempts": {"DescribeModel": 3}, "errors": {}},
        (OTHER, REGION): {"calls": {"DescribeModel": 4}, "attempts": {"DescribeModel": 6}, "errors": {}},
    }


# --- objects: scoping, AccountChanged, regions -----------------------------------------------


def namespaces(**annotations: dict[str, str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        ("Namespace", "", name): {"metadata": {"name": name, "annotations": value}}
        for name, value in annotations.items()
    }


def meta(name="churn", namespace="ml"):
    return Meta(name, namespace, f"uid-{name}", 1)


def state(result):
    return next(
        (c["type"], c["reason"], c["message"]) for c in result.status["conditions"] if c["status"] == "True"
    )


def scoped_ctx(world: World) -> Context:
    return Context.create(FakeRegistry(), Settings(), accounts=world.accounts)


def registry_of(world: World, account: str, region: str = REGION) -> FakeRegistry:
    """The registry the accounts made for `account` in `region` (an empty one if none)."""
    for (_, key_region), entry in world.accounts._entries.items():
        registry = entry.registry
        if key_region == region and isinstance(registry, FakeRegistry) and registry.account == account:
            return registry
    return FakeRegistry(account, region)


def test_objects_land_in_their_namespaces_account_and_region(world):
    ctx = scoped_ctx(world)
    lookup = DictLookup(namespaces(ml={}, **{"team-a": annotated()}))
    ours = reconcile(mpg.CONTROLLER, {}, meta(), {}, ctx, lookup)
    theirs = reconcile(mpg.CONTROLLER, {}, meta(namespace="team-a"), {}, ctx, lookup)
    eu = reconcile(mpg.CONTROLLER, {"region": "eu-west-1"}, meta("eu"), {}, ctx, lookup)
    assert ours.status["arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"
    assert theirs.status["arn"] == f"arn:aws:sagemaker:{REGION}:{OTHER}:model-package-group/churn"
    assert eu.status["arn"] == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/eu"
    assert ctx.registry.calls == {}  # the unscoped registry is never used with accounts


def test_an_object_stays_in_the_region_it_was_made_in(world):
    ctx = scoped_ctx(world)
    lookup = DictLookup(namespaces(ml={}))
    made = {"arn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/churn"}
    reconcile(mpg.CONTROLLER, {}, meta(), made, ctx, lookup)  # no spec.region: its ARN's region
    assert [region for _, region in world.made] == ["eu-west-1"]
    moved = reconcile(mpg.CONTROLLER, {"region": "us-west-2"}, meta(), made, ctx, lookup)
    kind, reason, message = state(moved)
    assert (kind, reason) == ("Stalled", "InvalidSpec") and "eu-west-1" in message and "us-west-2" in message


def test_an_object_of_an_unknown_namespace_waits_and_calls_nothing(world):
    ctx = scoped_ctx(world)
    result = reconcile(mpg.CONTROLLER, {}, meta(), {}, ctx, DictLookup())
    assert state(result)[:2] == ("Reconciling", "WaitingForNamespace") and result.retry and result.short
    assert world.sts.identities == 0 and world.made == []


def test_assume_role_failed_stalls_the_object_before_any_sagemaker_call(world):
    world.sts.refuse = refused()
    ctx = scoped_ctx(world)
    result = reconcile(
        mpg.CONTROLLER,
        {},
        meta(namespace="team-a"),
        {},
        ctx,
        DictLookup(namespaces(**{"team-a": annotated()})),
    )
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "AssumeRoleFailed") and ROLE in message
    assert [e.reason for e in result.events] == [Reason.ASSUME_ROLE_FAILED]
    assert world.made == [] and SECRET not in json.dumps(result.status)


def test_account_changed_stalls_and_creates_nothing_in_the_new_account(world):
    ctx = scoped_ctx(world)
    made = {"arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"}
    lookup = DictLookup(namespaces(ml=annotated()))  # the role annotation added afterwards
    result = reconcile(mpg.CONTROLLER, {}, meta(), made, ctx, lookup)
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "AccountChanged")
    assert ACCOUNT in message and OTHER in message and ROLE in message
    assert result.status["arn"] == made["arn"]  # kept: the record of where it is
    assert registry_of(world, OTHER).calls == {}
    # and back: the role annotation removed after objects were made in the role's account
    theirs = {"arn": f"arn:aws:sagemaker:{REGION}:{OTHER}:model-package-group/churn"}
    result = reconcile(mpg.CONTROLLER, {}, meta(), theirs, ctx, DictLookup(namespaces(ml={})))
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "AccountChanged") and "no registry.mlops.dev/aws-role-arn" in message


def test_deleting_an_object_whose_account_changed_deletes_nothing_anywhere(world):
    ctx = scoped_ctx(world)
    old = FakeRegistry()
    old.create_group({"ModelPackageGroupName": "churn"})
    made = {"arn": old.groups["churn"]["ModelPackageGroupArn"], "deletionPolicy": "Delete"}
    result = delete(mpg.CONTROLLER, {}, meta(), made, ctx, DictLookup(namespaces(ml=annotated())))
    assert result.retry is None  # the object goes
    (event,) = result.events
    assert event.type == "Warning" and event.reason == Reason.ACCOUNT_CHANGED
    assert made["arn"] in event.message and "left it untouched" in event.message
    assert registry_of(world, OTHER).calls == {}


def test_a_version_in_a_group_shared_by_another_account_is_not_account_changed(world):
    ctx = scoped_ctx(world)
    shared_group = f"arn:aws:sagemaker:{REGION}:333333333333:model-package-group/central"
    spec = {
        "modelPackageGroupName": shared_group,
        "inferenceSpecification": {
            "containers": [{"image": "i", "modelDataUrl": "s3://b/m.tar.gz"}],
            "supportedContentTypes": ["text/csv"],
            "supportedResponseMIMETypes": ["text/csv"],
        },
    }
    status = {"arn": f"arn:aws:sagemaker:{REGION}:333333333333:model-package/central/1"}
    result = reconcile(mp.CONTROLLER, spec, meta(), status, ctx, DictLookup(namespaces(ml={})))
    assert state(result)[1] != "AccountChanged"


def ready_package(arn: str) -> dict[str, Any]:
    return {
        "spec": {},
        "status": {
            "arn": arn,
            "modelApprovalStatus": "Approved",
            "conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None),
        },
    }


def test_a_model_from_a_package_of_another_region_is_stalled_naming_both(world):
    ctx = scoped_ctx(world)
    package = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/churn/1"
    lookup = DictLookup({**namespaces(ml={}), ("ModelPackage", "ml", "churn-v1"): ready_package(package)})
    spec = {"primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}}
    result = reconcile(mdl.CONTROLLER, spec, meta(), {}, ctx, lookup)
    kind, reason, message = state(result)
    assert (kind, reason) == ("Stalled", "InvalidSpec") and "eu-west-1" in message and REGION in message
    assert registry_of(world, ACCOUNT).calls == {}
    # in the package's region it is made
    result = reconcile(mdl.CONTROLLER, {**spec, "region": "eu-west-1"}, meta(), {}, ctx, lookup)
    assert state(result)[:2] == ("Ready", "Synced")
    assert result.status["arn"] == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/churn"


def test_a_version_in_a_group_of_another_region_is_stalled_naming_both(world):
    ctx = scoped_ctx(world)
    group = {
        "spec": {},
        "status": {
            "arn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package-group/churn",
            "conditions": build_conditions(Outcome.ready("Synced", "ok"), 1, None),
        },
    }
    lookup = DictLookup({**namespaces(ml={}), ("ModelPackageGroup", "ml", "churn"): group})
    spec = {
        "modelPackageGroupRef": {"name": "churn"},
        "inferenceSpecification": {
            "containers": [{"image": "i", "modelDataUrl": "s3://b/m.tar.gz"}],
            "supportedContentTypes": ["text/csv"],
            "supportedResponseMIMETypes": ["text/csv"],
        },
    }
    kind, reason, message = state(reconcile(mp.CONTROLLER, spec, meta("churn-v1"), {}, ctx, lookup))
    assert (kind, reason) == ("Stalled", "InvalidSpec") and "eu-west-1" in message and REGION in message


def test_a_context_without_accounts_is_the_single_account_one():
    ctx = Context.create(FakeRegistry(), Settings())
    result = reconcile(mpg.CONTROLLER, {"region": "eu-west-1"}, meta(), {}, ctx, DictLookup())
    assert state(result)[:2] == ("Ready", "Synced") and ctx.registry.calls["create_group"] == 1


# --- the namespace index (wiring.py) --------------------------------------------------------


def test_namespace_annotations_come_from_a_kopf_index_registered_only_with_accounts(world):
    import asyncio

    import kopf

    from model_registry_operator.controllers.wiring import (
        NAMESPACE_INDEX,
        IndexLookup,
        namespace_entry,
        register_all,
    )

    entry = asyncio.run(
        namespace_entry(
            name="team-a",
            meta={
                "annotations": {
                    ROLE_ANNOTATION: ROLE,
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                }
            },
        )
    )
    assert entry == {("", "team-a"): {"metadata": {"name": "team-a", "annotations": {ROLE_ANNOTATION: ROLE}}}}
    lookup = IndexLookup({NAMESPACE_INDEX: {key: [value] for key, value in entry.items()}})
    assert lookup.get("Namespace", "", "team-a") == entry[("", "team-a")]
    assert lookup.get("Namespace", "", "team-b") is None

    def index_ids(ctx: Context) -> set[str]:
        reg = kopf.OperatorRegistry()
        register_all(reg, ctx)
        return {handler.id for handler in reg._indexing.get_all_handlers()}

    assert NAMESPACE_INDEX not in index_ids(Context.create(FakeRegistry(), Settings()))
    assert NAMESPACE_INDEX in index_ids(scoped_ctx(world))
