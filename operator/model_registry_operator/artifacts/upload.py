"""The destination: multipart uploads fed by a stream, server-side copies, completion records."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeGuard

import botocore.exceptions

from ..errors import RetryableError, TerminalError
from ..registry.classify import error_code, http_status
from .sizes import MiB
from .sources import full_object_sha256

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
# Each part carries a CRC32 that S3 checks on arrival, the algorithm botocore computes for
# every UploadPart anyway and the one boto3's transfer manager declares. Declared on
# CreateMultipartUpload, S3 checks the parts' CRC32s again at completion and builds the
# object's checksum from them (COMPOSITE); undeclared, S3 computes a full-object CRC64NVME
# of its own, which moto does by copying the whole object once more (half the throughput).
PART_CHECKSUM: Final = "CRC32"


class RecordFile(TypedDict):
    path: str
    source: str  # redacted
    size: int
    sha256: str


class Record(TypedDict):
    """A completion record, as written (see write_record)."""

    format: int
    fingerprint: str
    etag: str
    sha256: str
    size: int
    files: list[RecordFile]


def destination_error(exc: Exception, what: str, bucket: str) -> Exception:
    """Classify a failure writing to the artifact bucket."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        if _forbidden(exc):
            return TerminalError(
                "ArtifactBucketForbidden",
                f"{what}: access to the artifact bucket {bucket} is denied ({code}); grant "
                "the operator's role s3:GetObject, s3:PutObject, s3:ListBucketMultipartUploads and "
                "s3:AbortMultipartUpload on it",
            )
        if code == "NoSuchBucket":
            return TerminalError(
                "ArtifactBucketNotFound",
                f"{what}: the artifact bucket {bucket} does not exist; create it, or set "
                "MRO_ARTIFACT_BUCKET to a bucket in the operator's region",
            )
        return RetryableError("ArtifactUploadFailed", f"{what}: S3 answered {code}")
    return RetryableError("ArtifactUploadFailed", f"{what}: {type(exc).__name__}: {exc}")


def copy_error(
    exc: Exception, what: str, source: str, destination: str, permission: str = "s3:GetObject"
) -> Exception:
    """Classify a failure of a server-side copy. S3 answers AccessDenied to CopyObject and
    UploadPartCopy when either end is refused: reading the source (s3:GetObject, or
    kms:Decrypt when its KMS key encrypts it; the HeadObject that planned the copy needed
    neither) or writing the destination (s3:PutObject). The answer does not say which."""
    operation = getattr(exc, "operation_name", "")
    if operation in ("CopyObject", "UploadPartCopy") and _forbidden(exc):
        code = error_code(exc) or "403"
        return TerminalError(
            "CopyForbidden",
            f"{what}: access denied copying from {source} to {destination} ({operation}: {code}); the operator's "
            f"role needs {permission} on the source (and kms:Decrypt on its KMS key if one encrypts it) and "
            "s3:PutObject on the artifact bucket",
        )
    return destination_error(exc, what, destination.removeprefix("s3://").partition("/")[0])


def _forbidden(exc: Exception) -> TypeGuard[botocore.exceptions.ClientError]:
    """A ClientError that says access is denied."""
    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    return error_code(exc) in ("AccessDenied", "403") or http_status(exc) == 403


def part_size_for(total: int, minimum: int) -> int:
    """Parts of `minimum` bytes, larger when needed to stay under 10,000 parts (with room
    for tar headers and deflate overhead, a fraction of a percent)."""
    needed = -(-int(total * 1.01 + MiB) // (MAX_PARTS - 100))
    return max(minimum, MIN_PART, -(-needed // MiB) * MiB)


class MultipartUpload:
    """A write-only stream into one S3 object. Full parts are uploaded by a few threads while
    the next one fills; writes block when `concurrency` parts are in flight, so memory stays
    under about 2 * concurrency + 1 parts (each part in flight may be copied once more by
    the HTTP layer). The sha256 of everything written is computed by one more
    thread, part after part in order, beside the uploads; `sha256` (hex) and `size` are
    set when the upload completes."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int,
        concurrency: int,
        metadata: dict[str, str],
    ):
        self.s3, self.bucket, self.key, self.part_size = s3, bucket, key, part_size
        self.sha256: str | None = None
        self.size = 0
        self._digest = hashlib.sha256()
        self._pending: list[bytes | memoryview] = []  # joined once per part: one copy of each byte
        self._pending_size = 0
        self._parts: list[Future[CompletedPartTypeDef]] = []
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="mro-upload")
        self._hasher = ThreadPoolExecutor(
            1, thread_name_prefix="mro-hash"
        )  # one thread: parts hashed in order
        created = s3.create_multipart_upload(
            Bucket=bucket,
            Key=key,
            ContentType="application/gzip",
            Metadata=metadata,
            ChecksumAlgorithm=PART_CHECKSUM,
        )
        self.upload_id = created["UploadId"]

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.part_size:
            self._flush()

    def complete(self) -> str:
        """Upload the rest and complete; returns the object's ETag."""
        if self._pending or not self._parts:
            self._flush()
        parts = [future.result() for future in self._parts]
        self._pool.shutdown()
        self._hasher.shutdown()
        self.sha256 = self._digest.hexdigest()
        done = self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )
        return done["ETag"]

    def abort(self) -> None:
        for future in self._parts:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._hasher.shutdown(wait=True)
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)

    def _flush(self) -> None:
        # bytes: botocore sends a bytes body in the same write as the headers, without
        # waiting for "100 Continue" (a round trip per part); that costs a copy of each
        # part in flight, which the memory bound allows for.
        body = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._send(body)

    def _send(self, body: bytes) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise TerminalError("ArtifactTooLarge", f"{self.key}: more than {MAX_PARTS} parts")
        for future in self._parts:  # fail early: a failed part fails the whole upload
            if future.done() and (error := future.exception()):
                raise error
        self._slots.acquire()
        hashed = self._hasher.submit(self._digest.update, body)
        future = self._pool.submit(self._upload_part, number, body, hashed)
        future.add_done_callback(lambda _: self._slots.release())
        self._parts.append(future)

    def _upload_part(self, number: int, body: bytes, hashed: Future[None]) -> CompletedPartTypeDef:
        response = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=PART_CHECKSUM,
        )
        hashed.result()  # the slot, and with it the body, is freed once the body is hashed too
        # completion lists each part's checksum; an S3-compatible store may not return one
        part: CompletedPartTypeDef = {"PartNumber": number}
        if "ETag" in response:
            part["ETag"] = response["ETag"]
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part


def abort_stale_uploads(s3: S3Client, bucket: str, key: str) -> int:
    """Abort multipart uploads left for `key` by an interrupted run (operator restart)."""
    aborted = 0
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        for upload in page.get("Uploads", []):
            if upload["Key"] == key:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                aborted += 1
    return aborted


def copy_object(
    s3: S3Client, bucket: str, key: str, source: CopySourceTypeDef, etag: str, metadata: dict[str, str]
) -> tuple[str, str | None]:
    """Server-side copy in one request (objects up to 5 GiB). S3 computes a SHA-256 of the
    new object as it copies (ChecksumAlgorithm), so the archive's sha256 is known without
    a byte passing through the operator. Returns (ETag, sha256 hex or None)."""
    response = s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource=source,
        CopySourceIfMatch=etag,
        ChecksumAlgorithm="SHA256",
        MetadataDirective="REPLACE",
        Metadata=metadata,
        ContentType="application/gzip",
    )
    result = response["CopyObjectResult"]
    return result["ETag"], full_object_sha256(result)


class _CopyRange(TypedDict, total=False):
    CopySourceRange: str


def copy_parts(
    s3: S3Client,
    bucket: str,
    key: str,
    source: CopySourceTypeDef,
    etag: str,
    size: int,
    *,
    part_size: int,
    concurrency: int,
    metadata: dict[str, str],
    verify: Callable[[], None],
    progress: Callable[[int], None],
) -> str:
    """Server-side multipart copy (UploadPartCopy), the only way past 5 GiB. `verify` runs
    while the parts copy (it may read the source to hash it) and raises to abort: the
    upload is completed only after it passed, so a mismatch leaves nothing behind."""
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="application/gzip", Metadata=metadata
    )
    upload_id = upload["UploadId"]
    ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)] or [(0, -1)]
    copied = [0]
    lock = threading.Lock()

    def copy_part(number: int, first: int, last: int) -> CompletedPartTypeDef:
        kwargs: _CopyRange = {"CopySourceRange": f"bytes={first}-{last}"} if size else {}
        response = s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=source,
            CopySourceIfMatch=etag,
            **kwargs,
        )
        with lock:
            copied[0] += last - first + 1
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="mro-copy")
    futures: list[Future[CompletedPartTypeDef]] = []
    try:
        futures = [pool.submit(copy_part, n, first, last) for n, (first, last) in enumerate(ranges, 1)]
        verify()
        parts = []
        for future in futures:
            parts.append(future.result())
            progress(copied[0])
        done = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return done["ETag"]
    except BaseException:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        pool.shutdown(wait=True)


# --- completion records -----------------------------------------------------------------------
# S3 object metadata is fixed when an upload starts, before the archive's sha256 is known,
# so the outcome of a copy is recorded in a small JSON object next to the archive, written
# after it completes. It holds the archive's ETag: an archive replaced later, or a record
# from an older spec (different fingerprint), does not match and the copy runs again.


def record_key(key: str) -> str:
    return key + ".mro.json"


def read_record(s3: S3Client, bucket: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """The record of a complete copy of this fingerprint at `key`, as JSON read back (a
    Record unless someone else wrote it), or None."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        record: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=record_key(key))["Body"].read())
    except botocore.exceptions.ClientError as exc:
        if http_status(exc) == 404:
            return None
        raise
    except ValueError:
        return None
    expected = {"fingerprint": fingerprint, "etag": head["ETag"], "size": head["ContentLength"]}
    return record if all(record.get(name) == value for name, value in expected.items()) else None


def write_record(s3: S3Client, bucket: str, key: str, record: Record) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=record_key(key),
        Body=json.dumps(record, sort_keys=True).encode(),
        ContentType="application/json",
    )
