"""Queue-wide decisions over every waiting candidate: order, capacity, the queued cap, positions.

Occupancy is counted from the Jobs the view trusts (see `ClusterView.holds_slots`), never from
statuses, so a crash between "create Job" and "write status" cannot overshoot a cap. Who goes
first is `queue.ordering`; who fits is `queue.capacity`; this module turns those answers into
status writes and Job creates. Pure: never any I/O, never touches the view.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.effective import effective_spec
from ..api.execution import Phase
from ..api.queue import TestQueueSpec
from ..cache.view import ClusterView, ExecutionRecord, Key
from ..kube.names import job_name
from ..kube.render import render_job, render_source_config_map
from ..queue.capacity import Occupancy, QueueLimits, busy_environments, plan_admissions
from ..queue.ordering import Candidate, next_promotion, order
from ..queue.positions import ETA_REWRITE_SECONDS, eta_drifted, position_due, queue_positions
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


def _join(new: list[Candidate], per_queue: dict, total: int, positions: dict[Key, int], occ: Occupancy,
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
        _set_waiting(st, _waiting(c, positions[c.key], qspec, occ, ctx), c.queued_at, ctx, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))  # waiting is not worth an Event each
        ctx.memo.eta_written_at[c.key] = ctx.now
        source = render_source_config_map(rec.namespace, rec.name, rec.uid,
                                          effective_spec(rec.spec, qspec.defaults, ctx.settings))
        if source is not None:
            plan.sources.append((c.key, source))


def _queue_or_reject(waiting: list[Candidate], admitted: set[Key], positions: dict[Key, int], occ: Occupancy,
                     ctx: Context, plan: Plan) -> None:
    """New executions join their queue if it has room; Queued ones get their position."""
    per_queue: dict[tuple[str, str], int] = {}
    total = 0
    new: list[Candidate] = []
    queued: list[tuple[Candidate, ExecutionRecord]] = []  # in admission order
    executions = ctx.view.executions
    for c in waiting:
        if not c.queued or c.key in admitted:
            continue
        rec = executions[c.key]
        if rec.status.phase is Phase.Queued:
            per_queue[c.queue_key] = per_queue.get(c.queue_key, 0) + 1
            total += 1
            queued.append((c, rec))
        else:
            new.append(c)
    _join(new, per_queue, total, positions, occ, ctx, plan)
    _update_positions(queued, positions, occ, ctx, plan)


def _due(c: Candidate, rec: ExecutionRecord, rank: int, qspec: TestQueueSpec, ctx: Context,
         eta_cutoff: datetime) -> datetime | None:
    """When this waiter's status must be rewritten (position promise, a pause, a far-off estimate).

    Runs for every waiter on every pass: the common case (true position, no pause change, an
    estimate checked recently) returns after a few comparisons.
    """
    memo, now, st = ctx.memo, ctx.now, rec.status
    written, key = st.queue_position, c.key
    if written == rank:
        if key in memo.moved_at:
            del memo.moved_at[key]
        due = None
    else:
        due = position_due(rank, written, memo.moved_at.setdefault(key, now), now, ctx.settings.position_head,
                           ctx.settings.position_head_lag_seconds)
    if qspec.paused != (st.reason == "QueuePaused"):
        return now
    if due is None and not qspec.paused:
        last = memo.eta_written_at.get(key)  # when its estimate was last written or found good
        if last is None or last <= eta_cutoff:
            eta = ctx.estimate(c.queue_key, rank)
            if eta_drifted(eta, st.estimated_start_at, now):
                return now
            memo.eta_written_at[key] = now  # checked: look again in ETA_REWRITE_SECONDS
    return due


def _update_positions(queued: list[tuple[Candidate, ExecutionRecord]], positions: dict[Key, int],
                      occ: Occupancy, ctx: Context, plan: Plan) -> None:
    """Rewrites the waiters whose promise falls due, most urgent first, within the write budget.

    Runs over every waiter on every pass, so the common case (nothing due) is checked first.
    """
    due: list[tuple[datetime, Candidate, ExecutionRecord]] = []
    specs: dict[tuple[str, str], TestQueueSpec] = {}
    eta_cutoff = ctx.now - timedelta(seconds=ETA_REWRITE_SECONDS)
    for c, rec in queued:
        qspec = specs.get(c.queue_key)
        if qspec is None:
            qspec = specs[c.queue_key] = _qspec(ctx, c)
        when = _due(c, rec, positions[c.key], qspec, ctx, eta_cutoff)
        if when is None:
            continue
        if when > ctx.now:
            plan.wake(when)
        else:
            due.append((when, c, rec))
    due.sort(key=lambda d: (d[0], positions[d[1].key]))
    for _, c, rec in due[: ctx.position_budget]:
        st = rec.status.model_copy(deep=True)
        _set_waiting(st, _waiting(c, positions[c.key], _qspec(ctx, c), occ, ctx), c.queued_at, ctx,
                     rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))
        ctx.memo.moved_at.pop(c.key, None)
        ctx.memo.eta_written_at[c.key] = ctx.now
    plan.position_writes = min(len(due), ctx.position_budget)
    if len(due) > ctx.position_budget:
        plan.wake(ctx.now + timedelta(seconds=1.0 / ctx.settings.position_writes_per_second))


def admit_and_queue(waiting: list[Candidate], ctx: Context, plan: Plan) -> None:
    """Orders the candidates, starts those that fit, queues or rejects the new, moves positions."""
    view, now = ctx.view, ctx.now
    aging = {k: q.spec.aging_seconds for k, q in view.queues.items()}
    ordered = order(waiting, now, aging)
    limits: dict[tuple[str, str], QueueLimits] = {}
    for c in ordered:
        if c.queue_key not in limits:
            qspec = _qspec(ctx, c)
            limits[c.queue_key] = QueueLimits(qspec.running_capacity, qspec.paused,
                                              strict=qspec.admission == "StrictFIFO")
    occ = occupancy(view)
    reserve_after = timedelta(seconds=ctx.settings.best_effort_reserve_seconds)
    admitted = plan_admissions(ordered, occ, ctx.settings.running_capacity, limits,
                               _per_pass(ctx, "caps", environment_capacity),
                               holds=lambda c: now - c.queued_at >= reserve_after)
    for c in admitted:
        _admit(c, ctx, plan)
        ctx.memo.admission_rate(c.queue_key).admitted(now)
    admitted_keys = {c.key for c in admitted}
    plan.waiting = len(ordered) - len(admitted)
    positions = queue_positions(ordered, admitted_keys)
    _queue_or_reject(ordered, admitted_keys, positions, occ, ctx, plan)
    for c in ordered if any(aging.values()) else ():
        if c.key not in admitted_keys:
            seconds = next_promotion(c, now, aging.get(c.queue_key, 0))
            if seconds is not None:
                plan.wake(now + timedelta(seconds=seconds))
