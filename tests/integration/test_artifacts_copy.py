"""copy_artifacts against the harness S3 (moto over HTTP) and a local HTTP(S) file server."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field

import botocore.exceptions
import pytest

from harness.httpserver import FileServer
from model_registry_operator.api.modelpackage import Artifact as ApiArtifact
from model_registry_operator.artifacts import HttpFetcher, Tuning, copy_artifacts
from model_registry_operator.errors import RetryableError, TerminalError
from model_registry_operator.settings import Settings

PREFIX = "model-registry/team-a/churn/0f3c-uid"
KEY = f"{PREFIX}/model/model.tar.gz"
LOCAL = Settings(allow_http=True)  # loopback and plain http: the test servers
FAST = Tuning(backoff=0.0, part_size=5 * 1024**2)
WRITES = (
    "PutObject",
    "UploadPart",
    "CopyObject",
    "UploadPartCopy",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
)


@dataclass
class File:
    path: str
    source: str
    sha256: str | None = None


@dataclass
class Artifact:
    name: str
    files: list[File] = field(default_factory=list)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


@pytest.fixture
def server():
    with FileServer() as server:
        yield server


@pytest.fixture
def s3(aws):
    aws.make_bucket("registry")
    aws.make_bucket("sources")
    return aws.client("s3")


def copy(s3, *artifacts, settings=LOCAL, tuning=FAST, **kwargs):
    return copy_artifacts(
        list(artifacts),
        s3_client=s3,
        bucket="registry",
        key_prefix=PREFIX,
        settings=settings,
        tuning=tuning,
        **kwargs,
    )


def stored(s3, key=KEY) -> bytes:
    return s3.get_object(Bucket="registry", Key=key)["Body"].read()


def registry_keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket="registry").get("Contents", [])]


def open_uploads(s3) -> list:
    return s3.list_multipart_uploads(Bucket="registry").get("Uploads", [])


def refused(s3, *artifacts, **kwargs) -> TerminalError:
    with pytest.raises(TerminalError) as caught:
        copy(s3, *artifacts, **kwargs)
    return caught.value


# --- packing and passthrough ----------------------------------------------------------


def test_several_files_are_packed_into_one_tar_gz(s3, server):
    weights = os.urandom(12 * 1024**2 + 3)  # several parts of 5 MiB
    code = b"def predict(x):\n    return x\n" * 100
    s3.put_object(Bucket="sources", Key="churn/inference.py", Body=code)
    artifact = Artifact(
        "model",
        [
            File("model.joblib", server.add("/churn/model.joblib", weights), sha256(weights)),
            File("code/inference.py", "s3://sources/churn/inference.py"),
        ],
    )
    progress = []
    (status,) = copy(s3, artifact, progress=lambda *args: progress.append(args))

    archive = stored(s3)
    assert unpack(archive) == {"model.joblib": weights, "code/inference.py": code}
    assert status == {
        "name": "model",
        "uri": f"s3://registry/{KEY}",
        "sha256": sha256(archive),
        "size": len(archive),
    }
    assert progress and progress[0][0] == "model" and progress[0][2] == len(weights) + len(code)


def test_the_upload_declares_the_part_checksums_s3_then_verifies(s3, server):
    # CRC32 per part, declared on CreateMultipartUpload and listed at completion, as boto3's
    # transfer manager does: S3 checks every part again and the object's checksum is built
    # from them (an undeclared upload gets a full-object CRC64NVME computed all over again)
    weights = os.urandom(11 * 1024**2)
    copy(s3, Artifact("model", [File("model.bin", server.add("/model.bin", weights))]))
    head = s3.head_object(Bucket="registry", Key=KEY, ChecksumMode="ENABLED")
    # moto's HeadObject leaves out the "-<parts>" suffix and ChecksumType that S3 sends
    assert "ChecksumCRC32" in head and "ChecksumCRC64NVME" not in head


def test_the_api_types_are_accepted(s3, server):
    data = b"weights"
    artifact = ApiArtifact.model_validate(
        {
            "name": "model",
            "files": [{"path": "w.bin", "source": server.add("/w.bin", data), "sha256": sha256(data)}],
        }
    )
    (status,) = copy(s3, artifact)
    assert unpack(stored(s3)) == {"w.bin": data}
    assert status["sha256"] == sha256(stored(s3))


def test_one_tar_gz_over_https_is_copied_as_is(s3):
    archive = make_tar_gz({"model.pth": os.urandom(4000)})
    with FileServer(tls=True) as tls_server:
        # the host name resolves (once) to the server; TLS checks the certificate against it
        http = HttpFetcher(ca_certs=tls_server.ca_path, resolve=lambda host, port: ["127.0.0.1"])
        url = tls_server.add("/releases/model.tar.gz", archive).replace("127.0.0.1", "models.test")
        (status,) = copy(s3, Artifact("model", [File("model.tar.gz", url, sha256(archive))]), http=http)
        hosts = {headers.get("Host") for _, _, headers in tls_server.requests}
    assert stored(s3) == archive
    assert (status["sha256"], status["size"]) == (sha256(archive), len(archive))
    assert hosts == {f"models.test:{tls_server.port}"}


def test_https_with_an_unknown_certificate_is_unreachable(s3):
    with FileServer(tls=True) as tls_server:
        url = tls_server.add("/m.bin", b"x")
        with pytest.raises(RetryableError) as caught:
            copy(s3, Artifact("model", [File("m.bin", url)]), http=HttpFetcher())  # system CAs only
    assert caught.value.reason == "SourceUnreachable"
    assert "artifact model, file m.bin" in caught.value.message


# --- S3 sources: server-side copy -----------------------------------------------------


def test_single_s3_tar_gz_is_copied_server_side(aws, s3):
    archive = make_tar_gz({"model.bin": os.urandom(200_000)})
    s3.put_object(Bucket="sources", Key="releases/v3/model.tar.gz", Body=archive)
    log_start = len(aws.requests())

    (status,) = copy(
        s3,
        Artifact("model", [File("model.tar.gz", "s3://sources/releases/v3/model.tar.gz", sha256(archive))]),
    )

    requests = aws.requests()[log_start:]
    assert stored(s3) == archive
    assert (status["sha256"], status["size"]) == (sha256(archive), len(archive))
    operations = [r.operation for r in requests]
    assert operations.count("CopyObject") == 1
    assert not {"UploadPart", "GetObject"} & set(operations)
    assert sum(r.bytes_in for r in requests) < 4096  # the record and request headers, no archive bytes
    assert sum(r.bytes_out for r in requests) < 4096


def test_large_s3_tar_gz_is_copied_in_parts_server_side(aws, s3):
    archive = make_tar_gz({"model.bin": os.urandom(11 * 1024**2)})
    s3.put_object(Bucket="sources", Key="big/model.tar.gz", Body=archive)
    tuning = Tuning(copy_object_max=5 * 1024**2, copy_part_size=5 * 1024**2, backoff=0.0)

    (status,) = copy(
        s3, Artifact("model", [File("model.tar.gz", "s3://sources/big/model.tar.gz")]), tuning=tuning
    )

    assert status["sha256"] == sha256(archive)  # S3 had no full-object checksum: read once to hash
    assert aws.count("GetObject") == 1
    assert aws.count("UploadPartCopy") == 3
    assert aws.count("UploadPart") == aws.count("CopyObject") == 0
    assert stored(s3) == archive


def test_large_copy_uses_the_sources_full_object_checksum_without_reading(aws, s3):
    archive = make_tar_gz({"model.bin": os.urandom(6 * 1024**2)})
    s3.put_object(Bucket="sources", Key="big/model.tar.gz", Body=archive, ChecksumAlgorithm="SHA256")
    tuning = Tuning(copy_object_max=5 * 1024**2, copy_part_size=5 * 1024**2, backoff=0.0)

    (status,) = copy(
        s3,
        Artifact("model", [File("model.tar.gz", "s3://sources/big/model.tar.gz", sha256(archive))]),
        tuning=tuning,
    )

    assert status["sha256"] == sha256(archive)
    assert aws.count("GetObject") == 0  # the source was not read
    assert aws.count("UploadPartCopy") == 2


def test_s3_checksum_mismatch_known_up_front_copies_nothing(aws, s3):
    s3.put_object(Bucket="sources", Key="m.tar.gz", Body=b"\x1f\x8b not really", ChecksumAlgorithm="SHA256")
    error = refused(s3, Artifact("model", [File("model.tar.gz", "s3://sources/m.tar.gz", "0" * 64)]))
    assert error.reason == "ChecksumMismatch"
    assert aws.count("CopyObject") == 0
    assert registry_keys(s3) == []


def test_s3_checksum_mismatch_found_by_the_copy_leaves_nothing(s3):
    s3.put_object(Bucket="sources", Key="m.tar.gz", Body=b"\x1f\x8b not really")
    error = refused(s3, Artifact("model", [File("model.tar.gz", "s3://sources/m.tar.gz", "a" * 64)]))
    assert error.reason == "ChecksumMismatch"
    assert error.message.startswith("artifact model, file model.tar.gz: sha256 mismatch: declared aaaa")
    assert registry_keys(s3) == []


@pytest.mark.parametrize(
    "source, reason",
    [("s3://sources/missing.bin", "SourceNotFound"), ("s3://no-such-bucket-here/m.bin", "SourceNotFound")],
)
def test_missing_s3_source(s3, source, reason):
    error = refused(s3, Artifact("model", [File("m.bin", source)]))
    assert error.reason == reason
    assert error.message.startswith("artifact model, file m.bin: ") and source in error.message


def test_every_wrong_source_of_every_artifact_is_reported_at_once_before_any_copy(aws, s3, server):
    good = server.add("/good.bin", b"g")
    error = refused(
        s3,
        Artifact("model", [File("good.bin", good), File("m.bin", "s3://sources/missing.bin")]),
        Artifact("tokenizer", [File("vocab.txt", "ftp://example.org/vocab.txt")]),
        Artifact("extra", [File("e.bin", server.add("/e.bin", b"e"))]),
    )
    assert error.reason == "SourceNotFound"  # the first one's
    assert error.message.startswith("2 artifact sources are wrong: artifact model, file m.bin: ")
    assert "artifact tokenizer, file vocab.txt: " in error.message
    assert registry_keys(s3) == [] and all(aws.count(op) == 0 for op in WRITES)  # nothing copied


# --- integrity, idempotency, resumption -------------------------------------------------


def test_checksum_mismatch_aborts_the_upload_and_leaves_nothing(aws, s3, server):
    good, bad = (
        os.urandom(7 * 1024**2),
        os.urandom(3 * 1024**2),
    )  # a part is uploaded before the mismatch shows
    artifact = Artifact(
        "model",
        [
            File("a.bin", server.add("/a.bin", good), sha256(good)),
            File("b.bin", server.add("/b.bin", bad), "3b0c" + "0" * 60),
        ],
    )
    error = refused(s3, artifact)
    assert error.reason == "ChecksumMismatch"
    assert error.message == (
        f"artifact model, file b.bin: sha256 mismatch: declared 3b0c{'0' * 60}, got {sha256(bad)} "
        f"(source {server.url('/b.bin')})"
    )
    assert aws.count("UploadPart") >= 1 and aws.count("AbortMultipartUpload") == 1
    assert open_uploads(s3) == [] and registry_keys(s3) == []


def test_a_complete_copy_is_not_repeated(aws, s3, server):
    data = os.urandom(100_000)
    artifact = Artifact("model", [File("m.bin", server.add("/m.bin", data))])
    first = copy(s3, artifact)
    writes = {op: aws.count(op) for op in WRITES}
    fetches = server.count("/m.bin")

    again = copy(s3, artifact)  # e.g. by a restarted operator

    assert again == first
    assert {op: aws.count(op) for op in WRITES} == writes
    assert server.count("/m.bin") == fetches


def test_a_changed_spec_is_copied_again(s3, server):
    old, new = b"v1" * 1000, b"v2" * 1000
    copy(s3, Artifact("model", [File("m.bin", server.add("/v1.bin", old))]))
    (status,) = copy(s3, Artifact("model", [File("m.bin", server.add("/v2.bin", new))]))
    assert unpack(stored(s3)) == {"m.bin": new}
    assert status["sha256"] == sha256(stored(s3))


def test_an_overwritten_archive_is_copied_again(s3, server):
    artifact = Artifact("model", [File("m.bin", server.add("/m.bin", b"weights"))])
    copy(s3, artifact)
    s3.put_object(Bucket="registry", Key=KEY, Body=b"tampered")
    copy(s3, artifact)
    assert unpack(stored(s3)) == {"m.bin": b"weights"}


def test_an_upload_left_by_an_interrupted_run_is_aborted(aws, s3, server):
    leftover = s3.create_multipart_upload(Bucket="registry", Key=KEY)["UploadId"]
    s3.upload_part(Bucket="registry", Key=KEY, UploadId=leftover, PartNumber=1, Body=b"x" * 5 * 1024**2)

    copy(s3, Artifact("model", [File("m.bin", server.add("/m.bin", b"weights"))]))

    assert open_uploads(s3) == []
    assert unpack(stored(s3)) == {"m.bin": b"weights"}


def test_a_failed_part_aborts_the_upload(aws, s3, server):
    aws.faults.error("UploadPart", status=500, count=1)
    with pytest.raises(RetryableError) as caught:
        copy(s3, Artifact("model", [File("m.bin", server.add("/m.bin", os.urandom(6 * 1024**2)))]))
    assert caught.value.reason == "ArtifactUploadFailed"
    assert open_uploads(s3) == [] and registry_keys(s3) == []


def test_a_dropped_connection_resumes_with_a_range_request(s3, server):
    data = os.urandom(3 * 1024**2)
    url = server.add("/m.bin", data, cut_after=1024**2 + 100, headers={"ETag": '"v1"'})
    copy(s3, Artifact("model", [File("m.bin", url, sha256(data))]))
    assert unpack(stored(s3)) == {"m.bin": data}
    ranges = [h.get("Range") for _, p, h in server.requests if p == "/m.bin"]
    assert ranges[-1] == f"bytes={1024**2 + 100}-"


def test_a_source_without_length_is_spooled(s3, server):
    data = os.urandom(2 * 1024**2 + 5)
    url = server.add("/stream.bin", data, chunked=True, ranges=False)
    (status,) = copy(
        s3, Artifact("model", [File("m.bin", url, sha256(data)), File("b.txt", server.add("/b.txt", b"b"))])
    )
    assert unpack(stored(s3)) == {"m.bin": data, "b.txt": b"b"}
    assert status["size"] == len(stored(s3))


def test_transient_5xx_are_retried(s3, server):
    url = server.add("/m.bin", b"weights", fail_first=2)
    copy(s3, Artifact("model", [File("m.bin", url)]))
    assert unpack(stored(s3)) == {"m.bin": b"weights"}


def test_persistent_5xx_is_retryable_and_names_the_file(s3, server):
    url = server.add("/m.bin", b"weights", fail_first=100)
    with pytest.raises(RetryableError) as caught:
        copy(s3, Artifact("model", [File("m.bin", url)]))
    assert caught.value.reason == "SourceUnreachable"
    assert caught.value.message.startswith("artifact model, file m.bin: ") and "503" in caught.value.message
    assert server.count("/m.bin") == FAST.attempts
    assert registry_keys(s3) == []


# --- refused and failing sources --------------------------------------------------------


@pytest.mark.parametrize(
    "status, reason", [(403, "SourceForbidden"), (401, "SourceForbidden"), (404, "SourceNotFound")]
)
def test_http_errors_name_artifact_and_file_without_credentials(s3, server, status, reason):
    url = server.add("/m.bin", status=status) + "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef"
    error = refused(
        s3, Artifact("model", [File("m.bin", "http://reader:s3cret@" + url.removeprefix("http://"))])
    )
    assert error.reason == reason
    assert (
        error.message
        == f"artifact model, file m.bin: source {server.url('/m.bin')}?REDACTED answered {status} "
        + ("(access denied)" if reason == "SourceForbidden" else "(not found)")
    )
    assert registry_keys(s3) == []


@pytest.mark.parametrize(
    "source",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "https://169.254.170.2/v2/credentials",
        "file:///var/run/secrets/kubernetes.io/serviceaccount/token",
        "http://0.0.0.0:8080/",
    ],
)
def test_forbidden_sources(aws, s3, source):
    error = refused(s3, Artifact("model", [File("m.bin", source)]))
    assert error.reason == "ForbiddenSource"
    assert error.message.startswith("artifact model, file m.bin: ")
    assert set(aws.counts()) == {"CreateBucket"}  # refused before touching any bucket


def test_plain_http_is_refused_unless_allowed(s3, server):
    error = refused(s3, Artifact("model", [File("m.bin", server.add("/m.bin", b"x"))]), settings=Settings())
    assert error.reason == "ForbiddenSource" and "MRO_ALLOW_HTTP" in error.message
    assert server.requests == []


def test_loopback_is_refused_unless_allowed(s3):
    with FileServer(tls=True) as tls_server:
        url = tls_server.add("/m.bin", b"x")
        error = refused(
            s3,
            Artifact("model", [File("m.bin", url)]),
            settings=Settings(),
            http=HttpFetcher(ca_certs=tls_server.ca_path),
        )
        assert tls_server.requests == []
    assert error.reason == "ForbiddenSource" and "loopback" in error.message


def test_redirect_to_the_metadata_service_is_refused(s3, server):
    url = server.add("/m.bin", redirect="http://169.254.169.254/latest/meta-data/?token=s3cret")
    error = refused(s3, Artifact("model", [File("m.bin", url)]))
    assert error.reason == "ForbiddenSource"
    assert "169.254.169.254" in error.message and "s3cret" not in error.message


def test_redirects_to_allowed_places_are_followed(s3, server):
    url = server.add("/old.bin", redirect=server.url("/new.bin"))
    server.add("/new.bin", b"moved")
    copy(s3, Artifact("model", [File("m.bin", url)]))
    assert unpack(stored(s3)) == {"m.bin": b"moved"}


def test_too_large_artifact_is_refused_before_writing(aws, s3, server):
    url = server.add("/m.bin", b"x" * 2000)
    error = refused(
        s3,
        Artifact("model", [File("m.bin", url)]),
        settings=Settings(allow_http=True, max_artifact_bytes=1000),
    )
    assert error.reason == "ArtifactTooLarge" and "MRO_MAX_ARTIFACT_BYTES" in error.message
    assert aws.count("CreateMultipartUpload") == 0


def test_too_large_source_without_length_stops_spooling(s3, server):
    url = server.add("/m.bin", b"x" * 5000, chunked=True, ranges=False)
    error = refused(
        s3,
        Artifact("model", [File("m.bin", url)]),
        settings=Settings(allow_http=True, max_artifact_bytes=1000),
    )
    assert error.reason == "ArtifactTooLarge"


@pytest.mark.parametrize("path", ["../escape.bin", "/abs.bin", "a//b", "./m.bin"])
def test_paths_that_escape_the_archive_are_refused(s3, path):
    error = refused(s3, Artifact("model", [File(path, "s3://sources/m.bin")]))
    assert error.reason == "InvalidSpec" and path in error.message


def test_progress_reports_bytes_and_total(s3, server):
    data = os.urandom(3 * 1024**2)
    progress = []
    copy(
        s3,
        Artifact("model", [File("m.bin", server.add("/m.bin", data))]),
        tuning=Tuning(progress_interval=0.0, backoff=0.0),
        progress=lambda *args: progress.append(args),
    )
    assert progress[-1] == ("model", len(data), len(data))
    assert [done for _, done, _ in progress] == sorted(done for _, done, _ in progress)


def test_several_artifacts_get_their_own_archives(s3, server):
    statuses = copy(
        s3,
        Artifact("model", [File("m.bin", server.add("/m.bin", b"m"))]),
        Artifact("tokenizer", [File("vocab.txt", server.add("/vocab.txt", b"v"))]),
    )
    assert [s["uri"] for s in statuses] == [
        f"s3://registry/{KEY}",
        f"s3://registry/{PREFIX}/tokenizer/model.tar.gz",
    ]
    assert unpack(stored(s3, f"{PREFIX}/tokenizer/model.tar.gz")) == {"vocab.txt": b"v"}


def test_credentials_stay_out_of_logs_and_the_completion_record(s3, server, caplog):
    url = server.add("/m.bin", b"weights") + "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef"
    caplog.set_level("DEBUG", logger="model_registry_operator")
    copy(s3, Artifact("model", [File("m.bin", url)]))
    record = stored(s3, KEY + ".mro.json").decode()
    assert server.url("/m.bin") + "?REDACTED" in record
    for secret in ("AKIAEXAMPLE", "deadbeef"):
        assert secret not in record and secret not in caplog.text


CRASHING_CHILD = r"""
import sys
from dataclasses import dataclass
import boto3
from model_registry_operator.artifacts import Tuning, copy_artifacts
from model_registry_operator.settings import Settings

@dataclass
class File:
    path: str
    source: str
    sha256: None = None

@dataclass
class Artifact:
    name: str
    files: list

s3 = boto3.client("s3")
copy_artifacts([Artifact("model", [File("m.bin", sys.argv[1])])], s3_client=s3, bucket="registry", key_prefix=sys.argv[2],
               settings=Settings(allow_http=True), tuning=Tuning(part_size=5 * 1024**2))
"""


def test_an_operator_killed_mid_copy_leaves_an_upload_the_next_run_aborts(aws, s3, server):
    data = os.urandom(12 * 1024**2)
    slow = server.add("/slow.bin", data, delay=0.05)  # 1 MiB per 50 ms: the kill lands mid-copy
    env = {**os.environ, **aws.env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen([sys.executable, "-c", CRASHING_CHILD, slow, PREFIX], env=env)
    try:
        deadline = time.monotonic() + 60
        while aws.count("UploadPart") == 0 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    assert aws.count("UploadPart") >= 1 and aws.count("CompleteMultipartUpload") == 0
    assert len(open_uploads(s3)) == 1  # what a crash leaves

    (status,) = copy(s3, Artifact("model", [File("m.bin", server.add("/m.bin", data))]))

    assert open_uploads(s3) == []
    assert aws.count("CompleteMultipartUpload") == 1
    assert unpack(stored(s3)) == {"m.bin": data}
    assert status["sha256"] == sha256(stored(s3))


def test_a_dropped_connection_to_a_server_without_ranges_skips_what_it_had(s3, server):
    data = os.urandom(3 * 1024**2)
    url = server.add("/m.bin", data, cut_after=2 * 1024**2, ranges=False)  # no ETag, no ranges
    copy(s3, Artifact("model", [File("m.bin", url, sha256(data))]))
    assert unpack(stored(s3)) == {"m.bin": data}


# --- allowed source buckets and hosts (MRO_SOURCE_BUCKETS, MRO_SOURCE_HOSTS) ---------------


def allowlisted(buckets: str = "", hosts: str = "") -> Settings:
    return Settings.from_env(
        {"MRO_ALLOW_HTTP": "true", "MRO_SOURCE_BUCKETS": buckets, "MRO_SOURCE_HOSTS": hosts}
    )


def test_an_s3_source_outside_the_allowed_buckets_is_refused_before_any_request(aws, s3):
    aws.make_bucket("payroll")
    s3.put_object(Bucket="payroll", Key="salaries.tar.gz", Body=b"secret")
    before = aws.counts()
    artifact = Artifact("model", [File("model.tar.gz", "s3://payroll/salaries.tar.gz")])

    error = refused(s3, artifact, settings=allowlisted(buckets="sources/releases/"))

    assert error.reason == "ForbiddenSource"
    assert error.message.startswith("artifact model, file model.tar.gz: source s3://payroll/salaries.tar.gz ")
    assert "MRO_SOURCE_BUCKETS" in error.message
    assert aws.counts() == before  # not even the artifact bucket was looked at


def test_an_s3_source_outside_the_allowed_prefix_is_refused(aws, s3):
    s3.put_object(Bucket="sources", Key="private/m.bin", Body=b"secret")
    before = aws.counts()
    error = refused(
        s3,
        Artifact("model", [File("m.bin", "s3://sources/private/m.bin")]),
        settings=allowlisted(buckets="sources/releases/"),
    )
    assert error.reason == "ForbiddenSource" and "MRO_SOURCE_BUCKETS" in error.message
    assert aws.counts() == before


def test_sources_inside_the_allowlists_are_copied(s3, server):
    s3.put_object(Bucket="sources", Key="releases/code.py", Body=b"code")
    artifact = Artifact(
        "model",
        [File("code.py", "s3://sources/releases/code.py"), File("w.bin", server.add("/w.bin", b"weights"))],
    )
    copy(s3, artifact, settings=allowlisted(buckets="registry-*,sources/releases/", hosts="127.0.0.1"))
    assert unpack(stored(s3)) == {"code.py": b"code", "w.bin": b"weights"}


def test_an_https_source_outside_the_allowed_hosts_is_never_requested(aws, s3, server):
    url = server.add("/m.bin", b"x")
    error = refused(
        s3, Artifact("model", [File("m.bin", url)]), settings=allowlisted(hosts="models.example.org")
    )
    assert error.reason == "ForbiddenSource"
    assert (
        error.message.startswith(f"artifact model, file m.bin: source {url}, ")
        and "MRO_SOURCE_HOSTS" in error.message
    )
    assert server.requests == []
    assert set(aws.counts()) == {"CreateBucket"}


def test_a_redirect_off_the_allowed_hosts_is_refused(s3, server):
    target = server.url("/elsewhere.bin", host="localhost")  # the same server, under a name not allowed
    server.add("/elsewhere.bin", b"x")
    url = server.add("/m.bin", redirect=target + "?token=s3cret")
    error = refused(s3, Artifact("model", [File("m.bin", url)]), settings=allowlisted(hosts="127.0.0.1"))
    assert error.reason == "ForbiddenSource"
    assert (
        f"source {url} redirects to {target}?REDACTED" in error.message
        and "MRO_SOURCE_HOSTS" in error.message
    )
    assert server.count("/m.bin") == 1 and server.count("/elsewhere.bin") == 0
    assert registry_keys(s3) == []


def test_a_redirect_within_the_allowed_hosts_is_followed(s3, server):
    server.add("/new.bin", b"moved")
    url = server.add("/old.bin", redirect=server.url("/new.bin", host="localhost"))
    copy(s3, Artifact("model", [File("m.bin", url)]), settings=allowlisted(hosts="127.0.0.1,localhost"))
    assert unpack(stored(s3)) == {"m.bin": b"moved"}


# --- server-side copies refused (403) -------------------------------------------------------


class DenyingCopies:
    """The harness S3 client, except that `operations` answer 403 AccessDenied, as S3 does
    when the source object's KMS key refuses kms:Decrypt (the harness cannot inject a 403)."""

    def __init__(self, s3, *operations: str):
        self.s3, self.operations = s3, operations

    def __getattr__(self, name):
        if name not in self.operations:
            return getattr(self.s3, name)
        operation = "".join(word.title() for word in name.split("_"))

        def denied(**kwargs):
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                operation,
            )

        return denied


@pytest.mark.parametrize(
    "operation, tuning",
    [
        ("copy_object", FAST),
        ("upload_part_copy", Tuning(copy_object_max=5 * 1024**2, copy_part_size=5 * 1024**2)),
    ],
)
def test_a_denied_server_side_copy_names_both_ends_and_both_causes(s3, operation, tuning):
    s3.put_object(
        Bucket="sources", Key="enc/model.tar.gz", Body=make_tar_gz({"m.bin": os.urandom(6 * 1024**2)})
    )
    artifact = Artifact("model", [File("model.tar.gz", "s3://sources/enc/model.tar.gz")])

    error = refused(DenyingCopies(s3, operation), artifact, tuning=tuning)

    assert error.reason == "CopyForbidden"
    assert error.message.startswith(
        f"artifact model: access denied copying from s3://sources/enc/model.tar.gz to s3://registry/{KEY} "
    )
    for cause in ("s3:GetObject", "kms:Decrypt", "s3:PutObject"):
        assert cause in error.message
    assert registry_keys(s3) == [] and open_uploads(s3) == []


def test_a_denied_write_to_the_artifact_bucket_is_still_the_buckets(s3, server):
    error = refused(
        DenyingCopies(s3, "create_multipart_upload"),
        Artifact("model", [File("m.bin", server.add("/m.bin", b"x"))]),
    )
    assert error.reason == "ArtifactBucketForbidden"


# --- pinned S3 object versions (?versionId=) ------------------------------------------------


@pytest.fixture
def versions(s3):
    """Two versions of sources/model.tar.gz (the second is the current one) and of sources/w.bin."""
    s3.put_bucket_versioning(Bucket="sources", VersioningConfiguration={"Status": "Enabled"})
    made = {}
    for key, bodies in (
        ("model.tar.gz", [make_tar_gz({"m.bin": os.urandom(6 * 1024**2)}) for _ in range(2)]),
        ("w.bin", [b"v1 weights", b"v2 weights"]),
    ):
        made[key] = [
            (s3.put_object(Bucket="sources", Key=key, Body=body)["VersionId"], body) for body in bodies
        ]
    return made


@pytest.mark.parametrize(
    "tuning, copies",
    [
        (FAST, "CopyObject"),
        (Tuning(copy_object_max=5 * 1024**2, copy_part_size=5 * 1024**2), "UploadPartCopy"),
    ],
)
def test_a_pinned_version_is_copied_server_side(aws, s3, versions, tuning, copies):
    (version, archive), _ = versions["model.tar.gz"]
    url = f"s3://sources/model.tar.gz?versionId={version}"
    (status,) = copy(s3, Artifact("model", [File("model.tar.gz", url, sha256(archive))]), tuning=tuning)
    assert stored(s3) == archive  # the first version, not the current one
    assert status["sha256"] == sha256(archive)
    assert aws.count(copies) >= 1 and aws.count("UploadPart") == 0


def test_a_pinned_version_is_read_for_packing(s3, versions):
    (version, body), _ = versions["w.bin"]
    copy(s3, Artifact("model", [File("w.bin", f"s3://sources/w.bin?versionId={version}", sha256(body))]))
    assert unpack(stored(s3)) == {"w.bin": b"v1 weights"}
    record = stored(s3, KEY + ".mro.json").decode()
    assert f"s3://sources/w.bin?versionId={version}" in record


def test_a_missing_version_is_not_found(s3, versions):
    url = "s3://sources/w.bin?versionId=00000000-0000-0000-0000-000000000000"
    error = refused(s3, Artifact("model", [File("w.bin", url)]))
    assert error.reason == "SourceNotFound" and url in error.message


def test_a_denied_pinned_version_names_the_version_permission(s3, versions):
    # reading a given version takes s3:GetObjectVersion, not s3:GetObject (botocore's GetObject)
    version, _ = versions["model.tar.gz"][0]
    pinned = Artifact("model", [File("model.tar.gz", f"s3://sources/model.tar.gz?versionId={version}")])
    copying = refused(DenyingCopies(s3, "copy_object"), pinned)
    assert copying.reason == "CopyForbidden" and "s3:GetObjectVersion on the source" in copying.message
    packed = Artifact("model", [File("w.bin", f"s3://sources/w.bin?versionId={versions['w.bin'][0][0]}")])
    reading = refused(DenyingCopies(s3, "get_object"), packed)
    assert reading.reason == "SourceForbidden" and "s3:GetObjectVersion" in reading.message
