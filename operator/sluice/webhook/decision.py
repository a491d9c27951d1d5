"""Whether a new TestExecution may join its queue now, judged at the API before it is stored.

The rule, in one line: deny a create (HTTP 429, TooManyRequests) when it could not start at once
and its queue's Queued executions, or all of them, already reach their queued capacity. The
numbers are the planner's own: the dispatcher's view, `planner.admission.occupancy` for what
runs, and the Queued executions `planner.admission` counts against the caps; those ahead of it
in its queue (same or higher priority) take the free slots first.

It only denies what the operator would reject as `Rejected/QueueFull`: what it counts is a lower
bound of what the planner counts (new executions not yet placed, which join first, and waiters
of other queues are left out), so where it cannot be sure it allows: an invalid spec (or more
shards than a capacity), a missing queue, a free slot, a burst the operator has not placed yet.
The operator's QueueFull stays the backstop: allowing too much costs a rejected execution, never
a wrong denial.

Pure: never any I/O, never changes the view; the caller says whether this replica leads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import ValidationError

from ..api.execution import Phase, Priority, TestExecutionSpec
from ..api.settings import Settings
from ..cache.view import ClusterView
from ..planner.admission import occupancy
from ..planner.model import Context, Memo

QueueKey = tuple[str, str]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""


ALLOW = Verdict(True)


def _deny(message: str) -> Verdict:
    return Verdict(False, 429, "TooManyRequests", message)


@dataclass(frozen=True)
class Waiter:
    rank: int  # priority class, 0 = critical
    created: datetime
    shards: int


@dataclass
class Waiters:
    """The Queued executions, per queue and in all: what the planner counts against the caps."""

    per_queue: dict[QueueKey, list[Waiter]] = field(default_factory=dict)
    total: int = 0


def waiters(view: ClusterView) -> Waiters:
    out = Waiters()
    executions = view.executions
    for key in view.active:  # every waiter is active (not terminal); finished ones are not looked at
        rec = executions.get(key)
        if rec is None or rec.summary.phase is not Phase.Queued or rec.spec is None or rec.deleting or rec.spec.cancel:
            continue  # (the summary: a finished record's status is kept packed, see cache.compact)
        out.per_queue.setdefault((rec.namespace, rec.spec.queue), []).append(
            Waiter(rec.spec.priority.rank, rec.created, rec.spec.shards))
        out.total += 1
    return out


def _started_ahead(ahead: list[Waiter], free: int) -> tuple[int, int]:
    """How many of the waiters ahead (in admission order) start in `free` slots, and the slots left."""
    started = 0
    for waiter in sorted(ahead, key=lambda w: (w.rank, w.created)):
        if waiter.shards <= free:
            free -= waiter.shards
            started += 1
    return started, free


def admit_create(view: ClusterView, settings: Settings, namespace: str, obj: dict | None) -> Verdict:
    """The verdict on creating `obj` (a TestExecution) in `namespace`."""
    try:
        spec = TestExecutionSpec.model_validate((obj or {}).get("spec") or {})
    except ValidationError:
        return ALLOW  # the schema or the operator says what is wrong, with the field's name
    ctx = Context(view, settings, datetime.now(timezone.utc), {}, Memo())
    qspec = ctx.queue_spec(namespace, spec.queue)
    if qspec is None:
        return ALLOW  # the operator reports QueueNotFound and waits for the queue
    if spec.shards > min(qspec.running_capacity, settings.running_capacity):
        return ALLOW  # it could never start: the operator's InvalidSpec says why, better than "full"
    qkey = (namespace, spec.queue)
    occ = occupancy(view)
    w = waiters(view)
    in_queue = w.per_queue.get(qkey, [])
    free = 0 if qspec.paused else min(qspec.running_capacity - occ.of(qkey), settings.running_capacity - occ.used)
    started, free = _started_ahead([x for x in in_queue if x.rank <= spec.priority.rank], free)
    if spec.shards <= free:
        return ALLOW  # it may start at once, after those ahead of it in its queue
    waiting, total = len(in_queue) - started, w.total - started
    if waiting >= qspec.queued_capacity:
        return _deny(f"queue {spec.queue} in namespace {namespace} is full: {waiting}/{qspec.queued_capacity} "
                     f"waiting (queuedCapacity {qspec.queued_capacity}); retry later")
    if total >= settings.queued_capacity:
        return _deny(f"Sluice is full: {total}/{settings.queued_capacity} executions waiting cluster-wide "
                     f"(the operator's queued capacity, SLUICE_QUEUED_CAPACITY); retry later")
    return ALLOW


def _priority(obj: dict | None) -> str:
    value = ((obj or {}).get("spec") or {}).get("priority")
    return value if isinstance(value, str) and value else Priority.normal.value


def priority_move(old: dict | None, new: dict | None) -> tuple[str, str] | None:
    """(from, to) when an update changes spec.priority, else None."""
    before, after = _priority(old), _priority(new)
    return (before, after) if before != after else None


def priority_message(before: str, after: str, user: str) -> str:
    return f"priority changed from {before} to {after} by {user or 'an unknown user'}"
