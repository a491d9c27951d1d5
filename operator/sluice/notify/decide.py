"""What to do next for an execution's notifications, from its status and its queue's spec alone.

The protocol that makes a notification go out at most once per outcome, even across restarts:
before each POST the operator records `{state: Pending, attempts: N, message: null}` in the
execution's status and waits until the API has it; after the answer it records the answer
(`message`), and `Delivered`, `GivenUp`, or `Pending` again for a retry. So a record that is
Pending with no message is a POST whose answer nobody recorded: if this process is not the one
waiting for it, the operator stopped while it was in flight, and it is never sent again (the
receiver may have it: a second POST could be a duplicate). It ends `GivenUp` with a message
that says so. A Pending record with a message had its answer: the retry is resumed on schedule.

Pure: reads records and specs, returns steps; the sender carries them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.execution import NotificationRecord, Phase, TestExecutionStatus
from ..api.queue import Notification, TestQueueSpec
from .policy import ELIGIBLE_SECONDS, MAX_ATTEMPTS, backoff_seconds

UNKNOWN_MESSAGE = ("the operator stopped while POST {n} was waiting for its answer; not sent again, so the receiver "
                   "gets it at most once (it may or may not have it: Idempotency-Key {key})")


def notification_name(notification: Notification, index: int) -> str:
    """A notification's name in status.notifications: its own, or its index in the queue's list."""
    return notification.name or str(index)


def idempotency_key(uid: str, outcome: str, name: str) -> str:
    """The Idempotency-Key header: one per execution, outcome and notification, the same on every retry."""
    return f"{uid}-{outcome}-{name}"


def triggered(spec: TestQueueSpec, phase: Phase) -> list[tuple[str, Notification]]:
    """The queue's notifications (name, spec) that this outcome triggers, first of each name only."""
    out: dict[str, Notification] = {}
    for i, n in enumerate(spec.notifications):
        name = notification_name(n, i)
        if phase.value in n.outcomes and name not in out:
            out[name] = n
    return list(out.items())


@dataclass(frozen=True)
class Send:
    """POST number `attempt` at `at` (after a restart: on the schedule the record implies)."""

    name: str
    notification: Notification
    attempt: int
    at: datetime


@dataclass(frozen=True)
class Record:
    """Write this record, send nothing: an in-flight POST found after a restart (`unknown`), or a
    retry found past the bound."""

    record: NotificationRecord
    unknown: bool = False


Step = Send | Record


def record_of(status: TestExecutionStatus, name: str) -> NotificationRecord | None:
    for r in status.notifications:
        if r.name == name:
            return r
    return None


def next_step(record: NotificationRecord | None, name: str, notification: Notification, outcome: str, key: str,
              completed_at: datetime | None, now: datetime, mine: bool,
              since: datetime | None = None) -> Step | None:
    """One notification of one ended execution; `mine`: this process is delivering it right now;
    `since`: when the notification appeared while the operator ran (None: it was there at start)."""
    if mine:
        return None
    if record is None or record.outcome != outcome:
        ended = completed_at or now
        if (now - ended).total_seconds() > ELIGIBLE_SECONDS or (since is not None and ended < since):
            return None  # ended before the notification existed, or long ago (see ELIGIBLE_SECONDS)
        return Send(name, notification, 1, now)
    if record.state != "Pending":
        return None
    if record.attempts <= 0:
        return Send(name, notification, 1, now)
    if record.message is None:
        return Record(record.model_copy(update={
            "state": "GivenUp", "key": record.key or key,
            "message": UNKNOWN_MESSAGE.format(n=record.attempts, key=record.key or key)}), unknown=True)
    if record.attempts >= MAX_ATTEMPTS:
        return Record(record.model_copy(update={"state": "GivenUp"}))
    last = record.last_attempt_at or now
    return Send(name, notification, record.attempts + 1, max(now, last + timedelta(seconds=backoff_seconds(record.attempts))))


def steps(status: TestExecutionStatus, uid: str, spec: TestQueueSpec, now: datetime,
          mine: set[str], since: dict[str, datetime] | None = None) -> list[Step]:
    """Every step an ended execution needs now; `mine`: names this process is delivering;
    `since`: name -> when that notification appeared while the operator ran."""
    if status.phase is None or not status.phase.terminal:
        return []
    out = []
    for name, n in triggered(spec, status.phase):
        key = idempotency_key(uid, status.phase.value, name)
        step = next_step(record_of(status, name), name, n, status.phase.value, key, status.completed_at, now,
                         name in mine, (since or {}).get(name))
        if step is not None:
            out.append(step)
    return out


def in_flight(name: str, outcome: str, key: str, attempt: int, now: datetime) -> NotificationRecord:
    """The record written (and confirmed by the API) before POST number `attempt` goes out."""
    return NotificationRecord(name=name, outcome=outcome, state="Pending", attempts=attempt, key=key,
                              last_attempt_at=now, message=None)


def answered(sent: NotificationRecord, state: str, message: str) -> NotificationRecord:
    """The record after the POST's answer: Delivered, GivenUp, or Pending again with the answer (a retry)."""
    return sent.model_copy(update={"state": state, "message": message or "no answer"})


def same(a: NotificationRecord | None, b: NotificationRecord | None) -> bool:
    """Two records that say the same (the API may render the timestamp differently)."""
    if a is None or b is None:
        return a is b
    return a.model_dump(exclude={"last_attempt_at"}) == b.model_dump(exclude={"last_attempt_at"})
