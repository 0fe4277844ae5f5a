"""The periodic resync of every object by one operator-wide loop, when this process is the
only one working (no kopf peering, no sharding): not a kopf timer per object.

Why: kopf keeps the whole body of every object that has a timer (its daemons memory, to hand
the timer the latest body), about 14 KB per object with managedFields and kopf's records: the
largest share of the operator's memory at 5000 packages (README "Scale"). The loop keeps a due
time per object; when an object's turn comes it is read afresh (one GET per object per resync
period) and reconciled, and what the reconcile found is written as the wake-ups write it
(wiring.KindHandlers.resync).

Where kopf's timer stays (wiring.KindHandlers.register): with peering, kopf pauses a standby
replica's timers, and a pause is not visible outside kopf; with sharding, the timer is what keeps
the finalizer on other replicas' objects (sharding.py, kopf fact 2).

The first resync of an object comes a phase of the period after it is first seen
(timing.resync_phase), as the timer's did: objects applied together resync spread over the
period. After each resync the next is one period later, or sooner when the reconcile asked
(a retry after a failure)."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

from ..timing import RESYNC_CONCURRENCY, RESYNC_LOOP_TICK, resync_phase

log = logging.getLogger(__name__)

# (kind, namespace, name, uid) -> seconds until its next resync; None: gone or replaced, forget it
ResyncOne = Callable[[str, str, str, str], Awaitable[float | None]]


class ResyncLoop:
    """Every object's next resync time, and the loop that runs them when due."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        concurrency: int = RESYNC_CONCURRENCY,
        tick: float = RESYNC_LOOP_TICK,
    ):
        self.interval, self._clock, self._concurrency, self._tick = interval, clock, concurrency, tick
        # uid -> (kind, namespace, name, due); the heap orders (due, uid), stale pairs skipped
        self._objects: dict[str, tuple[str, str, str, float]] = {}
        self._heap: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._objects)

    def seen(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """An object of `kind` exists: scheduled once, a phase of the period from now."""
        if uid not in self._objects:
            self._put(uid, kind, namespace, name, self._clock() + self.interval * resync_phase(uid))

    def gone(self, uid: str) -> None:
        self._objects.pop(uid, None)

    def due(self) -> list[tuple[str, str, str, str]]:
        """The objects whose resync is due now, as (kind, namespace, name, uid); each is
        scheduled again when its resync reports back (`_resync`)."""
        now, found = self._clock(), []
        while self._heap and self._heap[0][0] <= now:
            at, uid = heapq.heappop(self._heap)
            known = self._objects.get(uid)
            if known is not None and known[3] == at:
                found.append((known[0], known[1], known[2], uid))
        return found

    def _put(self, uid: str, kind: str, namespace: str, name: str, at: float) -> None:
        self._objects[uid] = (kind, namespace, name, at)
        heapq.heappush(self._heap, (at, uid))

    # --- the loop ---

    def start(self, resync: ResyncOne) -> None:
        """Started from a kopf handler (once): its tasks inherit kopf's context, through which
        kopf.event posts Events."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(resync))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def run(self, resync: ResyncOne) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        while True:
            for kind, namespace, name, uid in self.due():
                await slots.acquire()  # a burst of due objects waits here, in due order
                task = asyncio.get_running_loop().create_task(
                    self._resync(resync, slots, kind, namespace, name, uid)
                )
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            upcoming = self._heap[0][0] - self._clock() if self._heap else self._tick
            await asyncio.sleep(min(self._tick, max(0.0, upcoming)))

    async def _resync(
        self, resync: ResyncOne, slots: asyncio.Semaphore, kind: str, namespace: str, name: str, uid: str
    ) -> None:
        delay: float | None = self.interval
        try:
            delay = await resync(kind, namespace, name, uid)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the other objects' resyncs
            log.error("resync of %s %s/%s failed: %s (tried again next period)", kind, namespace, name, exc)
        finally:
            slots.release()
        if uid not in self._objects:
            return  # deleted meanwhile
        if delay is None:
            self.gone(uid)
        else:
            self._put(uid, kind, namespace, name, self._clock() + delay)
