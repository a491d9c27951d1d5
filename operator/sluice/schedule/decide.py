"""What one TestSchedule should do now: CronJob's rules, for executions. Pure.

Given the schedule (spec, observed status, creation time), the executions it controls and the
clock, `decide` says which run to create (at most one: the most recent scheduled time not yet
started, as CronJob never starts several after a gap), which runs to cancel first (Replace),
which finished runs to delete (history limits), the status to write, an Event worth recording,
and when to look again. The rules:

- The scheduled times considered are those after `status.lastScheduleTime` (or the schedule's
  creation) and at or before now; with `startingDeadlineSeconds`, only those within it. Only the
  latest of them may start. A time passed over (Forbid while a run is active, too late) is not
  recorded, so with Forbid and no deadline the skipped run starts once the active one ends, as
  CronJob's does.
- `suspend` creates nothing; on resume the latest missed time starts if within the deadline.
- `status.lastScheduleTime` is never earlier than the latest run's `sluice.dev/scheduled-at`
  (a status write lost in a crash is read back from the runs), and the controller writes the
  status before it deletes history: the record of a scheduled time outlives the runs that show it.

It never calls the API, never reads the clock and never names an object it did not derive from
the schedule's name and a scheduled time (`kube.names.scheduled_execution_name`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..api.environment import TestScheduleStatus
from ..api.execution import Phase
from ..kube.names import scheduled_execution_name
from ..status.conditions import set_condition
from .cron import Cron, ScheduleError, parse
from .index import RunRecord, ScheduleRecord

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Decision:
    status: TestScheduleStatus  # what the status says once this decision is carried out
    create_at: datetime | None = None  # the scheduled time to create a run for
    run_name: str | None = None
    cancel: tuple[str, ...] = ()  # Replace: active runs to cancel before creating
    delete: tuple[str, ...] = ()  # finished runs beyond the history limits, oldest first
    events: tuple[Event, ...] = ()
    wake_at: datetime | None = None


@dataclass
class _Runs:
    active: list[RunRecord] = field(default_factory=list)
    ended: list[RunRecord] = field(default_factory=list)  # newest end first


def run_name(schedule: str, at: datetime) -> str:
    return scheduled_execution_name(schedule, int(at.timestamp()) // 60)


def _split(runs: list[RunRecord]) -> _Runs:
    out = _Runs()
    for r in runs:
        if r.ended:
            out.ended.append(r)
        elif not r.deleting:
            out.active.append(r)
    out.ended.sort(key=lambda r: (r.completed_at or r.created, r.name), reverse=True)
    out.active.sort(key=lambda r: (r.scheduled_at or r.created, r.name))
    return out


def _observed(schedule: ScheduleRecord, runs: _Runs, now: datetime) -> TestScheduleStatus:
    """The status as the runs show it, before any decision: active, results, the latest time started."""
    st = schedule.status.model_copy(deep=True)
    st.active = [r.name for r in runs.active]
    st.active_count = len(st.active)
    st.observed_generation = schedule.generation
    latest = max((r for r in runs.active + runs.ended if r.scheduled_at), key=lambda r: r.scheduled_at, default=None)
    if latest is not None and (st.last_schedule_time is None or latest.scheduled_at > st.last_schedule_time):
        st.last_schedule_time, st.last_execution = latest.scheduled_at, latest.name  # a status write that was lost
    if runs.ended:
        # The latest end among the runs kept, unless it is older than the recorded last success:
        # then a later run (deleted by a history limit of 0) set the recorded result, which stays.
        latest, known = runs.ended[0], st.last_successful_time
        if st.last_result is None or known is None or (latest.completed_at or latest.created) > known:
            st.last_result = latest.phase.value
    succeeded = [r.completed_at for r in runs.ended if r.phase == Phase.Succeeded and r.completed_at]
    if succeeded and (st.last_successful_time is None or max(succeeded) > st.last_successful_time):
        st.last_successful_time = max(succeeded)
    return st


def _ready(st: TestScheduleStatus, ok: bool, reason: str, message: str, now: datetime, generation: int) -> None:
    st.conditions = set_condition(st.conditions, "Ready", ok, reason, message, now, generation)


def _history(schedule: ScheduleRecord, runs: _Runs) -> tuple[str, ...]:
    """Finished runs beyond successfulHistoryLimit / failedHistoryLimit, oldest first."""
    spec = schedule.spec
    if spec is None:
        return ()
    kept = {True: 0, False: 0}
    limit = {True: spec.successful_history_limit, False: spec.failed_history_limit}
    out = []
    for r in runs.ended:  # newest first
        ok = r.phase == Phase.Succeeded
        kept[ok] += 1
        if kept[ok] > limit[ok] and not r.deleting:
            out.append(r.name)
    return tuple(reversed(out))


def _local(t: datetime, cron: Cron) -> str:
    return t.astimezone(cron.zone).isoformat()


def decide(schedule: ScheduleRecord, runs: list[RunRecord], now: datetime) -> Decision:
    now = now.replace(microsecond=0) if now.microsecond else now  # conditions' times in whole seconds
    split = _split(runs)
    st = _observed(schedule, split, now)
    gen = schedule.generation
    spec = schedule.spec
    try:
        if spec is None:
            raise ScheduleError(schedule.spec_error or "spec is missing")
        cron = parse(spec.schedule, spec.time_zone)
    except ScheduleError as exc:
        before = next((c for c in schedule.status.conditions if c.type == "Ready"), None)
        _ready(st, False, "InvalidSchedule", str(exc), now, gen)
        events: tuple[Event, ...] = ()
        if before is None or before.reason != "InvalidSchedule" or before.message != str(exc):
            events = (("Warning", "InvalidSchedule", f"{exc}; nothing is created until it is fixed"),)
        return Decision(status=st, events=events)
    deletes = _history(schedule, split)
    if spec.suspend:
        _ready(st, False, "Suspended", "spec.suspend is true: no run is created until it is false", now, gen)
        return Decision(status=st, delete=deletes)
    upcoming = cron.next_after(now)
    _ready(st, True, "Scheduled", f"next run at {_local(upcoming, cron)}", now, gen)
    since = st.last_schedule_time or schedule.created
    due = cron.latest_at_or_before(now)
    if due is None or due <= since:
        return Decision(status=st, delete=deletes, wake_at=upcoming)
    deadline = spec.starting_deadline_seconds
    if deadline is not None and due + timedelta(seconds=deadline) < now:
        msg = (f"the run of {_local(due, cron)} was not started within startingDeadlineSeconds ({deadline}): "
               f"skipped; next run at {_local(upcoming, cron)}")
        return Decision(status=st, delete=deletes, events=(("Warning", "MissedSchedule", msg),), wake_at=upcoming)
    if spec.concurrency_policy == "Forbid" and split.active:
        msg = (f"the run of {_local(due, cron)} is skipped while {', '.join(st.active)} has not ended "
               f"(concurrencyPolicy Forbid)")
        return Decision(status=st, delete=deletes, events=(("Normal", "Skipped", msg),), wake_at=upcoming)
    name = run_name(schedule.name, due)
    cancel = tuple(r.name for r in split.active if not r.cancel_requested) if spec.concurrency_policy == "Replace" else ()
    events = []
    missed = cron.count_between(since, now)
    if missed > 1:
        more = "more than " if missed >= 100 else ""
        events.append(("Warning", "MissedSchedules",
                       f"{more}{missed} scheduled times passed unstarted (operator away or suspended): "
                       f"only the latest, {_local(due, cron)}, starts"))
    st.last_schedule_time, st.last_execution = due, name
    if name not in st.active:
        st.active = [*st.active, name]
        st.active_count = len(st.active)
    return Decision(status=st, create_at=due, run_name=name, cancel=cancel, delete=deletes,
                    events=tuple(events), wake_at=upcoming)
