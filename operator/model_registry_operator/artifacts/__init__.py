"""Copy a ModelPackage's artifacts into the registry's bucket as one model.tar.gz each.

`copy_artifacts` is the entry point. For each artifact, in order:
1. Names, paths, checksums and source URLs are checked (scheme, literal addresses, the
   allowed buckets and hosts; the network policy is in sources.py) before any bucket is
   touched.
2. A completion record next to the destination (upload.py) matching the artifact's
   fingerprint (paths, sources, declared checksums) means the copy was done, maybe by an
   earlier operator process: its status is returned without copying.
3. Multipart uploads an interrupted run left for the destination are aborted.
4. Every source is reached and sized (S3 HeadObject, an HTTP one-byte range) before a byte
   is written, so a 403/404 or an oversized artifact fails fast and leaves nothing.
5. The bytes are copied:
   - one S3 file that already is a .tar.gz/.tgz: server-side copy, no byte through the
     operator: CopyObject up to 5 GiB, with S3 computing the SHA-256 as it copies;
     UploadPartCopy beyond, where the sha256 comes from the source's full-object
     checksum if it has one, else from reading the source once (download only);
   - one HTTP(S) .tar.gz/.tgz: streamed as is into a multipart upload;
   - anything else: packed into a tar.gz on the fly, streamed into a multipart upload.
   The destination key is always `<key_prefix>/<artifact name>/model.tar.gz`, whatever
   the source file was called, so every archive has the same predictable address. A
   passed-through file is trusted to be a gzip'd tar by its name.
6. Declared sha256s are checked as the bytes pass; a mismatch aborts the upload before it
   completes (a server-side CopyObject that turns out wrong is deleted). The archive's own
   sha256 is always recorded and returned.

Memory stays flat whatever the size: sources are read in 1 MiB chunks and at most
`upload_concurrency + 1` parts are held. The only temporary file is for an HTTP source
that sends no length (chunked): a tar header needs the member's size before its bytes,
so that file alone is spooled to disk, bounded by the maximum artifact size.

Work is spread over threads so that a copy uses more than one core: one reads and hashes
the source, the caller's thread packs, one hashes the archive, a few upload parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import botocore.exceptions

from ..errors import RetryableError, TerminalError
from ..timing import SOURCE_ATTEMPTS, SOURCE_RETRY_BACKOFF
from .pack import TAR_END, GzipWriter, tar_header, tar_padding
from .sizes import GiB, MiB, size_text
from .sources import (
    HttpFetcher,
    Policy,
    S3Source,
    Source,
    Stat,
    hashed,
    parse_source,
    prefetched,
    read_stream,
    redact,
    with_retries,
)
from .upload import (
    MultipartUpload,
    Record,
    abort_stale_uploads,
    copy_error,
    copy_object,
    copy_parts,
    destination_error,
    part_size_for,
    read_record,
    write_record,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from ..settings import Settings

__all__ = ["Artifact", "ArtifactFile", "HttpFetcher", "Tuning", "copy_artifacts", "redact"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

ARCHIVE_NAME = "model.tar.gz"
RECORD_FORMAT = 1

ProgressCallback = Callable[[str, int, "int | None"], None]


class ArtifactFile(Protocol):
    """A file of an artifact, as the ModelPackage spec holds it (api.modelpackage.ArtifactFile);
    `sha256`, the declared checksum, may be absent. Each value is checked again here."""

    @property
    def path(self) -> str: ...

    @property
    def source(self) -> str: ...


class Artifact(Protocol):
    """An artifact of the ModelPackage spec (api.modelpackage.Artifact)."""

    @property
    def name(self) -> str: ...

    @property
    def files(self) -> Sequence[ArtifactFile]: ...


# (path, source URL, declared sha256): what an archive is made of
_Entry = tuple[str, str, "str | None"]


@dataclass(frozen=True)
class Tuning:
    part_size: int = 8 * MiB  # grows for huge artifacts, to stay under 10,000 parts
    upload_concurrency: int = 4
    prefetch_chunks: int = 4  # 1 MiB chunks read ahead of the packing
    copy_object_max: int = 5 * GiB  # S3's CopyObject limit; larger objects use UploadPartCopy
    copy_part_size: int = 512 * MiB
    progress_interval: float = 2.0  # seconds between progress callbacks
    attempts: int = SOURCE_ATTEMPTS  # per source request, for network errors and 5xx
    backoff: float = SOURCE_RETRY_BACKOFF


_shared_http: HttpFetcher | None = None
_shared_http_lock = threading.Lock()


def shared_http() -> HttpFetcher:
    global _shared_http
    with _shared_http_lock:
        if _shared_http is None:
            _shared_http = HttpFetcher()
        return _shared_http


def copy_artifacts(
    artifacts: Sequence[Artifact],
    *,
    s3_client: S3Client,
    bucket: str,
    key_prefix: str,
    settings: Settings,
    progress: ProgressCallback | None = None,
    http: HttpFetcher | None = None,
    tuning: Tuning | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_done: Callable[[dict[str, Any], bool], None] | None = None,
) -> list[dict[str, Any]]:
    """Copy every artifact; returns `[{name, uri, sha256, size}]` in the same order.

    Every file of every artifact is checked first (its address, then a HEAD: found, allowed,
    its size), and all the bad ones are reported in one TerminalError, before any byte is
    copied: a spec with two wrong sources is corrected once. An artifact whose complete copy
    is already in the bucket is not looked at again. `on_done(status, copied)` is called
    after each artifact (`copied` False: the copy was already there).

    Raises TerminalError (ChecksumMismatch, ForbiddenSource, SourceNotFound, SourceForbidden,
    CopyForbidden, ArtifactBucketForbidden, ArtifactBucketNotFound, ArtifactTooLarge, InvalidSource,
    InvalidSpec) or RetryableError (SourceUnreachable,
    ArtifactUploadFailed); messages name the artifact and file, and never hold credentials.
    """
    tuning = tuning or Tuning()
    copier = _Copier(
        s3=s3_client,
        bucket=bucket,
        key_prefix=key_prefix.strip("/"),
        settings=settings,
        http=http or shared_http(),
        tuning=tuning,
        policy=Policy.from_settings(settings, attempts=tuning.attempts, backoff=tuning.backoff),
        progress=progress,
        clock=clock,
    )
    with contextlib.ExitStack() as cleanup:
        # every artifact's sources are checked before any is copied: all bad ones at once
        plans = copier.prepare_all(artifacts, cleanup)
        results = []
        for plan in plans:
            result = plan if isinstance(plan, dict) else copier.transfer(plan)
            if on_done is not None:
                on_done(result, not isinstance(plan, dict))
            results.append(result)
        return results


@dataclass(frozen=True)
class _Plan:
    """An artifact checked and sized, ready to be copied."""

    name: str
    key: str
    status: dict[str, Any]
    fingerprint: str
    files: list[_File]


def _combined(errors: list[TerminalError]) -> TerminalError:
    """One error for several wrong sources: the first one's reason, every message."""
    if len(errors) == 1:
        return errors[0]
    listed = "; ".join(err.message.rstrip(".") for err in errors)
    return TerminalError(errors[0].reason, f"{len(errors)} artifact sources are wrong: {listed}.")


@dataclass
class _File:
    path: str
    declared: str | None  # lower-case hex
    where: str  # "artifact model, file model.joblib" for messages
    source: Source
    stat: Stat
    size: int  # stat.size, known once planned


class _Progress:
    """Calls back at most once per interval, so a caller writing it into an object's status
    does not flood the API server."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        name: str,
        total: int,
        interval: float,
        clock: Callable[[], float],
    ):
        self.callback, self.name, self.total, self.interval, self.clock = (
            callback,
            name,
            total,
            interval,
            clock,
        )
        self.done = 0
        self._last: float | None = None

    def add(self, count: int) -> None:
        self.set(self.done + count)

    def set(self, done: int) -> None:
        self.done = done
        if self.callback is None:
            return
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        try:
            self.callback(self.name, done, self.total)
        except Exception:  # reporting progress must never break the copy
            log.warning("progress callback failed for artifact %s", self.name, exc_info=True)


@dataclass
class _Copier:
    s3: S3Client
    bucket: str
    key_prefix: str
    settings: Settings
    http: HttpFetcher
    tuning: Tuning
    policy: Policy
    progress: ProgressCallback | None
    clock: Callable[[], float]

    def prepare_all(
        self, artifacts: Sequence[Artifact], cleanup: contextlib.ExitStack
    ) -> list[dict[str, Any] | _Plan]:
        """Each artifact's status when its copy is already complete, else its plan. Source
        errors a person must fix are gathered over every file, then raised as one."""
        plans: list[dict[str, Any] | _Plan] = []
        errors: list[TerminalError] = []
        for artifact in artifacts:
            plan = self.prepare(artifact, cleanup, errors)
            if plan is not None:
                plans.append(plan)
        if errors:
            raise _combined(errors)
        return plans

    def prepare(
        self, artifact: Artifact, cleanup: contextlib.ExitStack, errors: list[TerminalError]
    ) -> dict[str, Any] | _Plan | None:
        """The status of a complete copy, or the plan of a copy; None when a source is wrong
        (in `errors`)."""
        name = _check_name(artifact.name)
        key = f"{self.key_prefix}/{name}/{ARCHIVE_NAME}" if self.key_prefix else f"{name}/{ARCHIVE_NAME}"
        status = {"name": name, "uri": f"s3://{self.bucket}/{key}"}
        entries: list[_Entry] = [
            (_check_path(f.path, name), f.source, _check_sha256(getattr(f, "sha256", None), name, f.path))
            for f in artifact.files
        ]
        if not entries:
            raise TerminalError("InvalidSpec", f"artifact {name}: no files")
        if len({path for path, _, _ in entries}) != len(entries):
            raise TerminalError("InvalidSpec", f"artifact {name}: two files have the same path")
        fingerprint = _fingerprint(name, entries)
        # refuse a bad scheme or address before touching any bucket
        sources: list[tuple[str, str | None, str, Source]] = []
        for path, url, declared in entries:
            where = f"artifact {name}, file {path}"
            try:
                sources.append(
                    (
                        path,
                        declared,
                        where,
                        parse_source(url, self.policy, s3_client=self.s3, http=self.http, where=where),
                    )
                )
            except TerminalError as err:
                errors.append(err)
        if len(sources) < len(entries):
            return None

        done = self._destination(f"artifact {name}", read_record, self.s3, self.bucket, key, fingerprint)
        if done:
            log.info("artifact %s: %s is already complete, not copied again", name, status["uri"])
            return {**status, "sha256": done["sha256"], "size": done["size"]}
        files = self._plan(sources, cleanup, errors)
        if files is None:
            return None
        return _Plan(name, key, status, fingerprint, files)

    def transfer(self, plan: _Plan) -> dict[str, Any]:
        """Copy a planned artifact into the bucket: the entry of status.artifacts."""
        name, key, status, fingerprint, files = plan.name, plan.key, plan.status, plan.fingerprint, plan.files
        aborted = self._destination(f"artifact {name}", abort_stale_uploads, self.s3, self.bucket, key)
        if aborted:
            log.info("artifact %s: aborted %d multipart upload(s) left by an interrupted copy", name, aborted)
        total = sum(f.size for f in files)
        if total > self.settings.max_artifact_bytes:
            raise TerminalError(
                "ArtifactTooLarge",
                f"artifact {name}: {size_text(total)} ({total:,} bytes) is over the operator's "
                f"limit of {limit_text(self.settings.max_artifact_bytes)}",
            )
        meter = _Progress(self.progress, name, total, self.tuning.progress_interval, self.clock)
        metadata = {"mro-fingerprint": fingerprint, "mro-artifact": name}
        first = files[0]
        passthrough = len(files) == 1 and first.path.lower().endswith((".tar.gz", ".tgz"))
        if passthrough and isinstance(first.source, S3Source):
            etag, sha256, size = self._server_side_copy(first, first.source, key, metadata, meter)
            file_digests = [sha256]
        else:
            etag, sha256, size, file_digests = self._stream(files, key, metadata, meter, pack=not passthrough)

        record: Record = {
            "format": RECORD_FORMAT,
            "fingerprint": fingerprint,
            "etag": etag,
            "sha256": sha256,
            "size": size,
            "files": [
                {"path": f.path, "source": f.source.display, "size": f.size, "sha256": digest}
                for f, digest in zip(files, file_digests)
            ],
        }
        self._destination(f"artifact {name}", write_record, self.s3, self.bucket, key, record)
        log.info("artifact %s: copied %s (%d bytes, sha256 %s)", name, status["uri"], size, sha256)
        return {**status, "sha256": sha256, "size": size}

    # --- planning ---------------------------------------------------------------------

    def _plan(
        self,
        sources: list[tuple[str, str | None, str, Source]],
        cleanup: contextlib.ExitStack,
        errors: list[TerminalError],
    ) -> list[_File] | None:
        """Check and size every source: a 403/404 or an oversized artifact fails before a
        byte is written; None when one is wrong (every wrong one is in `errors`)."""
        files: list[_File] = []
        known = 0
        wrong = False
        for path, declared, where, found in sources:
            source: Source = found
            try:
                stat = with_retries(found.stat, self.policy, where)
            except TerminalError as err:
                errors.append(err)
                wrong = True
                continue
            if wrong:
                continue  # no spooling of a source whose artifact will not be copied
            if stat.size is None:
                spooled = self._spool(found, stat, where, self.settings.max_artifact_bytes - known, cleanup)
                source, stat, size = spooled, spooled.stat(), spooled.size
            else:
                size = stat.size
            known += size
            files.append(_File(path, declared, where, source, stat, size))
        return None if wrong else files

    def _spool(
        self, source: Source, stat: Stat, where: str, budget: int, cleanup: contextlib.ExitStack
    ) -> _SpooledSource:
        # closed by `cleanup`, once the copy is over
        spool = cleanup.enter_context(tempfile.TemporaryFile(prefix="mro-spool-"))  # noqa: SIM115
        size = 0
        for chunk in read_stream(source, stat, self.policy, where):
            size += len(chunk)
            if size > budget:
                raise TerminalError(
                    "ArtifactTooLarge",
                    f"{where}: source {source.display} is over the operator's limit of "
                    f"{limit_text(self.settings.max_artifact_bytes)}",
                )
            spool.write(chunk)
        return _SpooledSource(source.display, spool, size)

    # --- copying ----------------------------------------------------------------------

    def _stream(
        self, files: list[_File], key: str, metadata: dict[str, str], meter: _Progress, *, pack: bool
    ) -> tuple[str, str, int, list[str]]:
        """(ETag, sha256, size) of the archive, and the sha256 of each file."""
        total = sum(f.size for f in files)
        part_size = part_size_for(total, self.tuning.part_size)
        upload = self._destination(
            f"artifact {meter.name}",
            MultipartUpload,
            self.s3,
            self.bucket,
            key,
            part_size=part_size,
            concurrency=self.tuning.upload_concurrency,
            metadata=metadata,
        )
        try:
            digests: list[str] = []
            if pack:
                gzip = GzipWriter(upload.write)
                for f in files:
                    gzip.write(tar_header(f.path, f.size))
                    digests.append(self._pump(f, gzip.write, meter))
                    gzip.write(tar_padding(f.size))
                gzip.write(TAR_END)
                gzip.close()
            else:
                digests.append(self._pump(files[0], upload.write, meter))
            etag = upload.complete()
            sha256 = upload.sha256
            assert sha256 is not None  # complete() sets it
        except BaseException as exc:
            with contextlib.suppress(Exception):
                upload.abort()
            if isinstance(exc, (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
                raise destination_error(exc, f"artifact {meter.name}", self.bucket) from None
            raise
        return etag, sha256, upload.size, digests

    def _pump(self, f: _File, write: Callable[[bytes], None], meter: _Progress) -> str:
        digest = hashlib.sha256()
        # the reading thread hashes too, beside the packing in this one
        chunks = hashed(read_stream(f.source, f.stat, self.policy, f.where), digest)
        for chunk in prefetched(chunks, self.tuning.prefetch_chunks):
            write(chunk)
            meter.add(len(chunk))
        _verify(f, digest.hexdigest())
        return digest.hexdigest()

    def _server_side_copy(
        self, f: _File, source: S3Source, key: str, metadata: dict[str, str], meter: _Progress
    ) -> tuple[str, str, int]:
        """(ETag, sha256, size) of the copy of `f`, whose source is `source`."""
        if f.declared and f.stat.sha256:
            _verify(f, f.stat.sha256)  # S3 already knows the whole object's sha256: check before copying
        validator = f.stat.validator
        if validator is None:  # HeadObject always answers an ETag; the copy is made IfMatch it
            raise RetryableError(
                "ArtifactUploadFailed", f"artifact {meter.name}: S3 sent no ETag for {source.display}"
            )
        copy_source = source.location
        size = f.size
        what = f"artifact {meter.name}"
        if size <= self.tuning.copy_object_max:
            with self._copying(what, source, key):
                etag, sha256 = copy_object(self.s3, self.bucket, key, copy_source, validator, metadata)
            # S3-compatible stores that do not compute the checksum on copy: hash by reading.
            checked = sha256 or self._hash_by_reading(f)
            meter.set(size)
            if f.declared and checked != f.declared:
                self._destination(what, self.s3.delete_object, Bucket=self.bucket, Key=key)
                _verify(f, checked)
            return etag, checked, size
        # Beyond 5 GiB the copy is multipart, and S3's checksum of a multipart object is a
        # checksum of part checksums, not the file's sha256: unless the source carries a
        # full-object SHA-256, the operator reads the source once (download only, in
        # parallel with the copy) to hash it.
        found: dict[str, str] = {}  # "sha256", set by verify, which copy_parts always calls

        def verify() -> None:
            found["sha256"] = f.stat.sha256 or self._hash_by_reading(f)
            if f.declared:
                _verify(f, found["sha256"])

        with self._copying(what, source, key):
            etag = copy_parts(
                self.s3,
                self.bucket,
                key,
                copy_source,
                validator,
                size,
                part_size=max(self.tuning.copy_part_size, part_size_for(size, 0)),
                concurrency=self.tuning.upload_concurrency,
                metadata=metadata,
                verify=verify,
                progress=meter.set,
            )
        return etag, found["sha256"], size

    def _hash_by_reading(self, f: _File) -> str:
        digest = hashlib.sha256()
        for chunk in read_stream(f.source, f.stat, self.policy, f.where):
            digest.update(chunk)
        return digest.hexdigest()

    def _destination(self, what: str, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a call on the artifact bucket, classifying S3 errors."""
        with _s3_errors(lambda exc: destination_error(exc, what, self.bucket)):
            return call(*args, **kwargs)

    def _copying(self, what: str, source: S3Source, key: str) -> contextlib.AbstractContextManager[None]:
        """Classify the S3 errors of a server-side copy from `source` to `key`."""
        return _s3_errors(
            lambda exc: copy_error(
                exc, what, source.display, f"s3://{self.bucket}/{key}", source.read_permission
            )
        )


@contextlib.contextmanager
def _s3_errors(classify: Callable[[Exception], Exception]) -> Iterator[None]:
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise classify(exc) from None


class _SpooledSource:
    """A source already read to a temporary file (see _Copier._spool)."""

    def __init__(self, display: str, spool: IO[bytes], size: int):
        self.display, self.spool, self.size = display, spool, size

    def stat(self) -> Stat:
        return Stat(size=self.size)

    def open(self, offset: int, stat: Stat) -> Iterator[bytes]:
        self.spool.seek(offset)
        while chunk := self.spool.read(1024 * 1024):
            yield chunk


def _verify(f: _File, actual: str) -> None:
    if f.declared and actual != f.declared:
        raise TerminalError(
            "ChecksumMismatch",
            f"{f.where}: sha256 mismatch: declared {f.declared}, got {actual} (source {f.source.display})",
        )


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise TerminalError("InvalidSpec", f"artifact name {name!r} must be a non-empty name without '/'")
    return name


def _check_path(path: object, artifact: str) -> str:
    if not isinstance(path, str) or any(
        segment in ("", ".", "..") or "\\" in segment or "\0" in segment for segment in path.split("/")
    ):
        raise TerminalError(
            "InvalidSpec",
            f"artifact {artifact}, file {path!r}: path must be relative, without empty, '.' or '..' segments",
        )
    return path


def _check_sha256(value: object, artifact: str, path: str) -> str | None:
    if value is None or value == "":
        return None
    lowered = str(value).lower()
    if len(lowered) != 64 or any(c not in "0123456789abcdef" for c in lowered):
        raise TerminalError("InvalidSpec", f"artifact {artifact}, file {path}: sha256 must be 64 hex digits")
    return lowered


def _fingerprint(name: str, entries: list[_Entry]) -> str:
    """Identity of what the archive is made of. Source URLs are hashed, never stored: a
    presigned URL's query is a credential."""
    canonical = json.dumps({"format": RECORD_FORMAT, "name": name, "files": entries}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def limit_text(limit: int) -> str:
    """The limit exactly: size_text floors, and "1 MiB is over the limit of 1 MiB" helps nobody."""
    return f"{size_text(limit)} ({limit:,} bytes, MRO_MAX_ARTIFACT_BYTES)"
