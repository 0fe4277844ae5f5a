"""A local HTTP(S) file server for artifact tests, on 127.0.0.1 and an ephemeral port.

    with FileServer() as server:                       # FileServer(tls=True) for HTTPS
        server.add("/model.bin", b"...")               # bytes
        server.add("/big.bin", Generated(2 * 1024**3)) # bytes made on the fly, never held
        server.add("/gone", status=404)
        server.add("/flaky", b"...", fail_first=2)     # two 503s, then the file
        server.add("/cut", b"...", cut_after=1000)     # first response drops after 1000 bytes
        server.add("/hop", redirect="http://169.254.169.254/latest")
        server.add("/stream", b"...", chunked=True)    # no Content-Length
        url = server.url("/model.bin")

Range requests (`bytes=a-b`, `bytes=a-`) answer 206; `server.requests` logs every request
(method, path, headers). With tls=True a throwaway CA (trustme) signs a certificate for
localhost, 127.0.0.1 and `models.test`; clients trust `server.ca_path`.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1024 * 1024


class Generated:
    """`size` deterministic pseudo-random bytes, produced from a seed block as they are read:
    a 2 GiB file costs 1 MiB of memory. The block is random, so deflate cannot shrink it
    (its 32 KiB window never sees a repeat), like model weights."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(CHUNK // 32))

    def __len__(self) -> int:
        return self.size

    def read(self, start: int, end: int):
        """Yield the bytes [start, end) in chunks."""
        block = memoryview(self.block)  # slices without copies
        position = start
        while position < end:
            offset = position % CHUNK
            piece = block[offset : offset + min(CHUNK - offset, end - position)]
            yield piece
            position += len(piece)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.read(0, self.size):
            digest.update(piece)
        return digest.hexdigest()


@dataclass
class Route:
    body: bytes | Generated | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    redirect: str | None = None
    fail_first: int = 0  # answer 503 this many times first
    cut_after: int | None = None  # the first full response closes the connection after this many bytes
    chunked: bool = False
    delay: float = 0.0  # seconds before each chunk (a slow source)
    ranges: bool = True  # honour Range requests


class FileServer:
    def __init__(self, *, tls: bool = False):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.scheme = "https" if tls else "http"
        self.ca_path: str | None = None
        self._tmp = None
        if tls:
            self._setup_tls()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="file-server", daemon=True)

    def _setup_tls(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1", "models.test")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="fileserver-ca-")
        self.ca_path = f"{self._tmp.name}/ca.pem"
        ca.cert_pem.write_to_path(self.ca_path)

    def add(self, path: str, body: bytes | Generated | None = None, **options) -> str:
        self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p, _ in self.requests if p.split("?")[0] == path)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # clients that hang up mid-response are what some tests are about
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def _handler(server: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def _serve(self, send_body: bool) -> None:
            with server._lock:
                server.requests.append((self.command, self.path, dict(self.headers)))
            route = server.routes.get(self.path.split("?")[0])
            if route is None:
                return self._empty(404)
            if route.fail_first:
                route.fail_first -= 1
                return self._empty(503)
            if route.redirect:
                return self._empty(302, {"Location": route.redirect})
            if route.status != 200 or route.body is None:
                return self._empty(route.status)
            body = route.body
            size = len(body)
            start, end, status = 0, size, 200
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match and route.ranges:
                start = int(match.group(1))
                end = min(size, int(match.group(2)) + 1) if match.group(2) else size
                if start >= size:
                    return self._empty(416, {"Content-Range": f"bytes */{size}"})
                status = 206
            self.send_response(status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            if route.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(end - start))
            self.end_headers()
            if not send_body:
                return
            cut = route.cut_after if status == 200 else None
            if cut is not None:
                route.cut_after = None  # only the first full response is cut
            sent = 0
            pieces = body.read(start, end) if isinstance(body, Generated) else _pieces(body, start, end)
            try:
                for piece in pieces:
                    if route.delay:
                        time.sleep(route.delay)
                    if cut is not None and sent + len(piece) > cut:
                        self.wfile.write(piece[: cut - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece)
                    sent += len(piece)
                if route.chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _pieces(body: bytes, start: int, end: int):
    view = memoryview(body)
    for position in range(start, end, CHUNK):
        yield view[position : min(position + CHUNK, end)]
