"""The planner's entry point: from the observed view and the clock, what should happen now.

Level-triggered like the Job controller's sync: every call derives the desired state of every
execution from its spec, its status and the Jobs it controls, never from "what just changed".
Running it twice, or after a crash, reaches the same result; the dispatcher only carries the
plan out (through `cache.assumptions.apply_plan`, which the tests' simulator uses too).

Incremental like the Job controller's work queue: with a `Memo`, a pass re-steps only the
executions it is told changed (`dirty`) or whose timer fell due, and keeps the others'
candidates from before; the queue-wide part (order, capacity, positions) is still computed
over every waiter. Stepping is a pure function of the view and the clock, so the result is the
same as a full pass; `tests/unit/test_incremental_plan.py` runs both side by side to hold that.

Pure: no I/O, the clock is an argument. `plan()` reads the view and never changes it; the only
state it advances is the `Memo` it is handed (its own between-pass memory).
"""
from __future__ import annotations

from datetime import datetime

from ..api.settings import Settings
from ..cache.view import ClusterView, Key
from .admission import admit_and_queue
from .lifecycle import step_execution
from .model import Context, Memo, Plan


def plan(view: ClusterView, settings: Settings, now: datetime, first_seen: dict[Key, datetime],
         memo: Memo | None = None, dirty: set[Key] | None = None, position_budget: int = 10**9) -> Plan:
    """Everything that should happen now; `apply_plan` carries it into the view.

    Without a `memo` (or on its first use, or after `memo.full()`) every active execution is
    stepped; otherwise only those in `dirty` or whose timer is due.
    """
    memo = memo if memo is not None else Memo()
    ctx = Context(view, settings, now, first_seen, memo, position_budget)
    result = Plan()
    keys = set(dirty or ())
    if memo.full_pending:
        memo.full_pending = False
        memo.waiting.clear()
        keys |= view.active
    keys |= memo.due(now)
    for key in keys:
        memo.waiting.pop(key, None)
        rec = view.executions.get(key)
        if rec is None or key not in view.active:
            continue
        candidate = step_execution(rec, ctx, result)
        if candidate is not None:
            memo.waiting[key] = candidate
    if memo.heap:
        result.wake(memo.heap[0][0])
    admit_and_queue(list(memo.waiting.values()), ctx, result)
    return result
