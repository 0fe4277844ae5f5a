"""How the unit tests call a kind's reconcile and delete: one `Call` built from the plain
arguments a test has (raw spec, metadata, previous status, referenced objects)."""

from __future__ import annotations

from typing import Any

from model_registry_operator.controllers.call import Call, Lookup, Meta, Result
from model_registry_operator.controllers.kind import Kind


class DictLookup:
    """A Lookup over a plain dict {(kind, namespace, name): body}."""

    def __init__(self, objects: dict[tuple[str, str, str], dict[str, Any]] | None = None):
        self.objects = dict(objects or {})

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def each(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [(ns, name, obj) for (k, ns, name), obj in self.objects.items() if k == kind]


def make_call(
    raw_spec: dict[str, Any] | None,
    meta: Meta,
    status: dict[str, Any] | None,
    lookup: Lookup | None = None,
    **options: Any,
) -> Call:
    return Call(meta, dict(raw_spec or {}), dict(status or {}), lookup or DictLookup(), **options)


def reconcile(kind: Kind[Any], *args: Any, **options: Any) -> Result:
    """reconcile(kind, raw_spec, meta, status, ctx, lookup=None, **options); options: attempt,
    resync, audit, progress (Call's fields)."""
    *call_args, ctx = _split(args, options)
    return kind.reconcile(make_call(*call_args, **options), ctx)


def delete(kind: Kind[Any], *args: Any, **options: Any) -> Result:
    """delete(kind, raw_spec, meta, status, ctx, lookup=None, **options)."""
    *call_args, ctx = _split(args, options)
    return kind.delete(make_call(*call_args, **options), ctx)


def _split(args: tuple[Any, ...], options: dict[str, Any]) -> tuple[Any, ...]:
    """(raw_spec, meta, status, lookup, ctx) from (raw_spec, meta, status, ctx[, lookup])."""
    raw_spec, meta, status, ctx, *rest = args
    lookup = rest[0] if rest else options.pop("lookup", None)
    return raw_spec, meta, status, lookup, ctx
