"""Why and how long a queued execution waits: the reason, sentence and estimate its status
carries (`waiting_status`), and the per-pass values those sentences need. Pure: never any I/O,
never touches the view."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.queue import TestQueueSpec
from ..cache.view import ClusterView
from ..queue.capacity import Occupancy, busy_environments
from ..queue.ordering import Candidate
from ..status.transitions import to_queued
from .model import Context


def environment_holders(view: ClusterView) -> dict[str, list[str]]:
    """Environment name -> its holders (`namespace/execution`), from the unfinished Jobs."""
    holders: dict[str, list[str]] = {}
    for job in view.slot_holders():
        for env in job.environments:
            holders.setdefault(env, []).append(f"{job.namespace}/{job.execution}")
    return holders


def environment_capacity(view: ClusterView) -> dict[str, int]:
    return {name: env.spec.concurrency for name, env in view.environments.items()}


def per_pass(ctx: Context, name: str, compute):
    """`compute(view)`, once per pass (the waiting-reason sentences need it per waiter)."""
    if name not in ctx.per_pass:
        ctx.per_pass[name] = compute(ctx.view)
    return ctx.per_pass[name]


def qspec_of(ctx: Context, c: Candidate) -> TestQueueSpec:
    return ctx.queue_spec(c.namespace, c.queue) or TestQueueSpec()


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
    busy = busy_environments(c, occ, per_pass(ctx, "caps", environment_capacity)) if c.environments else []
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
    holders = per_pass(ctx, "holders", environment_holders).get(env, [])
    shown = ", ".join(holders[:3]) + (f" and {len(holders) - 3} more" if len(holders) > 3 else "")
    return f"environment {env}: {occ.holders_of(env)}/{rec.spec.concurrency} in use" + (
        f" by {shown}" if shown else "")


def waiting_status(c: Candidate, rank: int, qspec: TestQueueSpec, occ: Occupancy, ctx: Context) -> Waiting:
    reason, numbers = _why(c, qspec, occ, ctx)
    eta = None if qspec.paused else ctx.estimate(c.queue_key, rank)
    when = f"expected ~{eta:%H:%M:%S}" if eta else "no admissions measured yet: no estimate"
    return Waiting(rank, reason, f"{numbers}, {rank - 1} ahead, {when}", eta)


def set_waiting(st, w: Waiting, queued_at: datetime, ctx: Context, generation: int) -> None:
    to_queued(st, w.reason, w.message, w.rank, queued_at, ctx.now, generation)
    st.estimated_start_at = w.eta
