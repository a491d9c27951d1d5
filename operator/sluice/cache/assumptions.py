"""What the operator has asserted but not yet seen back from the API, and whose status wins.

In the spirit of Kueue's `Cache.AssumeWorkload`/`ForgetWorkload` and the Job controller's
expectations: a decision is applied to the view at once (so the next pass never takes it
again), and these records remember which parts of the view are ours rather than the API's
until the API confirms or refuses them:

- a status decided or in flight (`pending`, `writing`): a watch event carrying an older status
  must not undo it;
- a Job being created (`creating`): a watch DELETED or a relist that has not seen it yet must
  not drop its placeholder (it holds its slots), and a status write that returns meanwhile must
  not undo the optimistic Running status;
- a delete sent (`JobRecord.deleting`): it is not sent again, and is taken back on refusal.

Every rule is a function here, pure over (view, assumptions): `apply_plan` is what both the
dispatcher and the tests' simulator do with a plan, so they cannot drift apart; the `observe_*`
and `*_done`/`*_failed` functions are what the watch handlers and the actuators do with what
comes back. None of them calls the API.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..api.execution import TestExecutionStatus
from ..planner.model import CreateAttempt, Plan
from .view import ClusterView, JobRecord, Key

log = logging.getLogger("sluice.assumptions")

Event = tuple[str, str, str]


@dataclass
class Effects:
    """The API calls a plan needs, for the actuators (writers to start, not one per write)."""

    status_writers: list[Key] = field(default_factory=list)
    creates: list[CreateAttempt] = field(default_factory=list)
    deletes: list[JobRecord] = field(default_factory=list)
    fetch_pods: list[JobRecord] = field(default_factory=list)
    check_config_maps: list[tuple[Key, str]] = field(default_factory=list)
    sources: list[tuple[Key, dict]] = field(default_factory=list)


@dataclass
class Assumptions:
    # execution -> (status to send, Events to post after it): only the newest is sent
    pending: dict[Key, tuple[TestExecutionStatus, list[Event]]] = field(default_factory=dict)
    writing: set[Key] = field(default_factory=set)  # executions whose status writer runs
    creating: dict[Key, Key] = field(default_factory=dict)  # execution -> Job whose create is in flight
    # the API's own status of an execution while ours overlays it (restored if ours is refused)
    observed: dict[Key, TestExecutionStatus] = field(default_factory=dict)
    repeated: set[Key] = field(default_factory=set)  # executions already warned of a repeated write

    def overlays(self, key: Key) -> bool:
        return key in self.pending or key in self.writing or key in self.creating

    def forget(self, key: Key) -> None:
        self.pending.pop(key, None)
        self.observed.pop(key, None)
        self.repeated.discard(key)

    def protected_jobs(self) -> set[Key]:
        """Jobs a relist must not drop: created by us, maybe not in the list yet."""
        return set(self.creating.values())

    def protected_executions(self) -> set[Key]:
        return set(self.pending) | self.writing


def _essence(value):
    """A status without its timestamps: two writes with the same essence say the same thing."""
    if isinstance(value, dict):
        return {k: _essence(v) for k, v in value.items() if not (k.endswith("At") or k.endswith("Time"))}
    if isinstance(value, list):
        return [_essence(v) for v in value]
    return value


def _same_fields(a: TestExecutionStatus, b: TestExecutionStatus) -> bool:
    """The cheap part of the comparison first: most writes differ in one of these."""
    return (a.phase, a.reason, a.message, a.queue_position, a.attempt) == \
        (b.phase, b.reason, b.message, b.queue_position, b.attempt)


def assume_status(view: ClusterView, a: Assumptions, key: Key, status: TestExecutionStatus,
                  event: Event | None) -> bool:
    """Puts `status` in the view now and queues it for the execution's writer.

    Returns True when a writer must be started. A status that says what the view already says
    (timestamps aside) is a planner loop, not a change: it is dropped, with one warning.
    """
    rec = view.executions.get(key)
    if rec is None:
        return False
    if _same_fields(status, rec.status) and _essence(status.wire()) == _essence(rec.status.wire()):
        if key not in a.repeated:
            a.repeated.add(key)
            log.warning("planner asked twice for the same status of %s/%s (%s %s): not written",
                        key[0], key[1], status.phase and status.phase.value, status.reason)
        return False
    return _queue_write(view, a, key, status, event)


def _queue_write(view: ClusterView, a: Assumptions, key: Key, status: TestExecutionStatus,
                 event: Event | None) -> bool:
    prev = a.pending.get(key)
    events = (prev[1] if prev else []) + ([event] if event else [])
    if not a.overlays(key):
        a.observed[key] = view.executions[key].status
    view.set_status(key, status)
    a.pending[key] = (status, events)
    if key in a.writing:
        return False
    a.writing.add(key)
    return True


def apply_plan(view: ClusterView, plan: Plan, a: Assumptions) -> Effects:
    """Applies a plan to the view at once and returns the API calls it needs."""
    fx = Effects(fetch_pods=plan.fetch_pods, check_config_maps=plan.check_config_maps, sources=plan.sources)
    for w in plan.writes:
        if assume_status(view, a, w.key, w.status, w.event):
            fx.status_writers.append(w.key)
    for c in plan.creates:
        job_key = (c.key[0], c.job["metadata"]["name"])
        view.upsert_job(dict(c.job, metadata=dict(c.job["metadata"], resourceVersion="0")))
        rec = view.executions.get(c.key)
        if rec is not None and not a.overlays(c.key):
            a.observed[c.key] = rec.status
        a.creating[c.key] = job_key
        view.set_status(c.key, c.status)  # optimistic: the next pass must not admit it again
        fx.creates.append(c)
    for job in plan.deletes:
        job.deleting = True
        fx.deletes.append(job)
    return fx


# ---- what comes back ------------------------------------------------------------------------

def observe_execution(view: ClusterView, a: Assumptions, deleted: bool, obj: dict) -> bool:
    """A watch or list event for an execution; True when the view changed."""
    meta = obj.get("metadata") or {}
    key = (meta.get("namespace", ""), meta.get("name", ""))
    if deleted:
        view.delete_execution(*key)
        a.forget(key)
        return True
    old = view.executions.get(key)
    if not view.upsert_execution(obj):
        return False
    if old is not None and a.overlays(key):
        a.observed[key] = view.executions[key].status
        view.set_status(key, old.status)  # ours is newer
    return True


def observe_job_deleted(view: ClusterView, a: Assumptions, key: Key) -> None:
    if key not in a.creating.values():  # a create in flight: the DELETED is of an older Job
        view.delete_job(*key)


def next_status(a: Assumptions, key: Key) -> tuple[TestExecutionStatus, list[Event]] | None:
    """The writer takes the newest status to send (and the Events it carries), or None: done."""
    return a.pending.pop(key, None)


def status_written(view: ClusterView, a: Assumptions, key: Key, obj: dict) -> None:
    """The API took a status write: its answer is the truth, unless ours has moved on since."""
    if key in a.pending:
        return
    old = view.executions.get(key)
    view.upsert_execution(obj)
    if key in a.creating and old is not None:
        # A position write that returns while this execution's Job is being created must not
        # undo the optimistic Running status: the next pass would adopt the Job and announce
        # the start a second time.
        a.observed[key] = view.executions[key].status
        view.set_status(key, old.status)
    else:
        a.observed.pop(key, None)


def status_write_failed(a: Assumptions, key: Key) -> None:
    """The write was refused or lost: drop what was queued; the caller re-reads the execution."""
    a.pending.pop(key, None)
    a.repeated.discard(key)


def writer_done(view: ClusterView, a: Assumptions, key: Key) -> None:
    a.writing.discard(key)
    if not a.overlays(key):
        a.observed.pop(key, None)
    view.touch(key)


def create_succeeded(view: ClusterView, a: Assumptions, c: CreateAttempt, job: dict) -> bool:
    """The Job exists (made now, or adopted after a 409 because this execution owns it): the
    Running status it was created under is now worth writing. True when a writer must start.

    If a newer status was decided meanwhile (say a cancel), that one is already queued and the
    Running status it was derived from is not written over it.
    """
    view.upsert_job(job)
    a.creating.pop(c.key, None)
    view.touch(c.key)
    rec = view.executions.get(c.key)
    if rec is None or rec.status is not c.status:
        return False
    return _queue_write(view, a, c.key, c.status, c.event)


def create_failed(view: ClusterView, a: Assumptions, c: CreateAttempt, refusal: str | None) -> None:
    """The Job was not made: free its placeholder and take back the optimistic status.

    `refusal` is set when retrying cannot help (the API rejected the object, or the name is held
    by something this execution does not own): the planner then rejects the execution.
    """
    job_key = a.creating.pop(c.key, None) or (c.key[0], c.job["metadata"]["name"])
    view.delete_job(*job_key)
    rec = view.executions.get(c.key)
    observed = a.observed.get(c.key)
    if rec is not None and rec.status is c.status and observed is not None and not a.overlays(c.key):
        view.set_status(c.key, observed)  # nothing newer was decided meanwhile
        a.observed.pop(c.key, None)
    if refusal is not None:
        view.set_refusal(c.key, refusal)
    view.touch(c.key)


def delete_failed(view: ClusterView, job: JobRecord) -> None:
    """The delete was refused: the next pass may send it again (after the actuator's pause)."""
    job.deleting = False
    view.touch((job.namespace, job.execution))
