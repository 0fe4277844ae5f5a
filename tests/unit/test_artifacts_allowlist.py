"""MRO_SOURCE_BUCKETS and MRO_SOURCE_HOSTS: which sources the operator may read (confused deputy)."""

import pytest

from model_registry_operator.artifacts.sources import (
    HttpFetcher,
    HttpSource,
    Policy,
    S3Source,
    bucket_allowed,
    host_allowed,
    parse_source,
)
from model_registry_operator.errors import TerminalError
from model_registry_operator.settings import Settings

WHERE = "artifact model, file m.bin"


def policy(buckets="", hosts="") -> Policy:
    env = {"MRO_SOURCE_BUCKETS": buckets, "MRO_SOURCE_HOSTS": hosts}
    return Policy.from_settings(Settings.from_env(env))


def parse(url, policy, http=None):
    return parse_source(url, policy, s3_client=None, http=http or HttpFetcher(), where=WHERE)


@pytest.mark.parametrize(
    "bucket, key, allowed",
    [
        ("ml-src", "churn/m.bin", True),
        ("ml-src-2", "m.bin", False),  # a bucket name is whole, not a prefix
        ("team-a-models", "m.bin", True),  # team-*-models
        ("team-b.eu-models", "m.bin", True),
        ("team-models", "m.bin", False),
        ("shared", "releases/churn/m.bin", True),  # shared/releases/
        ("shared", "releases", False),
        ("shared", "private/m.bin", False),
        ("shared", "releases/../private/m.bin", False),  # HTTP stacks may resolve dot segments
        ("shared", "releases/./m.bin", False),
        ("ml-src", "a/../b", False),
        ("other", "m.bin", False),
    ],
)
def test_bucket_allowlist(bucket, key, allowed):
    entries = Settings.from_env(
        {"MRO_SOURCE_BUCKETS": "ml-src, team-*-models,shared/releases/"}
    ).source_buckets
    assert bucket_allowed(bucket, key, entries) is allowed


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("models.example.org", True),
        ("MODELS.Example.org.", True),  # case and the root's trailing dot do not matter
        ("cdn.example.net", True),
        ("eu.cdn.example.net", True),
        ("example.net", False),  # *.example.net is its subdomains only
        ("evil-example.net", False),
        ("example.net.evil.com", False),
        ("models.example.org.evil.com", False),
        ("other.example.org", False),
        ("10.0.0.5", True),
        ("10.0.0.50", False),
        ("::1", True),
        ("0:0::1", True),  # another spelling of ::1
    ],
)
def test_host_allowlist(host, allowed):
    entries = Settings.from_env(
        {"MRO_SOURCE_HOSTS": "models.example.org,*.example.net, 10.0.0.5,[::1]"}
    ).source_hosts
    assert host_allowed(host, entries) is allowed


def test_unset_allows_anything():
    assert bucket_allowed("any", "../key", ()) and host_allowed("any.host", ())
    assert isinstance(parse("s3://any/key", policy()), S3Source)
    assert isinstance(parse("https://any.example.com/m.bin", policy()), HttpSource)
    assert isinstance(
        parse("s3://any/key", policy(hosts="models.example.org")), S3Source
    )  # each setting alone
    assert isinstance(parse("https://any.example.com/m.bin", policy(buckets="ml-src")), HttpSource)


@pytest.mark.parametrize(
    "url, setting",
    [
        ("s3://payroll/2026/salaries.csv", "MRO_SOURCE_BUCKETS"),
        ("s3://ml-src/../payroll/x?versionId=3", "MRO_SOURCE_BUCKETS"),
        ("https://attacker.example.com/m.bin?sig=s3cret", "MRO_SOURCE_HOSTS"),
        ("https://user:s3cret@models.example.org.attacker.com/m.bin", "MRO_SOURCE_HOSTS"),
        ("https://models.example.org@attacker.com/m.bin", "MRO_SOURCE_HOSTS"),  # userinfo is not the host
    ],
)
def test_sources_outside_the_allowlist_are_forbidden(url, setting):
    with pytest.raises(TerminalError) as caught:
        parse(url, policy(buckets="ml-src", hosts="models.example.org"))
    assert caught.value.reason == "ForbiddenSource"
    assert caught.value.message.startswith(f"{WHERE}: source ")
    assert setting in caught.value.message and "s3cret" not in caught.value.message


def test_a_host_outside_the_allowlist_is_refused_before_resolving():
    resolved = []
    fetcher = HttpFetcher(resolve=lambda host, port: resolved.append(host) or ["10.0.0.5"])
    source = HttpSource(fetcher, "https://elsewhere.test/m.bin", policy(hosts="models.test"), WHERE)
    with pytest.raises(TerminalError) as caught:
        source.stat()
    assert caught.value.reason == "ForbiddenSource" and "MRO_SOURCE_HOSTS" in caught.value.message
    assert resolved == []


@pytest.mark.parametrize("hosts", ["", "*.example.org"])
@pytest.mark.parametrize(
    "host",
    [
        "localhost\x00.example.org",
        "intranet.corp\x00.example.org",
        "a b.example.org",
        "a_b.example.org",
        "-x.example.org",
        "x..example.org",
    ],
)
def test_a_host_that_is_not_a_host_name_is_refused_whatever_the_allowlist(host, hosts):
    # the resolver stops at a NUL byte: "localhost\x00.example.org" would pass *.example.org and reach localhost
    with pytest.raises(TerminalError) as refused:
        parse(f"https://{host}/m.bin", policy(hosts=hosts))
    assert refused.value.reason == "InvalidSource" and "not a valid host name" in refused.value.message


@pytest.mark.parametrize(
    "host", ["models.example.org", "models.example.org.", "10.0.0.7", "[fd12::7]", "bücher.example"]
)
def test_host_names_and_addresses_are_valid_hosts(host):
    assert isinstance(parse(f"https://{host}/m.bin", policy()), HttpSource)


def test_a_redirect_to_a_host_that_is_not_a_host_name_is_refused():
    fetcher = HttpFetcher(resolve=lambda host, port: pytest.fail(f"{host!r} was resolved"))
    with pytest.raises(TerminalError) as refused:
        fetcher.request("https://localhost\x00.example.org/m.bin", {}, policy(), WHERE)
    assert refused.value.reason == "InvalidSource"


@pytest.mark.parametrize(
    "bucket",
    [
        "arn:aws:s3:us-east-1:123456789012:accesspoint:payroll-models",
        "arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint:ml-x",
        "a",
        "x y",
    ],
)
def test_an_s3_source_must_name_a_bucket(bucket):
    with pytest.raises(TerminalError) as refused:
        parse(f"s3://{bucket}/2026/m.bin", policy())
    assert refused.value.reason == "InvalidSource"


@pytest.mark.parametrize(
    "bucket, allowed",
    [
        ("ml-payroll-ap-abc123-s3alias", False),
        ("ml-lambda-ap-abc--ol-s3", False),
        ("ml-global.mrap", False),
        ("ml-churn", True),
        ("ml-exact-ap-abc-s3alias", True),
    ],
)
def test_access_point_aliases_need_an_entry_that_names_them(bucket, allowed):
    # an alias fronts some other bucket: "ml-*" must not admit it
    entries = Settings.from_env({"MRO_SOURCE_BUCKETS": "ml-*,ml-exact-ap-abc-s3alias"}).source_buckets
    assert bucket_allowed(bucket, "m.bin", entries) is allowed


def test_the_api_and_its_crd_refuse_control_characters_in_a_source_host():
    from pydantic import ValidationError

    from model_registry_operator.api.modelpackage import ARTIFACT_SOURCE_PATTERN, ArtifactFile

    with pytest.raises(ValidationError):
        ArtifactFile(path="m.bin", source="https://intranet\x00.example.org/m.bin")
    assert ArtifactFile(path="m.bin", source="https://models.example.org/m.bin?X-Amz-Signature=a b")
    assert (
        "\\x00-\\x20" in ARTIFACT_SOURCE_PATTERN
    )  # the CRD's pattern is generated from it (test_crds: staleness)
