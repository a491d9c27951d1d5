"""TestQueue.status from the executions of a queue and what retention retired from it (pure).

Level-based and restart-safe: totals are `status.retired` (what the executions deleted by
retention contributed, kept in the queue's own status) plus the executions that exist, and the
percentiles are read from one histogram (`status.histogram`) holding the retired buckets and
the live samples. An execution whose UID is in `retired.deleting` is already in `retired`, so
the live side skips it: deleting it, or crashing half-way, never changes what the status says.
It never calls the API and never changes the view.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from datetime import datetime

from ..api.execution import Condition, Phase
from ..api.queue import Percentiles, Retired, TestQueueStatus
from ..cache.compact import StatusSummary
from ..cache.view import ClusterView, ExecutionRecord
from .conditions import set_condition
from .histogram import Histogram

HEAD_LENGTH = 10
FAILED_PHASES = (Phase.Failed, Phase.TimedOut)  # what `failedTotal` counts
RUN_PHASES = (Phase.Succeeded, Phase.Failed, Phase.TimedOut)  # what `runSeconds` measures

QueueKey = tuple[str, str]


def percentile(values: list[float], q: float) -> float | None:
    """Exact nearest-rank percentile; None for no data (the reference the histogram is held to)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


class Tally:
    """Totals and the two histograms of one queue, added to one execution at a time."""

    __slots__ = ("admitted", "succeeded", "failed", "waits", "runs")

    def __init__(self, retired: Retired | None = None):
        self.admitted = self.succeeded = self.failed = 0
        self.waits, self.runs = Histogram(), Histogram()
        if retired is not None:
            self.admitted, self.succeeded, self.failed = retired.admitted, retired.succeeded, retired.failed
            self.waits.merge(retired.wait_buckets)
            self.runs.merge(retired.run_buckets)

    def add(self, s: StatusSummary) -> None:
        if s.started_at is not None:
            self.admitted += 1
            if s.queued_at is not None:
                self.waits.add((s.started_at - s.queued_at).total_seconds())
        if s.phase == Phase.Succeeded:
            self.succeeded += 1
        elif s.phase in FAILED_PHASES:
            self.failed += 1
        if s.phase in RUN_PHASES and s.started_at is not None and s.completed_at is not None:
            self.runs.add((s.completed_at - s.started_at).total_seconds())

    def fill(self, st: TestQueueStatus) -> None:
        st.admitted_total, st.succeeded_total, st.failed_total = self.admitted, self.succeeded, self.failed
        st.wait_seconds = Percentiles(p50=self.waits.percentile(50), p95=self.waits.percentile(95))
        st.run_seconds = Percentiles(p50=self.runs.percentile(50), p95=self.runs.percentile(95))

    def retired(self, deleting: list[str]) -> Retired:
        return Retired(admitted=self.admitted, succeeded=self.succeeded, failed=self.failed,
                       wait_buckets=self.waits.counts(), run_buckets=self.runs.counts(), deleting=deleting)


def contributes(s: StatusSummary) -> bool:
    """Whether an execution counts in any total (so its deletion must not lose it)."""
    return s.started_at is not None or s.phase in RUN_PHASES


def retire(retired: Retired, finished: Iterable[tuple[str, StatusSummary]]) -> Retired:
    """`retired` with these executions' contributions added and their UIDs in `deleting`:
    what the queue's status must say before they are deleted."""
    tally = Tally(retired)
    deleting = list(retired.deleting)
    for uid, summary in finished:
        if uid not in deleting:
            tally.add(summary)
            deleting.append(uid)
    return tally.retired(deleting)


def queue_conditions(st: TestQueueStatus, previous: list[Condition], paused: bool, generation: int,
                     now: datetime) -> None:
    """`Ready` (the operator admits from it) and `Paused`, with lastTransitionTime kept across writes."""
    conds = set_condition(previous, "Ready", not paused, "Paused" if paused else "Admitting",
                          "spec.paused is true: nothing is admitted" if paused else
                          f"admitting: {st.running} running, {st.queued} queued", now, generation)
    conds = set_condition(conds, "Paused", paused, "Paused" if paused else "NotPaused", "", now, generation)
    st.conditions = [c for c in conds if c.type in ("Ready", "Paused")]


def queue_statuses(view: ClusterView, retired: dict[QueueKey, Retired], skip: Collection[str] = (),
                   seen: dict[str, ExecutionRecord] | None = None) -> dict[QueueKey, TestQueueStatus]:
    """The status of every queue in `retired` (its key -> what retention retired from it), in
    one walk over the view. Executions whose UID is in their queue's `deleting` or in `skip`
    (known deleted, in case a late list shows them again) are not counted live. `seen`, when
    given, receives every execution counted live that `contributes` (UID -> record)."""
    tallies = {key: Tally(r) for key, r in retired.items()}
    deleting = {key: set(r.deleting) for key, r in retired.items() if r.deleting}
    queued: dict[QueueKey, list[tuple[int, str]]] = {key: [] for key in retired}
    for rec in view.executions.values():
        key = (rec.namespace, rec.queue)
        tally = tallies.get(key)
        if tally is None or rec.uid in skip or rec.uid in deleting.get(key, ()):
            continue
        s = rec.summary
        if s.phase == Phase.Queued:
            queued[key].append((rec.status.queue_position or 10**9, rec.name))
        tally.add(s)
        if seen is not None and contributes(s):
            seen[rec.uid] = rec
    out: dict[QueueKey, TestQueueStatus] = {}
    for key, tally in tallies.items():
        st = out[key] = TestQueueStatus(retired=retired[key])
        tally.fill(st)
        st.queued = len(queued[key])
        st.head = [name for _, name in sorted(queued[key])[:HEAD_LENGTH]]
    for job in view.slot_holders():
        st = out.get((job.namespace, job.queue))
        if st is not None:
            st.running += job.slots
    return out


def queue_status(view: ClusterView, namespace: str, queue: str, retired: Retired | None = None) -> TestQueueStatus:
    """One queue's status (see `queue_statuses`)."""
    return queue_statuses(view, {(namespace, queue): retired or Retired()})[(namespace, queue)]
