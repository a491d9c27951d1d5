"""Operator core against the real control plane: capacity, order, caps, pause, aging."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.harness.sluice_api import CapacityWatcher, kwok_runner
from tests.harness.start_counter import StartCounter

pytestmark = pytest.mark.cluster
RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_fifty_executions_at_capacity_five_in_admission_order(sluice, start_operator):
    start_operator(running_capacity=5, queued_capacity=100)
    sluice.create_queue("q", {"runningCapacity": 5, "queuedCapacity": 50, "paused": True})
    priorities = ["low", "normal", "high", "critical", "normal"]
    starts = StartCounter(sluice).start()  # before any execution exists: sees the whole test
    for i in range(50):
        sluice.create(f"tx-{i:02d}", {"queue": "q", "priority": priorities[i % 5], "runner": kwok_runner("1s")})
    for i in range(50):
        sluice.wait_phase(f"tx-{i:02d}", "Queued")
    watcher = CapacityWatcher(sluice)
    watcher.start()
    sluice.patch_queue("q", {"paused": False})
    items = sluice.wait_all_terminal(timeout=240)
    watcher.stop()
    assert watcher.peak <= 5, f"saw {watcher.peak} unfinished Jobs"
    assert watcher.peak == 5 and watcher.samples > 20
    assert [i["status"]["phase"] for i in items] == ["Succeeded"] * 50
    # Admission order: batches admitted in one pass share startedAt; in sequence they must
    # spell out exactly the rule's order.
    rule = {i["metadata"]["name"]: (RANK[i["spec"]["priority"]], i["metadata"]["creationTimestamp"],
                                    _t(i["status"]["queuedAt"]), i["metadata"]["name"]) for i in items}
    batches: dict[datetime, list[str]] = {}
    for i in items:
        batches.setdefault(_t(i["status"]["startedAt"]), []).append(i["metadata"]["name"])
    admitted = [n for at in sorted(batches) for n in sorted(batches[at], key=rule.get)]
    assert admitted == sorted(rule, key=rule.get)
    # One start each, as the API server saw it (not the operator's Events, which the default
    # SLUICE_EVENTS=notable no longer posts for an admission): exactly one Job ever ADDED per
    # execution, and exactly one status write announcing Running (a position write racing the Job
    # create once made the next pass "adopt" the Job and announce it a second time).
    starts.stop()
    names = sorted(i["metadata"]["name"] for i in items)
    assert starts.errors == []
    assert {n: starts.job_names[n] for n in names} == {n: [f"{n}-a1"] for n in names}
    assert sum(starts.jobs.values()) == 50, dict(starts.jobs)
    assert {n: starts.starts[n] for n in names} == {n: 1 for n in names}
    deadline = time.time() + 15  # TestQueue.status is written at a bounded rate
    while time.time() < deadline:
        q = sluice.get_queue("q")["status"]
        if q.get("succeededTotal") == 50:
            break
        time.sleep(0.5)
    assert (q["succeededTotal"], q["admittedTotal"], q["running"], q["queued"]) == (50, 50, 0, 0)
    assert q["runSeconds"]["p50"] >= 1


def test_queued_capacity_rejects_with_numbers(sluice, start_operator):
    start_operator(running_capacity=5)
    sluice.create_queue("small", {"runningCapacity": 1, "queuedCapacity": 3, "paused": True})
    for i in range(5):
        sluice.create(f"tx-{i}", {"queue": "small", "runner": kwok_runner("1s")})
        time.sleep(0.05)
    phases = {}
    for i in range(5):
        phases[f"tx-{i}"] = sluice.wait_phase(f"tx-{i}", "Queued", "Rejected")["status"]
    rejected = [n for n, s in phases.items() if s["phase"] == "Rejected"]
    assert len(rejected) == 2
    for n in rejected:
        assert phases[n]["reason"] == "QueueFull"
        assert "3 executions waiting, queuedCapacity is 3" in phases[n]["message"]
    assert sorted(s["queuePosition"] for s in phases.values() if s["phase"] == "Queued") == [1, 2, 3]


def test_paused_queue_admits_nothing_until_resumed(sluice, start_operator):
    start_operator(running_capacity=5)
    sluice.create_queue("p", {"runningCapacity": 2, "paused": True})
    for i in range(3):
        sluice.create(f"tx-{i}", {"queue": "p", "runner": kwok_runner("1s")})
    st = sluice.wait_phase("tx-0", "Queued")["status"]
    assert st["reason"] == "QueuePaused"
    time.sleep(3)
    assert sluice.jobs() == []
    sluice.patch_queue("p", {"paused": False})
    for i in range(3):
        sluice.wait_phase(f"tx-{i}", "Succeeded", timeout=60)


def test_aging_promotes_a_starved_low_priority_execution(sluice, start_operator):
    start_operator(running_capacity=5)
    sluice.create_queue("aging", {"runningCapacity": 1, "agingSeconds": 2, "paused": True})
    sluice.create("old-low", {"queue": "aging", "priority": "low", "runner": kwok_runner("1s")})
    sluice.wait_phase("old-low", "Queued")
    time.sleep(5)  # 2 promotions: low -> normal -> high
    for i in range(3):
        sluice.create(f"new-high-{i}", {"queue": "aging", "priority": "high", "runner": kwok_runner("1s")})
    for i in range(3):
        sluice.wait_phase(f"new-high-{i}", "Queued")
    sluice.patch_queue("aging", {"paused": False})
    items = sluice.wait_all_terminal(timeout=90)
    first = min(items, key=lambda i: _t(i["status"]["startedAt"]))
    assert first["metadata"]["name"] == "old-low"
