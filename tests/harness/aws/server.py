"""The corrected moto server: moto's WSGI app, behind the harness middleware, served by
a threaded werkzeug server on 127.0.0.1 in a daemon thread of the current process."""

from __future__ import annotations

import functools
import io
import socket
import threading
from typing import Any

import moto.core.responses
from moto.core.base_backend import BackendDict
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from . import corrections
from .config import CONFIG, HarnessConfig
from .faults import Faults
from .quota import Quota
from .traffic import HarnessMiddleware, RequestLog

REGION = "us-east-2"
ACCOUNT_ID = "123456789012"  # moto's default account


class DispatcherApplication(DomainDispatcherApplication):
    """moto's dispatcher, with the backend of each host remembered: moto finds it anew for
    every request, under one lock, by listing its package directory (a stat per module)
    and trying its URL patterns one by one; that cost a quarter of the server's time under
    load and made every request wait for the others. Which backend serves a host never
    changes while the server runs."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backend_of_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backend_of_host:
            self._backend_of_host[host] = super().get_backend_for_host(host)
        return self._backend_of_host[host]


def remember_action_names() -> None:
    """moto lists a response class's methods (inspect.getmembers) for every request to
    find the action; the classes are complete once the corrections are applied, so the
    list is made once per class."""
    names_of = moto.core.responses.method_names_from_class
    if not hasattr(names_of, "cache_info"):  # once per process
        moto.core.responses.method_names_from_class = functools.cache(names_of)


class BodyReader(io.RawIOBase):
    """The request's body and nothing past it: what the app reads, and what werkzeug reads
    to discard the rest after the response, ends where the next request on the connection
    begins."""

    def __init__(self, stream: Any, length: int) -> None:
        super().__init__()
        self.stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._take(self.stream.read, size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        return self._take(self.stream.readline, size)

    def _take(self, reader: Any, size: int | None) -> bytes:
        """At most `size` bytes (all that is left when None or negative) of the body."""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data: bytes = reader(size) if size else b""
        self.remaining -= len(data)
        return data


class KeepAliveRequestHandler(MotoRequestHandler):
    """Keeps the connection open between requests, as AWS endpoints do (HTTP/1.1 persistent
    connections). werkzeug's development server closes every connection after one response
    ("Connection: close", then it reads whatever else the client sent): every SageMaker call
    then paid a new TCP connection on both sides and a new server thread, costs a client of
    AWS does not pay. A request whose body has a Content-Length is served with the body
    bounded to that length, so nothing of the next request is read, and whatever the app left
    unread is discarded before the next request line; a chunked request closes as before.
    No access log line per request: tests make thousands."""

    keep_alive = False  # until a request is known to end where its Content-Length says

    def setup(self) -> None:
        super().setup()
        # werkzeug writes the headers and the body apart: with Nagle's algorithm, the body
        # waits for the client's delayed ACK of the headers (40 ms) on a kept connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked or (length is not None and not length.isdigit()):
            self.keep_alive = False
            return super().run_wsgi()
        self.keep_alive = True
        connection = self.rfile
        body = BodyReader(connection, int(length or 0))
        self.rfile = body
        try:
            super().run_wsgi()
        finally:
            self.rfile = connection
            while body.remaining and body.read(1 << 20):
                pass

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self.keep_alive:
            return  # werkzeug's, for every response: the request's own Connection header decides
        super().send_header(keyword, value)

    def log_request(self, code="-", size="-") -> None:
        pass


class AwsServer:
    """One SageMaker + S3 endpoint. ``port=0`` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        corrections.apply()
        remember_action_names()
        self.faults = Faults()
        self.log = RequestLog()
        self.quota = Quota()
        self.config: HarnessConfig = CONFIG
        app = DispatcherApplication(create_backend_app)
        self.app = HarnessMiddleware(app, self.faults, self.log, self.reset, self.config, self.quota)
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "call start() first"
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def port(self) -> int:
        assert self._server is not None, "call start() first"
        return self._server.server_port

    def _listen(self) -> BaseWSGIServer:
        self._server = make_server(
            self._host, self._port, self.app, threaded=True, request_handler=KeepAliveRequestHandler
        )
        return self._server

    def start(self) -> AwsServer:
        server = self._listen()
        self._thread = threading.Thread(target=server.serve_forever, name="harness-aws", daemon=True)
        self._thread.start()
        return self

    def serve_forever_announcing(self, announce) -> None:
        """Run in the calling thread (the launcher); ``announce(url)`` once listening."""
        server = self._listen()
        announce(self.endpoint_url)
        server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> None:
        """Forget every AWS object, fault rule, logged request and setting (quota mode off)."""
        BackendDict.reset()
        self.faults.clear()
        self.quota.clear()
        self.log.clear()
        self.config.reset()
