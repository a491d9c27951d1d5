"""Every phase change of an execution's status, each written once.

The planner decides *that* an execution moves (admitted, backing off, finished); these
functions say *what that means* for the status fields, so that a phase never comes with a stale
position, a leftover `nextAttemptAt` or conditions that disagree with it (in the manner of
kopf's `State.with_outcome`). Each one changes the status it is given in place, acknowledges the
generation it acted on, and sets the conditions from the result. Pure: never any I/O.
"""
from __future__ import annotations

from datetime import datetime

from ..api.execution import AttemptRecord, Phase, TestExecutionStatus
from .conditions import apply_phase_conditions


def _settle(st: TestExecutionStatus, phase: Phase, reason: str, message: str, now: datetime, generation: int) -> None:
    if phase != Phase.Queued:
        st.estimated_start_at = None  # an estimate only means something while it waits
    st.phase, st.reason, st.message = phase, reason, message
    st.observed_generation = generation
    apply_phase_conditions(st, now, generation)


def attempt_record(st: TestExecutionStatus, attempt: int) -> AttemptRecord | None:
    for r in st.attempts:
        if r.attempt == attempt:
            return r
    return None


def to_pending(st: TestExecutionStatus, reason: str, message: str, now: datetime, generation: int) -> None:
    """Cannot wait in a queue yet (its TestQueue does not exist)."""
    st.next_attempt_at = None
    st.queue_position = None
    _settle(st, Phase.Pending, reason, message, now, generation)


def to_queued(st: TestExecutionStatus, reason: str, message: str, position: int | None, queued_at: datetime,
              now: datetime, generation: int) -> None:
    """Waiting in its queue (joining it, or a new position or reason while it waits)."""
    st.queued_at = st.queued_at or queued_at
    st.queue_position = position
    _settle(st, Phase.Queued, reason, message, now, generation)


def to_running(st: TestExecutionStatus, attempt: int, job_name: str, message: str, queued_at: datetime,
               now: datetime, generation: int) -> None:
    """An attempt's Job exists (just created, or adopted after a crash)."""
    if st.attempt != attempt:
        st.progress = None  # the new attempt's own progress comes from its own stream
    st.attempt, st.job_name = attempt, job_name
    st.queued_at = st.queued_at or queued_at
    st.started_at = st.started_at or now
    st.queue_position, st.next_attempt_at = None, None
    if attempt_record(st, attempt) is None:
        st.attempts.append(AttemptRecord(attempt=attempt, job_name=job_name, started_at=now))
    _settle(st, Phase.Running, "Admitted", message, now, generation)


def close_attempt(st: TestExecutionStatus, attempt: int, outcome: str, reason: str, now: datetime,
                  message: str | None = None, exit_code: int | None = None) -> AttemptRecord:
    """Records how an attempt ended; an attempt is closed exactly once, so nothing re-decides it."""
    record = attempt_record(st, attempt)
    if record is None:
        record = AttemptRecord(attempt=attempt, job_name=st.job_name, started_at=st.started_at)
        st.attempts.append(record)
    record.completed_at = record.completed_at or now
    record.outcome, record.reason = outcome, reason
    record.exit_code = exit_code
    record.message = (message or "")[:1024] or None
    return record


def to_backing_off(st: TestExecutionStatus, next_attempt_at: datetime, message: str, now: datetime,
                   generation: int) -> None:
    """An attempt failed in a way worth retrying: the next one starts at `next_attempt_at`."""
    st.next_attempt_at = next_attempt_at
    st.job_name = None
    st.queue_position = None
    _settle(st, Phase.BackingOff, "RetryScheduled", message, now, generation)


def to_terminal(st: TestExecutionStatus, phase: Phase, reason: str, message: str, now: datetime,
                generation: int) -> None:
    """The end: Succeeded, Failed, TimedOut, Cancelled or Rejected."""
    assert phase.terminal, phase
    st.completed_at = st.completed_at or now
    st.queue_position = None
    st.next_attempt_at = None
    _settle(st, phase, reason, message, now, generation)
