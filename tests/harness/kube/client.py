"""A small synchronous Kubernetes client for tests: CRUD, CRDs and bounded waiting.

Resources are named as kubectl names them: plural (`modelpackages`), `plural.group`,
kind (`ModelPackage`), short name (`mp`), or explicitly `group/version/plural`
(`v1/namespaces` for the core group). Errors raise `KubeApiError` with the Status.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
import yaml


class KubeApiError(Exception):
    """A request failed; `status` is the HTTP code, `body` the apiserver's Status (if any)."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        self.message = self.body.get("message", "")
        self.causes: list[dict[str, str]] = (self.body.get("details") or {}).get("causes") or []
        super().__init__(f"{what} -> {status} {self.reason}: {self.message}")


@dataclasses.dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    preferred: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class KubeClient:
    """Talks to `base_url` over HTTP(S); see `from_kubeconfig` for real clusters."""

    def __init__(
        self, base_url: str, session: requests.Session | None = None, namespace: str = "default"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.namespace = namespace
        self._discovered: list[ApiResource] | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None) -> KubeClient:
        """Credentials, CA and server as the kubernetes client reads them (tokens, certs, exec plugins)."""
        from kubernetes import client as k8s_client  # slow import: only for real clusters
        from kubernetes import config as k8s_config

        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(
            config_file=str(path), context=context, client_configuration=configuration
        )
        session = requests.Session()
        token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
        if token:
            prefix = configuration.api_key_prefix.get("authorization", "")
            session.headers["Authorization"] = (
                f"{prefix} {token}".strip() if not token.startswith("Bearer") else token
            )
        if configuration.cert_file and configuration.key_file:
            session.cert = (configuration.cert_file, configuration.key_file)
        session.verify = (configuration.ssl_ca_cert or True) if configuration.verify_ssl else False
        _, active = k8s_config.list_kube_config_contexts(config_file=str(path))
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        return cls(configuration.host, session, namespace)

    # ------------------------------------------------------------ raw

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> requests.Response:
        return self.session.request(
            method, self.base_url + path, json=json, params=params, headers=headers, timeout=timeout
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then the decoded JSON body; raises KubeApiError on 4xx/5xx."""
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise KubeApiError(response.status_code, body, f"{method} {path}")
        return body

    # ------------------------------------------------------------ discovery

    def discover(self) -> list[ApiResource]:
        """All served resources (cached; refreshed when a name is not found)."""
        found: list[ApiResource] = []
        group_versions = [("", v, True) for v in self.call("GET", "/api")["versions"]]
        for group in self.call("GET", "/apis")["groups"]:
            preferred = group["preferredVersion"]["version"]
            group_versions += [
                (group["name"], v["version"], v["version"] == preferred) for v in group["versions"]
            ]
        for group, version, preferred in group_versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.call("GET", path)
            except KubeApiError:
                continue  # a group going away while we look
            for entry in listing["resources"]:
                if "/" not in entry["name"]:
                    found.append(
                        ApiResource(
                            group,
                            version,
                            entry["name"],
                            entry["kind"],
                            entry["namespaced"],
                            entry.get("singularName") or entry["kind"].lower(),
                            tuple(entry.get("shortNames") or ()),
                            preferred,
                        )
                    )
        self._discovered = found
        return found

    def resource(self, name: str) -> ApiResource:
        """Resolve a kubectl-style resource name (see the module docstring)."""
        for attempt in range(2):
            if self._discovered is None or attempt == 1:
                self.discover()
            match = self._match(name)
            if match is not None:
                return match
        raise KubeApiError(
            404,
            {"reason": "NotFound", "message": f'the server doesn\'t have a resource type "{name}"'},
            f"resolve {name}",
        )

    def _match(self, name: str) -> ApiResource | None:
        assert self._discovered is not None
        candidates = self._discovered
        if name.count("/") == 2:
            group, version, plural = name.split("/")
            return next(
                (r for r in candidates if (r.group, r.version, r.plural) == (group, version, plural)), None
            )
        if name.count("/") == 1:
            version, plural = name.split("/")
            return next(
                (r for r in candidates if (r.group, r.version, r.plural) == ("", version, plural)), None
            )
        word, _, group = name.partition(".")
        if group:
            candidates = [r for r in candidates if r.group == group]
        lowered = word.lower()
        for matches in (
            lambda r: r.plural == lowered,
            lambda r: r.singular == lowered,
            lambda r: r.kind.lower() == lowered,
            lambda r: lowered in r.short_names,
        ):
            hits = [r for r in candidates if matches(r)]
            if hits:  # kubectl's preference: the core group, then the preferred version
                return sorted(hits, key=lambda r: (r.group != "", not r.preferred, r.group))[0]
        return None

    def resource_for(self, obj: dict[str, Any]) -> ApiResource:
        group, _, version = obj["apiVersion"].rpartition("/")
        for attempt in range(2):
            if self._discovered is None or attempt == 1:
                self.discover()
            assert self._discovered is not None
            for r in self._discovered:
                if (r.group, r.version, r.kind) == (group, version, obj["kind"]):
                    return r
        raise KubeApiError(
            404,
            {
                "reason": "NotFound",
                "message": f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"',
            },
            f"resolve {obj['kind']}",
        )

    def _ns(self, r: ApiResource, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if r.namespaced else None

    # ------------------------------------------------------------ CRUD

    def create(
        self,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        user_agent: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """`params`: query parameters (fieldManager=..., dryRun="All"); `user_agent` names the
        field manager when fieldManager is not given (see harness.kube.managed_fields)."""
        r = self.resource_for(obj)
        ns = self._ns(r, namespace or obj.get("metadata", {}).get("namespace"))
        return self.call("POST", r.path(ns), json=obj, params=params or None, headers=_agent(user_agent))

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        r = self.resource(resource)
        return self.call("GET", r.path(self._ns(r, namespace), name))

    def find(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Like `get`, but None when the object does not exist."""
        try:
            return self.get(resource, name, namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, resource: str, namespace: str | None = None, *, all_namespaces: bool = False, **params: Any
    ) -> list[dict[str, Any]]:
        r = self.resource(resource)
        ns = None if all_namespaces else self._ns(r, namespace)
        return self.call("GET", r.path(ns), params=params or None)["items"]

    def replace(
        self,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        field_manager: str | None = None,
        user_agent: str | None = None,
    ) -> dict[str, Any]:
        r = self.resource_for(obj)
        meta = obj["metadata"]
        return self.call(
            "PUT",
            r.path(self._ns(r, meta.get("namespace")), meta["name"], subresource),
            json=obj,
            params={"fieldManager": field_manager} if field_manager else None,
            headers=_agent(user_agent),
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        type: str = "merge",
        field_manager: str | None = None,
        user_agent: str | None = None,
    ) -> dict[str, Any]:
        """`type` is merge (RFC 7386), json (RFC 6902) or strategic; `field_manager` is sent
        as ?fieldManager=, `user_agent` as the User-Agent (the manager without it)."""
        r = self.resource(resource)
        return self.call(
            "PATCH",
            r.path(self._ns(r, namespace), name, subresource),
            json=patch,
            params={"fieldManager": field_manager} if field_manager else None,
            headers={"Content-Type": PATCH_TYPES[type], **_agent(user_agent)},
        )

    def patch_status(
        self,
        resource: str,
        name: str,
        status: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
        user_agent: str | None = None,
    ) -> dict[str, Any]:
        return self.patch(
            resource,
            name,
            {"status": status},
            namespace,
            subresource="status",
            field_manager=field_manager,
            user_agent=user_agent,
        )

    def delete(
        self, resource: str, name: str, namespace: str | None = None, *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        r = self.resource(resource)
        try:
            return self.call("DELETE", r.path(self._ns(r, namespace), name))
        except KubeApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def create_namespace(self, name: str) -> dict[str, Any]:
        return self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def events_for(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """core/v1 Events whose involvedObject is `obj` (by uid), oldest first."""
        return self.list(
            "v1/events",
            obj["metadata"].get("namespace"),
            fieldSelector=f"involvedObject.uid={obj['metadata']['uid']}",
        )

    # ------------------------------------------------------------ CRDs

    def apply_crd(self, crd: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Create or replace a CRD, and wait until it is Established and discoverable."""
        crd_resource = self.resource("apiextensions.k8s.io/v1/customresourcedefinitions")
        name = crd["metadata"]["name"]
        try:
            self.call("POST", crd_resource.path(), json=crd)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            current = self.call("GET", crd_resource.path(name=name))
            replacement = {
                **crd,
                "metadata": {**crd["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
            }
            self.call("PUT", crd_resource.path(name=name), json=replacement)
        established = self.wait_for(
            "apiextensions.k8s.io/v1/customresourcedefinitions",
            name,
            timeout=timeout,
            condition=lambda o: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (o.get("status") or {}).get("conditions") or []
            ),
        )
        self._discovered = None
        return established

    def apply_crds_from(self, directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Apply every CustomResourceDefinition in the YAML files of `directory`."""
        applied = []
        for crd in load_crds(directory):
            applied.append(self.apply_crd(crd))
        return applied

    # ------------------------------------------------------------ waiting

    def wait_for(
        self,
        resource: str,
        name: str,
        condition: Callable[[dict[str, Any]], bool],
        namespace: str | None = None,
        *,
        timeout: float = 10,
        interval: float = 0.05,
    ) -> dict[str, Any]:
        """Poll until the object exists and `condition(obj)` holds; TimeoutError shows the last state."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            last = self.find(resource, name, namespace)
            if last is not None and condition(last):
                return last
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{resource} {name!r}: condition not met within {timeout}s; last seen: {last!r}"
                )
            time.sleep(interval)

    def wait_gone(
        self,
        resource: str,
        name: str,
        namespace: str | None = None,
        *,
        timeout: float = 10,
        interval: float = 0.05,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            last = self.find(resource, name, namespace)
            if last is None:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{resource} {name!r} still exists after {timeout}s: {last!r}")
            time.sleep(interval)


def _agent(user_agent: str | None) -> dict[str, str]:
    return {"User-Agent": user_agent} if user_agent else {}


def load_crds(directory: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """The CustomResourceDefinitions in the *.yaml/*.yml files of `directory`, in file order."""
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"no CRD directory at {root}")
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                yield document
