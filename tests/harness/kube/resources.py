"""The resource types the emulator serves: built-ins, and those registered by CRDs.

Also builds the discovery documents (/api, /apis, /apis/<group>/<version>) from them,
which is how kopf and kubectl find out plurals, kinds, scopes and subresources.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    crd: dict[str, Any] | None = dataclasses.field(default=None, compare=False, hash=False)
    # Built-ins only: whether `metadata.generation` is kept (it is for CRs and CRDs).
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        """Objects are stored per group and plural: every served version sees the same ones."""
        return self.group, self.plural


def _builtin(group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        singular=kind.lower(),
        namespaced=namespaced,
        **kw,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        subresources=frozenset({"status"}),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin("", "v1", "events", "Event", True, short_names=("ev",)),
    _builtin("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _builtin("", "v1", "secrets", "Secret", True),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    _builtin("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", True),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=frozenset({"status"}),
        has_generation=True,
    ),
)

# kopf's peering resources as kopf documents them (peering.yaml): schemaless, no subresources.
KOPF_PEERING_CRDS: tuple[dict[str, Any], ...] = tuple(
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    for plural, kind, scope in (
        ("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
        ("kopfpeerings", "KopfPeering", "Namespaced"),
    )
)


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of the CRD."""
    spec = crd["spec"]
    names = spec["names"]
    result = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = frozenset((version.get("subresources") or {}).keys())
        result.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                crd=crd,
                has_generation=True,
            )
        )
    return result


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving the apiserver's preference: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others."""
    match = _KUBE_VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = int(match[1]), match[2], int(match[3] or 0)
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -major, -minor, version)


def _group_versions(types: list[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for rt in types:
        if rt.group:
            groups.setdefault(rt.group, set()).add(rt.version)
    return {group: sorted(versions, key=version_priority) for group, versions in sorted(groups.items())}


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(types: list[ResourceType]) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in _group_versions(types).items()],
    }


def api_group(types: list[ResourceType], group: str) -> dict[str, Any] | None:
    versions = _group_versions(types).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def api_resource_list(types: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    matching = [rt for rt in types if rt.group == group and rt.version == version]
    if not matching:
        return None
    resources: list[dict[str, Any]] = []
    for rt in sorted(matching, key=lambda rt: rt.plural):
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
                "shortNames": list(rt.short_names),
                "categories": list(rt.categories),
            }
        )
        for sub in sorted(rt.subresources):
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    for entry in resources:  # the apiserver omits empty lists
        for key in ("shortNames", "categories"):
            if key in entry and not entry[key]:
                del entry[key]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def openapi_v3_root(types: list[ResourceType]) -> dict[str, Any]:
    """/openapi/v3: where each group-version's document is (kubectl reads it before `apply`)."""
    paths = {}
    for group, version in sorted({(rt.group, rt.version) for rt in types}):
        gv_path = f"apis/{group}/{version}" if group else f"api/{version}"
        paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}"}
    return {"paths": paths}


def openapi_v3_group_version(types: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document: the object paths and the PATCH operation's query parameters.

    kubectl looks for `fieldValidation` there to know that the server validates fields itself
    (then it sends fieldValidation=Strict and does no client-side schema validation).
    """
    matching = [rt for rt in types if rt.group == group and rt.version == version]
    if not matching:
        return None
    params = [
        {"name": name, "in": "query", "schema": {"type": "string"}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    paths: dict[str, Any] = {}
    for rt in matching:
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        gvk = {"group": group, "version": version, "kind": rt.kind}
        paths[f"{base}{scope}/{rt.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": params,
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "patch",
                "responses": {"200": {"description": "OK"}},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }
