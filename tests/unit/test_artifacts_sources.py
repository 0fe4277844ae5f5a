import base64
import hashlib
import ipaddress
import threading

import pytest

from model_registry_operator.artifacts import _Progress
from model_registry_operator.artifacts.sources import (
    HttpFetcher,
    HttpSource,
    Policy,
    S3Source,
    SourceInterrupted,
    Stat,
    full_object_sha256,
    parse_source,
    prefetched,
    read_stream,
    redact,
    refused_address_reason,
)
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.settings import Settings

STRICT = Policy(allow_http=False, allow_loopback=False)
LOCAL = Policy(allow_http=True, allow_loopback=True)


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "https://bucket.s3.amazonaws.com/m.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc",
            "https://bucket.s3.amazonaws.com/m.bin?REDACTED",
        ),
        (
            "https://acct.blob.core.windows.net/c/m.bin?sv=2022&se=2030&sig=secret",
            "https://acct.blob.core.windows.net/c/m.bin?REDACTED",
        ),
        ("https://user:hunter2@models.example.org:8443/m.bin", "https://models.example.org:8443/m.bin"),
        ("https://models.example.org/m.bin", "https://models.example.org/m.bin"),
        ("s3://bucket/key.tar.gz", "s3://bucket/key.tar.gz"),
    ],
)
def test_redact_drops_credentials(url, expected):
    assert redact(url) == expected


@pytest.mark.parametrize(
    "address, refused",
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.170.2", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "metadata"),  # IPv4-mapped IPv6 does not dodge the check
        ("2002:a9fe:a9fe::1", "metadata"),  # nor does 6to4 (2002:<IPv4>::/48)
        ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata"),  # nor Teredo (client 169.254.169.254, inverted)
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", None),  # private: internal mirrors are allowed
        ("192.168.1.10", None),
        ("52.216.1.1", None),
        ("2600:1f18::1", None),
    ],
)
def test_address_policy(address, refused):
    reason = refused_address_reason(ipaddress.ip_address(address), STRICT)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_loopback_allowed_only_with_allow_http():
    assert refused_address_reason(ipaddress.ip_address("127.0.0.1"), LOCAL) is None
    assert refused_address_reason(ipaddress.ip_address("169.254.169.254"), LOCAL) is not None


def parse(url, policy=STRICT):
    return parse_source(url, policy, s3_client=None, http=HttpFetcher(), where="artifact model, file m.bin")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", "ForbiddenSource"),
        ("ftp://models.example.org/m.bin", "ForbiddenSource"),
        ("gopher://x/", "ForbiddenSource"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "ForbiddenSource",
        ),  # literal addresses: refused at once
        ("https://[fd00:ec2::254]/latest/meta-data/", "ForbiddenSource"),
        ("https://127.0.0.1:8443/m.bin", "ForbiddenSource"),
        ("http://models.example.org/m.bin", "ForbiddenSource"),
        ("s3://bucket-only", "InvalidSource"),
        ("s3://bucket/key?versionId=", "InvalidSource"),
        ("s3://bucket/key?versionId=1&partNumber=2", "InvalidSource"),
        ("s3://bucket/key?response-content-type=x", "InvalidSource"),
        ("https:///no-host", "InvalidSource"),
        ("https://[::1/broken", "InvalidSource"),
        ("https://models.example.org:99999/m.bin", "InvalidSource"),
    ],
)
def test_refused_sources_name_artifact_and_file(url, reason):
    with pytest.raises(TerminalError) as caught:
        parse(url)
    assert caught.value.reason == reason
    assert caught.value.message.startswith("artifact model, file m.bin: ")


def test_accepted_sources():
    assert isinstance(parse("s3://bucket/dir/m.bin"), S3Source)
    assert isinstance(parse("https://models.example.org/m.bin"), HttpSource)
    assert isinstance(parse("http://mirror.local/m.bin", LOCAL), HttpSource)


def test_plain_http_message_names_the_setting():
    with pytest.raises(TerminalError) as caught:
        parse("http://u:p@models.example.org/m.bin?sig=s3cret")
    assert "MRO_ALLOW_HTTP" in caught.value.message
    assert "s3cret" not in caught.value.message and "u:p" not in caught.value.message


def test_host_resolving_to_metadata_is_refused_before_connecting():
    fetcher = HttpFetcher(resolve=lambda host, port: ["10.0.0.5", "169.254.169.254"])
    source = HttpSource(
        fetcher, "https://models.test/m.bin?X-Amz-Signature=s3cret", STRICT, "artifact a, file f"
    )
    with pytest.raises(TerminalError) as caught:
        source.stat()
    assert caught.value.reason == "ForbiddenSource"
    assert "169.254.169.254" in caught.value.message and "s3cret" not in caught.value.message


def test_full_object_sha256_ignores_composite_checksums():
    hexdigest = hashlib.sha256(b"hello world").hexdigest()
    digest = base64.b64encode(bytes.fromhex(hexdigest)).decode()  # S3 spells checksums in base64
    assert full_object_sha256({"ChecksumSHA256": digest}) == hexdigest
    assert full_object_sha256({"ChecksumSHA256": digest, "ChecksumType": "FULL_OBJECT"}) is not None
    assert full_object_sha256({"ChecksumSHA256": digest + "-3"}) is None
    assert full_object_sha256({"ChecksumSHA256": digest, "ChecksumType": "COMPOSITE"}) is None
    assert full_object_sha256({}) is None


class FlakySource:
    """Fails with SourceInterrupted after `cut` bytes, `failures` times."""

    display = "https://models.test/m.bin"

    def __init__(self, data: bytes, cut: int, failures: int):
        self.data, self.cut, self.failures, self.offsets = data, cut, failures, []

    def open(self, offset, stat):
        self.offsets.append(offset)
        end = len(self.data)
        if self.failures:
            self.failures -= 1
            end = min(end, offset + self.cut)
        for start in range(offset, end, 10):
            yield self.data[start : min(start + 10, end)]
        if end < len(self.data):
            raise SourceInterrupted("connection reset")


def test_read_stream_resumes_at_the_offset_reached():
    data = bytes(range(100))
    source = FlakySource(data, cut=30, failures=2)
    out = b"".join(read_stream(source, Stat(size=100), LOCAL, "artifact a, file f", sleep=lambda s: None))
    assert out == data
    assert source.offsets == [0, 30, 60]


def test_read_stream_gives_up_after_bounded_attempts():
    source = FlakySource(bytes(100), cut=10, failures=5)
    with pytest.raises(RetryableError) as caught:
        b"".join(read_stream(source, Stat(size=100), LOCAL, "artifact a, file f", sleep=lambda s: None))
    assert caught.value.reason == "SourceUnreachable"
    assert caught.value.message.startswith("artifact a, file f: ")
    assert len(source.offsets) == LOCAL.attempts


def test_progress_is_throttled_to_the_interval():
    calls, now = [], [0.0]
    progress = _Progress(lambda *args: calls.append(args), "model", 100, 2.0, clock=lambda: now[0])
    for _ in range(100):
        progress.add(1)
        now[0] += 0.1  # 100 updates over 10 s
    assert calls[0] == ("model", 1, 100)
    assert len(calls) == 5  # at 0, 2, 4, 6 and 8 s
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


def test_progress_callback_failure_does_not_break_the_copy():
    def broken(*args):
        raise RuntimeError("api server down")

    progress = _Progress(broken, "model", 10, 0.0, clock=lambda: 0.0)
    progress.add(5)
    assert progress.done == 5


def test_settings_drive_the_policy():
    assert Policy.from_settings(Settings(allow_http=False)).allow_loopback is False
    assert Policy.from_settings(Settings(allow_http=True)).allow_loopback is True
    allowlisted = Policy.from_settings(Settings(source_buckets=("ml-src",), source_hosts=("*.example.org",)))
    assert (allowlisted.source_buckets, allowlisted.source_hosts) == (("ml-src",), ("*.example.org",))


def test_s3_version_id_is_parsed_and_named():
    source = parse("s3://bucket/dir/m.bin?versionId=3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY%2FMTRC")
    assert source.location == {
        "Bucket": "bucket",
        "Key": "dir/m.bin",
        "VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY/MTRC",
    }
    assert source.display == "s3://bucket/dir/m.bin?versionId=3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY/MTRC"
    assert parse("s3://bucket/m.bin").location == {"Bucket": "bucket", "Key": "m.bin"}


def test_prefetched_keeps_order_and_raises_the_readers_error_in_the_consumer():
    assert list(prefetched(iter([b"a", b"b", b"c"]), depth=2)) == [b"a", b"b", b"c"]

    def failing():
        yield b"a"
        raise RetryableError("SourceUnreachable", "artifact a, file f: reset")

    chunks = prefetched(failing(), depth=2)
    assert next(chunks) == b"a"
    with pytest.raises(RetryableError):
        next(chunks)


def test_prefetched_reader_stops_and_closes_the_source_when_the_consumer_does():
    produced, closed = [], threading.Event()

    def endless():
        try:
            for n in range(10_000):
                produced.append(n)
                yield b"x"
        finally:
            closed.set()

    chunks = prefetched(endless(), depth=2)
    next(chunks)
    chunks.close()
    assert closed.wait(5)
    assert len(produced) < 10
