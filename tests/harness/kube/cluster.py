"""What a test holds: an emulated cluster (or a real one) with a client and a request log."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

from .client import KubeApiError, KubeClient, load_crds
from .emulator import Fault, RequestRecord
from .errors import ApiError
from .server import EmulatorServer


class KubeCluster(KubeClient):
    """A KubeClient bound to a cluster, plus what only the emulator can tell.

    `emulated` is False against a real cluster (E2E_KUBECONFIG): there is no request log
    and `reset()` cannot wipe the cluster (use a fresh namespace per test instead).
    """

    def __init__(
        self, client: KubeClient, kubeconfig_path: pathlib.Path, server: EmulatorServer | None = None
    ) -> None:
        super().__init__(client.base_url, client.session, client.namespace)
        self.kubeconfig_path = kubeconfig_path
        self.server = server

    @classmethod
    def start_emulator(
        cls, kubeconfig_path: str | os.PathLike[str] | None = None, **options: Any
    ) -> KubeCluster:
        if kubeconfig_path is None:
            kubeconfig_path = pathlib.Path(tempfile.mkdtemp(prefix="kube-emulator-")) / "kubeconfig"
        server = EmulatorServer(kubeconfig_path=kubeconfig_path, **options).start()
        return cls(KubeClient(server.url), pathlib.Path(kubeconfig_path), server)

    @classmethod
    def connect(cls, kubeconfig_path: str | os.PathLike[str]) -> KubeCluster:
        return cls(KubeClient.from_kubeconfig(kubeconfig_path), pathlib.Path(kubeconfig_path))

    @property
    def emulated(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess (an operator, kubectl) to use this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig_path)}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    # ------------------------------------------------------------ emulator only

    def _emulator_server(self) -> EmulatorServer:
        if self.server is None:
            raise RuntimeError(
                "this needs the emulator; the tests run against a real cluster (E2E_KUBECONFIG)"
            )
        return self.server

    def reset(self) -> None:
        """A fresh cluster: no objects, no CRDs but kopf's peering ones, an empty request log."""
        server = self._emulator_server()
        server.call(server.emulator.reset)  # type: ignore[union-attr]
        self._discovered = None

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request so far (a copy), oldest first."""
        server = self._emulator_server()
        return list(server.emulator.records)  # type: ignore[union-attr]

    def clear_requests(self) -> None:
        server = self._emulator_server()
        server.call(server.emulator.records.clear)  # type: ignore[union-attr]

    def inject_fault(
        self,
        verb: str,
        resource: str,
        *,
        code: int = 500,
        count: int | None = 1,
        subresource: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        message: str = "injected fault",
        retry_after: int | None = None,
    ) -> Fault:
        """Answer `code` (a Status) to the next `count` requests matching verb/resource (None: all).

        `verb` and `resource` as in the request log: e.g. ("patch", "widgets", subresource="status").
        """
        fault = Fault(verb, resource, subresource, name, namespace, code, count, message, retry_after)
        server = self._emulator_server()
        server.call(server.emulator.faults.append, fault)  # type: ignore[union-attr]
        return fault

    def permissions(self, user_agent_prefix: str = "") -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) for every resource request so far: the RBAC needed.

        `user_agent_prefix` keeps only one client's requests (kopf sends `kopf/<version>`)."""
        return {
            r.permission
            for r in self.requests
            if r.permission is not None and r.user_agent.startswith(user_agent_prefix)
        }

    def apply_crd(self, crd: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        if self.server is None:
            return super().apply_crd(crd, timeout)
        # Directly on the emulator: no request-log noise (an operator's RBAC is derived from that log).
        server = self.server
        try:
            applied = server.call(server.emulator.apply_crd, crd)  # type: ignore[union-attr]
        except ApiError as exc:
            raise KubeApiError(
                exc.code, exc.status(), f"apply CRD {crd.get('metadata', {}).get('name')}"
            ) from None
        self._discovered = None
        return applied

    def apply_crds_from(self, directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
        return [self.apply_crd(crd) for crd in load_crds(directory)]
