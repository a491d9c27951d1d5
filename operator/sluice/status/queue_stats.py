"""TestQueue.status from the executions of a queue (pure), so it is level-based and restart-safe:
totals count the execution objects that exist, not events remembered in memory."""
from __future__ import annotations

import math

from datetime import datetime

from ..api.execution import Condition, Phase
from ..api.queue import Percentiles, TestQueueStatus
from ..cache.view import ClusterView
from .conditions import set_condition

HEAD_LENGTH = 10


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def queue_conditions(st: TestQueueStatus, previous: list[Condition], paused: bool, generation: int,
                     now: datetime) -> None:
    """`Ready` (the operator admits from it) and `Paused`, with lastTransitionTime kept across writes."""
    conds = set_condition(previous, "Ready", not paused, "Paused" if paused else "Admitting",
                          "spec.paused is true: nothing is admitted" if paused else
                          f"admitting: {st.running} running, {st.queued} queued", now, generation)
    conds = set_condition(conds, "Paused", paused, "Paused" if paused else "NotPaused", "", now, generation)
    st.conditions = [c for c in conds if c.type in ("Ready", "Paused")]


def queue_status(view: ClusterView, namespace: str, queue: str) -> TestQueueStatus:
    st = TestQueueStatus()
    waits: list[float] = []
    runs: list[float] = []
    queued: list[tuple[int, str]] = []
    for rec in view.executions.values():
        if rec.namespace != namespace or rec.spec is None or rec.spec.queue != queue:
            continue
        s = rec.status
        if s.phase == Phase.Queued:
            queued.append((s.queue_position or 10**9, rec.name))
        if s.started_at is not None:
            st.admitted_total += 1
            if s.queued_at is not None:
                waits.append((s.started_at - s.queued_at).total_seconds())
        if s.phase == Phase.Succeeded:
            st.succeeded_total += 1
        elif s.phase in (Phase.Failed, Phase.TimedOut):
            st.failed_total += 1
        if s.phase in (Phase.Succeeded, Phase.Failed, Phase.TimedOut) and s.started_at and s.completed_at:
            runs.append((s.completed_at - s.started_at).total_seconds())
    for job in view.slot_holders():
        if job.namespace == namespace and job.queue == queue:
            st.running += job.slots
    st.queued = len(queued)
    st.head = [name for _, name in sorted(queued)[:HEAD_LENGTH]]
    st.wait_seconds = Percentiles(p50=percentile(waits, 50), p95=percentile(waits, 95))
    st.run_seconds = Percentiles(p50=percentile(runs, 50), p95=percentile(runs, 95))
    return st
