"""Queue-wide decisions over every waiting candidate: order, capacity, the queued cap, positions.

Occupancy is counted from the Jobs the view trusts (see `ClusterView.holds_slots`), never from
statuses, so a crash between "create Job" and "write status" cannot overshoot a cap. Who goes
first is `queue.ordering` (kept sorted between passes by `queue.waitlist`); who fits is
`queue.capacity`; this module turns those answers into status writes and Job creates, looking
at a waiter's position and estimate only when they may be due (`_to_look_at`; a full pass looks
at all). Pure: never any I/O, never touches the view.
"""
from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from ..api.effective import effective_spec
from ..api.execution import Phase
from ..api.queue import TestQueueSpec
from ..cache.view import ClusterView, ExecutionRecord, Key
from ..kube.names import job_name
from ..kube.render import render_job, render_source_config_map
from ..queue.capacity import Occupancy, QueueLimits, busy_environments, plan_admissions
from ..queue.ordering import Candidate
from ..queue.positions import NO_ESTIMATE, eta_drifted, eta_recheck_at, position_due
from ..queue.waitlist import WaitList
from ..status.transitions import to_queued, to_running, to_terminal
from .lifecycle import event_for
from .model import Context, CreateAttempt, Plan, StatusWrite


def occupancy(view: ClusterView) -> Occupancy:
    occ = Occupancy()
    for job in view.slot_holders():
        occ.take((job.namespace, job.queue), job.slots, job.environments)
    return occ


def environment_holders(view: ClusterView) -> dict[str, list[str]]:
    """Environment name -> its holders (`namespace/execution`), from the unfinished Jobs."""
    holders: dict[str, list[str]] = {}
    for job in view.slot_holders():
        for env in job.environments:
            holders.setdefault(env, []).append(f"{job.namespace}/{job.execution}")
    return holders


def environment_capacity(view: ClusterView) -> dict[str, int]:
    return {name: env.spec.concurrency for name, env in view.environments.items()}


def _per_pass(ctx: Context, name: str, compute):
    """`compute(view)`, once per pass (the waiting-reason sentences need it per waiter)."""
    if name not in ctx.per_pass:
        ctx.per_pass[name] = compute(ctx.view)
    return ctx.per_pass[name]


def _qspec(ctx: Context, c: Candidate) -> TestQueueSpec:
    return ctx.queue_spec(c.namespace, c.queue) or TestQueueSpec()


def _admit(c: Candidate, ctx: Context, plan: Plan) -> None:
    rec = ctx.view.executions[c.key]
    eff = effective_spec(rec.spec, _qspec(ctx, c).defaults, ctx.settings)
    st = rec.status.model_copy(deep=True)
    name = job_name(rec.name, c.attempt)
    message = f"attempt {c.attempt} started (Job {name})"
    to_running(st, c.attempt, name, message, c.queued_at, ctx.now, rec.generation)
    plan.creates.append(CreateAttempt(
        key=c.key, uid=rec.uid, attempt=c.attempt,
        job=render_job(rec.namespace, rec.name, rec.uid, c.attempt, eff, ctx.settings,
                       token_accounts=_qspec(ctx, c).allowed_service_accounts or ()),
        config_map=render_source_config_map(rec.namespace, rec.name, rec.uid, eff),
        status=st, event=("Normal", "Admitted", message),
    ))


def _full_message(c: Candidate, in_queue: int, qspec: TestQueueSpec, total: int, ctx: Context) -> str | None:
    """Why a new execution cannot join (its queue or Sluice is full), or None."""
    if in_queue >= qspec.queued_capacity:
        return (f"queue {c.queue!r} is full: {in_queue} executions waiting, queuedCapacity is "
                f"{qspec.queued_capacity}")
    if total >= ctx.settings.queued_capacity:
        return (f"Sluice is full: {total} executions waiting cluster-wide, the operator's queued capacity "
                f"(SLUICE_QUEUED_CAPACITY) is {ctx.settings.queued_capacity}")
    return None


@dataclass
class Waiting:
    """Why and how long a queued candidate waits: what its status says (`waiting_status`)."""

    rank: int
    reason: str
    message: str
    eta: datetime | None


def _why(c: Candidate, qspec: TestQueueSpec, occ: Occupancy, ctx: Context) -> tuple[str, str]:
    """The reason it waits and the numbers that go with it (after this pass's admissions)."""
    used, cap = occ.of(c.queue_key), qspec.running_capacity
    if qspec.paused:
        return "QueuePaused", f"queue {c.queue} is paused"
    if used + c.shards > cap:
        return ("QueueAtCapacity" if c.shards == 1 or used >= cap else "WaitingForSlots",
                f"queue {c.queue}: {used}/{cap} running" + (f", needs {c.shards} slots" if c.shards > 1 else ""))
    busy = busy_environments(c, occ, _per_pass(ctx, "caps", environment_capacity)) if c.environments else []
    if busy:
        return "EnvironmentBusy", "; ".join(_busy_sentence(env, occ, ctx) for env in busy)
    total, gcap = occ.used, ctx.settings.running_capacity
    if total + c.shards > gcap:
        return ("ClusterAtCapacity" if c.shards == 1 or total >= gcap else "WaitingForSlots",
                f"Sluice: {total}/{gcap} slots running cluster-wide")
    return "Queued", f"queue {c.queue}: {used}/{cap} running"


def _busy_sentence(env: str, occ: Occupancy, ctx: Context) -> str:
    rec = ctx.view.environments.get(env)
    if rec is None:
        return f"environment {env} does not exist (kubectl get testenvironments)"
    holders = _per_pass(ctx, "holders", environment_holders).get(env, [])
    shown = ", ".join(holders[:3]) + (f" and {len(holders) - 3} more" if len(holders) > 3 else "")
    return f"environment {env}: {occ.holders_of(env)}/{rec.spec.concurrency} in use" + (
        f" by {shown}" if shown else "")


def _waiting(c: Candidate, rank: int, qspec: TestQueueSpec, occ: Occupancy, ctx: Context) -> Waiting:
    reason, numbers = _why(c, qspec, occ, ctx)
    eta = None if qspec.paused else ctx.estimate(c.queue_key, rank)
    when = f"expected ~{eta:%H:%M:%S}" if eta else "no admissions measured yet: no estimate"
    return Waiting(rank, reason, f"{numbers}, {rank - 1} ahead, {when}", eta)


def _set_waiting(st, w: Waiting, queued_at: datetime, ctx: Context, generation: int) -> None:
    to_queued(st, w.reason, w.message, w.rank, queued_at, ctx.now, generation)
    st.estimated_start_at = w.eta


def _join(new: list[Candidate], per_queue: dict, total: int, ranks: "_Ranks", occ: Occupancy,
          ctx: Context, plan: Plan) -> None:
    """New executions join their queue if it has room, oldest first; the rest are rejected."""
    new.sort(key=lambda c: (c.created, c.queued_at, c.name, c.namespace))
    for c in new:
        rec = ctx.view.executions[c.key]
        qspec = _qspec(ctx, c)
        st = rec.status.model_copy(deep=True)
        in_queue = per_queue.get(c.queue_key, 0)
        full = _full_message(c, in_queue, qspec, total, ctx)
        if full is not None:
            st.queued_at = c.queued_at
            to_terminal(st, Phase.Rejected, "QueueFull", full, ctx.now, rec.generation)
            plan.writes.append(StatusWrite(c.key, st, event_for(st)))
            continue
        per_queue[c.queue_key] = in_queue + 1
        total += 1
        w = _waiting(c, ranks.of(c), qspec, occ, ctx)
        _set_waiting(st, w, c.queued_at, ctx, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))  # waiting is not worth an Event each
        ctx.memo.eta_checked(c.key, c.queue_key, eta_recheck_at(w.eta, ctx.now))
        source = render_source_config_map(rec.namespace, rec.name, rec.uid,
                                          effective_spec(rec.spec, qspec.defaults, ctx.settings))
        if source is not None:
            plan.sources.append((c.key, source))


class _Ranks:
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


def _queue_or_reject(admitted: list[Candidate], ranks: _Ranks, occ: Occupancy, touched: set[Key], full: bool,
                     ctx: Context, plan: Plan) -> None:
    """New executions join their queue if it has room; Queued ones get their position."""
    wait = ctx.memo.wait
    admitted_keys = {c.key for c in admitted}
    per_queue: dict[tuple[str, str], int] = {}
    total = 0
    for qk, q in wait.queues.items():
        per_queue[qk] = len(q.queued) - len(q.new)
        total += per_queue[qk]
    for c in admitted:
        if c.queued and c.key not in wait.queues[c.queue_key].new:
            per_queue[c.queue_key] -= 1
            total -= 1
    new = [wait.candidates[k] for q in wait.queues.values() for k in q.new if k not in admitted_keys]
    _join(new, per_queue, total, ranks, occ, ctx, plan)
    _update_positions(admitted_keys, ranks, occ, touched, full, ctx, plan)


def _due(c: Candidate, rec: ExecutionRecord, rank: int, qspec: TestQueueSpec, ctx: Context) -> datetime | None:
    """When this waiter's status must be rewritten (position promise, a pause, a far-off estimate).

    The same rule for every waiter looked at, whether a full pass looks at all of them or an
    incremental one at those `_to_look_at` names. When its rank first moved is kept only for a
    written position in the head (those are looked at every pass, so that time is exact). A
    deep written position is judged by a factor of 2 alone, so leaving it alone costs nothing;
    when the true rank reaches the head it is rewritten at once, since nobody timed how long
    the deep value has been stale.
    """
    memo, now, st, key = ctx.memo, ctx.now, rec.status, c.key
    written, head, lag = st.queue_position, ctx.settings.position_head, ctx.settings.position_head_lag_seconds
    if written is not None and written <= head and written != rank:
        due = position_due(rank, written, memo.moved_at.setdefault(key, now), now, head, lag)
    else:
        memo.moved_at.pop(key, None)
        if written == rank:
            due = None
        elif written is None or rank <= head:
            due = now
        else:
            due = position_due(rank, written, now, now, head, lag)
    if qspec.paused != (st.reason == "QueuePaused"):
        return now
    if due is None and not qspec.paused:
        check = memo.eta_check_at.get(key)
        if check is None or check <= now or (check == NO_ESTIMATE and ctx.has_estimates(c.queue_key)):
            eta = ctx.estimate(c.queue_key, rank)
            if eta_drifted(eta, st.estimated_start_at, now):
                return now
            memo.eta_checked(key, c.queue_key, eta_recheck_at(eta, now))  # checked: look again then
    return due


def _to_look_at(admitted: set[Key], ranks: _Ranks, touched: set[Key], ctx: Context):
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


def _evaluate(c: Candidate, position: int, specs: dict, ranks: _Ranks, ctx: Context, full: bool):
    """`_due` of one waiter, and when to look at it again; (when, position, sort key, c, rec)
    when it has a rewrite due (now or later), else None."""
    memo, wait = ctx.memo, ctx.memo.wait
    rec = ctx.view.executions[c.key]
    qspec = specs.get(c.queue_key)
    if qspec is None:
        qspec = specs[c.queue_key] = _qspec(ctx, c)
    when = _due(c, rec, position, qspec, ctx)
    written = rec.status.queue_position
    if written is not None and written > ctx.settings.position_head:
        wait.watch_rank(c, position, ranks.ahead(c), ranks.in_queue(c.queue_key), written)
    if full and not qspec.paused and c.key in memo.eta_check_at:
        memo.watch_estimate(c.key, c.queue_key)
    return None if when is None else (when, position, wait.sort_keys[c.key], c, rec)


def _backlog_due(admitted: set[Key], ranks: _Ranks, specs: dict, ctx: Context, gone: list[Key]):
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


def _update_positions(admitted: set[Key], ranks: _Ranks, occ: Occupancy, touched: set[Key], full: bool,
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
        st = rec.status.model_copy(deep=True)
        w = _waiting(c, position, _qspec(ctx, c), occ, ctx)
        _set_waiting(st, w, c.queued_at, ctx, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))
        plan.position_writes += 1
        memo.moved_at.pop(c.key, None)
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


def admit_and_queue(ctx: Context, plan: Plan, touched: set[Key], full: bool) -> None:
    """Starts the candidates that fit, in admission order; queues or rejects the new; moves positions.

    The candidates are `ctx.memo.wait`, kept sorted between passes: admission walks them in
    order only until the caps stop it (a queue that cannot admit more is skipped whole).
    """
    view, now, wait = ctx.view, ctx.now, ctx.memo.wait
    limits: dict[tuple[str, str], QueueLimits] = {}
    for qk in wait.queues:
        qspec = ctx.queue_spec(*qk) or TestQueueSpec()
        limits[qk] = QueueLimits(qspec.running_capacity, qspec.paused, strict=qspec.admission == "StrictFIFO")
    occ = occupancy(view)
    reserve_after = timedelta(seconds=ctx.settings.best_effort_reserve_seconds)
    blocked: set[tuple[str, str]] = set()
    admitted = plan_admissions(wait.in_order(blocked), occ, ctx.settings.running_capacity, limits,
                               _per_pass(ctx, "caps", environment_capacity),
                               holds=lambda c: now - c.queued_at >= reserve_after, blocked=blocked)
    for c in admitted:
        _admit(c, ctx, plan)
        ctx.memo.admission_rate(c.queue_key).admitted(now)
    plan.waiting = len(wait) - len(admitted)
    _queue_or_reject(admitted, _Ranks(wait, admitted), occ, touched, full, ctx, plan)
    promotion = wait.next_promotion()
    if promotion is not None:
        plan.wake(promotion)
