"""Server-side printing: the `Table` that `kubectl get` asks for, from additionalPrinterColumns.

Columns of a custom resource come from its CRD version's additionalPrinterColumns
(JSONPath, evaluated here as the apiserver does for the subset CRDs use: fields, [n],
[*] and [?(@.key=="value")] filters); `date` cells are shown as ages ("5m", "2d3h").
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from .resources import ResourceType

_STEP = re.compile(r"""\.([\w-]+)|\[(\d+|\*)\]|\[\?\(@\.([\w.-]+)\s*==\s*["']([^"']*)["']\)\]""")
_MISSING = object()


def jsonpath_first(document: Any, path: str) -> Any:
    """The first value `path` (e.g. `.status.conditions[?(@.type=="Ready")].status`) finds, or None."""
    values = [document]
    position = 0
    path = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    while position < len(path):
        match = _STEP.match(path, position)
        if not match:
            return None  # outside the supported subset: the apiserver would show an empty cell too
        position = match.end()
        field, index, filter_key, filter_value = match.groups()
        found = []
        for value in values:
            if field is not None and isinstance(value, dict) and field in value:
                found.append(value[field])
            elif index == "*" and isinstance(value, list):
                found.extend(value)
            elif index is not None and index != "*" and isinstance(value, list) and int(index) < len(value):
                found.append(value[int(index)])
            elif filter_key is not None and isinstance(value, list):
                found.extend(item for item in value if str(_dig(item, filter_key.split("."))) == filter_value)
        values = found
    return values[0] if values else None


def _dig(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def human_age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """Kubernetes' HumanDuration of the time since `timestamp`."""
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 365 * 8 else f"{days // 365}y"


_AGE = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
}
_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "jsonPath": ".metadata.name",
    "description": "Name must be unique within a namespace.",
}


def _event_object(event: dict[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


# Built-in kinds as the apiserver prints them (Events: kubectl get events' columns).
_BUILTIN_COLUMNS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("", "namespaces"): [_NAME, {"name": "Status", "type": "string", "jsonPath": ".status.phase"}, _AGE],
    ("", "events"): [
        {"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp"},
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "value": _event_object},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
        {**_NAME, "priority": 1},
    ],
}


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    if rt.crd is not None:
        version = next(v for v in rt.crd["spec"]["versions"] if v["name"] == rt.version)
        return [_NAME, *(version.get("additionalPrinterColumns") or [_AGE])]
    return _BUILTIN_COLUMNS.get(rt.group_resource, [_NAME, _AGE])


def _cell(column: dict[str, Any], obj: dict[str, Any]) -> Any:
    value = column["value"](obj) if "value" in column else jsonpath_first(obj, column["jsonPath"])
    if value is None:
        return None
    if column["type"] == "date":
        return human_age(str(value))
    if column["type"] == "string" and not isinstance(value, str):
        return str(value)
    return value


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(rt: ResourceType, objects: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    columns = _columns(rt)
    definitions = [
        {
            "name": c["name"],
            "type": c["type"],
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    rows = [
        {
            "cells": [_cell(c, obj) for c in columns],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            },
        }
        for obj in objects
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
