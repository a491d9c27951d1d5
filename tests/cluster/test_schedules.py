"""TestSchedules against the real control plane, on the wall clock (no accelerated schedule clock).

One timeline of three scheduled minutes m1, m2, m3 carries every proof, so the file stays
under four minutes: several `* * * * *` schedules run side by side under one operator, which is
SIGKILLed a few seconds before m2 and started again after it.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes.client import ApiException

from sluice.kube.names import scheduled_execution_name
from tests.harness.sluice_api import GROUP, SIMPLE_SOURCE, TERMINAL, VERSION, kwok_runner

pytestmark = pytest.mark.cluster
UTC = timezone.utc


def _create_schedule(sluice, name: str, delay: str, **spec) -> dict:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestSchedule", "metadata": {"name": name},
            "spec": {"schedule": "* * * * *", **spec, "template": {
                "metadata": {"labels": {"team": "qa"}, "annotations": {"owner": "qa@example.com"}},
                "spec": {"queue": "default", "timeoutSeconds": 900, "retries": {"limit": 0},
                         "runner": kwok_runner(delay), "source": SIMPLE_SOURCE}}}}
    return sluice.api.create_namespaced_custom_object(GROUP, VERSION, sluice.ns, "testschedules", body)


def _schedule(sluice, name: str) -> dict:
    return sluice.api.get_namespaced_custom_object(GROUP, VERSION, sluice.ns, "testschedules", name)


def _patch_schedule(sluice, name: str, spec: dict) -> None:
    sluice.api.patch_namespaced_custom_object(GROUP, VERSION, sluice.ns, "testschedules", name, {"spec": spec})


def _name(schedule: str, minute: datetime) -> str:
    return scheduled_execution_name(schedule, int(minute.timestamp()) // 60)


def _sleep_until(t: datetime) -> None:
    time.sleep(max(0.0, (t - datetime.now(UTC)).total_seconds()))


def _wait_created(sluice, name: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        try:
            return sluice.get(name)
        except ApiException as exc:
            if exc.status != 404 or time.time() > deadline:
                raise
        time.sleep(0.25)


def _reasons(sluice, name: str) -> list[str]:
    return [e.reason for e in sluice.events(name) if e.involved_object.kind == "TestSchedule"]


def _wait_reason(sluice, name: str, reason: str, timeout: float = 15) -> None:
    """Events are posted in the background after what they tell: give them a moment."""
    deadline = time.time() + timeout
    while reason not in _reasons(sluice, name):
        assert time.time() < deadline, f"no {reason} Event for {name}: {_reasons(sluice, name)}"
        time.sleep(0.25)


class RunRecorder(threading.Thread):
    """Lists the namespace's executions twice a second: every name ever seen, with its UIDs (a run
    made twice, even after the first was deleted, shows as two UIDs) and its last object."""

    def __init__(self, sluice):
        super().__init__(daemon=True)
        self.sluice, self.stop_flag = sluice, threading.Event()
        self.uids: dict[str, set[str]] = {}
        self.last: dict[str, dict] = {}

    def run(self):
        while not self.stop_flag.is_set():
            for item in self.sluice.list():
                self.uids.setdefault(item["metadata"]["name"], set()).add(item["metadata"]["uid"])
                self.last[item["metadata"]["name"]] = item
            time.sleep(0.5)

    def names(self, prefix: str) -> set[str]:
        return {n for n in self.uids if n.startswith(prefix + "-")}

    def stop(self):
        self.stop_flag.set()
        self.join()


def test_schedules_one_run_per_minute_forbid_replace_suspend_and_a_restart(cluster, sluice, start_operator):
    op = start_operator(running_capacity=10)
    now = datetime.now(UTC)
    if now.second > 45:  # leave the operator at least ~12 s before the first scheduled minute
        _sleep_until(now.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=1))
    m1 = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    m2, m3 = m1 + timedelta(minutes=1), m1 + timedelta(minutes=2)
    _create_schedule(sluice, "every", "1s", startingDeadlineSeconds=90)
    _create_schedule(sluice, "late", "1s", startingDeadlineSeconds=5)
    _create_schedule(sluice, "forbid", "100s", concurrencyPolicy="Forbid")
    _create_schedule(sluice, "replace", "600s", concurrencyPolicy="Replace", failedHistoryLimit=1)
    _create_schedule(sluice, "paused", "1s", suspend=True)
    recorder = RunRecorder(sluice)
    recorder.start()
    try:
        # m1: every active schedule creates its run, once, named for the minute.
        for s in ("every", "late", "forbid", "replace"):
            _wait_created(sluice, _name(s, m1), timeout=(m1 - datetime.now(UTC)).total_seconds() + 20)
        first = sluice.get(_name("every", m1))
        assert first["metadata"]["labels"] == {"team": "qa", "sluice.dev/schedule": "every"}
        assert first["metadata"]["annotations"] == {"owner": "qa@example.com",
                                                    "sluice.dev/scheduled-at": m1.strftime("%Y-%m-%dT%H:%M:%SZ")}
        sched = _schedule(sluice, "every")
        assert first["metadata"]["ownerReferences"] == [{
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TestSchedule", "name": "every",
            "uid": sched["metadata"]["uid"], "controller": True}]
        _wait_reason(sluice, "every", "Created")

        # The operator dies just before m2 and comes back after it.
        _sleep_until(m2 - timedelta(seconds=6))
        op.kill()
        assert recorder.names("every") == {_name("every", m1)}
        _sleep_until(m2 + timedelta(seconds=6))
        op.start()
        # Within the deadline: the missed m2 starts once on return; Replace cancels the run of m1.
        _wait_created(sluice, _name("every", m2), timeout=40)
        _wait_created(sluice, _name("replace", m2), timeout=20)
        sluice.wait_phase(_name("replace", m1), "Cancelled", timeout=30)
        _wait_reason(sluice, "replace", "Replaced")
        # Forbid: m2 is not started while the run of m1 (100 s) runs.
        assert sluice.phase(_name("forbid", m1)) not in TERMINAL
        _wait_reason(sluice, "forbid", "Skipped")
        assert recorder.names("forbid") == {_name("forbid", m1)}

        # Suspend stops `every` before m3.
        _sleep_until(m2 + timedelta(seconds=30))
        _patch_schedule(sluice, "every", {"suspend": True})
        _sleep_until(m3 + timedelta(seconds=20))
        sluice.wait_phase(_name("replace", m2), "Cancelled", timeout=20)
    finally:
        recorder.stop()

    # Exactly once: each scheduled minute has one name and each name was created once.
    assert all(len(uids) == 1 for uids in recorder.uids.values()), recorder.uids
    assert recorder.names("every") == {_name("every", m1), _name("every", m2)}
    assert recorder.names("late") == {_name("late", m1), _name("late", m3)}  # m2 past its 5 s deadline
    # Forbid without a deadline (CronJob's rule): m2, skipped while the run of m1 ran, started once
    # that run ended; m3 skipped while the run of m2 runs.
    assert recorder.names("forbid") == {_name("forbid", m1), _name("forbid", m2)}
    assert recorder.names("replace") == {_name("replace", m) for m in (m1, m2, m3)}
    assert recorder.names("paused") == set()
    _wait_reason(sluice, "late", "MissedSchedule")
    f1, f2 = sluice.get(_name("forbid", m1)), sluice.get(_name("forbid", m2))
    assert f1["status"]["phase"] == "Succeeded"
    assert f1["status"]["completedAt"] <= f2["metadata"]["creationTimestamp"]
    assert f2["metadata"]["annotations"]["sluice.dev/scheduled-at"] == m2.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f2["status"].get("phase") not in TERMINAL
    assert _reasons(sluice, "forbid").count("Skipped") >= 2  # m2 at the operator's return, m3

    # History: failedHistoryLimit 1 kept the cancelled run of m2 and deleted the one of m1.
    deadline = time.time() + 20
    while time.time() < deadline and _name("replace", m1) in {i["metadata"]["name"] for i in sluice.list()}:
        time.sleep(0.5)
    present = {i["metadata"]["name"] for i in sluice.list()}
    assert _name("replace", m1) not in present and _name("replace", m2) in present

    # Status of each schedule.
    every = _schedule(sluice, "every")["status"]
    assert every["lastScheduleTime"] == m2.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert every["lastExecution"] == _name("every", m2)
    assert (every["lastResult"], every["activeCount"], every.get("active", [])) == ("Succeeded", 0, [])
    assert "lastSuccessfulTime" in every
    ready = {c["type"]: c for c in every["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Suspended")
    replace = _schedule(sluice, "replace")["status"]
    assert replace["active"] == [_name("replace", m3)] and replace["activeCount"] == 1
    table = cluster.kubectl("get", "tsched", "-n", sluice.ns).stdout
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE"], table
    assert "LAST RESULT" in table.splitlines()[0]

    # Deleting a schedule deletes its executions (ownerReference, garbage collector).
    sluice.api.delete_namespaced_custom_object(GROUP, VERSION, sluice.ns, "testschedules", "replace")
    deadline = time.time() + 30
    while time.time() < deadline and recorder.names("replace") & {i["metadata"]["name"] for i in sluice.list()}:
        time.sleep(0.5)
    assert not recorder.names("replace") & {i["metadata"]["name"] for i in sluice.list()}


def test_invalid_schedule_or_time_zone_is_ready_false_with_an_event(sluice, start_operator):
    start_operator()
    _create_schedule(sluice, "bad-cron", "1s", schedule="61 * * * *")
    _create_schedule(sluice, "bad-zone", "1s", timeZone="Mars/Olympus")
    for name, words in [("bad-cron", "not a valid cron expression: bad minute"),
                        ("bad-zone", 'spec.timeZone "Mars/Olympus" is not a known IANA time zone')]:
        deadline = time.time() + 20
        ready = {}
        while time.time() < deadline:
            conds = {c["type"]: c for c in (_schedule(sluice, name).get("status") or {}).get("conditions", [])}
            ready = conds.get("Ready", {})
            if ready.get("reason") == "InvalidSchedule":
                break
            time.sleep(0.25)
        assert ready.get("status") == "False" and words in ready.get("message", ""), ready
        _wait_reason(sluice, name, "InvalidSchedule")
    assert sluice.list() == []
