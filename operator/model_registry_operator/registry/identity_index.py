"""Which version of a group carries an object's identity: an index per group, in memory.

A version's owner marks (identity.py: its object's identity, or the UID an earlier release
wrote) are in its customer metadata, which a group listing does not show: only a
DescribeModelPackage does. Looking a new object up by listing and describing the group would
cost a listing per object (and after a restart one describe per version per worker). The
index instead holds, per group, mark -> version ARN:

- built once per process per group, single-flight (concurrent lookups of a group wait for one
  build): one listing of the group (every page), then a describe of each version whose marks
  are not known yet, only when a lookup misses and only until it is found. A group this
  process created (`group_created`) or whose listing is empty needs no call at all; a listing
  the controllers made anyway (`listed`, the shared GroupListings) serves as the build.
- versions recorded in another object's status (`recorded`: ARN -> that object's identity)
  carry that object's marks: they are not described, except for a lookup of that identity
  (the object deleted with Retain and applied again). After a restart, only the versions made
  just before the crash and those of other writers are described.
- kept complete by this process's own creates (`created`); a create whose answer was lost
  (`unconfirmed`) makes the next miss check the listing first.

What it assumes: only this process creates versions carrying this operator instance's
identity in this account and region (an instance per cluster, one active replica per object).
Other writers' versions (pipelines, other instances) carry no identity or another one: they
do not matter for a lookup, and are described once each when a miss meets them. A second
writer with the same instance (a replica that took over a shard, a cluster rebuilt while the
old one still runs) is covered in two ways: a miss never trusts a listing older than
`max_age` seconds (the newest page is read again, down to what was seen), and the
CreateModelPackage ClientToken, derived from the identity and the request, gives the same
ARN for the same request. `reset` forgets what was learned (for example when this replica's
share of objects changes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..identity import IDENTITY_KEY, MARKER_KEYS

Shape = dict[str, Any]
Mark = tuple[str, str]
# ARNs of versions recorded in other objects' status -> the identity those objects have
Recorded = Callable[[], Mapping[str, str]]


def marks_of(package: Shape) -> frozenset[Mark]:
    """The owner marks (identity, legacy UID) in a version's customer metadata."""
    metadata = package.get("CustomerMetadataProperties") or {}
    return frozenset((key, str(metadata[key])) for key in MARKER_KEYS if metadata.get(key))


@dataclass
class Hit:
    arn: str
    described: Shape | None = None  # its DescribeModelPackage answer, when one was just made


@dataclass
class _Group:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one listing or describe round at a time
    seen: dict[str, float] = field(default_factory=dict)  # version ARN -> when first seen
    by_mark: dict[Mark, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)  # seen, marks not known, not attributed
    attributed: dict[str, set[str]] = field(default_factory=dict)  # identity -> ARNs its record names
    listed_at: float | None = None  # start of the newest listing merged; None: never listed
    unconfirmed_at: float | None = None  # a create whose answer was lost, not listed since


# Described versions another lookup may claim next (after a restart, the first lookup of a
# group describes the versions made just before the crash, each its own object's): kept this
# long and at most this many, so that their objects need not describe them again.
_SHAPE_TTL = 30.0
_SHAPES_MAX = 256


class IdentityIndex:
    """Per group (as a name or an ARN, the way callers name it): owner mark -> version ARN.

    `pages(group)`: the group's version summaries, newest first, one list per page;
    `describe(arn)`: DescribeModelPackage, None when gone. Thread-safe."""

    def __init__(
        self,
        pages: Callable[[str], Iterable[list[Shape]]],
        describe: Callable[[str], Shape | None],
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._pages, self._describe = pages, describe
        self.max_age, self.clock = max_age, clock
        self._guard = threading.Lock()  # the maps below; never held during a call
        self._groups: dict[str, _Group] = {}
        self._marks: dict[str, frozenset[Mark]] = {}  # version ARN -> its marks, once known
        self._attributed: dict[str, str] = {}  # version ARN -> identity of the object recording it
        self._shapes: dict[str, tuple[float, Shape]] = {}  # ARN -> (when, description) not claimed yet

    # --- lookups -------------------------------------------------------------------------

    def find(self, group: str, marks: Mapping[str, str], recorded: Recorded | None = None) -> Hit | None:
        """The version of `group` carrying any of `marks`, or None (then none exists, as far
        as the index's assumptions go)."""
        wanted = frozenset(marks.items())
        entry = self._group(group)
        with entry.lock:
            if entry.listed_at is None:
                self._list(group, entry, complete=True)
            hit = self._hit(entry, wanted)
            if hit is not None:
                return hit
            age = self.clock() - (entry.listed_at or 0.0)
            if entry.unconfirmed_at is not None or age > self.max_age:
                self._list(group, entry, complete=False)
            return self._describe_unknown(entry, wanted, marks.get(IDENTITY_KEY), recorded)

    def _hit(self, entry: _Group, wanted: frozenset[Mark]) -> Hit | None:
        with self._guard:
            arn = next((entry.by_mark[mark] for mark in sorted(wanted) if mark in entry.by_mark), None)
            if arn is None:
                return None
            when, shape = self._shapes.pop(arn, (0.0, None))
            return Hit(arn, shape if shape is not None and self.clock() - when <= _SHAPE_TTL else None)

    def _describe_unknown(
        self, entry: _Group, wanted: frozenset[Mark], identity: str | None, recorded: Recorded | None
    ) -> Hit | None:
        """Describe the versions whose marks are unknown, newest first, until one carries
        `wanted`. Those recorded in another object's status are skipped (their marks are that
        object's), unless that object had the identity looked for."""
        with self._guard:
            unknown = bool(entry.unknown)
        if unknown and recorded is not None:
            records = recorded()
            with self._guard:
                for arn in [arn for arn in entry.unknown if arn in records]:
                    self._attributed[arn] = records[arn]
                    entry.unknown.discard(arn)
                    entry.attributed.setdefault(records[arn], set()).add(arn)
        with self._guard:
            own = sorted(entry.attributed.get(identity or "", ()), key=_version_number, reverse=True)
            rest = sorted(entry.unknown, key=_version_number, reverse=True)
        for arn in own + rest:
            described = self._describe(arn)
            if described is None:
                self.forget_version(arn)
                continue
            found = marks_of(described)
            if wanted & found:
                self._learn(entry, arn, found)
                return Hit(arn, described)
            self._learn(entry, arn, found, described)
        return None

    def _list(self, group: str, entry: _Group, complete: bool) -> None:
        """Read the group's listing, newest first: all of it, or (not `complete`) down to the
        first page with nothing new."""
        started = self.clock()
        listed: set[str] = set()
        for page in self._pages(group):
            arns = [summary["ModelPackageArn"] for summary in page]
            with self._guard:
                new = [arn for arn in arns if self._see(entry, arn, started)]
            listed.update(arns)
            if not complete and not new and arns:
                break
        self._merged(entry, started, listed if complete else None)

    # --- what the registry tells it ------------------------------------------------------

    def listed(self, group: str, summaries: Iterable[Shape], started: float) -> None:
        """A complete listing of `group` that began at `started` (self's clock): it serves as
        the index's build or refresh. Versions it lacks that were seen before it began are gone."""
        arns = {summary["ModelPackageArn"] for summary in summaries}
        entry = self._group(group)
        with self._guard:
            for arn in arns:
                self._see(entry, arn, started)
        self._merged(entry, started, arns)

    def _merged(self, entry: _Group, started: float, complete: set[str] | None) -> None:
        with self._guard:
            if entry.listed_at is None or started > entry.listed_at:
                entry.listed_at = started
            if entry.unconfirmed_at is not None and started > entry.unconfirmed_at:
                entry.unconfirmed_at = None
            gone = []
            if complete is not None:
                gone = [arn for arn, when in entry.seen.items() if arn not in complete and when < started]
        for arn in gone:
            self.forget_version(arn)

    def created(self, group: str, arn: str, marks: frozenset[Mark]) -> None:
        """This process created `arn` in `group`, marked with `marks`."""
        entry = self._group(group)
        with self._guard:
            entry.seen.setdefault(arn, self.clock())
        self._learn(entry, arn, marks)

    def unconfirmed(self, group: str) -> None:
        """A create in `group` failed in a way that may have created a version (a timeout, a
        5xx): the next miss reads the listing before it answers."""
        entry = self._group(group)
        with self._guard:
            entry.unconfirmed_at = self.clock()

    def group_created(self, group: str) -> None:
        """This process just created `group`: it has no version, nothing to look up."""
        self.forget_group(group)
        entry = self._group(group)
        with self._guard:
            entry.listed_at = self.clock()

    def forget_group(self, group: str) -> None:
        with self._guard:
            entry = self._groups.pop(group, None)
        for arn in list(entry.seen) if entry is not None else ():
            self.forget_version(arn)

    def forget_version(self, arn: str) -> None:
        """`arn` was deleted (or found missing)."""
        with self._guard:
            marks = self._marks.pop(arn, frozenset())
            whose = self._attributed.pop(arn, None)
            self._shapes.pop(arn, None)
            for entry in self._groups.values():
                if entry.seen.pop(arn, None) is None:
                    continue
                entry.unknown.discard(arn)
                entry.attributed.get(whose or "", set()).discard(arn)
                for mark in marks:
                    if entry.by_mark.get(mark) == arn:
                        del entry.by_mark[mark]
                        # another version with the same mark (a duplicate of old) takes its place
                        other = next((a for a in entry.seen if mark in self._marks.get(a, ())), None)
                        if other is not None:
                            entry.by_mark[mark] = other

    def reset(self) -> None:
        """Forget everything: the next lookup of each group lists it again."""
        with self._guard:
            self._groups.clear()
            self._marks.clear()
            self._attributed.clear()
            self._shapes.clear()

    # --- plumbing (`_see` and `_index_marks` with the guard held) ------------------------

    def _group(self, group: str) -> _Group:
        with self._guard:
            entry = self._groups.get(group)
            if entry is None:
                entry = self._groups[group] = _Group()
            return entry

    def _see(self, entry: _Group, arn: str, when: float) -> bool:
        """Note a version a listing shows; True when it is new to the group."""
        if arn in entry.seen:
            return False
        entry.seen[arn] = when
        known = self._marks.get(arn)
        if known is not None:  # learned under another name of the group
            self._index_marks(entry, arn, known)
        elif arn in self._attributed:
            entry.attributed.setdefault(self._attributed[arn], set()).add(arn)
        else:
            entry.unknown.add(arn)
        return True

    def _learn(self, entry: _Group, arn: str, marks: frozenset[Mark], described: Shape | None = None) -> None:
        with self._guard:
            self._marks[arn] = marks
            whose = self._attributed.pop(arn, None)
            entry.unknown.discard(arn)
            entry.attributed.get(whose or "", set()).discard(arn)
            self._index_marks(entry, arn, marks)
            if described is not None and marks:
                now = self.clock()
                for old in [a for a, (when, _) in self._shapes.items() if now - when > _SHAPE_TTL]:
                    del self._shapes[old]
                if len(self._shapes) < _SHAPES_MAX:
                    self._shapes[arn] = (now, described)

    @staticmethod
    def _index_marks(entry: _Group, arn: str, marks: frozenset[Mark]) -> None:
        for mark in marks:
            entry.by_mark.setdefault(mark, arn)

    def stats(self) -> dict[str, int]:
        """Sizes, for tests and diagnostics."""
        with self._guard:
            return {
                "groups": len(self._groups),
                "versions": sum(len(entry.seen) for entry in self._groups.values()),
                "known": len(self._marks),
                "attributed": len(self._attributed),
            }


def _version_number(arn: str) -> int:
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0
