"""History limits: which finished executions retention deletes (retention/policy.py, pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.api.execution import Phase
from sluice.cache.view import ClusterView
from sluice.retention.policy import (DEFAULT_LIMITS, SETTLE_SECONDS, Finished, Limits, finished_by_queue,
                                     limits_of, select_victims, victims_of)

from .builders import T0, execution, queue, ts

NOW = T0 + timedelta(hours=1)
S, F, T, C, R = Phase.Succeeded, Phase.Failed, Phase.TimedOut, Phase.Cancelled, Phase.Rejected


def _f(name: str, phase: Phase, minutes_ago: float) -> Finished:
    return Finished(("ns", name), f"uid-{name}", phase, NOW - timedelta(minutes=minutes_ago))


def _names(victims) -> list[str]:
    return [v.key[1] for v in victims]


@pytest.mark.parametrize("case,finished,limits,budget,expected", [
    ("within the limits nothing goes",
     [_f("s1", S, 3), _f("f1", F, 2)], Limits(3, 2), 100, []),
    ("the oldest succeeded beyond the limit go, oldest first",
     [_f(f"s{i}", S, 10 - i) for i in range(10)], Limits(3, 2), 100, [f"s{i}" for i in range(7)]),
    ("Failed, TimedOut, Cancelled and Rejected share the failed limit",
     [_f("f", F, 9), _f("t", T, 8), _f("c", C, 7), _f("r", R, 6), _f("s", S, 5)], Limits(3, 2), 100, ["f", "t"]),
    ("each outcome class is counted apart",
     [_f("s-old", S, 60), _f("f-new", F, 1), _f("f-newer", F, 0.5)], Limits(0, 2), 100, ["s-old"]),
    ("the budget bounds the work, oldest first",
     [_f(f"s{i}", S, 100 - i) for i in range(50)], Limits(0, 0), 5, [f"s{i}" for i in range(5)]),
    ("no budget, no deletes",
     [_f("s", S, 10)], Limits(0, 0), 0, []),
    ("TTL deletes what finished longer ago, whatever the limits",
     [_f("old", S, 30), _f("young", S, 5), _f("old-f", F, 31)], Limits(100, 200, ttl_seconds=600), 100,
     ["old-f", "old"]),
    ("TTL and limits together, nobody twice",
     [_f("a", S, 30), _f("b", S, 20), _f("c", S, 1)], Limits(1, 1, ttl_seconds=25 * 60), 100, ["a", "b"]),
    ("TTL 0: everything settled goes",
     [_f("a", S, 1), _f("b", F, 2)], Limits(100, 200, ttl_seconds=0), 100, ["b", "a"]),
    ("same finish time: by name",
     [_f("b", S, 5), _f("a", S, 5), _f("c", S, 1)], Limits(1, 1), 100, ["a", "b"]),
])
def test_select_victims(case, finished, limits, budget, expected):
    assert _names(select_victims(finished, limits, NOW, budget)) == expected, case


def _exec(name, phase, completed_min_ago=None, q="default", **status):
    st = {"phase": phase, **status}
    if completed_min_ago is not None:
        st["completedAt"] = (NOW - timedelta(minutes=completed_min_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return execution(name, status=dict(st, observedGeneration=1), queue=q)


def test_only_settled_finished_executions_are_candidates():
    view = ClusterView()
    for obj in [_exec("done", "Succeeded", 10), _exec("running", "Running"), _exec("queued", "Queued"),
                _exec("just-now", "Failed", SETTLE_SECONDS / 120), _exec("skipped", "Succeeded", 10),
                _exec("other-queue", "Failed", 10, q="q2")]:
        view.upsert_execution(obj)
    deleting = execution("deleting", status={"phase": "Succeeded", "completedAt": ts(0), "observedGeneration": 1})
    deleting["metadata"]["deletionTimestamp"] = ts(1)
    view.upsert_execution(deleting)
    unacknowledged = _exec("unacked", "Cancelled", 10)
    unacknowledged["metadata"]["generation"] = 2  # spec changed after it ended: the planner acknowledges first
    view.upsert_execution(unacknowledged)
    groups, next_settled = finished_by_queue(view, NOW, skip={"uid-skipped"})
    assert {k: _names(v) for k, v in groups.items()} == {("ns", "default"): ["done"], ("ns", "q2"): ["other-queue"]}
    assert next_settled is not None and NOW < next_settled <= NOW + timedelta(seconds=SETTLE_SECONDS)


def test_limits_come_from_the_queue_or_the_defaults_for_default_only():
    view = ClusterView()
    view.upsert_queue(queue("q", history={"succeeded": 3, "failed": 2}, ttlSecondsAfterFinished=60))
    assert limits_of(view, ("ns", "q")) == Limits(3, 2, 60)
    assert limits_of(view, ("ns", "default")) == DEFAULT_LIMITS == Limits(100, 200, None)
    assert limits_of(view, ("ns", "gone")) is None  # its executions wait for the queue to exist


def test_victims_of_records_equals_select_victims_and_skips_the_work_within_the_limits():
    view = ClusterView()
    for i in range(12):
        view.upsert_execution(_exec(f"s{i:02d}", "Succeeded", 100 - i))
    for i in range(4):
        view.upsert_execution(_exec(f"f{i}", "Failed", 50 - i))
    records = finished_by_queue(view, NOW)[0][("ns", "default")]
    finished = [Finished(r.key, r.uid, r.summary.phase, r.summary.completed_at) for r in records]
    for limits in (Limits(3, 2), Limits(12, 4), Limits(100, 200, ttl_seconds=60 * 60), Limits(0, 0)):
        assert _names(victims_of(records, limits, NOW, 100)) == _names(select_victims(finished, limits, NOW, 100))
    assert victims_of(records, Limits(12, 4), NOW, 100) == []


def test_an_execution_whose_notification_is_still_being_sent_is_kept_for_now():
    view = ClusterView()
    view.upsert_execution(_exec("old", "Failed", 60, notifications=[{"name": "0", "outcome": "Failed", "state": "Pending",
                                                                     "attempts": 1}]))
    view.upsert_execution(_exec("older", "Failed", 90, notifications=[{"name": "0", "outcome": "Failed",
                                                                       "state": "Delivered", "attempts": 1}]))
    view.upsert_execution(_exec("new", "Failed", 1))
    records = finished_by_queue(view, NOW)[0][("ns", "default")]
    assert _names(victims_of(records, Limits(100, 0), NOW, 100)) == ["older", "new"]  # "old" waits for its POST
