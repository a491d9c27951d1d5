"""Which finished executions a queue's history limits delete (pure).

The rule, in one line: of a queue's finished executions, keep the newest `history.succeeded`
Succeeded ones and the newest `history.failed` of the others (Failed, TimedOut, Cancelled,
Rejected), and delete the rest and any that finished more than `ttlSecondsAfterFinished` ago,
oldest first. "Newest" is by `status.completedAt` (creation time when it has none), then name.

Only settled executions are candidates: terminal, not being deleted, no Job left to stop, their
generation acknowledged (not in the view's `active` set), finished at least `SETTLE_SECONDS`
ago (so whoever reacts to an outcome, such as notifications, sees it first). The queue
`default` needs no object: without one its limits are the defaults. It never calls the API.
"""
from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.common import DEFAULT_QUEUE
from ..api.execution import Phase
from ..api.queue import TestQueueSpec
from ..cache.compact import StatusSummary
from ..cache.view import ClusterView, ExecutionRecord, Key

SETTLE_SECONDS = 5.0
QueueKey = tuple[str, str]


@dataclass(frozen=True)
class Limits:
    succeeded: int = 100
    failed: int = 200
    ttl_seconds: int | None = None

    @classmethod
    def of(cls, spec: TestQueueSpec) -> "Limits":
        return cls(spec.history.succeeded, spec.history.failed, spec.ttl_seconds_after_finished)


DEFAULT_LIMITS = Limits.of(TestQueueSpec())


@dataclass(frozen=True)
class Finished:
    """A settled finished execution, as retention sees it."""

    key: Key
    uid: str
    phase: Phase
    finished_at: datetime
    summary: StatusSummary | None = None  # what it contributes to its queue's totals

    @property
    def age_order(self) -> tuple[datetime, str]:
        return (self.finished_at, self.key[1])


def finished_at(rec: ExecutionRecord) -> datetime:
    return rec.summary.completed_at or rec.created


def finished_by_queue(view: ClusterView, now: datetime,
                      skip: Collection[str] = ()) -> tuple[dict[QueueKey, list[ExecutionRecord]], datetime | None]:
    """Every settled finished execution, grouped by (namespace, queue), and when the next one
    that is not settled yet will be (None: none waits). UIDs in `skip` (being deleted, or known
    gone) are left out. Records, not `Finished`: a walk over 50,000 allocates nothing per
    execution (`victims_of` makes `Finished` only where a limit is exceeded)."""
    settled_before = now - timedelta(seconds=SETTLE_SECONDS)
    out: dict[QueueKey, list[ExecutionRecord]] = {}
    next_settled: datetime | None = None
    active = view.active
    for key, rec in view.executions.items():
        s = rec.summary
        if s.phase is None or not s.phase.terminal or rec.deleting or key in active or rec.uid in skip:
            continue
        at = s.completed_at or rec.created
        if at > settled_before:
            settles = at + timedelta(seconds=SETTLE_SECONDS)
            next_settled = settles if next_settled is None else min(next_settled, settles)
            continue
        group = out.get((rec.namespace, rec.queue))
        if group is None:
            group = out[(rec.namespace, rec.queue)] = []
        group.append(rec)
    return out, next_settled


def victims_of(records: list[ExecutionRecord], limits: Limits, now: datetime, budget: int) -> list[Finished]:
    """`select_victims` over a queue's settled finished records, skipping the work when no
    limit is exceeded (the common case: most walks delete nothing)."""
    if budget <= 0 or not records:
        return []
    if limits.ttl_seconds is None:
        succeeded = sum(1 for r in records if r.summary.phase == Phase.Succeeded)
        if succeeded <= limits.succeeded and len(records) - succeeded <= limits.failed:
            return []
    finished = [Finished(r.key, r.uid, r.summary.phase, finished_at(r), r.summary) for r in records]
    victims = select_victims(finished, limits, now, budget)
    if not victims:
        return victims
    by_uid = {r.uid: r for r in records}
    return [v for v in victims if not notifying(by_uid[v.uid])]


def notifying(rec: ExecutionRecord) -> bool:
    """A notification of its outcome is still being sent or retried: deleting it now would cut
    the retries off (notify/ records each step in the execution's status). Only victims are
    checked, so the packed status is unpacked for a few records per walk."""
    return any(n.state == "Pending" for n in rec.status.notifications)


def limits_of(view: ClusterView, queue: QueueKey) -> Limits | None:
    """The queue's limits; the defaults for `default` without an object; None for another queue
    without an object (its executions are kept until the queue exists)."""
    rec = view.queues.get(queue)
    if rec is not None:
        return Limits.of(rec.spec)
    return DEFAULT_LIMITS if queue[1] == DEFAULT_QUEUE else None


def select_victims(finished: Iterable[Finished], limits: Limits, now: datetime, budget: int) -> list[Finished]:
    """At most `budget` executions to delete, oldest first (see the module's rule)."""
    if budget <= 0:
        return []
    succeeded = [f for f in finished if f.phase == Phase.Succeeded]
    others = [f for f in finished if f.phase != Phase.Succeeded]
    victims: list[Finished] = []
    for group, keep in ((succeeded, limits.succeeded), (others, limits.failed)):
        excess = len(group) - max(0, keep)
        if excess > 0:
            victims += heapq.nsmallest(min(excess, budget), group, key=lambda f: f.age_order)
    if limits.ttl_seconds is not None:
        expired_before = now - timedelta(seconds=limits.ttl_seconds)
        chosen = {f.uid for f in victims}
        victims += [f for group in (succeeded, others) for f in group
                    if f.finished_at <= expired_before and f.uid not in chosen]
    return heapq.nsmallest(budget, victims, key=lambda f: f.age_order)
