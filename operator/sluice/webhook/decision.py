"""Whether a new TestExecution may join its queue now, judged at the API before it is stored.

The rule, in one line: deny a create (HTTP 429, TooManyRequests) when it could not start at once
and its queue's waiters, or all waiters, already reach their queued capacity. The numbers are the
planner's own: the dispatcher's view, `planner.admission.occupancy` for what runs, and the same
waiters `planner.admission` counts against the caps (Queued ones, plus new ones not yet placed,
which were created earlier and join first). Where the webhook cannot be sure it allows: an
invalid spec, a missing queue, free slots. The operator's `Rejected/QueueFull` stays the
backstop, so allowing too much costs a rejected execution, never a wrong admission.

Pure: never any I/O, never changes the view; the caller says whether this replica leads.
"""
from __future__ import annotations

from dataclasses import dataclass
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


def waiting_counts(view: ClusterView) -> tuple[dict[QueueKey, int], int]:
    """Waiters per queue and in all, as `planner.admission` counts them against the queued caps."""
    per_queue: dict[QueueKey, int] = {}
    total = 0
    executions = view.executions
    for key in view.active:  # every waiter is active (not terminal); finished ones are not looked at
        rec = executions.get(key)
        if rec is None or rec.spec is None or rec.deleting or rec.spec.cancel:
            continue
        phase = rec.status.phase
        if phase is Phase.Queued or phase is None or phase is Phase.Pending:
            qkey = (rec.namespace, rec.spec.queue)
            per_queue[qkey] = per_queue.get(qkey, 0) + 1
            total += 1
    return per_queue, total


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
    qkey = (namespace, spec.queue)
    occ = occupancy(view)
    if (not qspec.paused and occ.of(qkey) + spec.shards <= qspec.running_capacity
            and occ.used + spec.shards <= settings.running_capacity):
        return ALLOW  # slots are free: it may start at once, whatever waits
    per_queue, total = waiting_counts(view)
    in_queue = per_queue.get(qkey, 0)
    if in_queue >= qspec.queued_capacity:
        return _deny(f"queue {spec.queue} in namespace {namespace} is full: {in_queue}/{qspec.queued_capacity} "
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
