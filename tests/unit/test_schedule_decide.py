"""The schedule rules (schedule/decide.py, schedule/cron.py): one row per behaviour of CronJob's
semantics for executions, with a clock the table sets."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from sluice.api.common import ANNOTATION_SCHEDULED_AT, LABEL_SCHEDULE
from sluice.api.environment import TestScheduleStatus
from sluice.api.execution import Phase
from sluice.kube.names import MAX_NAME
from sluice.schedule.cron import ScheduleError, parse
from sluice.schedule.decide import decide, run_name
from sluice.schedule.index import RunRecord, ScheduleIndex, ScheduleRecord
from sluice.schedule.manifest import render_run

UTC = timezone.utc
CREATED = datetime(2026, 11, 20, 9, 0, 30, tzinfo=UTC)
TEMPLATE = {"metadata": {"labels": {"team": "shop"}, "annotations": {"note": "nightly"}},
            "spec": {"queue": "default", "source": {"inline": {"files": {"test_a.py": "def test_a(): pass\n"}}}}}


def at(hh: int, mm: int, ss: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=UTC)


def schedule(last: datetime | None = None, name: str = "nightly", **spec) -> ScheduleRecord:
    spec.setdefault("schedule", "* * * * *")
    obj = {"metadata": {"namespace": "ns", "name": name, "uid": "sched-uid", "generation": 2,
                        "creationTimestamp": CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"), "resourceVersion": "5"},
           "spec": {**spec, "template": TEMPLATE},
           "status": {"lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")} if last else {}}
    return ScheduleRecord.from_object(obj)


def run(minute: datetime, phase: Phase | None = None, ended: datetime | None = None, cancel: bool = False,
        owner: str = "sched-uid") -> RunRecord:
    return RunRecord(namespace="ns", name=run_name("nightly", minute), owner_uid=owner, scheduled_at=minute,
                     created=minute + timedelta(seconds=1), phase=phase, completed_at=ended,
                     cancel_requested=cancel, deleting=False)


@dataclass
class Case:
    name: str
    sched: ScheduleRecord
    now: datetime
    runs: list[RunRecord] = field(default_factory=list)
    create: datetime | None = None
    cancel: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    event: str | None = None  # the reason of the one Event expected
    ready: str = "Scheduled"


R = Phase.Running
CASES = [
    Case("new schedule waits for its first time", schedule(), at(9, 0, 50)),
    Case("first time after creation starts", schedule(), at(9, 1, 2), create=at(9, 1)),
    Case("the time already started is not started again", schedule(last=at(9, 1)), at(9, 1, 40)),
    Case("a lost status write is read back from the run's annotation", schedule(last=at(9, 0)), at(9, 1, 30),
         runs=[run(at(9, 1), R)]),
    Case("after downtime only the latest missed time starts, once", schedule(last=at(9, 1)), at(9, 7, 10),
         create=at(9, 7), event="MissedSchedules"),
    Case("missed time within startingDeadlineSeconds starts", schedule(last=at(9, 1), startingDeadlineSeconds=30),
         at(9, 7, 20), create=at(9, 7), event="MissedSchedules"),
    Case("missed time past startingDeadlineSeconds is skipped", schedule(last=at(9, 1), startingDeadlineSeconds=10),
         at(9, 7, 20), event="MissedSchedule"),
    Case("Allow starts beside an active run", schedule(last=at(9, 1)), at(9, 2, 1),
         runs=[run(at(9, 1), R)], create=at(9, 2)),
    Case("Forbid skips while a run is active", schedule(last=at(9, 1), concurrencyPolicy="Forbid"), at(9, 2, 1),
         runs=[run(at(9, 1), R)], event="Skipped"),
    Case("Forbid without a deadline starts the skipped time once the run ended (CronJob's rule)",
         schedule(last=at(9, 1), concurrencyPolicy="Forbid"), at(9, 2, 40),
         runs=[run(at(9, 1), Phase.Succeeded, at(9, 2, 30))], create=at(9, 2)),
    Case("Forbid with a deadline lets the skipped time go",
         schedule(last=at(9, 1), concurrencyPolicy="Forbid", startingDeadlineSeconds=20), at(9, 2, 40),
         runs=[run(at(9, 1), Phase.Succeeded, at(9, 2, 30))], event="MissedSchedule"),
    Case("Replace cancels the active run and starts the new one",
         schedule(last=at(9, 1), concurrencyPolicy="Replace"), at(9, 2, 1),
         runs=[run(at(9, 1), R)], create=at(9, 2), cancel=(run_name("nightly", at(9, 1)),)),
    Case("Replace does not cancel twice", schedule(last=at(9, 1), concurrencyPolicy="Replace"), at(9, 2, 1),
         runs=[run(at(9, 1), R, cancel=True)], create=at(9, 2)),
    Case("suspend creates nothing", schedule(last=at(9, 1), suspend=True), at(9, 5, 1), ready="Suspended"),
    Case("resumed without a deadline, the latest missed time starts", schedule(last=at(9, 1)), at(9, 5, 1),
         create=at(9, 5), event="MissedSchedules"),
    Case("invalid cron: nothing created, Ready False", schedule(schedule="61 * * * *"), at(9, 5),
         event="InvalidSchedule", ready="InvalidSchedule"),
    Case("invalid time zone: nothing created, Ready False", schedule(timeZone="Mars/Olympus"), at(9, 5),
         event="InvalidSchedule", ready="InvalidSchedule"),
    Case("a run another schedule controls does not count", schedule(last=at(9, 1), concurrencyPolicy="Forbid"),
         at(9, 2, 1), runs=[], create=at(9, 2)),
    Case("history: succeeded beyond the limit go, oldest first",
         schedule(last=at(9, 4), successfulHistoryLimit=2, failedHistoryLimit=1), at(9, 4, 30),
         runs=[run(at(9, m), Phase.Succeeded, at(9, m, 10)) for m in range(1, 5)],
         delete=(run_name("nightly", at(9, 1)), run_name("nightly", at(9, 2)))),
    Case("history: failed, timed out and cancelled count against failedHistoryLimit",
         schedule(last=at(9, 4), failedHistoryLimit=1), at(9, 4, 30),
         runs=[run(at(9, 1), Phase.Failed, at(9, 1, 10)), run(at(9, 2), Phase.Cancelled, at(9, 2, 10)),
               run(at(9, 3), Phase.TimedOut, at(9, 3, 10)), run(at(9, 4), Phase.Succeeded, at(9, 4, 10))],
         delete=(run_name("nightly", at(9, 1)), run_name("nightly", at(9, 2)))),
    Case("history: limit 0 deletes at once, with its time in the status written first",
         schedule(last=at(9, 0), successfulHistoryLimit=0), at(9, 1, 30),
         runs=[run(at(9, 1), Phase.Succeeded, at(9, 1, 10))], delete=(run_name("nightly", at(9, 1)),)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case):
    d = decide(case.sched, case.runs, case.now)
    assert d.create_at == case.create
    assert d.run_name == (run_name("nightly", case.create) if case.create else None)
    assert d.cancel == case.cancel
    assert d.delete == case.delete
    assert [e[1] for e in d.events] == ([case.event] if case.event else [])
    ready = next(c for c in d.status.conditions if c.type == "Ready")
    assert (ready.reason, ready.status) == (case.ready, "True" if case.ready == "Scheduled" else "False")
    if case.create:
        assert d.status.last_schedule_time == case.create
        assert d.status.last_execution in d.status.active
    recorded = [r.scheduled_at for r in case.runs]
    if recorded:  # the status never records an earlier time than its runs show
        assert d.status.last_schedule_time >= max(recorded)
    if case.ready != "InvalidSchedule":
        assert d.wake_at is not None or case.ready == "Suspended"


def test_invalid_messages_are_one_line_naming_the_field():
    for sched, tz, words in [("61 * * * *", None, "not a valid cron expression: bad minute"),
                             ("* * * *", None, "must have five fields"),
                             ("0 0 * * * *", None, "must have five fields"),
                             ("@fortnightly", None, "unknown macro"),
                             ("TZ=UTC * * * * *", None, "set spec.timeZone"),
                             ("* * * * *", "Mars/Olympus", 'spec.timeZone "Mars/Olympus"')]:
        with pytest.raises(ScheduleError) as err:
            parse(sched, tz)
        assert words in str(err.value) and "\n" not in str(err.value)


def test_invalid_schedule_event_only_when_the_condition_changes():
    bad = schedule(schedule="61 * * * *")
    first = decide(bad, [], at(9, 5))
    assert [e[1] for e in first.events] == ["InvalidSchedule"]
    again = ScheduleRecord(**{**bad.__dict__, "status": first.status})
    assert decide(again, [], at(9, 6)).events == ()


def test_macros_and_time_zone():
    assert parse("@hourly", None).next_after(at(9, 0, 1)) == at(10, 0)
    berlin = parse("0 2 * * *", "Europe/Berlin")  # 02:00 in Berlin is 01:00 UTC in winter
    assert berlin.next_after(at(9, 0)) == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("start,expected", [
    # Spring forward (29 March 2026, 02:00 -> 03:00 in Berlin): 02:30 does not exist; Debian cron
    # (and cronsim) run it once right after the jump, at 03:00 CEST = 01:00 UTC.
    (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), [datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                                                datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]),
    # Fall back (25 October 2026, 03:00 -> 02:00): 02:30 happens twice; it runs once.
    (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), [datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                                                 datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]),
])
def test_dst_in_the_schedules_time_zone(start, expected):
    cron = parse("30 2 * * *", "Europe/Berlin")
    first = cron.next_after(start)
    assert [first, cron.next_after(first)] == expected


def test_dst_decide_starts_the_skipped_local_time_once():
    sched = schedule(schedule="30 2 * * *", timeZone="Europe/Berlin", last=datetime(2026, 3, 28, 1, 30, tzinfo=UTC))
    d = decide(sched, [], datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC))
    assert d.create_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC) and d.events == ()
    done = ScheduleRecord(**{**sched.__dict__, "status": d.status})
    assert decide(done, [], datetime(2026, 3, 29, 5, 0, tzinfo=UTC)).create_at is None


def test_last_result_and_last_successful_time():
    runs = [run(at(9, 1), Phase.Succeeded, at(9, 1, 20)), run(at(9, 2), Phase.Failed, at(9, 2, 20)),
            run(at(9, 3), R)]
    st = decide(schedule(last=at(9, 3)), runs, at(9, 3, 30)).status
    assert (st.last_result, st.last_successful_time) == ("Failed", at(9, 1, 20))
    assert (st.active, st.active_count) == ([run_name("nightly", at(9, 3))], 1)
    assert st.observed_generation == 2


def test_deterministic_names_fit_63_characters_and_stay_distinct():
    minutes = int(at(9, 1).timestamp()) // 60
    assert run_name("nightly", at(9, 1)) == f"nightly-{minutes}"
    long_a, long_b = "a" * 200 + "-x", "a" * 200 + "-y"
    name_a, name_b = run_name(long_a, at(9, 1)), run_name(long_b, at(9, 1))
    assert len(name_a) <= MAX_NAME and name_a.endswith(f"-{minutes}") and name_a != name_b
    assert run_name(long_a, at(9, 1)) == name_a  # the same time always gives the same name


def test_rendered_run_carries_label_annotation_owner_and_template():
    sched = schedule()
    body = render_run(sched, at(9, 1), run_name("nightly", at(9, 1)))
    meta = body["metadata"]
    assert meta["labels"] == {"team": "shop", LABEL_SCHEDULE: "nightly"}
    assert meta["annotations"] == {"note": "nightly", ANNOTATION_SCHEDULED_AT: "2026-11-20T09:01:00Z"}
    assert meta["ownerReferences"] == [{"apiVersion": "sluice.dev/v1alpha1", "kind": "TestSchedule",
                                        "name": "nightly", "uid": "sched-uid", "controller": True}]
    assert body["spec"] == TEMPLATE["spec"] and body["spec"] is not TEMPLATE["spec"]
    long_label = render_run(schedule(name="s" * 100), at(9, 1), "x")["metadata"]["labels"][LABEL_SCHEDULE]
    assert len(long_label) <= 63


def test_index_counts_only_runs_the_schedule_controls():
    index = ScheduleIndex()
    index.upsert_schedule({"metadata": {"namespace": "ns", "name": "nightly", "uid": "sched-uid"},
                           "spec": {"schedule": "* * * * *", "template": TEMPLATE}})
    owned = render_run(index.schedules[("ns", "nightly")], at(9, 1), "nightly-1")
    forged = {"metadata": {"namespace": "ns", "name": "nightly-2", "labels": {LABEL_SCHEDULE: "nightly"}}}
    index.upsert_run(owned)
    index.upsert_run(forged)
    assert [r.name for r in index.runs_of(index.schedules[("ns", "nightly")])] == ["nightly-1"]
    assert index.runs[("ns", "nightly-1")].scheduled_at == at(9, 1)
    index.delete_run("ns", "nightly-1")
    assert index.runs_of(index.schedules[("ns", "nightly")]) == [] and index.by_owner == {}
    assert TestScheduleStatus().active_count == 0


@pytest.mark.parametrize("recorded,runs,expected", [
    # the latest end wins
    (("Succeeded", at(9, 1, 20)), [run(at(9, 1), Phase.Succeeded, at(9, 1, 20)), run(at(9, 2), Phase.Failed, at(9, 2, 20))],
     "Failed"),
    # failedHistoryLimit 0 deleted the later failure: its recorded result stays
    (("Failed", at(9, 1, 20)), [run(at(9, 1), Phase.Succeeded, at(9, 1, 20))], "Failed"),
    # successfulHistoryLimit 0 deleted the later success: its recorded result stays
    (("Succeeded", at(9, 2, 20)), [run(at(9, 1), Phase.Failed, at(9, 1, 20))], "Succeeded"),
    # a status write that was lost: the runs tell
    ((None, None), [run(at(9, 1), Phase.TimedOut, at(9, 1, 20))], "TimedOut"),
])
def test_last_result_survives_history_limits_of_zero(recorded, runs, expected):
    sched = schedule(last=at(9, 2))
    sched.status.last_result, sched.status.last_successful_time = recorded
    assert decide(sched, runs, at(9, 2, 30)).status.last_result == expected
