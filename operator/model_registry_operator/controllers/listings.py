"""ListModelPackages results per group, shared by every package of that group."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..registry.base import Shape
from ..timing import LISTING_REUSE_SHARE


class GroupListings:
    """ListModelPackages results per group, shared by every package of that group.

    A resync reads a listing less than LISTING_REUSE_SHARE resync periods old: the resync
    timers of a group's packages tick within a short spread of each other, the first lists
    and the rest reuse it, so 1000 packages in 10 groups cost ~10 calls per resync instead of
    1000 describes. A package waiting for its version to complete asks for a listing at most
    `max_age` seconds old: the packages waiting together share one call per group.
    Concurrent callers for one group wait for a single fetch (single flight).
    """

    def __init__(
        self,
        list_packages: Callable[[str], list[Shape]],
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._list = list_packages
        self.period = period
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, tuple[float, dict[str, Shape]]] = {}

    def _lock(self, group: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(group, threading.Lock())

    def get(self, group: str, max_age: float | None = None) -> dict[str, Shape]:
        """{ModelPackageArn: ModelPackageSummary}, at most `max_age` seconds old (default:
        LISTING_REUSE_SHARE resync periods). `group` is a name or an ARN, kept apart: an ARN
        may name another account's group of the same name."""
        with self._lock(group):
            now = self._clock()
            entry = self._entries.get(group)
            if entry is not None:
                fetched_at, items = entry
                if now - fetched_at <= (
                    max_age if max_age is not None else self.period * LISTING_REUSE_SHARE
                ):
                    return items
            items = {s["ModelPackageArn"]: s for s in self._list(group)}
            self._entries[group] = (now, items)
            return items

    def remember(self, group: str, summary: Shape) -> None:
        """Fold our own write into the cached listing so the next read does not undo it."""
        with self._lock(group):
            entry = self._entries.get(group)
            if entry is not None:
                items = dict(entry[1])
                items[summary["ModelPackageArn"]] = {**items.get(summary["ModelPackageArn"], {}), **summary}
                self._entries[group] = (entry[0], items)

    def forget(self, group: str) -> None:
        with self._lock(group):
            self._entries.pop(group, None)
