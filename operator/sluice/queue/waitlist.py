"""Every queue's waiters kept in admission order between passes, so a pass costs what changed.

A planning pass used to sort every waiter, number every position and check every estimate: O(N)
per pass at N waiting. `WaitList` keeps each queue's candidates in a sorted list (`sortedcontainers`),
updated from the planner's dirty marks (O(log N) per waiter that changed), and says which waiters'
written position or estimate may have fallen due without anything about them changing:

- a deep waiter's written position is due only when its rank halves or doubles (`queue.positions`).
  Its rank only drops by removals from its queue and only rises by insertions, so each waiter
  checked at rank r with written position w is checked again once the queue's removal counter
  has advanced by r - w//2, or its insertion counter by 2w - r (bounds, never late: an early
  look costs one O(log N) rank lookup and finds nothing to do);
- an estimate is checked again at the time the planner asked for (`recheck`, a heap);
- aging (agingSeconds) changes a waiter's order at known instants: it is re-sorted then (a heap).

The head of each queue, waiters whose written position is in the head, and those whose move the
head promise is timing are looked at every pass by the caller (few by construction).

Pure and in memory: it never reads the view or the clock; the caller hands it both.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Iterator

from sortedcontainers import SortedList

from .ordering import Candidate, admission_key, effective_rank

Key = tuple[str, str]
QueueKey = tuple[str, str]


@dataclass
class QueueWaiters:
    """One queue's candidates in admission order: queued ones (with a position) and due retries."""

    queued: SortedList = field(default_factory=SortedList)  # admission keys
    retrying: SortedList = field(default_factory=SortedList)
    new: set[Key] = field(default_factory=set)  # queued candidates whose status is not Queued yet
    removed: int = 0  # removals from `queued` so far (a waiter's rank falls by at most this much)
    added: int = 0  # insertions into `queued` so far (its rank rises by at most this much)
    falls: list[tuple[int, Key]] = field(default_factory=list)  # (removal count to look again at, key)
    rises: list[tuple[int, Key]] = field(default_factory=list)  # (insertion count to look again at, key)

    def __len__(self) -> int:
        return len(self.queued) + len(self.retrying)


def _key_of(sort_key: tuple) -> Key:
    return (sort_key[-1], sort_key[-2])  # admission keys end with (name, namespace)


class WaitList:
    """The candidates waiting to start, per queue, in admission order."""

    def __init__(self) -> None:
        self.candidates: dict[Key, Candidate] = {}
        self.sort_keys: dict[Key, tuple] = {}
        self.queues: dict[QueueKey, QueueWaiters] = {}
        self.low_written: set[Key] = set()  # Queued waiters whose written position is None or in the head
        self._aging: dict[Key, int] = {}
        self._promotions: list[tuple[datetime, Key]] = []  # (when its order next improves, key)
        self._recheck: list[tuple[datetime, Key]] = []  # (when to look at its estimate again, key)

    def __len__(self) -> int:
        return len(self.candidates)

    def __contains__(self, key: Key) -> bool:
        return key in self.candidates

    # ---- changes ---------------------------------------------------------------------------
    def add(self, c: Candidate, now: datetime, aging_seconds: int, queued_phase: bool,
            written: int | None, head: int) -> None:
        """`c` waits (again); `queued_phase`: its status is Queued, with position `written`.

        A waiter stepped again in the same place (same queue, same order: most status writes)
        is replaced where it is, so nobody else's rank is counted as moved."""
        sort_key = admission_key(c, now, aging_seconds)
        old = self.candidates.get(c.key)
        if old is not None and (old.queue_key, old.queued, self.sort_keys[c.key]) == (c.queue_key, c.queued, sort_key):
            q = self.queues[c.queue_key]
            q.new.discard(c.key)
            self.low_written.discard(c.key)
            self._aging.pop(c.key, None)
        else:
            self.remove(c.key)
            q = self.queues.get(c.queue_key)
            if q is None:
                q = self.queues[c.queue_key] = QueueWaiters()
            if c.queued:
                q.queued.add(sort_key)
                q.added += 1
            else:
                q.retrying.add(sort_key)
        self.candidates[c.key], self.sort_keys[c.key] = c, sort_key
        if c.queued:
            if not queued_phase:
                q.new.add(c.key)
            elif written is None or written <= head:
                self.low_written.add(c.key)
        if aging_seconds > 0:
            self._aging[c.key] = aging_seconds
            when = _next_promotion(c, now, aging_seconds)
            if when is not None:
                heapq.heappush(self._promotions, (when, c.key))

    def remove(self, key: Key) -> Candidate | None:
        c = self.candidates.pop(key, None)
        if c is None:
            return None
        sort_key = self.sort_keys.pop(key)
        q = self.queues[c.queue_key]
        if c.queued:
            q.queued.remove(sort_key)
            q.removed += 1
            q.new.discard(key)
            self.low_written.discard(key)
        else:
            q.retrying.remove(sort_key)
        self._aging.pop(key, None)
        if not q.queued and not q.retrying:
            del self.queues[c.queue_key]  # its heaps only named waiters that are gone
        return c

    def promote(self, now: datetime, readd) -> None:
        """Re-sorts the waiters whose aging promotion fell due (`readd(c, aging)` puts one back)."""
        while self._promotions and self._promotions[0][0] <= now:
            _, key = heapq.heappop(self._promotions)
            c, aging = self.candidates.get(key), self._aging.get(key)
            if c is None or aging is None:
                continue  # gone, or re-added since (its own entry is in the heap)
            if admission_key(c, now, aging) != self.sort_keys[key]:
                readd(c, aging)
            else:
                when = _next_promotion(c, now, aging)
                if when is not None:
                    heapq.heappush(self._promotions, (when, key))

    def next_promotion(self) -> datetime | None:
        """The earliest instant an order may change by aging (perhaps a stale, earlier one)."""
        return self._promotions[0][0] if self._promotions else None

    # ---- reads -----------------------------------------------------------------------------
    def in_order(self, blocked: set[QueueKey]) -> Iterator[Candidate]:
        """Every candidate in admission order, merged over the queues; a queue that enters
        `blocked` while this runs is skipped from then on (its waiters cost nothing)."""
        heap: list[tuple[tuple, QueueKey, Iterator]] = []
        for qk, q in self.queues.items():
            for lst in (q.queued, q.retrying):
                if lst:
                    it = iter(lst)
                    heap.append((next(it), qk, it))
        heapq.heapify(heap)
        while heap:
            sort_key, qk, it = heap[0]
            if qk in blocked:
                heapq.heappop(heap)
                continue
            yield self.candidates[_key_of(sort_key)]
            nxt = next(it, None)
            if nxt is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (nxt, qk, it))

    def queued_in_order(self, qk: QueueKey) -> Iterable[Candidate]:
        q = self.queues.get(qk)
        return (self.candidates[_key_of(s)] for s in (q.queued if q is not None else ()))

    def index(self, c: Candidate) -> int:
        """0-based place of a queued candidate among its queue's queued candidates."""
        return self.queues[c.queue_key].queued.index(self.sort_keys[c.key])

    # ---- when to look again ----------------------------------------------------------------
    def watch_rank(self, c: Candidate, rank: int, ahead_admitted: int, admitted_in_queue: int,
                   written: int) -> None:
        """Look at `c` again when its rank may have halved or doubled from `written` (see above).

        `rank` is its position this pass, `ahead_admitted` the candidates admitted this pass
        ahead of it (still listed until their own change removes them), `admitted_in_queue` all
        admitted this pass in its queue: those count as removals already."""
        q = self.queues[c.queue_key]
        half = written // 2
        if half >= 1 and rank > half:
            heapq.heappush(q.falls, (q.removed + admitted_in_queue + rank - half, c.key))
        heapq.heappush(q.rises, (q.added + 2 * written - rank - ahead_admitted, c.key))

    def rank_may_be_due(self, qk: QueueKey, admitted_in_queue: int) -> set[Key]:
        """Waiters of queue `qk` whose rank may have crossed half or twice its written position."""
        q = self.queues.get(qk)
        out: set[Key] = set()
        if q is None:
            return out
        removed = q.removed + admitted_in_queue
        while q.falls and q.falls[0][0] <= removed:
            out.add(heapq.heappop(q.falls)[1])
        while q.rises and q.rises[0][0] <= q.added:
            out.add(heapq.heappop(q.rises)[1])
        return out

    def recheck(self, key: Key, when: datetime) -> None:
        heapq.heappush(self._recheck, (when, key))

    def rechecks_due(self, now: datetime) -> set[Key]:
        out: set[Key] = set()
        while self._recheck and self._recheck[0][0] <= now:
            out.add(heapq.heappop(self._recheck)[1])
        return out


def _next_promotion(c: Candidate, now: datetime, aging_seconds: int) -> datetime | None:
    """The exact instant `c`'s effective priority next improves (whole aging periods after
    queuedAt), or None when it cannot."""
    waited = (now - c.queued_at).total_seconds()
    if effective_rank(c.priority, waited, aging_seconds) == 0:
        return None
    periods = math.floor(waited / aging_seconds) + 1 if waited > 0 else 1
    return c.queued_at + timedelta(seconds=aging_seconds * periods)


class Backlog:
    """Waiters found due for a rewrite but left over by the write budget, per queue in position
    order: the next passes take them from the front, so a backlog of thousands (every estimate
    of a deep queue moving at once) costs what is written and what is found no longer due, not
    a look at all of them each pass."""

    def __init__(self) -> None:
        self.by_queue: dict[QueueKey, SortedList] = {}
        self._where: dict[Key, tuple[QueueKey, tuple]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: Key) -> bool:
        return key in self._where

    def keys(self):
        return self._where.keys()

    def add(self, key: Key, queue_key: QueueKey, sort_key: tuple) -> None:
        self.discard(key)
        self._where[key] = (queue_key, sort_key)
        self.by_queue.setdefault(queue_key, SortedList()).add(sort_key)

    def discard(self, key: Key) -> None:
        where = self._where.pop(key, None)
        if where is not None:
            lst = self.by_queue[where[0]]
            lst.remove(where[1])
            if not lst:
                del self.by_queue[where[0]]

    def in_queue_order(self) -> Iterator[tuple[QueueKey, Iterator[Key]]]:
        """Per queue, its keys in admission order (lazily; change nothing while iterating)."""
        for qk, lst in self.by_queue.items():
            yield qk, (_key_of(s) for s in lst)
