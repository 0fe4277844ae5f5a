"""A tiny S3-compatible endpoint for multi-GiB uploads: part bodies are hashed and dropped.

moto keeps every uploaded part in memory (and copies them on completion), so a 2 GiB
upload into it costs the test process gigabytes and most of a minute. This sink speaks
just enough S3 for `copy_artifacts` (HeadObject/GetObject answer 404, ListMultipartUploads
is empty, CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
and PutObject for small objects, which it keeps) and records, per completed object, the
size and sha256 of the bytes in part order. Parts arriving out of order wait in memory
until their predecessors arrive: as many as the client has in flight.

    with S3Sink() as sink:
        client = boto3.client("s3", endpoint_url=sink.endpoint_url, ...)
        ...
        sink.objects["prefix/model/model.tar.gz"]  # {"size": ..., "sha256": ...}
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

SMALL_OBJECT = 1024 * 1024


@dataclass
class _Upload:
    key: str
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    next_part: int = 1
    waiting: dict[int, bytes] = field(default_factory=dict)


class S3Sink:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.small: dict[str, bytes] = {}
        self.uploads: dict[str, _Upload] = {}
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-sink", daemon=True)

    def __enter__(self) -> S3Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_part(self, upload_id: str, number: int, body: bytes) -> None:
        with self.lock:
            upload = self.uploads[upload_id]
            if number < upload.next_part:
                return  # a retried part already hashed
            upload.waiting[number] = body
            while upload.next_part in upload.waiting:
                chunk = upload.waiting.pop(upload.next_part)
                upload.digest.update(chunk)
                upload.size += len(chunk)
                upload.next_part += 1


def _handler(sink: S3Sink):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _target(self) -> tuple[str, dict[str, list[str]]]:
            parts = urlsplit(self.path)
            bucket_and_key = unquote(parts.path).lstrip("/")
            key = bucket_and_key.partition("/")[2]
            return key, parse_qs(parts.query, keep_blank_values=True)

        def _body(self) -> bytes:
            if "aws-chunked" in self.headers.get("Content-Encoding", ""):
                raise NotImplementedError("aws-chunked bodies are not supported by the sink")
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _not_found(self) -> None:
            self._reply(404, _xml("Error", Code="NoSuchKey", Message="no such key"))

        def do_HEAD(self) -> None:
            key, _ = self._target()
            if key in sink.small:
                return self._reply(
                    200, headers={"ETag": '"small"', "Content-Length": str(len(sink.small[key]))}
                )
            self._reply(404)

        def do_GET(self) -> None:
            key, query = self._target()
            if "uploads" in query:
                return self._reply(200, _xml("ListMultipartUploadsResult", IsTruncated="false"))
            if key in sink.small:
                return self._reply(200, sink.small[key], {"ETag": '"small"'})
            self._not_found()

        def do_POST(self) -> None:
            key, query = self._target()
            self._body()
            if "uploads" in query:
                upload_id = uuid.uuid4().hex
                with sink.lock:
                    sink.uploads[upload_id] = _Upload(key)
                return self._reply(200, _xml("InitiateMultipartUploadResult", Key=key, UploadId=upload_id))
            upload_id = query["uploadId"][0]
            with sink.lock:
                upload = sink.uploads.pop(upload_id)
                if upload.waiting:
                    return self._reply(400, _xml("Error", Code="InvalidPart", Message="missing part"))
                sink.objects[key] = {"size": upload.size, "sha256": upload.digest.hexdigest()}
            self._reply(200, _xml("CompleteMultipartUploadResult", Key=key, ETag=f'"{upload_id}-done"'))

        def do_PUT(self) -> None:
            key, query = self._target()
            body = self._body()
            if "partNumber" in query:
                sink.add_part(query["uploadId"][0], int(query["partNumber"][0]), body)
                return self._reply(200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
            if len(body) > SMALL_OBJECT:
                return self._reply(
                    400, _xml("Error", Code="EntityTooLarge", Message="the sink keeps small objects only")
                )
            sink.small[key] = body
            self._reply(200, headers={"ETag": '"small"'})

        def do_DELETE(self) -> None:
            _, query = self._target()
            with sink.lock:
                sink.uploads.pop(query.get("uploadId", [""])[0], None)
            self._reply(204)

    return Handler


def _xml(root: str, **fields: str) -> bytes:
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    return f"<{root}>{inner}</{root}>".encode()
