"""The shipped IAM policy (manifests/iam/operator-policy.json) allows every AWS call the real
operator makes, derived from the AWS harness's traffic over a full lifecycle of each kind
(create, tag, approve, reference, replace, delete) with artifacts from S3 (latest and pinned
versions), from HTTPS, a missing source and a checksum mismatch: as test_rbac.py does for
Kubernetes. A call the policy does not allow fails the test; so does an action in the policy
that no call needs and that is not in JUSTIFIED_EXTRAS.

Each recorded request is mapped to what IAM authorizes for it (`needs`): the action, the
resource ARN and the request context (e.g. iam:PassedToService for the execution role a
CreateModel passes). `allowed` is a small evaluator of Allow statements: Action and Resource
with `*`/`?` wildcards, StringEquals/StringLike conditions.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import moto.iam.models
import pytest

from conftest import (
    ARTIFACT_BUCKET,
    ROLE,
    package_spec,
    resource,
    wait_condition,
    wait_event,
    wait_ready,
    wait_until,
)
from harness.aws.operations import operation_of, query_params, signature_scope
from harness.httpserver import FileServer

pytestmark = pytest.mark.e2e
REPO = pathlib.Path(__file__).resolve().parents[2]
IAM = REPO / "manifests" / "iam"
APP_ID = "mro-iam-test"  # AWS_SDK_UA_APP_ID of the operator: its requests, not this test's
SOURCE_BUCKET = "team-models"
WEIGHTS = b"weights " * 1000
PINNED = b"pinned weights " * 500
HTTPS_FILE = b"tokenizer " * 300
ARCHIVE = b"not really a tar.gz " * 100  # passed through by its name, never opened

# Actions the policy may grant that the lifecycle below does not make the operator use, with
# the reason. None today: every action in the policy is derived from a recorded call.
JUSTIFIED_EXTRAS: dict[str, str] = {}

# Placeholders of the shipped policies and the values this test substitutes.
PLACEHOLDERS = {
    "<ACCOUNT_ID>": "123456789012",
    "<REGION>": "us-east-2",
    "<ARTIFACT_BUCKET>": ARTIFACT_BUCKET,
    "<ARTIFACT_PREFIX>": "model-registry",  # the operator's default MRO_ARTIFACT_PREFIX
    "<SOURCE_BUCKET>": SOURCE_BUCKET,
    "<EXECUTION_ROLE_NAME>": ROLE.rsplit("/", 1)[1],
    "<REGISTRY_ROLE_NAME>": "registry",  # the role namespaces of other accounts name
}
OTHER_ACCOUNT = "222222222222"
TRUST_PLACEHOLDERS = ("<ACCOUNT_ID>", "<OIDC_PROVIDER>", "<NAMESPACE>", "<SERVICE_ACCOUNT>")


# --- recording ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    path: str
    query: dict[str, list[str]]
    copy_source: str | None
    status: int
    body: dict[str, Any] = field(default_factory=dict)  # SageMaker: the JSON request; STS: its parameters
    answer: dict[str, Any] = field(default_factory=dict)  # SageMaker: the JSON response
    account: str = ""  # the account it was made in (its credentials')


class Recorder:
    """WSGI wrapper around moto (inside the harness's middleware): records the operator's
    requests with what IAM needs of them (query, copy source, SageMaker bodies)."""

    def __init__(self, app) -> None:
        self.app = app
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response):
        if f"app/{APP_ID}" not in environ.get("HTTP_USER_AGENT", ""):
            return self.app(environ, start_response)
        service, operation = operation_of(environ)
        request: dict[str, Any] = {}
        if service == "sagemaker":
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            request = json.loads(raw or b"{}")
        elif service not in ("sagemaker", "s3"):  # the query protocol (STS)
            request = dict(query_params(environ) or {})
        key = signature_scope(environ)[0]
        captured: dict[str, int] = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        try:
            data = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        answer: dict[str, Any] = {}
        if service == "sagemaker" and data:
            try:
                answer = json.loads(data)
            except ValueError:
                pass
        call = Call(
            service,
            operation,
            unquote(environ.get("PATH_INFO", "")),
            parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            environ.get("HTTP_X_AMZ_COPY_SOURCE"),
            captured.get("status", 0),
            request,
            answer,
            moto.iam.models.get_account_id_from(key or "AKIAEXAMPLE"),
        )
        with self._lock:
            self.calls.append(call)
        return [data]


@pytest.fixture
def recorder(aws):
    middleware = aws.server.app  # harness.aws.traffic.HarnessMiddleware
    inner = middleware.app
    middleware.app = Recorder(inner)
    yield middleware.app
    middleware.app = inner


@pytest.fixture
def files():
    with FileServer(tls=True) as server:
        yield server


@pytest.fixture
def operator_env(operator_env, files):
    # the HTTPS source is on 127.0.0.1: loopback addresses need MRO_ALLOW_HTTP
    return {
        **operator_env,
        "AWS_SDK_UA_APP_ID": APP_ID,
        "SSL_CERT_FILE": files.ca_path,
        "MRO_ALLOW_HTTP": "true",
    }


# --- what IAM authorizes for a call -------------------------------------------------------


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = "".join(f" [{k}={v}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}"


def sagemaker_arn(kind: str, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:sagemaker:{PLACEHOLDERS['<REGION>']}:{PLACEHOLDERS['<ACCOUNT_ID>']}:{kind}/{name_or_arn.lower()}"


def sagemaker_needs(call: Call) -> list[Need]:
    op, body, answer = call.operation, call.body, call.answer
    if op.startswith("List") and op != "ListTags":
        resource = "*"  # SageMaker's List* actions take no resource ARN
    elif "ResourceArn" in body:
        resource = body["ResourceArn"]
    elif "ModelPackageGroup" in op:
        resource = sagemaker_arn("model-package-group", body["ModelPackageGroupName"])
    elif op == "CreateModelPackage":
        created = answer.get("ModelPackageArn")
        group = body.get("ModelPackageGroupName")
        resource = created or sagemaker_arn(
            "model-package", f"{group.rsplit('/', 1)[-1]}/0" if group else body["ModelPackageName"]
        )
    elif "ModelPackage" in op:
        resource = sagemaker_arn("model-package", body.get("ModelPackageArn") or body["ModelPackageName"])
    elif op.endswith("Model"):
        resource = sagemaker_arn("model", body["ModelName"])
    else:
        resource = "*"
    needs = [Need(f"sagemaker:{op}", resource)]
    if op.startswith("Create") and body.get("Tags"):
        needs.append(Need("sagemaker:AddTags", resource))  # tags on create are authorized as AddTags
    if op == "CreateModel":
        needs.append(
            Need(
                "iam:PassRole",
                body["ExecutionRoleArn"],
                (("iam:PassedToService", "sagemaker.amazonaws.com"),),
            )
        )
    return needs


def s3_arn(bucket: str, key: str = "") -> str:
    return f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"


def s3_read(bucket: str, key: str, versioned: bool) -> Need:
    return Need("s3:GetObjectVersion" if versioned else "s3:GetObject", s3_arn(bucket, key))


S3_OBJECT_WRITES = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
S3_OBJECT_ACTIONS = {
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}
S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketVersioning": "s3:GetBucketVersioning",
}


def s3_needs(call: Call) -> list[Need]:
    bucket, _, key = call.path.lstrip("/").partition("/")
    versioned = "versionId" in call.query
    op = call.operation
    if op in ("GetObject", "HeadObject"):
        needs = [s3_read(bucket, key, versioned)]
        if call.status == 404:
            # S3 answers 404 for a missing key only with s3:ListBucket on the bucket, else 403
            needs.append(Need("s3:ListBucket", s3_arn(bucket)))
        return needs
    if op in S3_OBJECT_WRITES:
        return [Need("s3:PutObject", s3_arn(bucket, key))]
    if op in ("CopyObject", "UploadPartCopy"):
        assert call.copy_source, f"{op} without x-amz-copy-source"
        source, _, query = unquote(call.copy_source).lstrip("/").partition("?")
        source_bucket, _, source_key = source.partition("/")
        return [
            Need("s3:PutObject", s3_arn(bucket, key)),
            s3_read(source_bucket, source_key, "versionId" in parse_qs(query)),
        ]
    if op == "DeleteObject":
        return [Need("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", s3_arn(bucket, key))]
    if op in S3_OBJECT_ACTIONS:
        return [Need(S3_OBJECT_ACTIONS[op], s3_arn(bucket, key))]
    if op in S3_BUCKET_ACTIONS:
        return [Need(S3_BUCKET_ACTIONS[op], s3_arn(bucket))]
    pytest.fail(f"no IAM mapping for the S3 operation {op} ({call.path}): add it to s3_needs")


def sts_needs(call: Call) -> list[Need]:
    if call.operation == "GetCallerIdentity":
        return []  # "No permissions are required to perform this operation" (STS API reference)
    if call.operation == "AssumeRole":
        return [Need("sts:AssumeRole", call.body["RoleArn"])]
    pytest.fail(f"no IAM mapping for the STS operation {call.operation}: add it to sts_needs")


def needs(call: Call) -> list[Need]:
    if call.service == "sts":
        return sts_needs(call)
    if call.service == "sagemaker":
        return sagemaker_needs(call)
    if call.service == "s3":
        return s3_needs(call)
    pytest.fail(f"the operator called {call.service}:{call.operation}: map it to IAM here")


# --- a small IAM evaluator (Allow statements only) ----------------------------------------


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        assert operator in ("StringEquals", "StringLike"), f"the evaluator does not know {operator}"
        for key, expected in tests.items():
            if key not in context:
                return False
            matches = (
                (lambda p: p == context[key])
                if operator == "StringEquals"
                else (lambda p: glob(p, context[key], True))
            )
            if not any(matches(p) for p in as_list(expected)):
                return False
    return True


def allowed(policy: dict, need: Need) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(glob(a, need.action, case=False) for a in as_list(statement["Action"])):
            continue
        if not any(glob(r, need.resource, case=True) for r in as_list(statement["Resource"])):
            continue
        if condition_holds(statement.get("Condition", {}), dict(need.context)):
            return True
    return False


def granted_actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in as_list(s["Action"])}


def load_policy(path: pathlib.Path, values: dict[str, str]) -> dict:
    text = path.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    left = set(re.findall(r"<[A-Z_]+>", text))
    assert not left, f"{path.name}: placeholders this test does not know: {sorted(left)}"
    return json.loads(text)


# --- tests --------------------------------------------------------------------------------


def test_the_evaluator_allows_what_it_should_and_nothing_else():
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/p/*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::1:role/Sage*",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
        ]
    }
    assert allowed(policy, Need("s3:GetObject", "arn:aws:s3:::b/p/k"))
    assert allowed(policy, Need("S3:getobjectversion", "arn:aws:s3:::b/p/k"))  # actions ignore case
    assert not allowed(policy, Need("s3:PutObject", "arn:aws:s3:::b/p/k"))
    assert not allowed(policy, Need("s3:GetObject", "arn:aws:s3:::b/q/k"))
    assert not allowed(policy, Need("s3:GetObject", "arn:aws:s3:::b/P/k"))  # resources do not
    passed = (("iam:PassedToService", "sagemaker.amazonaws.com"),)
    assert allowed(policy, Need("iam:PassRole", "arn:aws:iam::1:role/SageX", passed))
    assert not allowed(policy, Need("iam:PassRole", "arn:aws:iam::1:role/SageX"))  # no context
    assert not allowed(
        policy, Need("iam:PassRole", "arn:aws:iam::1:role/SageX", (("iam:PassedToService", "ec2"),))
    )
    assert not allowed(policy, Need("iam:PassRole", "arn:aws:iam::1:role/Other", passed))


def test_shipped_policies_are_valid_and_their_placeholders_documented():
    policy = load_policy(IAM / "operator-policy.json", PLACEHOLDERS)
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and {"Action", "Resource"} <= statement.keys(), statement
        assert not {"NotAction", "NotResource"} & statement.keys(), "the evaluator here does not know them"
        assert all(":" in a and "*" not in a for a in as_list(statement["Action"])), "no wildcard actions"
    passrole = [s for s in policy["Statement"] if "iam:PassRole" in as_list(s["Action"])]
    assert passrole and all(
        s["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
        and s["Resource"] != "*"
        for s in passrole
    )
    trust = json.loads((IAM / "trust-policy.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    readme = (IAM / "README.md").read_text()
    for placeholder in [*PLACEHOLDERS, *TRUST_PLACEHOLDERS]:
        assert placeholder in readme, f"manifests/iam/README.md does not explain {placeholder}"


def artifact_spec(files: list[dict[str, Any]], *more: dict[str, Any]) -> dict[str, Any]:
    spec = package_spec("churn", artifacts=[{"name": "model", "files": files}, *more])
    container = spec["inferenceSpecification"]["containers"][0]
    container.pop("modelDataUrl")
    container["modelDataArtifact"] = "model"
    return spec


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_policy_allows_every_call_the_operator_makes(kube, kube_namespace, aws, files, recorder, operator):
    ns, s3, sm = kube_namespace, aws.client("s3"), aws.client("sagemaker")
    # this test's own setup: not the operator's (no app id in its user agent)
    aws.make_bucket(ARTIFACT_BUCKET)
    aws.make_bucket(SOURCE_BUCKET)
    s3.put_bucket_versioning(Bucket=SOURCE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=SOURCE_BUCKET, Key="churn/model.joblib", Body=WEIGHTS)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="churn/model.tar.gz", Body=ARCHIVE)
    pinned = {}
    for key, body in (("churn/pinned.joblib", PINNED), ("churn/weights.tar.gz", ARCHIVE)):
        pinned[key] = s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)["VersionId"]
        s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=b"a later upload")
    files.add("/tokenizer.json", HTTPS_FILE)
    https_url = files.url("/tokenizer.json")
    assert https_url.startswith("https://")

    # shared with another account (its resource policy), then no longer: Put, Get, Delete
    shared = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Principal": {"AWS": "222222222222"},
            "Action": "sagemaker:DescribeModelPackage",
            "Resource": "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn/*",
        },
    }
    group_spec = {"tags": [{"key": "team", "value": "risk"}], "resourcePolicy": shared}
    kube.create(resource("ModelPackageGroup", "churn", group_spec), namespace=ns)
    # "model": packed and streamed (GetObject, a pinned version, HTTPS) into a multipart upload;
    # "weights": one pinned .tar.gz, copied server-side (CopyObject with a versionId)
    good = artifact_spec(
        [
            {
                "path": "model.joblib",
                "source": f"s3://{SOURCE_BUCKET}/churn/model.joblib",
                "sha256": sha(WEIGHTS),
            },
            {
                "path": "pinned.joblib",
                "source": f"s3://{SOURCE_BUCKET}/churn/pinned.joblib?versionId={pinned['churn/pinned.joblib']}",
                "sha256": sha(PINNED),
            },
            {"path": "tokenizer.json", "source": https_url, "sha256": sha(HTTPS_FILE)},
        ],
        {
            "name": "weights",
            "files": [
                {
                    "path": "weights.tar.gz",
                    "source": f"s3://{SOURCE_BUCKET}/churn/weights.tar.gz?versionId={pinned['churn/weights.tar.gz']}",
                    "sha256": sha(ARCHIVE),
                }
            ],
        },
    )
    good.update(modelApprovalStatus="PendingManualApproval", tags=[{"key": "stage", "value": "qa"}])
    kube.create(resource("ModelPackage", "churn-v1", good), namespace=ns)
    missing = artifact_spec([{"path": "m.joblib", "source": f"s3://{SOURCE_BUCKET}/churn/missing.joblib"}])
    kube.create(resource("ModelPackage", "churn-missing", missing), namespace=ns)
    mismatch = artifact_spec(  # a server-side copy whose checksum turns out wrong
        [{"path": "m.tar.gz", "source": f"s3://{SOURCE_BUCKET}/churn/model.tar.gz", "sha256": "0" * 64}]
    )
    kube.create(resource("ModelPackage", "churn-mismatch", mismatch), namespace=ns)
    packed_mismatch = artifact_spec(  # a multipart upload aborted when the checksum turns out wrong
        [{"path": "m.joblib", "source": f"s3://{SOURCE_BUCKET}/churn/model.joblib", "sha256": "0" * 64}]
    )
    kube.create(resource("ModelPackage", "churn-packed-mismatch", packed_mismatch), namespace=ns)
    model = {"executionRoleArn": ROLE, "primaryContainer": {"modelPackageRef": {"name": "churn-v1"}}}
    kube.create(resource("Model", "churn", model), namespace=ns)

    wait_ready(kube, "mp", "churn-v1", ns, operator)
    wait_condition(kube, "mp", "churn-missing", ns, "Stalled", "SourceNotFound", operator)
    wait_condition(kube, "mp", "churn-mismatch", ns, "Stalled", "ChecksumMismatch", operator)
    wait_condition(kube, "mp", "churn-packed-mismatch", ns, "Stalled", "ChecksumMismatch", operator)
    wait_condition(kube, "mdl", "churn", ns, "Reconciling", "WaitingForApproval", operator)
    kube.patch("mp", "churn-v1", {"spec": {"modelApprovalStatus": "Approved"}}, namespace=ns)
    wait_ready(kube, "mdl", "churn", ns, operator)
    kube.patch("mdl", "churn", {"spec": {"enableNetworkIsolation": True}}, namespace=ns)
    wait_event(kube, ns, "churn", "Replaced", operator)
    wait_ready(kube, "mdl", "churn", ns, operator)
    unshared = {"tags": [{"key": "owner", "value": "ana"}], "resourcePolicy": None}
    kube.patch("mpg", "churn", {"spec": unshared}, namespace=ns)
    group_arn = sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupArn"]

    def group_tags():
        return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=group_arn)["Tags"]}

    wait_until(
        lambda: "owner" in group_tags() and "team" not in group_tags(), "group tags", operator=operator
    )
    wait_until(
        lambda: "resourcePolicy" not in (kube.get("mpg", "churn", namespace=ns).get("status") or {}),
        "the group's resource policy to be deleted",
        operator=operator,
    )
    for plural, name in (
        ("mdl", "churn"),
        ("mp", "churn-v1"),
        ("mp", "churn-missing"),
        ("mp", "churn-mismatch"),
        ("mp", "churn-packed-mismatch"),
    ):
        kube.delete(plural, name, namespace=ns)
    for plural, name in (
        ("mdl", "churn"),
        ("mp", "churn-v1"),
        ("mp", "churn-missing"),
        ("mp", "churn-mismatch"),
        ("mp", "churn-packed-mismatch"),
    ):
        kube.wait_gone(plural, name, namespace=ns, timeout=30)
    kube.delete("mpg", "churn", namespace=ns)
    kube.wait_gone("mpg", "churn", namespace=ns, timeout=30)

    # a namespace of another account: the operator assumes its role (sts:AssumeRole, in this
    # policy); what it then calls there is authorized by that role's own policy
    role = aws.create_role(OTHER_ACCOUNT, PLACEHOLDERS["<REGISTRY_ROLE_NAME>"])
    tenant = f"{ns}-tenant"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": tenant, "annotations": {"registry.mlops.dev/aws-role-arn": role}},
        }
    )
    kube.create(resource("ModelPackageGroup", "churn", {}), namespace=tenant)
    wait_ready(kube, "mpg", "churn", tenant, operator)
    kube.delete("mpg", "churn", namespace=tenant)
    kube.wait_gone("mpg", "churn", namespace=tenant, timeout=30)
    kube.delete("namespaces", tenant)
    assert any(c.account == OTHER_ACCOUNT for c in recorder.calls), "nothing was called in the role's account"

    calls = [c for c in recorder.calls if c.account == PLACEHOLDERS["<ACCOUNT_ID>"]]
    operations = {c.operation for c in calls}
    # the filter kept the operator's calls, and the lifecycle exercised what it should
    for expected in (
        "AssumeRole",
        "CreateModelPackageGroup",
        "UpdateModelPackage",
        "CreateModel",
        "DeleteModel",
        "AddTags",
        "PutModelPackageGroupPolicy",
        "DeleteModelPackageGroupPolicy",
    ):
        assert expected in operations, f"the lifecycle made no {expected}: {sorted(operations)}"
    assert {"CopyObject", "HeadObject"} <= operations, sorted(operations)
    assert any("versionId" in unquote(c.copy_source or "") for c in calls), "no pinned-version copy"

    policy = load_policy(IAM / "operator-policy.json", PLACEHOLDERS)
    required = {need for call in calls for need in needs(call)}
    denied = sorted(str(need) for need in required if not allowed(policy, need))
    assert not denied, "operator-policy.json does not allow what the operator calls:\n" + "\n".join(denied)

    used = {need.action for need in required}
    unused = granted_actions(policy) - used
    assert unused <= JUSTIFIED_EXTRAS.keys(), (
        f"operator-policy.json grants actions the operator never needs: {sorted(unused - JUSTIFIED_EXTRAS.keys())}"
    )
    assert JUSTIFIED_EXTRAS.keys() <= granted_actions(policy), "a justified extra is no longer in the policy"
    for operation in sorted(operations):  # shown with -s
        actions = sorted({n.action for c in calls if c.operation == operation for n in needs(c)})
        print(f"{operation}: {', '.join(actions)}")
