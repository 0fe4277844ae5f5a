"""The operator's blocking calls to the Kubernetes API server from its threads (kopf's own
client lives on the event loop): status merge patches and reads of its objects, and the
client the shard Leases use (sharding.py). Clients are built on first use, from the
kubeconfig or the in-cluster account kopf's login uses too."""

from __future__ import annotations

import threading
from typing import Any

from . import GROUP, VERSION
from .timing import STATUS_WRITE_TIMEOUT

USER_AGENT = "model-registry-operator"
CONNECTIONS = 32


class Conflict(Exception):
    """A write made on the condition that the object is still at a resourceVersion found it
    changed meanwhile (HTTP 409): read it again before deciding anything."""


def api_client(user_agent: str = USER_AGENT, retries: bool = True) -> Any:
    """A kubernetes ApiClient; `retries` False: a failed request is not retried by urllib3 (its
    caller tries again on its own schedule)."""
    import kubernetes

    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=config)
    if not retries:
        config.retries = False
    # the reads and writes outside handlers (OBJECT_IO_THREADS each) and the progress writes of
    # the reconcile threads share one client: a connection each, none opened and dropped
    config.connection_pool_maxsize = max(config.connection_pool_maxsize or 0, CONNECTIONS)
    client = kubernetes.client.ApiClient(config)
    client.user_agent = user_agent
    return client


class KubernetesObjects:
    """Status merge patches (wiring.StatusWriter) and reads (wiring.ObjectReader) of the
    operator's own objects, safe to call from any thread. A sharded replica names itself in
    `user_agent` (the API server's audit log, and the e2e test, tell the replicas' writes apart)."""

    def __init__(self, user_agent: str = USER_AGENT, retries: bool = True):
        self.user_agent, self._retries = user_agent, retries
        self._api: Any = None
        self._guard = threading.Lock()

    def _client(self) -> Any:
        with self._guard:
            if self._api is None:
                import kubernetes

                self._api = kubernetes.client.CustomObjectsApi(api_client(self.user_agent, self._retries))
            return self._api

    def __call__(
        self, plural: str, namespace: str, name: str, status: dict[str, Any], resource_version: str = "", /
    ) -> None:
        """`resource_version`: write only if the object is still at it (else Conflict)."""
        import kubernetes

        patch: dict[str, Any] = {"status": status}
        if resource_version:
            # a merge patch that names a resourceVersion is conditional on it: the API server's
            # optimistic concurrency, as for an update
            patch["metadata"] = {"resourceVersion": resource_version}
        try:
            self._client().patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                patch,
                _content_type="application/merge-patch+json",
                _request_timeout=STATUS_WRITE_TIMEOUT,
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 409 and resource_version:
                raise Conflict(f"{plural} {namespace}/{name} changed since {resource_version}") from None
            raise

    def read(
        self, plural: str, namespace: str, name: str, timeout: float = STATUS_WRITE_TIMEOUT
    ) -> dict[str, Any] | None:
        """The object as stored now; None: it does not exist."""
        import kubernetes

        try:
            found: dict[str, Any] = self._client().get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _request_timeout=timeout
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found
