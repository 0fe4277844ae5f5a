"""Run the emulator on 127.0.0.1 in a background thread, and write a kubeconfig for it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pathlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import kmock
import yaml

from .emulator import KubeApiEmulator

T = TypeVar("T")


def write_kubeconfig(
    path: str | os.PathLike[str], server_url: str, namespace: str = "default"
) -> pathlib.Path:
    """A kubeconfig with one context pointing at a plain-HTTP server without authentication."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server_url}}],
        "users": [{"name": "emulator", "user": {}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
            }
        ],
        "current-context": "emulator",
        "preferences": {},
    }
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


class EmulatorServer:
    """The emulator served by kmock on its own event loop in a daemon thread.

    `call(fn, ...)` runs a function on that loop (the emulator is not thread-safe) and
    returns its result; use it for anything that touches the emulator's state.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        kubeconfig_path: str | os.PathLike[str] | None = None,
        **emulator_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.kubeconfig_path = pathlib.Path(kubeconfig_path) if kubeconfig_path else None
        self._emulator_options = emulator_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self.emulator: KubeApiEmulator | None = None
        self.url = ""

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        if self._failure is not None:
            raise RuntimeError(
                f"the Kubernetes API emulator did not start: {self._failure!r}"
            ) from self._failure
        if not self._started.is_set():
            raise RuntimeError("the Kubernetes API emulator did not start within 30 seconds")
        if self.kubeconfig_path is not None:
            write_kubeconfig(self.kubeconfig_path, self.url)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the emulator's loop and return its result (or raise)."""
        assert self._loop is not None, "the emulator is not running"
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed back to the caller's thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.emulator = KubeApiEmulator(**self._emulator_options)
        async with self.emulator, kmock.Server(self.emulator, host=self.host, port=self.port) as server:
            self.port = server.port
            self.url = f"http://{self.host}:{server.port}"
            self._started.set()
            await self._stopped.wait()
            self.emulator.close_watches()
