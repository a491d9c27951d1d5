"""Which waiters' written position or estimate is due for a rewrite this pass, and the rewrites,
most urgent first within the write budget (`rewrite_positions`).

A full pass looks at every waiter (O(N)). An incremental one looks only at those whose rewrite
may be due (`_to_look_at`: changed, the head, head-written, rank may have halved or doubled, an
estimate to check, a queue's first estimate) and, lazily, at the front of the backlog an earlier
pass's budget left (`_backlog_due`); every other waiter's `_due` is None and changes nothing, so
both decide the same (`tests/unit/test_incremental_waitlist.py`). Pure: never any I/O, never
touches the view.
"""
from __future__ import annotations

import heapq
from bisect import bisect_left
from datetime import datetime, timedelta
from itertools import islice

from ..api.queue import TestQueueSpec
from ..cache.view import ExecutionRecord, Key
from ..queue.capacity import Occupancy
from ..queue.ordering import Candidate
from ..queue.positions import FIRST_ETA_WAIT_SECONDS, NO_ESTIMATE, eta_drifted, eta_recheck_at, position_due
from ..queue.waitlist import WaitList
from .model import Context, Plan, StatusWrite
from .waiting import qspec_of, set_waiting, waiting_status


class Ranks:
    """Queue positions this pass: a waiter's place in its queue's sorted list, less the
    candidates admitted ahead of it (they stay listed until their own change removes them)."""

    def __init__(self, wait: WaitList, admitted: list[Candidate]):
        self.wait = wait
        self.admitted: dict[tuple[str, str], list[tuple]] = {}
        for c in admitted:
            if c.queued:
                self.admitted.setdefault(c.queue_key, []).append(wait.sort_keys[c.key])
        for keys in self.admitted.values():
            keys.sort()

    def in_queue(self, queue_key: tuple[str, str]) -> int:
        return len(self.admitted.get(queue_key, ()))

    def ahead(self, c: Candidate) -> int:
        return bisect_left(self.admitted.get(c.queue_key, ()), self.wait.sort_keys[c.key])

    def of(self, c: Candidate) -> int:
        return self.wait.index(c) + 1 - self.ahead(c)

    def head(self, queue_key: tuple[str, str], head: int, admitted: set[Key]):
        """(candidate, position) of the first `head` positions of a queue, in order."""
        position = 0
        for c in self.wait.queued_in_order(queue_key):
            if c.key in admitted:
                continue
            position += 1
            if position > head:
                return
            yield c, position

    def every(self, admitted: set[Key]):
        """(candidate, position) of every queued waiter not admitted: the full pass, O(N)."""
        for queue_key in self.wait.queues:
            yield from self.head(queue_key, 10**12, admitted)


def _due(c: Candidate, rec: ExecutionRecord, rank: int, qspec: TestQueueSpec, ctx: Context) -> datetime | None:
    """When this waiter's status must be rewritten (position promise, a pause, a far-off estimate).

    The same rule for every waiter looked at, whether a full pass looks at all of them or an
    incremental one at those `_to_look_at` names. When its rank first moved is kept only for a
    written position in the head (those are looked at every pass, so that time is exact). A
    deep written position is judged by a factor of 2 alone, so leaving it alone costs nothing;
    when the true rank reaches the head, the deep value was true when this operator wrote it
    (`memo.deep_true_at`) and no later, so it is rewritten `lag` after that write (at once when
    the write is older, or was not this operator's). A drain moves a waiter through the head in
    about a second, so most are admitted before that rewrite falls due: it saved one write of
    ~2.8 per execution (bench/README.md, fifth round).
    """
    memo, now, st, key = ctx.memo, ctx.now, rec.status, c.key
    written, head, lag = st.queue_position, ctx.settings.position_head, ctx.settings.position_head_lag_seconds
    if written is not None and written <= head and written != rank:
        due = position_due(rank, written, memo.moved_at.setdefault(key, now), now, head, lag)
    else:
        memo.moved_at.pop(key, None)
        if written == rank:
            due = None
        elif written is None:
            due = now
        elif rank <= head:  # a deep written rank reached the head: it was true when written, no later
            true_at = memo.deep_true_at(key, written)
            due = now if true_at is None else position_due(rank, written, true_at, now, head, lag)
        else:
            due = position_due(rank, written, now, now, head, lag)
    if qspec.paused != (st.reason == "QueuePaused"):
        return now
    if due is None and not qspec.paused:
        check = memo.eta_check_at.get(key)
        if check is None or check <= now or (check == NO_ESTIMATE and ctx.has_estimates(c.queue_key)):
            eta = ctx.estimate(c.queue_key, rank)
            if eta_drifted(eta, st.estimated_start_at, now):
                if check == NO_ESTIMATE:  # its first: a position write may carry it soon
                    memo.eta_checked(key, c.queue_key, now + timedelta(seconds=FIRST_ETA_WAIT_SECONDS))
                    return None
                return now
            memo.eta_checked(key, c.queue_key, eta_recheck_at(eta, now))  # checked: look again then
    return due


def _to_look_at(admitted: set[Key], ranks: Ranks, touched: set[Key], ctx: Context):
    """(candidate, position) of every waiter whose status may be due for a rewrite this pass:
    those that changed, the head of each queue, those the head promise is timing, those whose
    written position is in the head, those whose rank may have halved or doubled, those whose
    estimate is to be checked, and those left over by the last pass's write budget."""
    memo, wait, head = ctx.memo, ctx.memo.wait, ctx.settings.position_head
    seen: set[Key] = set()
    for qk in wait.queues:
        for c, position in ranks.head(qk, head, admitted):
            seen.add(c.key)
            yield c, position
    keys = touched | wait.low_written | memo.moved_at.keys() | wait.rechecks_due(ctx.now)
    for qk in [qk for qk, waiting in memo.no_estimate.items() if waiting and ctx.has_estimates(qk)]:
        keys |= memo.no_estimate.pop(qk)  # the queue has an estimate now: theirs may be written
    for qk in wait.queues:
        keys |= wait.rank_may_be_due(qk, ranks.in_queue(qk))
    for key in keys - seen - admitted:
        c = wait.candidates.get(key)
        if c is not None and c.queued:
            yield c, ranks.of(c)


def _evaluate(c: Candidate, position: int, specs: dict, ranks: Ranks, ctx: Context, full: bool):
    """`_due` of one waiter, and when to look at it again; (when, position, sort key, c, rec)
    when it has a rewrite due (now or later), else None."""
    memo, wait = ctx.memo, ctx.memo.wait
    rec = ctx.view.executions[c.key]
    qspec = specs.get(c.queue_key)
    if qspec is None:
        qspec = specs[c.queue_key] = qspec_of(ctx, c)
    when = _due(c, rec, position, qspec, ctx)
    written = rec.status.queue_position
    if written is not None and written > ctx.settings.position_head:
        wait.watch_rank(c, position, ranks.ahead(c), ranks.in_queue(c.queue_key), written)
    if full and not qspec.paused and c.key in memo.eta_check_at:
        memo.watch_estimate(c.key, c.queue_key)
    return None if when is None else (when, position, wait.sort_keys[c.key], c, rec)


def _backlog_due(admitted: set[Key], ranks: Ranks, specs: dict, ctx: Context, gone: list[Key]):
    """The backlog's waiters still due, in (now, position) order, looked at lazily: a waiter is
    evaluated only when the merge reaches it. Those found gone or no longer due go to `gone`."""
    memo, wait = ctx.memo, ctx.memo.wait
    heads = []
    for qk, keys in memo.carry.in_queue_order():
        q = wait.queues.get(qk)
        for key in keys:
            c = wait.candidates.get(key)
            if c is None or q is None or key in q.new or c.queue_key != qk:
                gone.append(key)
                continue
            if key in admitted:
                continue  # admitted this pass: kept, in case its start fails
            heads.append((ranks.of(c), wait.sort_keys[key], c, keys))
            break
    heapq.heapify(heads)
    while heads:
        position, sort_key, c, keys = heads[0]
        found = _evaluate(c, position, specs, ranks, ctx, False)
        if found is None:
            gone.append(c.key)
        else:
            yield found
        for key in keys:  # the next waiter of the same queue
            nxt = wait.candidates.get(key)
            q = wait.queues.get(c.queue_key)
            if nxt is None or q is None or key in q.new or nxt.queue_key != c.queue_key:
                gone.append(key)
                continue
            if key in admitted:
                continue
            heapq.heapreplace(heads, (ranks.of(nxt), wait.sort_keys[key], nxt, keys))
            break
        else:
            heapq.heappop(heads)


def rewrite_positions(admitted: set[Key], ranks: Ranks, occ: Occupancy, touched: set[Key], full: bool,
                      ctx: Context, plan: Plan) -> None:
    """Rewrites the waiters whose promise falls due, most urgent first, within the write budget.

    A full pass looks at every waiter (O(N)); an incremental one only at `_to_look_at`'s and,
    lazily, at the front of the backlog the budget left (`memo.carry`), and decides the same:
    every other waiter's `_due` is None and changes nothing (what
    `tests/unit/test_incremental_waitlist.py` holds on random histories).
    """
    memo, wait, now, head = ctx.memo, ctx.memo.wait, ctx.now, ctx.settings.position_head
    looked: list[tuple[datetime, int, tuple, Candidate, ExecutionRecord]] = []
    specs: dict[tuple[str, str], TestQueueSpec] = {}
    for c, position in (ranks.every(admitted) if full else _to_look_at(admitted, ranks, touched, ctx)):
        if c.key in wait.queues[c.queue_key].new:
            continue  # joins this pass (`_join`)
        memo.carry.discard(c.key)
        found = _evaluate(c, position, specs, ranks, ctx, full)
        if found is None:
            continue
        if found[0] > now:
            plan.wake(found[0])
        else:
            looked.append(found)
    looked.sort(key=lambda d: d[:3])
    gone: list[Key] = []
    due = heapq.merge(looked, _backlog_due(admitted, ranks, specs, ctx, gone), key=lambda d: d[:3])
    written: set[Key] = set()
    for _, position, _, c, rec in islice(due, ctx.position_budget):
        written.add(c.key)
        st = rec.status.working_copy()
        w = waiting_status(c, position, qspec_of(ctx, c), occ, ctx)
        set_waiting(st, w, c.queued_at, ctx, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))
        plan.position_writes += 1
        memo.moved_at.pop(c.key, None)
        memo.wrote_position(c.key, position, head, now)
        memo.eta_checked(c.key, c.queue_key, eta_recheck_at(w.eta, now))
        if position > head:
            wait.watch_rank(c, position, ranks.ahead(c), ranks.in_queue(c.queue_key), position)
    if next(due, None) is not None:  # more is due than the budget allows: the rest goes first next time
        plan.wake(now + timedelta(seconds=1.0 / ctx.settings.position_writes_per_second))
    for key in written.union(gone):  # only now: the merge above reads the backlog lazily
        memo.carry.discard(key)
    for _, _, sort_key, c, _ in looked:
        if c.key not in written:
            memo.carry.add(c.key, c.queue_key, sort_key)
