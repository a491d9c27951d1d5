"""Queue-wide decisions over every waiting candidate: order, capacity, the queued cap, positions.

Occupancy is counted from the Jobs the view trusts (see `ClusterView.holds_slots`), never from
statuses, so a crash between "create Job" and "write status" cannot overshoot a cap. Who goes
first is `queue.ordering` (kept sorted between passes by `queue.waitlist`); who fits is
`queue.capacity`; this module turns those answers into Job creates and the joins or rejections
of new executions; the rewrites of waiting positions and estimates are `planner.rewrites`, the
sentences they carry `planner.waiting`. Pure: never any I/O, never touches the view.
"""
from __future__ import annotations

from datetime import timedelta

from ..api.effective import effective_spec
from ..api.execution import Phase
from ..api.queue import TestQueueSpec
from ..cache.view import ClusterView, Key
from ..kube.names import job_name
from ..kube.render import render_job, render_source_config_map
from ..queue.capacity import Occupancy, QueueLimits, plan_admissions
from ..queue.ordering import Candidate
from ..queue.positions import eta_recheck_at
from ..status.transitions import to_running, to_terminal
from .lifecycle import event_for
from .model import Context, CreateAttempt, Plan, StatusWrite
from .rewrites import Ranks, rewrite_positions
from .waiting import environment_capacity, per_pass, qspec_of, set_waiting, waiting_status


def occupancy(view: ClusterView) -> Occupancy:
    occ = Occupancy()
    for job in view.slot_holders():
        occ.take((job.namespace, job.queue), job.slots, job.environments)
    return occ


def _admit(c: Candidate, ctx: Context, plan: Plan) -> None:
    rec = ctx.view.executions[c.key]
    eff = effective_spec(rec.spec, qspec_of(ctx, c).defaults, ctx.settings)
    st = rec.status.working_copy()
    name = job_name(rec.name, c.attempt)
    message = f"attempt {c.attempt} started (Job {name})"
    to_running(st, c.attempt, name, message, c.queued_at, ctx.now, rec.generation)
    plan.creates.append(CreateAttempt(
        key=c.key, uid=rec.uid, attempt=c.attempt,
        job=render_job(rec.namespace, rec.name, rec.uid, c.attempt, eff, ctx.settings,
                       token_accounts=qspec_of(ctx, c).allowed_service_accounts or ()),
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


def _join(new: list[Candidate], per_queue: dict, total: int, ranks: Ranks, occ: Occupancy,
          ctx: Context, plan: Plan) -> None:
    """New executions join their queue if it has room, oldest first; the rest are rejected."""
    new.sort(key=lambda c: (c.created, c.queued_at, c.name, c.namespace))
    for c in new:
        rec = ctx.view.executions[c.key]
        qspec = qspec_of(ctx, c)
        st = rec.status.working_copy()
        in_queue = per_queue.get(c.queue_key, 0)
        full = _full_message(c, in_queue, qspec, total, ctx)
        if full is not None:
            st.queued_at = c.queued_at
            to_terminal(st, Phase.Rejected, "QueueFull", full, ctx.now, rec.generation)
            plan.writes.append(StatusWrite(c.key, st, event_for(st)))
            continue
        per_queue[c.queue_key] = in_queue + 1
        total += 1
        w = waiting_status(c, ranks.of(c), qspec, occ, ctx)
        set_waiting(st, w, c.queued_at, ctx, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))  # waiting is not worth an Event each
        ctx.memo.wrote_position(c.key, w.rank, ctx.settings.position_head, ctx.now)
        ctx.memo.eta_checked(c.key, c.queue_key, eta_recheck_at(w.eta, ctx.now))
        source = render_source_config_map(rec.namespace, rec.name, rec.uid,
                                          effective_spec(rec.spec, qspec.defaults, ctx.settings))
        if source is not None:
            plan.sources.append((c.key, source))


def _queue_or_reject(admitted: list[Candidate], ranks: Ranks, occ: Occupancy, touched: set[Key], full: bool,
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
    rewrite_positions(admitted_keys, ranks, occ, touched, full, ctx, plan)


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
                               per_pass(ctx, "caps", environment_capacity),
                               holds=lambda c: now - c.queued_at >= reserve_after, blocked=blocked)
    for c in admitted:
        _admit(c, ctx, plan)
        ctx.memo.admission_rate(c.queue_key).admitted(now)
    plan.waiting = len(wait) - len(admitted)
    _queue_or_reject(admitted, Ranks(wait, admitted), occ, touched, full, ctx, plan)
    promotion = wait.next_promotion()
    if promotion is not None:
        plan.wake(promotion)
