"""metadata.managedFields as kube-apiserver writes them for create, update and patch.

What the apiserver's field manager does for an `Update` operation (k8s.io/apiserver
managedfields, sigs.k8s.io/structured-merge-diff `Updater.Update`), reproduced here:

- the manager is the `fieldManager` query parameter, else the User-Agent up to its first
  "/" (`kubectl-client-side-apply`, `kubectl-edit`, `kubectl-patch`, `kopf`,
  `OpenAPI-Generator`, `python-requests`); at most 128 characters;
- the old and the new object are compared field by field: the fields this write added or
  changed join the writer's entry and leave every other entry (the write "takes" them);
  fields it removed leave every entry; entries left with no field are dropped;
- one entry per (manager, operation, apiVersion, subresource); `time` changes only when
  the write took a field; entries are sorted by operation, time, manager, apiVersion,
  subresource; more than 10 Update entries: the oldest are merged into `ancient-changes`;
- not tracked: apiVersion, kind, metadata (the map itself), metadata.name, namespace,
  uid, resourceVersion, generation, creationTimestamp, selfLink, managedFields; a write
  of the main resource does not track `status` of a type with a status subresource, a
  write of /status tracks only `status`;
- managedFields sent by the client: a non-empty list replaces the stored entries before
  this write is recorded (on the main resource only); `[{}]` clears them (the object is
  stored without managedFields and this write records nothing); absent or `[]` keeps them.

FieldsV1 keys: `f:<name>` for a field, `.` when the map itself is a member of the set
(it was created by that manager) and has members below it.

Simplified: every list is atomic (one leaf, `f:items: {}`), as the apiserver treats a
CRD's lists unless the schema says `x-kubernetes-list-type: map|set`; associative lists
(`k:{...}`, `v:...` items) are not produced, though entries holding them (sent by a client)
are kept and moved as opaque paths. `x-kubernetes-map-type: atomic` is not honoured (maps
are granular). The set is computed on the object as stored (after defaulting and pruning),
so defaults a CRD fills in are owned by the writer, as the apiserver does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

Path = tuple[str, ...]

MAX_UPDATE_MANAGERS = 10  # the apiserver's cap on Update entries
ANCIENT_CHANGES = "ancient-changes"
MAX_MANAGER_LENGTH = 128

_UNTRACKED: frozenset[Path] = frozenset(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "selfLink",
            "managedFields",
            "clusterName",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    ]
)


def manager_for(field_manager: str | None, user_agent: str) -> str:
    """The manager a write is recorded under: `fieldManager`, else the User-Agent's prefix."""
    if field_manager:
        return field_manager
    prefix = user_agent.split("/", 1)[0]
    return "".join(ch for ch in prefix if ch.isprintable())[:MAX_MANAGER_LENGTH]


# ---------------------------------------------------------------- FieldsV1 <-> path sets


def paths_of(obj: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every field path of an object: each map key (a map is a member too), lists atomic."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = (*prefix, f"f:{key}")
            yield path
            if isinstance(value, dict):
                yield from paths_of(value, path)


def decode(fields: Any, prefix: Path = ()) -> set[Path]:
    """The set of paths a FieldsV1 trie holds."""
    found: set[Path] = set()
    if not isinstance(fields, dict):
        return found
    for key, value in fields.items():
        if key == ".":
            if prefix:
                found.add(prefix)
            continue
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            found |= decode(value, path)
        else:
            found.add(path)
    return found


def encode(paths: set[Path]) -> dict[str, Any]:
    """The FieldsV1 trie of a set of paths (keys sorted, as the apiserver writes them)."""
    root: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(key, {})

    def finish(node: dict[str, Any], prefix: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if prefix in members and node:
            out["."] = {}
        for key in sorted(node):
            out[key] = finish(node[key], (*prefix, key))
        return out

    return finish(root, ())


def _value_at(obj: Any, path: Path) -> Any:
    for key in path:
        obj = obj[key[2:]]
    return obj


def compare(old: Any, new: Any) -> tuple[set[Path], set[Path], set[Path]]:
    """(added, modified, removed) field paths between two objects (lists compared whole)."""
    before, after = set(paths_of(old)), set(paths_of(new))
    modified = set()
    for path in before & after:
        a, b = _value_at(old, path), _value_at(new, path)
        if not (isinstance(a, dict) and isinstance(b, dict)) and a != b:
            modified.add(path)
    return after - before, modified, before - after


# ---------------------------------------------------------------- entries


def _key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    # the apiserver's manager identifier: manager, operation, subresource, and (for Update) apiVersion
    operation = entry.get("operation", "")
    api_version = "" if operation == "Apply" else entry.get("apiVersion", "")
    return (entry.get("manager", ""), operation, api_version, entry.get("subresource", ""))


def is_reset(sent: Any) -> bool:
    """`managedFields: [{}]`: the client asks to clear them."""
    return isinstance(sent, list) and len(sent) == 1 and sent[0] == {}


def invalid_entries(sent: Any) -> list[dict[str, str]]:
    """Causes (as for a 422) for managedFields a client sent that the apiserver rejects."""
    if sent is None:
        return []
    if not isinstance(sent, list):
        return [
            {"reason": "FieldValueInvalid", "field": "metadata.managedFields", "message": "must be a list"}
        ]
    causes = []
    for index, entry in enumerate(sent):
        field = f"metadata.managedFields[{index}]"
        if not isinstance(entry, dict):
            causes.append({"reason": "FieldValueInvalid", "field": field, "message": "must be an object"})
            continue
        if entry.get("operation") not in ("Apply", "Update"):
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "field": f"{field}.operation",
                    "message": f'Unsupported value: "{entry.get("operation", "")}": supported values: '
                    '"Apply", "Update"',
                }
            )
        if entry.get("fieldsType") != "FieldsV1":
            causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "field": f"{field}.fieldsType",
                    "message": f'Unsupported value: "{entry.get("fieldsType", "")}": supported values: '
                    '"FieldsV1"',
                }
            )
    return causes


def record_update(
    entries: list[dict[str, Any]] | None,
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str | None,
    status_subresource: bool,
    time: str,
) -> list[dict[str, Any]]:
    """The managedFields after `manager` turned `old` into `new` (an Update operation)."""
    added, modified, removed = compare(old, new)
    taken = {p for p in added | modified if _tracked(p, subresource, status_subresource)}
    removed = {p for p in removed if _tracked(p, subresource, status_subresource)}
    if not taken and not removed and entries:
        return list(entries)  # no field changed: the entries stay as they are (times too)
    sets: dict[tuple[str, str, str, str], tuple[dict[str, Any], set[Path]]] = {}
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        key = _key(entry)
        previous = sets.get(key)
        fields = decode(entry.get("fieldsV1"))
        sets[key] = (entry, fields | previous[1]) if previous else (entry, fields)
    if taken or removed:
        for key, (entry, fields) in list(sets.items()):
            left = fields - taken - removed
            if left:
                sets[key] = (entry, left)
            else:
                del sets[key]
    if taken:
        key = (manager, "Update", api_version, subresource or "")
        _, fields = sets.get(key, ({}, set()))
        entry = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": time}
        if subresource:
            entry["subresource"] = subresource
        sets[key] = (entry, fields | taken)
    result = []
    for entry, fields in sets.values():
        encoded = {k: v for k, v in entry.items() if k not in ("fieldsType", "fieldsV1")}
        encoded["fieldsType"] = "FieldsV1"
        encoded["fieldsV1"] = encode(fields)
        result.append(encoded)
    return _sorted(_capped(result))


def _tracked(path: Path, subresource: str | None, status_subresource: bool) -> bool:
    if path in _UNTRACKED:
        return False
    if subresource == "status":
        return path[0] == "f:status"
    return not (status_subresource and path[0] == "f:status")


def _sort_key(entry: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        entry.get("operation", ""),
        entry.get("time", ""),
        entry.get("manager", ""),
        entry.get("apiVersion", ""),
        entry.get("subresource", ""),
    )


def _sorted(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=_sort_key)


def _capped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    updates = sorted((e for e in entries if e.get("operation") == "Update"), key=_sort_key)
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return entries
    oldest = updates[: len(updates) - MAX_UPDATE_MANAGERS + 1]
    merged: set[Path] = set()
    for entry in oldest:
        merged |= decode(entry.get("fieldsV1"))
    ancient = {
        "manager": ANCIENT_CHANGES,
        "operation": "Update",
        "apiVersion": oldest[-1].get("apiVersion", ""),
        "time": oldest[-1].get("time", ""),
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(merged),
    }
    return [e for e in entries if not any(e is o for o in oldest)] + [ancient]


# ---------------------------------------------------------------- reading (for tests)


def owners(obj: dict[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The managedFields entries of `obj` that own the field at `path` (e.g. ("spec", "x"))."""
    wanted: Path = tuple(f"f:{key}" for key in path)
    return [
        entry
        for entry in (obj.get("metadata") or {}).get("managedFields") or []
        if wanted in decode(entry.get("fieldsV1"))
    ]


def field_manager(obj: dict[str, Any], path: tuple[str, ...] = ("spec", "modelApprovalStatus")) -> str | None:
    """Who last set the field at `path`: the manager of the newest entry owning it (None: nobody)."""
    found = owners(obj, path)
    if not found:
        return None
    return str(max(found, key=lambda e: e.get("time", "")).get("manager", ""))


def describe(obj: dict[str, Any]) -> str:
    """managedFields in one line per entry, for assertion messages."""
    return "\n".join(
        f"{e.get('manager')} {e.get('operation')} {e.get('subresource', '')} {json.dumps(e.get('fieldsV1'))}"
        for e in (obj.get("metadata") or {}).get("managedFields") or []
    )
