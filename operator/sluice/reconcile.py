"""The planner: from the whole observed view and the clock, what should happen now.

Level-triggered like the Job controller's sync: every call derives the desired state of every
execution from its spec, its status and the Jobs that carry its label, never from "what just
changed". Running it twice, or after a crash, reaches the same result; the dispatcher only
carries the plan out. Pure: no I/O, the clock is an argument.

Incremental like the Job controller's work queue: with a `Memo`, a pass re-steps only the
executions whose inputs changed (the view marks them dirty) or whose timer fell due, and keeps
the others' candidates from before; the queue-wide part (order, capacity, positions) is still
computed over every waiter. Stepping is a pure function of the view and the clock, so the
result is the same as a full pass; a test runs both side by side to hold that.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .api.effective import EffectiveSpec, effective_spec
from .api.execution import AttemptRecord, Phase, TestExecutionStatus
from .api.queue import TestQueueSpec
from .api.settings import Settings
from .kube.names import job_name
from .kube.render import render_job, render_source_config_map
from .policy.outcome import classify_attempt
from .policy.retry import decide_retry
from .policy.validate import semantic_problems
from .queue.capacity import Occupancy, QueueLimits, plan_admissions
from .queue.ordering import Candidate, next_promotion, order
from .queue.positions import position_worth_writing, queue_positions
from .status.conditions import apply_phase_conditions
from .view import ClusterView, ExecutionRecord, JobRecord, Key

DEFAULT_QUEUE = "default"


@dataclass
class StatusWrite:
    key: Key
    status: TestExecutionStatus
    event: tuple[str, str, str] | None = None  # (type, reason, message)


@dataclass
class CreateAttempt:
    key: Key
    uid: str
    attempt: int
    job: dict
    config_map: dict | None
    status: TestExecutionStatus
    event: tuple[str, str, str] | None = None


@dataclass
class Plan:
    writes: list[StatusWrite] = field(default_factory=list)
    creates: list[CreateAttempt] = field(default_factory=list)
    deletes: list[JobRecord] = field(default_factory=list)
    fetch_pods: list[JobRecord] = field(default_factory=list)
    check_config_maps: list[tuple[Key, str]] = field(default_factory=list)
    # inline-source ConfigMaps to create ahead, while the execution waits: the start of an
    # attempt is then one API call (the Job), not two in series
    sources: list[tuple[Key, dict]] = field(default_factory=list)
    wake_at: datetime | None = None
    waiting: int = 0  # candidates left waiting after this plan
    position_writes: int = 0  # how much of the position budget this plan used

    def wake(self, when: datetime) -> None:
        if self.wake_at is None or when < self.wake_at:
            self.wake_at = when


@dataclass
class Memo:
    """What the planner keeps between passes, so that a pass costs what changed, not what waits.

    `full()` forgets the candidates: the dispatcher asks for a full pass now and then, so a
    change that was never marked dirty would cost a delay, never a stuck execution.
    """

    waiting: dict[Key, Candidate] = field(default_factory=dict)
    timers: dict[Key, datetime] = field(default_factory=dict)  # earliest re-step per execution
    heap: list[tuple[datetime, Key]] = field(default_factory=list)
    full_pending: bool = True

    def full(self) -> None:
        self.full_pending = True

    def timer(self, key: Key, when: datetime) -> None:
        current = self.timers.get(key)
        if current is None or when < current:
            self.timers[key] = when
            heapq.heappush(self.heap, (when, key))

    def due(self, now: datetime) -> set[Key]:
        """Executions whose timer fell due (a stale heap entry only costs a spare re-step)."""
        out: set[Key] = set()
        while self.heap and self.heap[0][0] <= now:
            _, key = heapq.heappop(self.heap)
            if key in self.timers and self.timers[key] <= now:
                del self.timers[key]
            out.add(key)
        return out


@dataclass
class Context:
    view: ClusterView
    settings: Settings
    now: datetime
    first_seen: dict[Key, datetime]
    position_written_at: dict[Key, datetime]
    position_budget: int = 10**9
    memo: Memo | None = None
    _default_queue: TestQueueSpec | None = None

    def timer(self, plan: "Plan", key: Key, when: datetime) -> None:
        """Step this execution again at `when` (a backoff ends, a queue timeout expires)."""
        plan.wake(when)
        if self.memo is not None:
            self.memo.timer(key, when)

    def queue_spec(self, namespace: str, queue: str) -> TestQueueSpec | None:
        rec = self.view.queues.get((namespace, queue))
        if rec is not None:
            return rec.spec
        if queue == DEFAULT_QUEUE:
            # The default queue needs no object: only the operator-wide caps bound it.
            if self._default_queue is None:
                self._default_queue = TestQueueSpec(running_capacity=self.settings.running_capacity,
                                                    queued_capacity=self.settings.queued_capacity)
            return self._default_queue
        return None


def _terminal(st: TestExecutionStatus, phase: Phase, reason: str, message: str, ctx: Context, gen: int) -> None:
    st.phase, st.reason, st.message = phase, reason, message
    st.completed_at = st.completed_at or ctx.now
    st.queue_position = None
    st.next_attempt_at = None
    st.observed_generation = gen
    apply_phase_conditions(st, ctx.now, gen)


def _record(st: TestExecutionStatus, attempt: int) -> AttemptRecord | None:
    for r in st.attempts:
        if r.attempt == attempt:
            return r
    return None


def _event_for(st: TestExecutionStatus) -> tuple[str, str, str]:
    kind = "Warning" if st.phase in (Phase.Failed, Phase.TimedOut, Phase.Rejected) else "Normal"
    return (kind, st.reason or (st.phase.value if st.phase else "Unknown"), st.message or "")


class _Step:
    """The per-execution part of a plan."""

    def __init__(self, rec: ExecutionRecord, ctx: Context, plan: Plan):
        self.rec, self.ctx, self.plan = rec, ctx, plan
        self._st: TestExecutionStatus | None = None
        self.changed = False

    @property
    def st(self) -> TestExecutionStatus:
        """The status being changed: copied on first use, so a pass that changes nothing copies nothing."""
        if self._st is None:
            self._st = self.rec.status.model_copy(deep=True)
        return self._st

    def write(self, event: bool = True) -> None:
        self.plan.writes.append(StatusWrite(self.rec.key, self.st, _event_for(self.st) if event else None))

    def finish(self, phase: Phase, reason: str, message: str) -> None:
        _terminal(self.st, phase, reason, message, self.ctx, self.rec.generation)
        self.write()


def _effective(rec: ExecutionRecord, ctx: Context, qspec: TestQueueSpec) -> EffectiveSpec:
    return effective_spec(rec.spec, qspec.defaults, ctx.settings)


def _complete_attempt(step: _Step, job: JobRecord, eff: EffectiveSpec) -> None:
    """A finished Job: record the attempt's outcome, then end or schedule a retry."""
    ctx, st, rec = step.ctx, step.st, step.rec
    outcome = classify_attempt(job.obj, ctx.view.pods.get((job.namespace, job.name), []))
    record = _record(st, job.attempt)
    if record is None:
        record = AttemptRecord(attempt=job.attempt, job_name=job.name, started_at=st.started_at)
        st.attempts.append(record)
    record.completed_at = ctx.now
    record.outcome = "Succeeded" if outcome.succeeded else "Failed"
    record.reason = outcome.reason
    record.exit_code = outcome.exit_code
    record.message = (outcome.message or "")[:1024] or None
    if outcome.results is not None:
        st.results = outcome.results
    if outcome.artifacts is not None:
        st.artifacts = outcome.artifacts
    if outcome.succeeded:
        step.finish(Phase.Succeeded, "TestsPassed", _results_sentence(st, "all tests passed"))
        return
    if outcome.failure_class == "Timeout":
        record.outcome = "TimedOut"
        step.finish(Phase.TimedOut, "DeadlineExceeded",
                    f"attempt {job.attempt} ran past timeoutSeconds ({eff.timeout_seconds}s)")
        return
    _fail_or_retry(step, eff, outcome.failure_class or "InfrastructureError", outcome.reason, outcome.message, job.attempt)


def _fail_or_retry(step: _Step, eff: EffectiveSpec, cls: str, reason: str, message: str, attempt: int) -> None:
    ctx, st = step.ctx, step.st
    decision = decide_retry(eff.retry, cls, attempt, seed=step.rec.uid)
    if decision.retry:
        st.phase = Phase.BackingOff
        st.reason = "RetryScheduled"
        st.next_attempt_at = ctx.now + timedelta(seconds=decision.delay_seconds)
        st.message = (f"attempt {attempt} failed ({reason}: {message[:300]}); "
                      f"attempt {attempt + 1} in {decision.delay_seconds:.1f}s")
        st.job_name = None
        st.observed_generation = step.rec.generation
        apply_phase_conditions(st, ctx.now, step.rec.generation)
        step.write()
        ctx.timer(step.plan, step.rec.key, st.next_attempt_at)
        return
    text = message if attempt == 1 else f"attempt {attempt} of {attempt}: {message}"
    if cls == "TestFailure":
        text = _results_sentence(st, message or "tests failed")
    step.finish(Phase.Failed, reason, text[:1024])


def _results_sentence(st: TestExecutionStatus, fallback: str) -> str:
    r = st.results
    if r is None or not r.total:
        return fallback
    return f"{r.passed}/{r.total} passed, {r.failed} failed, {r.skipped} skipped, {r.flaky} flaky"


def _step_execution(rec: ExecutionRecord, ctx: Context, plan: Plan) -> Candidate | None:
    """Advances one execution; returns it as a candidate when it waits to start an attempt."""
    st = rec.status
    if rec.deleting:
        return None
    jobs = ctx.view.jobs_of(rec.key)
    if st.phase is not None and st.phase.terminal:
        for job in jobs.values():
            if job.occupies and not job.deleting:
                plan.deletes.append(job)  # e.g. cancelled, then crashed before the delete
        return None
    step = _Step(rec, ctx, plan)
    if rec.spec is None:
        step.finish(Phase.Rejected, "InvalidSpec", rec.spec_error or "the spec does not match the schema")
        return None
    qspec = ctx.queue_spec(rec.namespace, rec.spec.queue)
    if rec.spec.cancel:
        for job in jobs.values():
            if job.occupies and not job.deleting:
                plan.deletes.append(job)
        current = _record(step.st, step.st.attempt or 0)
        if current is not None and current.completed_at is None:
            current.completed_at, current.outcome, current.reason = ctx.now, "Cancelled", "Cancelled"
        step.finish(Phase.Cancelled, "Cancelled", "cancelled by spec.cancel")
        return None
    latest = max(jobs) if jobs else 0
    if latest > (st.attempt or 0):
        # A Job exists for an attempt the status does not know: we crashed between create and
        # status write. Adopt it rather than start another.
        st = step.st
        job = jobs[latest]
        st.attempt, st.job_name = latest, job.name
        st.started_at = st.started_at or ctx.now
        st.queued_at = st.queued_at or ctx.first_seen.get(rec.key, ctx.now)
        if _record(st, latest) is None:
            st.attempts.append(AttemptRecord(attempt=latest, job_name=job.name, started_at=ctx.now))
        st.phase, st.reason, st.message = Phase.Running, "Admitted", f"attempt {latest} is running (Job {job.name})"
        st.queue_position, st.next_attempt_at = None, None
        apply_phase_conditions(st, ctx.now, rec.generation)
        step.changed = True
    attempt = st.attempt or 0
    current = jobs.get(attempt) if attempt else None
    record = _record(st, attempt) if attempt else None
    in_attempt = record is not None and record.completed_at is None
    if in_attempt and qspec is None:
        qspec = TestQueueSpec()  # its queue was deleted while it ran: finish with defaults
    if in_attempt and current is not None:
        if current.finished is None:
            if step.changed:
                step.write()
            return None
        if (current.namespace, current.name) not in ctx.view.pods:
            plan.fetch_pods.append(current)
            return None
        _complete_attempt(step, current, _effective(rec, ctx, qspec))
        return None
    if in_attempt and current is None:
        _fail_or_retry(step, _effective(rec, ctx, qspec), "InfrastructureError", "InfrastructureError",
                       f"Job {record.job_name} disappeared before its outcome was read", attempt)
        return None
    if qspec is None:
        if st.phase != Phase.Pending or st.reason != "QueueNotFound":
            st = step.st
            st.phase, st.reason = Phase.Pending, "QueueNotFound"
            st.next_attempt_at = None
            st.message = f"TestQueue {rec.spec.queue!r} does not exist in namespace {rec.namespace}: create it"
            st.observed_generation = rec.generation
            apply_phase_conditions(st, ctx.now, rec.generation)
            step.write()
        return None
    if st.phase == Phase.BackingOff:
        due = st.next_attempt_at or ctx.now
        if due > ctx.now:
            ctx.timer(plan, rec.key, due)
            return None
        return _candidate(rec, st, attempt + 1, queued=False, ctx=ctx)
    # Waiting for its first attempt: validate once, then queue.
    if st.phase is None or st.phase == Phase.Pending:
        if rec.spec.source.config_map is not None:
            if rec.key not in ctx.view.missing_config_maps:
                plan.check_config_maps.append((rec.key, rec.spec.source.config_map.name))
                return None
        problems = semantic_problems(_effective(rec, ctx, qspec), qspec.running_capacity, ctx.settings.running_capacity,
                                     ctx.view.missing_config_maps.get(rec.key))
        if problems:
            step.finish(Phase.Rejected, "InvalidSpec", "; ".join(problems))
            return None
    queued_at = st.queued_at or ctx.first_seen.get(rec.key, ctx.now)
    timeout = rec.spec.queue_timeout_seconds
    if timeout > 0:
        deadline = queued_at + timedelta(seconds=timeout)
        if ctx.now >= deadline:
            step.st.queued_at = queued_at
            step.finish(Phase.Failed, "QueueTimeout",
                        f"not admitted within queueTimeoutSeconds ({timeout}s)")
            return None
        ctx.timer(plan, rec.key, deadline)
    # attempt + 1, not 1: a retry sent back to the queue (its TestQueue was deleted while it
    # backed off) must not reuse the Job name of the attempt that failed.
    return _candidate(rec, st, attempt + 1, queued=True, ctx=ctx, queued_at=queued_at)


def _candidate(rec: ExecutionRecord, st: TestExecutionStatus, attempt: int, queued: bool, ctx: Context,
               queued_at: datetime | None = None) -> Candidate:
    return Candidate(
        namespace=rec.namespace, name=rec.name, queue=rec.spec.queue, priority=rec.spec.priority,
        created=rec.created, queued_at=queued_at or st.queued_at or ctx.first_seen.get(rec.key, ctx.now),
        shards=rec.spec.shards, attempt=attempt, queued=queued,
    )


def _occupancy(view: ClusterView) -> Occupancy:
    occ = Occupancy()
    for job in view.occupying.values():
        occ.take((job.namespace, job.queue), job.slots)
    return occ


def _admit(c: Candidate, ctx: Context, plan: Plan) -> None:
    rec = ctx.view.executions[c.key]
    qspec = ctx.queue_spec(rec.namespace, rec.spec.queue) or TestQueueSpec()
    eff = _effective(rec, ctx, qspec)
    st = rec.status.model_copy(deep=True)
    name = job_name(rec.name, c.attempt)
    st.phase, st.reason = Phase.Running, "Admitted"
    st.message = f"attempt {c.attempt} started (Job {name})"
    st.attempt, st.job_name = c.attempt, name
    st.queued_at = st.queued_at or c.queued_at
    st.started_at = st.started_at or ctx.now
    st.queue_position, st.next_attempt_at = None, None
    st.observed_generation = rec.generation
    if _record(st, c.attempt) is None:
        st.attempts.append(AttemptRecord(attempt=c.attempt, job_name=name, started_at=ctx.now))
    apply_phase_conditions(st, ctx.now, rec.generation)
    plan.creates.append(CreateAttempt(
        key=c.key, uid=rec.uid, attempt=c.attempt,
        job=render_job(rec.namespace, rec.name, rec.uid, c.attempt, eff, ctx.settings),
        config_map=render_source_config_map(rec.namespace, rec.name, rec.uid, eff),
        status=st, event=("Normal", "Admitted", st.message),
    ))


def _queue_or_reject(waiting: list[Candidate], admitted: set[Key], positions: dict[Key, int],
                     ctx: Context, plan: Plan) -> None:
    """New executions join their queue if it has room; Queued ones get their position."""
    settings = ctx.settings
    per_queue: dict[tuple[str, str], int] = {}
    total = 0
    new: list[Candidate] = []
    queued: list[tuple[Candidate, ExecutionRecord]] = []  # in admission order
    executions = ctx.view.executions
    for c in waiting:
        if not c.queued or c.key in admitted:
            continue
        rec = executions[c.key]
        if rec.status.phase is Phase.Queued:
            per_queue[c.queue_key] = per_queue.get(c.queue_key, 0) + 1
            total += 1
            queued.append((c, rec))
        else:
            new.append(c)
    new.sort(key=lambda c: (c.created, c.queued_at, c.name, c.namespace))
    for c in new:
        rec = ctx.view.executions[c.key]
        qspec = ctx.queue_spec(c.namespace, c.queue) or TestQueueSpec()
        st = rec.status.model_copy(deep=True)
        in_queue = per_queue.get(c.queue_key, 0)
        if in_queue >= qspec.queued_capacity:
            st.queued_at = c.queued_at
            _terminal(st, Phase.Rejected, "QueueFull",
                      f"queue {c.queue!r} is full: {in_queue} executions waiting, queuedCapacity is "
                      f"{qspec.queued_capacity}", ctx, rec.generation)
            plan.writes.append(StatusWrite(c.key, st, _event_for(st)))
            continue
        if total >= settings.queued_capacity:
            st.queued_at = c.queued_at
            _terminal(st, Phase.Rejected, "QueueFull",
                      f"Sluice is full: {total} executions waiting cluster-wide, the operator's queued "
                      f"capacity (SLUICE_QUEUED_CAPACITY) is {settings.queued_capacity}", ctx, rec.generation)
            plan.writes.append(StatusWrite(c.key, st, _event_for(st)))
            continue
        per_queue[c.queue_key] = in_queue + 1
        total += 1
        st.phase = Phase.Queued
        paused = qspec.paused
        st.reason = "QueuePaused" if paused else "Queued"
        st.queued_at = c.queued_at
        st.queue_position = positions.get(c.key)
        st.message = (f"queue {c.queue!r} is paused" if paused else
                      f"waiting in queue {c.queue!r} at position {st.queue_position}")
        st.observed_generation = rec.generation
        apply_phase_conditions(st, ctx.now, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))  # waiting is not worth an Event each
        ctx.position_written_at[c.key] = ctx.now
        source = render_source_config_map(rec.namespace, rec.name, rec.uid, _effective(rec, ctx, qspec))
        if source is not None:
            plan.sources.append((c.key, source))
    _update_positions(queued, positions, ctx, plan)


def _update_positions(queued: list[tuple[Candidate, ExecutionRecord]], positions: dict[Key, int],
                      ctx: Context, plan: Plan) -> None:
    """Rewrites positions that moved, head of each queue first, within the position budget.

    Runs over every waiter on every pass, so the common case (nothing moved) is checked first.
    """
    settings = ctx.settings
    due: list[tuple[int, Candidate, str]] = []
    reasons: dict[tuple[str, str], str] = {}
    for c, rec in queued:
        reason = reasons.get(c.queue_key)
        if reason is None:
            qspec = ctx.queue_spec(c.namespace, c.queue) or TestQueueSpec()
            reason = reasons[c.queue_key] = "QueuePaused" if qspec.paused else "Queued"
        desired = positions.get(c.key)
        written = rec.status.queue_position
        if desired == written and reason == rec.status.reason:
            continue
        last = ctx.position_written_at.get(c.key)
        since = (ctx.now - last).total_seconds() if last else None
        if reason == rec.status.reason and not position_worth_writing(
                desired, written, settings.exact_positions, since, settings.position_interval_seconds):
            if desired != written and since is not None and since < settings.position_interval_seconds:
                plan.wake(last + timedelta(seconds=settings.position_interval_seconds))
            continue
        due.append((desired or 0, c, reason))
    due.sort(key=lambda d: d[0])
    for desired, c, reason in due[: ctx.position_budget]:
        rec = ctx.view.executions[c.key]
        st = rec.status.model_copy(deep=True)
        st.queue_position = desired
        st.reason = reason
        st.message = (f"queue {c.queue!r} is paused" if reason == "QueuePaused" else
                      f"waiting in queue {c.queue!r} at position {desired}")
        apply_phase_conditions(st, ctx.now, rec.generation)
        plan.writes.append(StatusWrite(c.key, st, None))
        ctx.position_written_at[c.key] = ctx.now
    plan.position_writes = min(len(due), ctx.position_budget)
    if len(due) > ctx.position_budget:
        plan.wake(ctx.now + timedelta(seconds=1.0 / settings.position_writes_per_second))


def plan(view: ClusterView, settings: Settings, now: datetime,
         first_seen: dict[Key, datetime], position_written_at: dict[Key, datetime],
         position_budget: int = 10**9, memo: Memo | None = None) -> Plan:
    """Everything that should happen now. The caller applies `writes`/`creates` to the view.

    Without a `memo` every active execution is stepped; with one, only those marked dirty since
    the last pass or whose timer is due. Consumes `view.dirty` either way.
    """
    memo = memo if memo is not None else Memo()
    ctx = Context(view, settings, now, first_seen, position_written_at, position_budget, memo)
    result = Plan()
    keys, view.dirty = view.dirty, set()
    if memo.full_pending:
        memo.full_pending = False
        memo.waiting.clear()
        keys |= view.active
    keys |= memo.due(now)
    for key in keys:
        memo.waiting.pop(key, None)
        rec = view.executions.get(key)
        if rec is None or key not in view.active:
            continue
        candidate = _step_execution(rec, ctx, result)
        if candidate is not None:
            memo.waiting[key] = candidate
    if memo.heap:
        result.wake(memo.heap[0][0])
    waiting = list(memo.waiting.values())
    aging = {k: q.spec.aging_seconds for k, q in view.queues.items()}
    ordered = order(waiting, now, aging)
    limits: dict[tuple[str, str], QueueLimits] = {}
    for c in ordered:
        if c.queue_key not in limits:
            qspec = ctx.queue_spec(c.namespace, c.queue) or TestQueueSpec()
            limits[c.queue_key] = QueueLimits(qspec.running_capacity, qspec.paused)
    admitted = plan_admissions(ordered, _occupancy(view), settings.running_capacity, limits)
    for c in admitted:
        _admit(c, ctx, result)
    admitted_keys = {c.key for c in admitted}
    result.waiting = len(ordered) - len(admitted)
    positions = queue_positions(ordered, admitted_keys)
    _queue_or_reject(ordered, admitted_keys, positions, ctx, result)
    for c in ordered if any(aging.values()) else ():
        if c.key not in admitted_keys:
            seconds = next_promotion(c, now, aging.get(c.queue_key, 0))
            if seconds is not None:
                result.wake(now + timedelta(seconds=seconds))
    return result
