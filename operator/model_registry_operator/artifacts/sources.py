"""Artifact sources: s3:// objects and http(s):// URLs, read as resumable byte streams.

Network policy for http(s) sources (SSRF safety; the operator fetches URLs chosen by anyone
who may create a ModelPackage, from inside the cluster):
- `https://` always; `http://` only with `MRO_ALLOW_HTTP`; every other scheme is refused.
- The host is resolved once; every address it resolves to must be allowed, and the
  connection goes to that address (TLS still verifies the certificate against the host
  name), so a DNS answer that changes between check and connect (rebinding) cannot move
  the request. Redirects are followed by hand and each hop is checked the same way.
- Always refused: link-local (169.254.0.0/16, fe80::/10, which holds the EC2/GCP/Azure
  metadata service and the ECS task endpoint), the cloud metadata addresses outside it
  (fd00:ec2::254, 100.100.100.200), unspecified and "this network" (0.0.0.0/8, ::, which
  Linux routes to the host itself), multicast, broadcast and reserved ranges.
- Loopback (127.0.0.0/8, ::1) is refused unless `MRO_ALLOW_HTTP` is on: in a pod it
  reaches the operator's own sidecars (a mesh proxy's admin port), so it is only for
  tests and local mirrors, which is what that setting is for.
- Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are allowed: internal model
  mirrors (Artifactory, Nexus) live there, and the contract refuses link-local and
  metadata addresses, not private ones. Clusters that must also fence those use a
  NetworkPolicy on the operator's egress.

Source allowlist (confused deputy: whoever may create a ModelPackage otherwise makes the
operator read any object its AWS role can read, and fetch from any host):
- `MRO_SOURCE_BUCKETS`: s3:// sources must be in one of these buckets ("bucket", "*" matching
  any characters within the name), or under a key prefix ("bucket/prefix/", matched as a
  plain prefix, as IAM does). Keys with "." or ".." segments are then refused: some HTTP
  stacks resolve them, which would move the request elsewhere.
- `MRO_SOURCE_HOSTS`: http(s) sources, and every redirect they make, must be on one of these
  hosts ("models.example.org" exactly, or "*.example.org" for its subdomains), on top of the
  address checks above.
Unset, either one allows anything. Both are checked before any request is made.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from queue import Full, Queue
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypedDict, TypeVar, Unpack
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import botocore.exceptions
import urllib3

from ..errors import RetryableError, TerminalError
from ..registry.classify import error_code, error_message, http_status
from ..timing import SOURCE_ATTEMPTS, SOURCE_CONNECT_TIMEOUT, SOURCE_READ_TIMEOUT, SOURCE_RETRY_BACKOFF

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef

    from ..settings import Settings

_P = ParamSpec("_P")
_T = TypeVar("_T")

CHUNK = 1024 * 1024

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def redact(url: str) -> str:
    """The URL without userinfo and with any query replaced: presigned (X-Amz-Signature)
    and SAS (sig=, se=) URLs carry their credentials there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "?REDACTED" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


@dataclass(frozen=True)
class Stat:
    size: int | None  # None: an HTTP source that sends no length (chunked)
    validator: str | None = None  # ETag (or Last-Modified) to detect a change between reads
    sha256: str | None = None  # hex, when the store already knows it (S3 full-object checksum)


class Source(Protocol):
    display: str  # redacted, safe for messages and logs

    def stat(self) -> Stat: ...

    def open(self, offset: int, stat: Stat) -> Iterator[bytes]: ...


class Digest(Protocol):
    """What `hashed` feeds: a hashlib object."""

    def update(self, data: bytes, /) -> None: ...


class SourceInterrupted(Exception):
    """A transient failure while reading; the stream may resume where it stopped."""


class PolicyOverrides(TypedDict, total=False):
    attempts: int
    backoff: float
    max_redirects: int


@dataclass(frozen=True)
class Policy:
    allow_http: bool
    allow_loopback: bool
    attempts: int = SOURCE_ATTEMPTS  # per request, for network errors and 5xx
    backoff: float = SOURCE_RETRY_BACKOFF  # seconds, doubled per attempt
    max_redirects: int = 5
    source_buckets: tuple[str, ...] = ()  # empty: any bucket (settings.py validates the entries)
    source_hosts: tuple[str, ...] = ()  # empty: any host

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Unpack[PolicyOverrides]) -> Policy:
        return cls(
            allow_http=settings.allow_http,
            allow_loopback=settings.allow_http,
            source_buckets=settings.source_buckets,
            source_hosts=settings.source_hosts,
            **overrides,
        )


# A bucket name, with the upper case and "_" of old us-east-1 buckets; not an access point
# ARN (botocore takes one as Bucket, and an access point can front any bucket).
BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
# Names that reach another bucket than themselves: access point and Object Lambda aliases,
# Multi-Region Access Points. Allowed only by an entry that names them exactly.
_ALIAS_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap")


def bucket_allowed(bucket: str, key: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    if any(segment in (".", "..") for segment in key.split("/")):
        return False
    alias = bucket.lower().endswith(_ALIAS_SUFFIXES)
    for entry in allowed:
        pattern, _, prefix = entry.partition("/")
        if alias and pattern != bucket:
            continue
        name = re.compile("[A-Za-z0-9._-]*".join(re.escape(part) for part in pattern.split("*")))
        if name.fullmatch(bucket) and key.startswith(prefix):
            return True
    return False


_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def valid_host(host: str) -> bool:
    """An IP literal or a DNS name of letters, digits and hyphens (IDNs in their xn-- form).
    Anything else is refused before it is compared or resolved: the resolver stops reading
    a name at a NUL byte, so "intranet\x00.example.org" would pass "*.example.org" and
    connect to "intranet"."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return True
    try:
        name = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        return False
    name = name[:-1] if name.endswith(".") else name
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    host = host.lower().rstrip(".")
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))  # one spelling per address, as settings.py stores them
    return any(host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed)


def _check_host(url: str, policy: Policy, where: str, original: str | None = None) -> None:
    """`original`: the source URL when `url` is where it redirected to."""
    host = urlsplit(url).hostname or ""
    what = f"source {redact(original)} redirects to {redact(url)}" if original else f"source {redact(url)}"
    if not valid_host(host):
        raise TerminalError(
            "InvalidSource", f"{where}: {what}, whose host is not a valid host name or address"
        )
    if host_allowed(host, policy.source_hosts):
        return
    raise TerminalError(
        "ForbiddenSource",
        f"{where}: {what}, a host the operator may not fetch from; use an allowed host or ask the operator's "
        "administrator to add it to MRO_SOURCE_HOSTS",
    )


def refused_address_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: Policy) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo's client) reaches the IPv4 address:
        # judge that one, or 2002:a9fe:a9fe:: would be a way to the metadata service.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or (ip.version == 4 and ip in THIS_NETWORK):
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return None if policy.allow_loopback else "a loopback address (allowed only with MRO_ALLOW_HTTP)"
    if ip.is_reserved:
        return "a reserved address"
    return None


def parse_source(url: str, policy: Policy, *, s3_client: S3Client, http: HttpFetcher, where: str) -> Source:
    """`where` names the artifact and file for messages ("artifact model, file a.bin")."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TerminalError("InvalidSource", f"{where}: source is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme == "s3":
        bucket, key = parts.netloc, parts.path.lstrip("/")
        version_id = _version_id(parts.query)
        if not BUCKET_NAME.fullmatch(bucket) or not key or version_id == "" or parts.fragment:
            raise TerminalError(
                "InvalidSource",
                f"{where}: source {redact(url)} must be s3://bucket/key or s3://bucket/key?versionId=V",
            )
        source = S3Source(s3_client, bucket, key, policy, where, version_id=version_id)
        if not bucket_allowed(bucket, key, policy.source_buckets):
            raise TerminalError(
                "ForbiddenSource",
                f"{where}: source {source.display} is outside the buckets the operator may read from; use an "
                "allowed bucket or ask the operator's administrator to add it to MRO_SOURCE_BUCKETS",
            )
        return source
    if scheme == "https" or (scheme == "http" and policy.allow_http):
        if not parts.hostname or not _valid_port(parts):
            raise TerminalError(
                "InvalidSource", f"{where}: source {redact(url)} needs a host and a valid port"
            )
        _check_literal_address(parts.hostname, policy, where, url)  # names are checked when resolved
        _check_host(url, policy, where)
        return HttpSource(http, url, policy, where)
    if scheme == "http":
        raise TerminalError(
            "ForbiddenSource",
            f"{where}: source {redact(url)} uses plain http, which the operator does not allow "
            "(MRO_ALLOW_HTTP); use https",
        )
    raise TerminalError(
        "ForbiddenSource",
        f"{where}: source {redact(url)} has scheme {scheme or 'none'!r}; only s3:// and https:// are allowed",
    )


def _version_id(query: str) -> str | None:
    """The V of "?versionId=V", None without a query, "" for any other query. Percent
    escapes are decoded, "+" is not: S3 version IDs may contain it."""
    if not query:
        return None
    name, equals, value = query.partition("=")
    if name != "versionId" or not equals or "&" in value:
        return ""
    return unquote(value)


def _valid_port(parts: SplitResult) -> bool:
    try:
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return True


def _check_literal_address(host: str, policy: Policy, where: str, url: str) -> None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    reason = refused_address_reason(ip, policy)
    if reason:
        raise TerminalError("ForbiddenSource", f"{where}: source {redact(url)} is {host}, {reason}")


# --- S3 ------------------------------------------------------------------------------------


class _ReadConditions(TypedDict, total=False):
    """GetObject's arguments beside the object's location."""

    IfMatch: str
    Range: str


class S3Source:
    """An S3 object. One client serves every region: botocore's S3 region redirector retries
    a request against the bucket's own region and caches it, and server-side copies name
    the source in a header, so S3 itself reaches across regions."""

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        key: str,
        policy: Policy,
        where: str,
        version_id: str | None = None,
    ):
        self.s3, self.bucket, self.key, self.policy, self.where = s3_client, bucket, key, policy, where
        self.version_id = version_id  # pins the content, like a sha256
        self.display = f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")

    @property
    def read_permission(self) -> str:
        """The IAM action reading this source takes: a pinned version needs its own."""
        return "s3:GetObjectVersion" if self.version_id else "s3:GetObject"

    @property
    def location(self) -> CopySourceTypeDef:
        """Bucket, Key and VersionId, as HeadObject, GetObject and a CopySource name an object."""
        location: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id:
            location["VersionId"] = self.version_id
        return location

    def stat(self) -> Stat:
        head = self._call(self.s3.head_object, **self.location, ChecksumMode="ENABLED")
        return Stat(size=head["ContentLength"], validator=head.get("ETag"), sha256=full_object_sha256(head))

    def open(self, offset: int, stat: Stat) -> Iterator[bytes]:
        read: _ReadConditions = {}
        if stat.validator:
            read["IfMatch"] = stat.validator
        if offset:
            read["Range"] = f"bytes={offset}-"
        body = self._call(self.s3.get_object, **self.location, **read)["Body"]
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        except (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceInterrupted(str(exc)) from exc
        finally:
            body.close()

    def _call(self, method: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except botocore.exceptions.ClientError as exc:
            raise s3_source_error(exc, self.display, self.where, self.read_permission) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise SourceInterrupted(str(exc)) from exc


def s3_source_error(
    exc: botocore.exceptions.ClientError, display: str, where: str, permission: str = "s3:GetObject"
) -> Exception:
    code = error_code(exc)
    status = http_status(exc)
    if code in ("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound") or status == 404:
        return TerminalError("SourceNotFound", f"{where}: source {display} does not exist ({code})")
    if code in ("403", "AccessDenied", "Forbidden") or status == 403:
        return TerminalError(
            "SourceForbidden",
            f"{where}: access to source {display} is denied (403); grant the operator's role {permission} on it",
        )
    if code in ("412", "PreconditionFailed"):
        return SourceInterrupted(f"source {display} changed during the copy")
    if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
        return SourceInterrupted(f"S3 answered {code} for {display}")
    return TerminalError(
        "InvalidSource", f"{where}: S3 refused to read source {display}: {code}: {error_message(exc)}"
    )


def full_object_sha256(response: Mapping[str, object]) -> str | None:
    """S3's ChecksumSHA256 (base64) as hex, only when it covers the whole object: a
    multipart upload's is a checksum of the parts' checksums, suffixed "-<parts>".
    `response`: a HeadObject answer or a CopyObjectResult."""
    value = response.get("ChecksumSHA256")
    if (
        not isinstance(value, str)
        or not value
        or "-" in value
        or response.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT"
    ):
        return None
    return base64.b64decode(value).hex()


# --- HTTP(S) -------------------------------------------------------------------------------


DEFAULT_TIMEOUT = urllib3.Timeout(connect=SOURCE_CONNECT_TIMEOUT, read=SOURCE_READ_TIMEOUT)


class HttpFetcher:
    """One pooled urllib3 client for every HTTP source, pinned to checked addresses."""

    def __init__(
        self,
        *,
        ca_certs: str | None = None,
        timeout: urllib3.Timeout = DEFAULT_TIMEOUT,
        resolve: Callable[[str, int], list[str]] | None = None,
    ):
        self.pool = urllib3.PoolManager(
            num_pools=32, maxsize=4, ca_certs=ca_certs, timeout=timeout, retries=False
        )
        self.resolve = resolve or _resolve

    def request(
        self, url: str, headers: dict[str, str], policy: Policy, where: str
    ) -> urllib3.BaseHTTPResponse:
        """GET `url` following checked redirects; the response body is not read yet."""
        source = url
        for _ in range(policy.max_redirects + 1):
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https") or (scheme == "http" and not policy.allow_http):
                raise TerminalError(
                    "ForbiddenSource", f"{where}: redirect to {redact(url)} is not allowed (scheme {scheme})"
                )
            _check_host(url, policy, where, original=source if url != source else None)
            hostname = parts.hostname or ""  # never empty: _check_host refuses that
            port = parts.port or (443 if scheme == "https" else 80)
            address = self._checked_address(hostname, port, policy, where, url)
            # connect to the checked address; TLS still verifies the certificate for the name
            pool_kwargs = {"server_hostname": hostname, "assert_hostname": hostname}
            if scheme == "http":
                pool_kwargs = {}
            pool = self.pool.connection_from_host(address, port, scheme, pool_kwargs=pool_kwargs)
            host_header = hostname if parts.port is None else f"{hostname}:{parts.port}"
            if ":" in hostname:  # IPv6 literal
                host_header = f"[{hostname}]" + (f":{parts.port}" if parts.port else "")
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            response = pool.urlopen(
                "GET",
                target,
                headers={**headers, "Host": host_header, "Accept-Encoding": "identity"},
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                response.drain_conn()
                response.release_conn()
                continue
            return response
        raise TerminalError("InvalidSource", f"{where}: more than {policy.max_redirects} redirects")

    def _checked_address(self, host: str, port: int, policy: Policy, where: str, url: str) -> str:
        try:
            addresses = self.resolve(host, port)
        except OSError as exc:
            raise SourceInterrupted(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise SourceInterrupted(f"{host} resolves to no address")
        for address in addresses:
            reason = refused_address_reason(ipaddress.ip_address(address.split("%")[0]), policy)
            if reason:
                raise TerminalError(
                    "ForbiddenSource", f"{where}: source {redact(url)} resolves to {address}, {reason}"
                )
        return addresses[0]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the address, a str for IP families


class HttpSource:
    def __init__(self, fetcher: HttpFetcher, url: str, policy: Policy, where: str):
        self.fetcher, self.url, self.policy, self.where = fetcher, url, policy, where
        self.display = redact(url)

    def stat(self) -> Stat:
        # A one-byte range answers with the total length in Content-Range, and also works on
        # presigned URLs, which are signed for GET only (a HEAD would be refused).
        response = self._get({"Range": "bytes=0-0"})
        try:
            if response.status == 206:
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                size = int(total) if total.isdigit() else None
            elif response.status == 416:  # empty file: "bytes */0"
                size = 0
            else:
                length = response.headers.get("Content-Length")
                size = int(length) if length and length.isdigit() else None
            return Stat(
                size=size, validator=response.headers.get("ETag") or response.headers.get("Last-Modified")
            )
        finally:
            if response.status == 200:
                response.close()  # the server ignored the range: do not read the whole file
            else:
                response.drain_conn()  # one byte: keep the connection for the real read
                response.release_conn()

    def open(self, offset: int, stat: Stat) -> Iterator[bytes]:
        headers = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if stat.validator:
                headers["If-Range"] = stat.validator
        response = self._get(headers)
        try:
            skip = 0
            if offset and response.status == 200:
                if stat.validator:
                    raise SourceInterrupted(f"source {self.display} changed during the copy")
                skip = offset  # server ignores ranges: read past what we already have
            elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise SourceInterrupted(f"source {self.display} answered an unexpected range")
            while chunk := response.read(CHUNK):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                if chunk:
                    yield chunk
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceInterrupted(f"reading {self.display} failed: {exc}") from exc
        finally:
            response.release_conn()

    def _get(self, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            response = self.fetcher.request(self.url, headers, self.policy, self.where)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceInterrupted(f"cannot reach {self.display}: {type(exc).__name__}") from exc
        status = response.status
        if status in (200, 206) or (status == 416 and "Range" in headers):
            return response
        response.drain_conn()
        response.release_conn()
        if status in (401, 403):
            raise TerminalError(
                "SourceForbidden", f"{self.where}: source {self.display} answered {status} (access denied)"
            )
        if status in (404, 410):
            raise TerminalError(
                "SourceNotFound", f"{self.where}: source {self.display} answered {status} (not found)"
            )
        if status >= 500 or status in (408, 429):
            raise SourceInterrupted(f"source {self.display} answered {status}")
        raise TerminalError("InvalidSource", f"{self.where}: source {self.display} answered {status}")


# --- reading with retries ---------------------------------------------------------------------


def with_retries(
    call: Callable[[], _T], policy: Policy, where: str, sleep: Callable[[float], object] = time.sleep
) -> _T:
    """Run `call`, retrying transient failures a bounded number of times."""
    for attempt in range(policy.attempts):
        try:
            return call()
        except SourceInterrupted as exc:
            if attempt + 1 == policy.attempts:
                raise _unreachable(exc, policy, where) from None
            sleep(policy.backoff * 2**attempt)
    raise ValueError(f"{where}: no attempt allowed (attempts={policy.attempts})")


def read_stream(
    source: Source,
    stat: Stat,
    policy: Policy,
    where: str,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[bytes]:
    """The source's bytes; after an interruption, the read resumes at the offset reached
    (Range request) instead of starting the whole artifact again."""
    offset, failures = 0, 0
    while True:
        try:
            for chunk in source.open(offset, stat):
                offset += len(chunk)
                if stat.size is not None and offset > stat.size:
                    raise RetryableError(
                        "SourceUnreachable", f"{where}: source {source.display} grew during the copy"
                    )
                yield chunk
            if stat.size is not None and offset < stat.size:
                raise SourceInterrupted(f"source {source.display} ended after {offset} of {stat.size} bytes")
            return
        except SourceInterrupted as exc:
            failures += 1
            if failures >= policy.attempts:
                raise _unreachable(exc, policy, where) from None
            sleep(policy.backoff * 2 ** (failures - 1))


def prefetched(chunks: Iterator[bytes], depth: int) -> Iterator[bytes]:
    """`chunks`, read ahead by a thread into a queue of `depth` chunks, so the network
    read overlaps the hashing, packing and uploading of the chunks before it. When the
    consumer stops early the reader stops after its current chunk, without being waited
    for (it may be in a read that takes up to the socket timeout)."""
    queue: Queue[bytes | BaseException | None] = Queue(maxsize=depth)  # None: the end
    stop = threading.Event()

    def offer(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(None)
        except BaseException as exc:  # noqa: BLE001  # handed to the consumer, raised in its thread
            offer(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()  # releases the source's connection

    threading.Thread(target=read, name="mro-prefetch", daemon=True).start()
    try:
        while (item := queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def hashed(chunks: Iterator[bytes], digest: Digest) -> Iterator[bytes]:
    """`chunks`, fed to `digest` as they pass (in whichever thread iterates them)."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _unreachable(exc: Exception, policy: Policy, where: str) -> RetryableError:
    return RetryableError(
        "SourceUnreachable", f"{where}: cannot read the source: {exc} ({policy.attempts} tries)"
    )
