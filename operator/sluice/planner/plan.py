"""The planner's entry point: from the observed view and the clock, what should happen now.

Level-triggered like the Job controller's sync: every call derives the desired state of every
execution from its spec, its status and the Jobs it controls, never from "what just changed".
Running it twice, or after a crash, reaches the same result; the dispatcher only carries the
plan out (through `cache.assumptions.apply_plan`, which the tests' simulator uses too).

Incremental like the Job controller's work queue: with a `Memo`, a pass re-steps only the
executions it is told changed (`dirty`) or whose timer fell due, and keeps the others'
candidates from before, sorted per queue (`queue.waitlist`); the queue-wide part walks them in
order only until the caps stop admission, and looks at a waiter's position and estimate only
when they may be due (`admission`). So a pass costs what changed, what is admitted and the
position write budget, plus O(log N) per waiter touched, not O(N). A full pass (the first, and
whenever the dispatcher asks with `memo.full()`) re-steps and looks at every waiter: O(N).
Stepping is a pure function of the view and the clock, so the result is the same as a full
pass; `tests/unit/test_incremental_plan.py` and `test_incremental_waitlist.py` run both side by
side to hold that.

Pure: no I/O, the clock is an argument. `plan()` reads the view and never changes it; the only
state it advances is the `Memo` it is handed (its own between-pass memory).
"""
from __future__ import annotations

from datetime import datetime

from ..api.execution import Phase
from ..api.settings import Settings
from ..cache.view import ClusterView, Key
from .admission import admit_and_queue
from .lifecycle import step_execution
from ..queue.waitlist import Backlog, WaitList
from .model import Context, Memo, Plan


def plan(view: ClusterView, settings: Settings, now: datetime, first_seen: dict[Key, datetime],
         memo: Memo | None = None, dirty: set[Key] | None = None, position_budget: int = 10**9) -> Plan:
    """Everything that should happen now; `apply_plan` carries it into the view.

    Without a `memo` (or on its first use, or after `memo.full()`) every active execution is
    stepped; otherwise only those in `dirty` or whose timer is due.
    """
    memo = memo if memo is not None else Memo()
    try:
        return _plan(view, settings, now, first_seen, memo, dirty, position_budget)
    except BaseException:
        memo.full()  # the memo may be half updated and the dirty marks are taken: start afresh
        raise


def _plan(view: ClusterView, settings: Settings, now: datetime, first_seen: dict[Key, datetime], memo: Memo,
          dirty: set[Key] | None, position_budget: int) -> Plan:
    ctx = Context(view, settings, now, first_seen, memo, position_budget)
    result = Plan()
    keys = set(dirty or ())
    full = memo.full_pending
    if full:
        memo.full_pending = False
        memo.wait = WaitList()
        memo.carry = Backlog()
        memo.no_estimate = {}
        keys |= view.active
    keys |= memo.due(now)
    head = settings.position_head

    def add(c, aging: int) -> None:
        rec = view.executions[c.key]
        memo.wait.add(c, now, aging, rec.status.phase is Phase.Queued, rec.status.queue_position, head)

    for key in keys:
        rec = view.executions.get(key)
        candidate = step_execution(rec, ctx, result) if rec is not None and key in view.active else None
        if candidate is None:
            memo.wait.remove(key)
        else:
            add(candidate, _aging(view, candidate))  # in place when its order did not change
    promoted: set = set()
    memo.wait.promote(now, lambda c, aging: (promoted.add(c.key), add(c, aging)))
    if memo.heap:
        result.wake(memo.heap[0][0])
    admit_and_queue(ctx, result, keys | promoted, full)
    return result


def _aging(view: ClusterView, c) -> int:
    q = view.queues.get(c.queue_key)
    return q.spec.aging_seconds if q is not None else 0
