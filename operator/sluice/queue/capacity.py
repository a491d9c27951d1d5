"""Who may start now, given the slots and environments that unfinished Jobs hold.

Occupancy is counted from Jobs, never from execution status, so a crash between "create Job"
and "write status" cannot overshoot a cap or let two holders into an environment. Candidates
are tried in admission order (`queue.ordering`), and what one that cannot start does to those
behind it is the queue's `admission`:

- StrictFIFO: it blocks. Behind it nothing in its queue starts, and nothing takes the
  environments it waits for; a candidate that does not fit the cluster-wide cap stops all
  admission.
- BestEffortFIFO (the default): it lets those behind it try, so a 4-shard execution facing 3
  free slots, or one waiting for a busy environment, does not idle the slots a 1-shard one could
  use. It is not starved: once it has waited `reserve_after` seconds (since it was queued) it
  *holds*, exactly as under StrictFIFO, so nothing behind it takes what it waits for, and it
  starts as soon as the holders before it finish. The bound: it starts at most `reserve_after`
  seconds after it was queued plus the longest remaining run of the Jobs holding what it needs
  (each bounded by its timeoutSeconds).

A queue that is full (every slot taken) blocks its queue in both modes: nobody behind could fit.
A candidate that could never fit (more shards than its queue's or the cluster's capacity, after
an admin lowered it) blocks nobody. Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from .ordering import Candidate

QueueKey = tuple[str, str]


@dataclass
class Occupancy:
    used: int = 0
    per_queue: dict[QueueKey, int] = field(default_factory=dict)
    per_environment: dict[str, int] = field(default_factory=dict)

    def take(self, queue: QueueKey, slots: int, environments: tuple[str, ...] = ()) -> None:
        self.used += slots
        self.per_queue[queue] = self.per_queue.get(queue, 0) + slots
        for env in environments:
            self.per_environment[env] = self.per_environment.get(env, 0) + 1

    def of(self, queue: QueueKey) -> int:
        return self.per_queue.get(queue, 0)

    def holders_of(self, environment: str) -> int:
        return self.per_environment.get(environment, 0)


@dataclass(frozen=True)
class QueueLimits:
    running_capacity: int
    paused: bool = False
    strict: bool = False  # StrictFIFO: a candidate that cannot start blocks those behind it


def busy_environments(c: Candidate, occupancy: Occupancy, env_capacity: dict[str, int]) -> list[str]:
    """The environments `c` needs that have no room (a missing one has none)."""
    return [e for e in c.environments if occupancy.holders_of(e) >= env_capacity.get(e, 0)]


def plan_admissions(
    ordered: Iterable[Candidate],
    occupancy: Occupancy,
    global_capacity: int,
    limits: dict[QueueKey, QueueLimits],
    env_capacity: dict[str, int] | None = None,
    holds: Callable[[Candidate], bool] | None = None,
    blocked: set[QueueKey] | None = None,
) -> list[Candidate]:
    """The candidates to start now, in order. `occupancy` is updated with what they take.

    `holds(c)`: whether a BestEffortFIFO candidate that cannot start has waited long enough to
    hold what it waits for (default: always, i.e. StrictFIFO everywhere). `blocked` receives
    the queues that admit nobody more this pass: a lazy `ordered` (`queue.waitlist`) skips them.
    """
    env_capacity = env_capacity or {}
    admitted: list[Candidate] = []
    blocked = blocked if blocked is not None else set()
    reserved: set[str] = set()  # environments held for a candidate ahead
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
        holding = lim.strict or holds is None or holds(c)
        used = occupancy.of(q)
        if used + c.shards > lim.running_capacity:
            if holding or used >= lim.running_capacity:
                blocked.add(q)
            continue
        if c.environments and (reserved.intersection(c.environments)
                               or busy_environments(c, occupancy, env_capacity)):
            if holding:
                reserved.update(c.environments)
                if lim.strict:
                    blocked.add(q)
            continue
        if occupancy.used + c.shards > global_capacity:
            if holding:
                break
            continue
        occupancy.take(q, c.shards, c.environments)
        admitted.append(c)
    return admitted
