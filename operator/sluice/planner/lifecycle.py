"""One execution's lifecycle: adopt, observe its attempt (and fail it early when its pods never
start, see `pod_pending`), back off, validate, time out.

`step_execution` looks at one execution and its own Jobs and either changes its status (a
`StatusWrite` in the plan), asks for something to be read or stopped, or returns it as a
`Candidate` that waits to start an attempt (admission decides who starts). Every phase change
goes through `status.transitions`. Pure: never any I/O, never touches the view.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from ..api.effective import EffectiveSpec, effective_spec
from ..api.execution import Phase, TestExecutionStatus
from ..api.queue import TestQueueSpec
from ..cache.view import ExecutionRecord, JobRecord
from sluice_runner.errors import ErrorClass

from ..policy.outcome import REASON_OF_CLASS, classify_attempt
from ..policy.retry import decide_retry
from ..policy.validate import NOT_ALLOWED, not_allowed_problems, semantic_problems
from ..queue.ordering import Candidate
from ..status.conditions import acknowledge_generation
from ..status.transitions import attempt_record, close_attempt, to_backing_off, to_pending, to_running, to_terminal
from .model import Context, Plan, StatusWrite
from .pod_pending import REASON_POD_PENDING_TOO_LONG, judge_pending_pods, pending_message


WARNING_REASONS = frozenset({"QueueNotFound"})  # waiting for something only a user can fix


def event_for(st: TestExecutionStatus) -> tuple[str, str, str]:
    """The Event that tells a transition in `kubectl describe`."""
    warn = st.phase in (Phase.Failed, Phase.TimedOut, Phase.Rejected) or st.reason in WARNING_REASONS
    kind = "Warning" if warn else "Normal"
    return (kind, st.reason or (st.phase.value if st.phase else "Unknown"), st.message or "")


class Step:
    """The per-execution part of a plan: the status is copied on first change only."""

    def __init__(self, rec: ExecutionRecord, ctx: Context, plan: Plan):
        self.rec, self.ctx, self.plan = rec, ctx, plan
        self._st: TestExecutionStatus | None = None

    @property
    def st(self) -> TestExecutionStatus:
        if self._st is None:
            self._st = self.rec.status.working_copy()
        return self._st

    @property
    def changed(self) -> bool:
        return self._st is not None

    def write(self, event: bool = True) -> None:
        self.plan.writes.append(StatusWrite(self.rec.key, self.st, event_for(self.st) if event else None))

    def finish(self, phase: Phase, reason: str, message: str) -> None:
        to_terminal(self.st, phase, reason, message, self.ctx.now, self.rec.generation)
        self.write()

    def effective(self, qspec: TestQueueSpec) -> EffectiveSpec:
        return effective_spec(self.rec.spec, qspec.defaults, self.ctx.settings)


def results_sentence(st: TestExecutionStatus, fallback: str) -> str:
    r = st.results
    if r is None or not r.total:
        return fallback
    return f"{r.passed}/{r.total} passed, {r.failed} failed, {r.skipped} skipped, {r.flaky} flaky"


def _complete_attempt(step: Step, job: JobRecord, eff: EffectiveSpec) -> None:
    """A finished Job: record the attempt's outcome, then end or schedule a retry."""
    ctx, st = step.ctx, step.st
    outcome = classify_attempt(job.obj, ctx.view.pods.get((job.namespace, job.name), []))
    timed_out = outcome.failure_class == ErrorClass.TIMEOUT
    label = "Succeeded" if outcome.succeeded else "TimedOut" if timed_out else "Failed"
    close_attempt(st, job.attempt, label, outcome.reason, ctx.now, outcome.message, outcome.exit_code)
    if outcome.results is not None:
        st.results = outcome.results
    if outcome.artifacts is not None:
        st.artifacts = outcome.artifacts
    if outcome.succeeded:
        step.finish(Phase.Succeeded, "TestsPassed", results_sentence(st, "all tests passed"))
    elif timed_out:
        step.finish(Phase.TimedOut, "DeadlineExceeded",
                    f"attempt {job.attempt} ran past timeoutSeconds ({eff.timeout_seconds}s)")
    else:
        _fail_or_retry(step, eff, outcome.failure_class or ErrorClass.INFRASTRUCTURE, outcome.reason,
                       outcome.message, job.attempt)


def _fail_or_retry(step: Step, eff: EffectiveSpec, cls: str, reason: str, message: str, attempt: int) -> None:
    """The attempt is closed already; retry it after a backoff, or end."""
    ctx, st = step.ctx, step.st
    decision = decide_retry(eff.retry, cls, attempt, seed=step.rec.uid)
    if decision.retry:
        due = ctx.now + timedelta(seconds=decision.delay_seconds)
        to_backing_off(st, due, f"attempt {attempt} failed ({reason}: {message[:300]}); "
                       f"attempt {attempt + 1} in {decision.delay_seconds:.1f}s", ctx.now, step.rec.generation)
        step.write()
        ctx.timer(step.plan, step.rec.key, due)
        return
    text = message if attempt == 1 else f"attempt {attempt} of {attempt}: {message}"
    if cls == ErrorClass.TEST_FAILURE:
        text = results_sentence(st, message or "tests failed")
    step.finish(Phase.Failed, reason, text[:1024])


def _stop_jobs(jobs: dict[int, JobRecord], plan: Plan) -> None:
    for job in jobs.values():
        if job.occupies and not job.deleting:
            plan.deletes.append(job)


def _adopt(step: Step, jobs: dict[int, JobRecord]) -> None:
    """A Job exists for an attempt the status does not know: we crashed between create and
    status write. Adopt it rather than start another."""
    latest = max(jobs)
    if latest <= (step.rec.status.attempt or 0):
        return
    ctx, job = step.ctx, jobs[latest]
    queued_at = ctx.first_seen.get(step.rec.key, ctx.now)
    to_running(step.st, latest, job.name, f"attempt {latest} is running (Job {job.name})", queued_at,
               ctx.now, step.rec.generation)


def _observe_attempt(step: Step, jobs: dict[int, JobRecord], qspec: TestQueueSpec | None) -> bool:
    """Follows the attempt in progress; True when there is one (nothing else to decide now)."""
    st = step.st if step.changed else step.rec.status
    attempt = st.attempt or 0
    record = attempt_record(st, attempt) if attempt else None
    if record is None or record.completed_at is not None:
        return False
    qspec = qspec or TestQueueSpec()  # its queue was deleted while it ran: finish with defaults
    current = jobs.get(attempt)
    if current is None:
        text = f"Job {record.job_name} disappeared before its outcome was read"
        infra = ErrorClass.INFRASTRUCTURE
        close_attempt(step.st, attempt, "Failed", REASON_OF_CLASS[infra], step.ctx.now, text)
        _fail_or_retry(step, step.effective(qspec), infra, REASON_OF_CLASS[infra], text, attempt)
    elif current.finished is None:
        if not _fail_if_pods_never_started(step, current, qspec) and step.changed:
            step.write()
    elif (current.namespace, current.name) not in step.ctx.view.pods:
        step.plan.fetch_pods.append(current)
    else:
        _complete_attempt(step, current, step.effective(qspec))
    return True


def _fail_if_pods_never_started(step: Step, job: JobRecord, qspec: TestQueueSpec) -> bool:
    """A pod of the running attempt still not started past the queue's grace, saying why
    (`planner.pod_pending`): close the attempt as an infrastructure failure, stop its Job, then
    retry or end. Otherwise wake when the next pod's grace runs out. True when it failed."""
    ctx, grace = step.ctx, qspec.pod_pending_grace_seconds
    pods = ctx.view.runner_pods.of_job(job.uid)
    if not pods:
        return False
    verdict = judge_pending_pods(pods, grace, ctx.now)
    if verdict.stuck is None:
        if verdict.recheck_at is not None:
            ctx.timer(step.plan, step.rec.key, verdict.recheck_at)
        return False
    text = pending_message(verdict.stuck, grace)
    close_attempt(step.st, job.attempt, "Failed", REASON_POD_PENDING_TOO_LONG, ctx.now, text)
    if not job.deleting:
        step.plan.deletes.append(job)
    _fail_or_retry(step, step.effective(qspec), ErrorClass.INFRASTRUCTURE, REASON_POD_PENDING_TOO_LONG, text,
                   job.attempt)
    return True


def _stop_closed_attempts(st: TestExecutionStatus, jobs: dict[int, JobRecord], plan: Plan) -> None:
    """A Job still running for an attempt already closed (failed early, see above) is stopped; this
    sends the delete again after a refused one."""
    for attempt, job in jobs.items():
        record = attempt_record(st, attempt)
        if record is not None and record.completed_at is not None and job.occupies and not job.deleting:
            plan.deletes.append(job)


def _queue_deadline(step: Step) -> tuple[datetime, datetime | None]:
    """When it joined the queue, and when `queueTimeoutSeconds` runs out (None: never)."""
    ctx, rec = step.ctx, step.rec
    queued_at = rec.status.queued_at or ctx.first_seen.get(rec.key, ctx.now)
    timeout = rec.spec.queue_timeout_seconds
    return queued_at, (queued_at + timedelta(seconds=timeout) if timeout > 0 else None)


def _environments_ready(step: Step) -> bool:
    """Every named TestEnvironment exists and admits the namespace; else it is rejected, or waits
    a short grace for an environment applied together with it (the watch may bring it later)."""
    rec, ctx = step.rec, step.ctx
    view = ctx.view
    missing = [e for e in rec.spec.environments if e not in view.environments]
    if missing:
        first = ctx.first_seen.get(rec.key, ctx.now)
        deadline = first + timedelta(seconds=ctx.settings.environment_missing_grace_seconds)
        if view.environments_listed and ctx.now >= deadline:
            step.finish(Phase.Rejected, "InvalidSpec",
                        f"TestEnvironment {', '.join(missing)} does not exist: create it (kubectl get testenvironments) "
                        f"or remove it from spec.environments")
        else:
            ctx.timer(step.plan, rec.key, max(deadline, ctx.now + timedelta(seconds=1)))
        return False
    labels = view.namespace_labels.get(rec.namespace)
    for name in rec.spec.environments:
        selector = view.environments[name].spec.namespace_selector
        if selector is None or (not selector.match_labels and not selector.match_expressions):
            continue
        if labels is None and not view.environments_listed:  # not known yet
            ctx.timer(step.plan, rec.key, ctx.now + timedelta(seconds=1))
            return False
        labels = labels if labels is not None else {"kubernetes.io/metadata.name": rec.namespace}
        if not selector.matches(labels):
            step.finish(Phase.Rejected, "InvalidSpec",
                        f"TestEnvironment {name} does not admit namespace {rec.namespace}: its namespaceSelector "
                        f"does not match the namespace's labels; ask its owner, or remove it from spec.environments")
            return False
    return True


def _validate(step: Step, qspec: TestQueueSpec) -> bool:
    """First attempt only: True when the spec is fit to queue (else it is rejected or checked)."""
    rec, ctx = step.rec, step.ctx
    if rec.spec.source.config_map is not None and rec.key not in ctx.view.missing_config_maps:
        step.plan.check_config_maps.append((rec.key, rec.spec.source.config_map.name))
        return False
    if rec.spec.environments and not _environments_ready(step):
        return False
    problems = semantic_problems(step.effective(qspec), qspec.running_capacity, ctx.settings.running_capacity,
                                 ctx.view.missing_config_maps.get(rec.key), name=rec.name, settings=ctx.settings)
    if problems:
        step.finish(Phase.Rejected, "InvalidSpec", "; ".join(problems))
        return False
    return True


def step_execution(rec: ExecutionRecord, ctx: Context, plan: Plan) -> Candidate | None:
    """Advances one execution; returns it as a candidate when it waits to start an attempt."""
    if rec.deleting:
        return None
    jobs = ctx.view.jobs_of(rec.key)
    if rec.status.phase is not None and rec.status.phase.terminal:
        _stop_jobs(jobs, plan)  # e.g. cancelled, then crashed before the delete
        if (rec.status.observed_generation or 0) < rec.generation:
            step = Step(rec, ctx, plan)
            acknowledge_generation(step.st, ctx.now, rec.generation)
            step.write(event=False)
        return None
    step = Step(rec, ctx, plan)
    if rec.spec is None:
        step.finish(Phase.Rejected, "InvalidSpec", rec.spec_error or "the spec does not match the schema")
        return None
    if rec.spec.cancel:
        _stop_jobs(jobs, plan)
        current = attempt_record(step.st, step.st.attempt or 0)
        if current is not None and current.completed_at is None:
            close_attempt(step.st, current.attempt, "Cancelled", "Cancelled", ctx.now)
        step.finish(Phase.Cancelled, "Cancelled", "cancelled by spec.cancel")
        return None
    if jobs:
        _adopt(step, jobs)
        _stop_closed_attempts(rec.status, jobs, plan)
    qspec = ctx.queue_spec(rec.namespace, rec.spec.queue)
    if _observe_attempt(step, jobs, qspec):
        return None
    refusal = ctx.view.refusals.get(rec.key)
    if refusal is not None:
        step.finish(Phase.Rejected, "InvalidSpec", refusal)
        return None
    return _wait(step, qspec)


def _wait(step: Step, qspec: TestQueueSpec | None) -> Candidate | None:
    """No attempt in progress: back off, wait for the queue, or become a candidate."""
    rec, ctx, plan = step.rec, step.ctx, step.plan
    st = rec.status
    retrying = st.phase == Phase.BackingOff
    queued_at, deadline = _queue_deadline(step)
    if deadline is not None and not retrying:
        if ctx.now >= deadline:
            step.st.queued_at = queued_at
            step.finish(Phase.Failed, "QueueTimeout",
                        f"not admitted within queueTimeoutSeconds ({rec.spec.queue_timeout_seconds}s)")
            return None
        ctx.timer(plan, rec.key, deadline)
    if qspec is None:
        if st.phase != Phase.Pending or st.reason != "QueueNotFound":
            to_pending(step.st, "QueueNotFound",
                       f"TestQueue {rec.spec.queue!r} does not exist in namespace {rec.namespace}: create it",
                       ctx.now, rec.generation)
            step.write()
        return None
    if retrying:
        due = st.next_attempt_at or ctx.now
        if due > ctx.now:
            ctx.timer(plan, rec.key, due)
            return None
    elif (st.phase is None or st.phase == Phase.Pending) and not _validate(step, qspec):
        return None
    not_allowed = not_allowed_problems(rec.spec, qspec, ctx.settings)  # before every attempt
    if not_allowed:
        step.finish(Phase.Rejected, NOT_ALLOWED, "; ".join(not_allowed))
        return None
    # attempt + 1, not 1: a retry sent back to the queue (its TestQueue was deleted while it
    # backed off) must not reuse the Job name of the attempt that failed.
    return _candidate(rec, st, (st.attempt or 0) + 1, queued=not retrying, queued_at=queued_at)


def _candidate(rec: ExecutionRecord, st: TestExecutionStatus, attempt: int, queued: bool,
               queued_at: datetime) -> Candidate:
    return Candidate(
        namespace=rec.namespace, name=rec.name, queue=rec.spec.queue, priority=rec.spec.priority,
        created=rec.created, queued_at=st.queued_at or queued_at,
        shards=rec.spec.shards, attempt=attempt, queued=queued, environments=tuple(rec.spec.environments),
    )
