"""Who may start now, given the slots that unfinished Jobs hold.

Occupancy is counted from Jobs, never from execution status, so a crash between "create Job"
and "write status" cannot overshoot. Within a queue the order is strict: a head that does not
fit blocks the queue behind it (so a 4-shard execution is not starved by 1-shard ones); a
global head that does not fit stops all admission for the same reason. A candidate that could
never fit (more shards than its queue's or the cluster's capacity, after an admin lowered it)
blocks nobody: it waits without holding up the queue behind it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ordering import Candidate

QueueKey = tuple[str, str]


@dataclass
class Occupancy:
    used: int = 0
    per_queue: dict[QueueKey, int] = field(default_factory=dict)

    def take(self, queue: QueueKey, slots: int) -> None:
        self.used += slots
        self.per_queue[queue] = self.per_queue.get(queue, 0) + slots

    def of(self, queue: QueueKey) -> int:
        return self.per_queue.get(queue, 0)


@dataclass(frozen=True)
class QueueLimits:
    running_capacity: int
    paused: bool = False


def plan_admissions(
    ordered: list[Candidate],
    occupancy: Occupancy,
    global_capacity: int,
    limits: dict[QueueKey, QueueLimits],
) -> list[Candidate]:
    """The candidates to start now, in order. `occupancy` is updated with what they take."""
    admitted: list[Candidate] = []
    blocked: set[QueueKey] = set()
    for c in ordered:
        if occupancy.used >= global_capacity:
            break
        q = c.queue_key
        if q in blocked:
            continue
        lim = limits.get(q)
        if lim is None or lim.paused:
            blocked.add(q)
            continue
        if c.shards > lim.running_capacity or c.shards > global_capacity:
            continue  # can never start at these capacities: must not block those behind it
        if occupancy.of(q) + c.shards > lim.running_capacity:
            blocked.add(q)
            continue
        if occupancy.used + c.shards > global_capacity:
            break
        occupancy.take(q, c.shards)
        admitted.append(c)
    return admitted
