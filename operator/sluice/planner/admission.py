"""Queue-wide decisions over every waiting candidate: order, capacity, the queued cap, positions.

Occupancy is counted from the Jobs the view trusts (see `ClusterView.holds_slots`), never from
statuses, so a crash between "create Job" and "write status" cannot overshoot a cap. Who goes
first is `queue.ordering`; who fits is `queue.capacity`; this module turns those answers into
status writes and Job creates. Pure: never any I/O, never touches the view.
"""
from __future__ import annotations

from datetime import timedelta

from ..api.effective import effective_spec
from ..api.execution import Phase
from ..api.queue import TestQueueSpec
from ..cache.view import ClusterView, ExecutionRecord, Key
from ..kube.names import job_name
from ..kube.render import render_job, render_source_config_map
from ..queue.capacity import Occupancy, QueueLimits, plan_admissions
from ..queue.ordering import Candidate, next_promotion, order
from ..queue.positions import position_worth_writing, queue_positions
from ..status.transitions import to_queued, to_running, to_terminal
from .lifecycle import event_for
from .model import Context, CreateAttempt, Plan, StatusWrite


def occupancy(view: ClusterView) -> Occupancy:
    occ = Occupancy()
    for job in view.occupying.values():
        if view.holds_slots(job):
            occ.take((job.namespace, job.queue), job.slots)
    return occ


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
        job=render_job(rec.namespace, rec.name, rec.uid, c.attempt, eff, ctx.settings),
        config_map=render_source_config_map(rec.namespace, rec.name, rec.uid, eff),
        status=st, event=("Normal", "Admitted", message),
    ))


def _waiting_message(queue: str, paused: bool, position: int | None) -> tuple[str, str]:
    if paused:
        return "QueuePaused", f"queue {queue!r} is paused"
    return "Queued", f"waiting in queue {queue!r} at position {position}"


def _full_message(c: Candidate, in_queue: int, qspec: TestQueueSpec, total: int, ctx: Context) -> str | None:
    """Why a new execution cannot join (its queue or Sluice is full), or None."""
    if in_queue >= qspec.queued_capacity:
        return (f"queue {c.queue!r} is full: {in_queue} executions waiting, queuedCapacity is "
                f"{qspec.queued_capacity}")
    if total >= ctx.settings.queued_capacity:
        return (f"Sluice is full: {total} executions waiting cluster-wide, the operator's queued capacity "
                f"(SLUICE_QUEUED_CAPACITY) is {ctx.settings.queued_capacity}")
    return None


def _join(new: list[Candidate], per_queue: dict, total: int, positions: dict[Key, int], ctx: Context,
          plan: Plan) -> None:
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
        reason, message = _waiting_message(c.queue, qspec.paused, positions.get(c.key))
        to_queued(st, reason, message, positions.get(c.key), c.queued_at, ctx.now, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))  # waiting is not worth an Event each
        ctx.memo.position_written_at[c.key] = ctx.now
        source = render_source_config_map(rec.namespace, rec.name, rec.uid,
                                          effective_spec(rec.spec, qspec.defaults, ctx.settings))
        if source is not None:
            plan.sources.append((c.key, source))


def _queue_or_reject(waiting: list[Candidate], admitted: set[Key], positions: dict[Key, int],
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
    _join(new, per_queue, total, positions, ctx, plan)
    _update_positions(queued, positions, ctx, plan)


def _update_positions(queued: list[tuple[Candidate, ExecutionRecord]], positions: dict[Key, int],
                      ctx: Context, plan: Plan) -> None:
    """Rewrites positions that moved, head of each queue first, within the position budget.

    Runs over every waiter on every pass, so the common case (nothing moved) is checked first.
    """
    settings, written_at = ctx.settings, ctx.memo.position_written_at
    due: list[tuple[int, Candidate, bool]] = []
    paused_of: dict[tuple[str, str], bool] = {}
    for c, rec in queued:
        paused = paused_of.get(c.queue_key)
        if paused is None:
            paused = paused_of[c.queue_key] = _qspec(ctx, c).paused
        reason = "QueuePaused" if paused else "Queued"
        desired = positions.get(c.key)
        written = rec.status.queue_position
        if desired == written and reason == rec.status.reason:
            continue
        last = written_at.get(c.key)
        since = (ctx.now - last).total_seconds() if last else None
        if reason == rec.status.reason and not position_worth_writing(
                desired, written, settings.exact_positions, since, settings.position_interval_seconds):
            if desired != written and since is not None and since < settings.position_interval_seconds:
                plan.wake(last + timedelta(seconds=settings.position_interval_seconds))
            continue
        due.append((desired or 0, c, paused))
    due.sort(key=lambda d: d[0])
    for desired, c, paused in due[: ctx.position_budget]:
        rec = ctx.view.executions[c.key]
        st = rec.status.model_copy(deep=True)
        reason, message = _waiting_message(c.queue, paused, desired)
        to_queued(st, reason, message, desired, c.queued_at, ctx.now, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))
        written_at[c.key] = ctx.now
    plan.position_writes = min(len(due), ctx.position_budget)
    if len(due) > ctx.position_budget:
        plan.wake(ctx.now + timedelta(seconds=1.0 / settings.position_writes_per_second))


def admit_and_queue(waiting: list[Candidate], ctx: Context, plan: Plan) -> None:
    """Orders the candidates, starts those that fit, queues or rejects the new, moves positions."""
    view, now = ctx.view, ctx.now
    aging = {k: q.spec.aging_seconds for k, q in view.queues.items()}
    ordered = order(waiting, now, aging)
    limits: dict[tuple[str, str], QueueLimits] = {}
    for c in ordered:
        if c.queue_key not in limits:
            qspec = _qspec(ctx, c)
            limits[c.queue_key] = QueueLimits(qspec.running_capacity, qspec.paused)
    admitted = plan_admissions(ordered, occupancy(view), ctx.settings.running_capacity, limits)
    for c in admitted:
        _admit(c, ctx, plan)
    admitted_keys = {c.key for c in admitted}
    plan.waiting = len(ordered) - len(admitted)
    positions = queue_positions(ordered, admitted_keys)
    _queue_or_reject(ordered, admitted_keys, positions, ctx, plan)
    for c in ordered if any(aging.values()) else ():
        if c.key not in admitted_keys:
            seconds = next_promotion(c, now, aging.get(c.queue_key, 0))
            if seconds is not None:
                plan.wake(now + timedelta(seconds=seconds))
