"""ListModelPackages results per group, shared by every package of that group; and the
status of fresh versions, shared by every group of an account and region."""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..registry.base import Shape
from ..timing import (
    COMPLETION_LISTING_MAX_AGE,
    COMPLETION_ROUND_MAX_PAGES,
    COMPLETION_ROUND_MAX_WAIT,
    COMPLETION_ROUND_MIN_WAIT,
    COMPLETION_ROUND_PAGE,
    COMPLETION_ROUND_QUIET,
    COMPLETION_ROUND_SKEW,
    COMPLETION_WAIT_EXPIRY,
    LISTING_REUSE_SHARE,
)

log = logging.getLogger(__name__)
# the states in which a version is still being completed by SageMaker
_IN_PROGRESS = ("Pending", "InProgress")
# pages of every versioned package of the account and region, newest first
RecentPages = Callable[[], Iterable[list[Shape]]]


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
        recent: RecentPages | None = None,
    ):
        self._list = list_packages
        self.period = period
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, tuple[float, dict[str, Shape]]] = {}
        if recent is None:  # the registry's own, when it has one (SageMakerRegistry.recent_packages)
            recent = getattr(getattr(list_packages, "__self__", None), "recent_packages", None)
        self.recent = RecentVersions(recent) if recent is not None else None

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

    def created(self, group: str, summary: Shape) -> None:
        """This process just created the version `summary` describes (Pending): remembered in
        the group's listing, and waited for (`fresh`)."""
        self.remember(group, summary)
        if self.recent is not None and not group.startswith("arn:"):
            self.recent.created(summary["ModelPackageArn"])

    def fresh(self, group: str, arn: str) -> Shape | float | None:
        """For a version SageMaker may still be completing: its summary from a listing begun
        since it was created (or last seen in progress), else the seconds to wait for one;
        None when no listing shows it (deleted, or not listed: describe it). A version of a
        group named by ARN (maybe another account's, which the account's own listing does not
        show) is looked for in its group's listing, at most a second old."""
        if self.recent is None or group.startswith("arn:"):
            return self.get(group, max_age=COMPLETION_LISTING_MAX_AGE).get(arn)
        found = self.recent.status(arn)
        if isinstance(found, dict):  # so that a resync reading the group's listing agrees
            self.remember(group, found)
        return found


class RecentVersions:
    """The status of fresh versions, for every group of one account and region at once.

    A new version is Pending, then InProgress, then Completed (or Failed), and only a
    listing or a describe tells. Its group's listing shows it, but one listing per group per
    look costs a call per group every second while versions are created in many groups. One
    ListModelPackages of all versions of the account and region, newest first, down to the
    oldest version waited for, serves every group: about a call per 100 fresh versions.

    A round is single-flight and goes when the oldest waiting version has waited
    COMPLETION_ROUND_MIN_WAIT and either a page's worth waits, nothing was created for
    COMPLETION_ROUND_QUIET seconds, or the oldest has waited COMPLETION_ROUND_MAX_WAIT (timing.py).
    Times are the wall clock's, as SageMaker's CreationTime is.
    """

    def __init__(self, pages: RecentPages, clock: Callable[[], float] = time.time):
        self._pages, self._clock = pages, clock
        self._guard = threading.Lock()
        self._round = threading.Lock()
        # ARN -> (the first round that can tell news of it, since when it waits for that)
        self._waiting: dict[str, tuple[int, float]] = {}
        self._asked: dict[str, float] = {}  # ARN -> when last asked about (stale ones are dropped)
        self._seen: dict[str, tuple[int, Shape]] = {}  # ARN -> (the round that listed it, its summary)
        self._missing: set[str] = set()  # a round went past where it would be: describe it
        self._last_created = float("-inf")
        self.rounds = 0  # rounds begun (numbered from 1)
        self.pages = 0

    def created(self, arn: str) -> None:
        """`arn` was just created. When a page's worth now waits, the oldest a while already,
        this caller makes the round (the waiting ones' timers need not come first)."""
        with self._guard:
            now = self._clock()
            self._waiting[arn] = (self.rounds + 1, now)
            self._asked[arn] = self._last_created = now
            waiting = [since for need, since in self._waiting.values() if need > self.rounds]
            full = len(waiting) >= COMPLETION_ROUND_PAGE and now - min(waiting) >= COMPLETION_ROUND_MIN_WAIT
        if full and self._round.acquire(blocking=False):
            try:
                self._run()
            # the create succeeded: a failed round is not its failure; the waiting versions'
            # own reconciles make the round again and report what fails then
            except Exception as exc:  # noqa: BLE001
                log.debug("listing the fresh versions failed: %s", exc)
            finally:
                self._round.release()

    def status(self, arn: str) -> Shape | float | None:
        """The summary of `arn` from a round begun since it was created (or last seen in
        progress), the seconds until the next round, or None (not found: describe it)."""
        for _ in range(3):
            with self._guard:
                now = self._clock()
                seen = self._seen.pop(arn, None)
                if seen is not None:
                    if seen[1].get("ModelPackageStatus") not in _IN_PROGRESS:
                        self._done(arn)
                        return seen[1]
                    self._waiting[arn] = (seen[0] + 1, now)  # in progress: a later round, a while from now
                elif arn in self._missing:
                    self._done(arn)
                    return None
                # not known to wait (the operator restarted since its create): the next round
                need, _ = self._waiting.setdefault(arn, (self.rounds + 1, now - COMPLETION_ROUND_MIN_WAIT))
                self._asked[arn] = now
                due = self._due(now)
            if due > now:
                return due - now
            with self._round:  # one round at a time; who waited for it reads its result
                if self.rounds < need:
                    self._run()
        return COMPLETION_ROUND_MIN_WAIT

    def _done(self, arn: str) -> None:
        self._seen.pop(arn, None)
        self._waiting.pop(arn, None)
        self._asked.pop(arn, None)
        self._missing.discard(arn)

    def _due(self, now: float) -> float:
        """When the next round may begin (with the guard held)."""
        waiting = [since for need, since in self._waiting.values() if need > self.rounds]
        if not waiting:
            return now
        oldest = min(waiting)
        due = oldest + COMPLETION_ROUND_MIN_WAIT
        if len(waiting) < COMPLETION_ROUND_PAGE:
            due = max(
                due, min(self._last_created + COMPLETION_ROUND_QUIET, oldest + COMPLETION_ROUND_MAX_WAIT)
            )
        return due

    def _run(self) -> None:
        """One round (with the round lock held): list newest first until every waiting version
        was seen, a page reaches SKEW seconds before the oldest one, or MAX_PAGES pages."""
        with self._guard:
            started = self._clock()
            for arn in [a for a, asked in self._asked.items() if started - asked > COMPLETION_WAIT_EXPIRY]:
                self._done(arn)
            self.rounds += 1
            number = self.rounds
            targets = {arn: since for arn, (need, since) in self._waiting.items() if need <= number}
        found: dict[str, Shape] = {}
        floor = min(targets.values(), default=started) - COMPLETION_ROUND_SKEW
        pages = 0
        try:
            for page in self._pages() if targets else ():
                pages += 1
                found.update((s["ModelPackageArn"], s) for s in page if s.get("ModelPackageArn") in targets)
                if len(found) == len(targets) or not page or pages >= COMPLETION_ROUND_MAX_PAGES:
                    break
                if _timestamp(page[-1].get("CreationTime")) < floor:
                    break
        except BaseException:
            # failed (throttled, 5xx): its versions wait for the next round, which the next
            # asker makes; left waiting for this one, no round would ever look for them again
            with self._guard:
                self.pages += pages
                for arn, since in targets.items():
                    if arn in self._waiting:
                        self._waiting[arn] = (number + 1, since)
            raise
        with self._guard:
            self.pages += pages
            for arn in targets:
                if self._waiting.pop(arn, None) is None:
                    continue  # given up on meanwhile
                if arn in found:
                    self._seen[arn] = (number, found[arn])
                else:
                    self._missing.add(arn)


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return aware.timestamp()
    return float("inf")  # unknown: not known to be old
