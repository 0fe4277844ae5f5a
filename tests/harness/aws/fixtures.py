"""pytest fixtures for the corrected SageMaker + S3 endpoint (moto in server mode).

``aws_server`` (session) starts one server per test process on a free 127.0.0.1 port,
so each pytest-xdist worker has its own. ``aws`` (function) resets it before the test:
no AWS objects, no fault rules, an empty request log, status delay 0.

Usage::

    def test_register(aws):
        sm = aws.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="churn")
        aws.make_bucket("registry")                  # S3 bucket in aws.region

        aws.faults.throttle("CreateModelPackage", count=2)   # next 2 calls throttled
        aws.faults.error("UploadPart", status=503, count=1)
        aws.faults.latency("DescribeModelPackage", seconds=0.2)
        aws.faults.add("PutObject", "error500", probability=0.3, seed=7)
        aws.set_status_delay(2.0)      # new packages: Pending, InProgress, then Completed
        aws.set_quota(20)              # quota mode: 20 SageMaker requests/s per account and region
        aws.throttled()                # the requests it refused (ThrottlingException, not executed)

        ana = aws.client("sagemaker", identity="arn:aws:iam::123456789012:user/ana")
        ana.update_model_package(...)  # DescribeModelPackage: LastModifiedBy.IamIdentity.Arn = ana
        aws.set_identity("AKIAPIPELINE", "arn:aws:sts::123456789012:assumed-role/Pipeline/run-1")

        # several accounts and regions (STS AssumeRole checks the role's trust policy)
        role = aws.create_role("222222222222", "registry", external_id="tenant-a")
        tenant = aws.client_in(role, "sagemaker", external_id="tenant-a")  # assumed-role creds
        tenant.create_model_package_group(...)            # lands in account 222222222222
        west = aws.client("sagemaker", region="us-west-2")
        (call,) = aws.requests("AssumeRole")   # call.params: RoleArn, RoleSessionName, ExternalId

        env = {**os.environ, **aws.env}        # for an operator subprocess
        ...
        assert aws.count("CreateModelPackage") == 3
        copies = aws.requests("UploadPartCopy")   # RequestRecord: status, bytes_in, bytes_out
        assert sum(r.bytes_in for r in aws.requests()) < 1024

Clients from ``aws.client(...)`` have dummy credentials, path-style S3 addressing and no
automatic retries (an injected fault reaches the test as a ``ClientError``); pass
``config=`` to change that. SageMaker records the caller of a create/update (CreatedBy, LastModifiedBy: UserContext
with IamIdentity Arn/PrincipalId) by the request's access key id: ``aws.set_identity(key,
arn)`` says who a key is (``aws.client(service, identity=arn)`` does it for a client of its
own key; ``aws.env_for(arn)`` for a subprocess); other keys are who moto's STS
GetCallerIdentity says (``arn:aws:sts::123456789012:user/moto`` for the dummy keys).
A request is served in the account its access key belongs to (moto: the IAM backend that
holds the key; a configured identity's key: its ARN's account) and the region of its SigV4
signature. ``aws.create_role(account, name, trust_policy)`` creates an IAM role in any
account (default trust: every principal of the default account, optionally only with an
ExternalId); ``aws.assume_role(role_arn, ...)`` answers STS credentials for it and
``aws.client_in(account_or_role_arn, service, ...)`` a client signing with them (for an
account, a role ``harness-access`` in it is created when missing).
``aws.env`` holds AWS_ENDPOINT_URL, AWS_REGION,
AWS_DEFAULT_REGION, dummy keys, and points the shared config/credentials files at
/dev/null so that a subprocess reads nothing from the user's ~/.aws.

A separate process can drive a server started with ``python -m harness.aws --port N``
through the JSON control API under ``/_harness/`` (see ``harness.aws.traffic``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from .corrections import accounts
from .quota import QUOTA_FAULT
from .server import ACCOUNT_ID, REGION, AwsServer
from .traffic import RequestRecord

DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@functools.cache
def _boto3_session() -> boto3.session.Session:
    # One botocore session per process: its loader caches the service models.
    return boto3.session.Session()


class Aws:
    """What a test sees of the endpoint. See the module docstring."""

    region = REGION
    account_id = ACCOUNT_ID

    def __init__(self, server: AwsServer) -> None:
        self.server = server
        self.faults = server.faults
        self._clients: dict[tuple, object] = {}

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(
        self,
        service: str,
        config: Config | None = None,
        identity: str | None = None,
        region: str | None = None,
    ):
        """A boto3 client for this endpoint; the same one for repeated calls without
        ``config`` (loading a service model takes a good part of a second). With
        ``identity`` (an IAM/STS ARN) the client signs with a key of its own that SageMaker
        attributes to that identity (``set_identity``), in that identity's account.
        ``region``: the region it signs for (default ``aws.region``)."""
        credentials = DUMMY_CREDENTIALS
        if identity is not None:
            key = self.access_key_for(identity)
            self.set_identity(key, identity)  # again after a reset
            credentials = {"aws_access_key_id": key, "aws_secret_access_key": "testing"}
        return self._client(service, credentials, config, region, cache_key=(service, identity, region))

    def _client(self, service: str, credentials: dict, config: Config | None, region: str | None, cache_key):
        if config is None and cache_key in self._clients:
            return self._clients[cache_key]
        base = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
        client = _boto3_session().client(
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            config=base.merge(config) if config else base,
            **credentials,
        )
        if config is None:
            self._clients[cache_key] = client
        return client

    # -- accounts and roles ------------------------------------------------------------

    ACCESS_ROLE = "harness-access"  # the role client_in(account, ...) assumes

    def create_role(
        self,
        account: str,
        name: str,
        trust_policy: dict[str, Any] | str | None = None,
        *,
        external_id: str | None = None,
        path: str = "/",
    ) -> str:
        """Create IAM role ``name`` in ``account`` with ``trust_policy`` (its
        AssumeRolePolicyDocument; default: every principal of the default account may
        assume it, only with ``external_id`` when given); answer its ARN."""
        return accounts.create_role(account, name, trust_policy, external_id=external_id, path=path)

    def assume_role(
        self,
        role_arn: str,
        *,
        external_id: str | None = None,
        session_name: str = "harness",
        identity: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """STS AssumeRole as ``identity`` (default: the dummy keys of the default account);
        answers the ``Credentials``. A refusal raises botocore's ClientError (AccessDenied)."""
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
        if external_id is not None:
            kwargs["ExternalId"] = external_id
        return self.client("sts", identity=identity, region=region).assume_role(**kwargs)["Credentials"]

    def client_in(
        self,
        account_or_role_arn: str,
        service: str,
        *,
        region: str | None = None,
        external_id: str | None = None,
        session_name: str = "harness",
        identity: str | None = None,
        config: Config | None = None,
    ):
        """A client signing with credentials of an assumed role: ``account_or_role_arn`` is a
        role ARN, or an account id (its role ``harness-access`` is created when missing,
        trusting the default account, with ``external_id`` as its condition when given)."""
        role_arn = account_or_role_arn
        if not account_or_role_arn.startswith("arn:"):
            role_arn = accounts.role_arn(account_or_role_arn, self.ACCESS_ROLE) or self.create_role(
                account_or_role_arn, self.ACCESS_ROLE, external_id=external_id
            )
        cache_key = ("assumed", service, role_arn, region, external_id, session_name, identity)
        if config is None and cache_key in self._clients:
            return self._clients[cache_key]
        credentials = self.assume_role(
            role_arn, external_id=external_id, session_name=session_name, identity=identity, region=region
        )
        return self._client(
            service,
            {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            },
            config,
            region,
            cache_key=cache_key,
        )

    @staticmethod
    def access_key_for(identity: str) -> str:
        """A stable access key id for an identity ARN (AKIA + 16 characters, as IAM's)."""
        return "AKIA" + hashlib.sha256(identity.encode()).hexdigest().upper()[:16]

    def set_identity(self, access_key_id: str, arn: str, **context: Any) -> dict[str, Any]:
        """Calls signed with ``access_key_id`` come from ``arn``; ``context``: principal_id,
        source_identity, user_profile_name, domain_id, user_profile_arn. Answers the
        UserContext SageMaker will record (CreatedBy / LastModifiedBy)."""
        return self.server.config.set_identity(access_key_id, arn, **context)

    def env_for(self, identity: str) -> dict[str, str]:
        """``env`` for a subprocess whose calls SageMaker attributes to ``identity``."""
        key = self.access_key_for(identity)
        self.set_identity(key, identity)
        return {**self.env, "AWS_ACCESS_KEY_ID": key}

    def make_bucket(self, name: str, client=None) -> str:
        """An S3 bucket in the default account and ``aws.region`` (or ``client``'s)."""
        client = client or self.client("s3")
        region = client.meta.region_name
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        client.create_bucket(Bucket=name, **location)
        return name

    def requests(self, operation: str | None = None) -> list[RequestRecord]:
        return self.server.log.records(operation)

    def count(self, operation: str) -> int:
        return self.server.log.count(operation)

    def counts(self) -> dict[str, int]:
        return self.server.log.counts()

    def set_status_delay(self, seconds: float) -> None:
        self.server.config.set_status_delay(seconds)

    def set_quota(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """Quota mode (``harness.aws.quota``): SageMaker serves at most ``requests_per_second``
        per account and region (a token bucket holding ``burst``, default one second's worth)
        and throttles the rest without executing them; None turns it off (so does a reset)."""
        self.server.quota.set(requests_per_second, burst)

    def throttled(self, operation: str | None = None) -> list[RequestRecord]:
        """The requests quota mode refused."""
        return [r for r in self.requests(operation) if r.fault == QUOTA_FAULT]

    def reset(self) -> None:
        self.server.reset()


@pytest.fixture(scope="session")
def aws_server() -> Iterator[AwsServer]:
    server = AwsServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(aws_server: AwsServer) -> Iterator[Aws]:
    aws_server.reset()
    yield Aws(aws_server)
    aws_server.reset()
