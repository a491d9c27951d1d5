"""The schedule controller's I/O order and its 409 rule, against an in-memory API.

`FakeApi` stands for the API server only as far as the controller uses it: create answers 409
for a name that exists (as the API server does), get/merge-patch/delete act on a dict and bump
resourceVersion; it does no validation, no watch, no garbage collection.
"""
from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta, timezone

from sluice.api.settings import Settings
from sluice.cache.view import ClusterView
from sluice.kube.client import ApiError
from sluice.schedule.controller import ScheduleController
from sluice.schedule.decide import run_name
from sluice.schedule.manifest import render_run

UTC = timezone.utc
M1 = datetime(2026, 11, 20, 9, 1, tzinfo=UTC)
SCHEDULE = {"metadata": {"namespace": "ns", "name": "nightly", "uid": "sched-uid", "generation": 1,
                         "creationTimestamp": "2026-11-20T09:00:30Z", "resourceVersion": "1"},
            "spec": {"schedule": "* * * * *", "template": {"spec": {"source": {"inline": {"files": {"t.py": ""}}}}}}}


class FakeApi:
    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.rv = 10

    def _bump(self, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(obj)

    async def create(self, path: str, body: dict) -> dict:
        key = f"{path}/{body['metadata']['name']}"
        self.calls.append(("create", key))
        if key in self.objects:
            raise ApiError(409, '{"reason": "AlreadyExists", "message": "exists"}', "POST", path)
        self.objects[key] = copy.deepcopy(body)
        self.objects[key]["metadata"].setdefault("uid", f"uid-{self.rv}")
        return self._bump(self.objects[key])

    async def get(self, path: str) -> dict:
        self.calls.append(("get", path))
        return copy.deepcopy(self.objects[path])

    async def merge_patch(self, path: str, body: dict) -> dict:
        self.calls.append(("patch", path))
        base = path.removesuffix("/status")
        obj = self.objects[base]
        for k, v in body.items():
            obj[k] = {**(obj.get(k) or {}), **v}
        return self._bump(obj)

    async def delete(self, path: str) -> dict:
        self.calls.append(("delete", path))
        self.objects.pop(path, None)
        return {}


class Events:
    def __init__(self):
        self.posted: list[tuple[str, str]] = []

    def post_for(self, namespace, name, uid, type_, reason, message, resource_version=None, kind=""):
        self.posted.append((kind, reason))


def _controller(api: FakeApi):
    tasks: list = []
    events = Events()
    ctl = ScheduleController(api, Settings(), events, tasks.append, lambda: None)
    ctl.listed = ctl.listing = True  # no list in this test: the index is fed directly
    return ctl, tasks, events


async def _drain(tasks: list) -> None:
    while tasks:
        await tasks.pop(0)


SCHED_PATH = "/apis/sluice.dev/v1alpha1/namespaces/ns/testschedules/nightly"
RUNS_PATH = "/apis/sluice.dev/v1alpha1/namespaces/ns/testexecutions"


def test_a_run_made_before_a_crash_is_adopted_not_made_twice():
    api = FakeApi()
    api.objects[SCHED_PATH] = copy.deepcopy(SCHEDULE)
    ctl, tasks, events = _controller(api)
    ctl.on_schedule("MODIFIED", SCHEDULE)
    # The run of 09:01 exists (created just before a crash), but the status write was lost and
    # the index has not seen the run yet (its watch event not delivered).
    made = render_run(ctl.index.schedules[("ns", "nightly")], M1, run_name("nightly", M1))
    asyncio.run(api.create(RUNS_PATH, made))
    api.calls.clear()
    ctl.after_pass(ClusterView(), datetime(2026, 11, 20, 9, 1, 5, tzinfo=UTC))
    asyncio.run(_drain(tasks))
    assert [c[0] for c in api.calls] == ["create", "get", "patch"]  # 409, read it, status
    status = api.objects[SCHED_PATH]["status"]
    assert status["lastScheduleTime"] == "2026-11-20T09:01:00Z"
    assert status["lastExecution"] == status["active"][0] == run_name("nightly", M1)
    assert ("TestSchedule", "Created") not in events.posted
    # Decided again (say the watch repeats the schedule): nothing more to do.
    api.calls.clear()
    ctl.on_schedule("MODIFIED", api.objects[SCHED_PATH])
    ctl.after_pass(ClusterView(), datetime(2026, 11, 20, 9, 1, 6, tzinfo=UTC))
    asyncio.run(_drain(tasks))
    assert api.calls == []


def test_a_name_taken_by_another_object_skips_that_time_with_an_event():
    api = FakeApi()
    api.objects[SCHED_PATH] = copy.deepcopy(SCHEDULE)
    ctl, tasks, events = _controller(api)
    ctl.on_schedule("MODIFIED", SCHEDULE)
    squatter = {"metadata": {"name": run_name("nightly", M1), "namespace": "ns"}, "spec": {}}
    asyncio.run(api.create(RUNS_PATH, squatter))
    ctl.after_pass(ClusterView(), datetime(2026, 11, 20, 9, 1, 5, tzinfo=UTC))
    asyncio.run(_drain(tasks))
    assert ("TestSchedule", "NameTaken") in events.posted
    status = api.objects[SCHED_PATH]["status"]
    assert status["lastScheduleTime"] == "2026-11-20T09:01:00Z"  # not retried
    assert status.get("active", []) == [] and "lastExecution" not in status


def test_status_is_written_before_history_is_deleted_and_each_run_deleted_once():
    api = FakeApi()
    sched = copy.deepcopy(SCHEDULE)
    sched["spec"]["successfulHistoryLimit"] = 0
    api.objects[SCHED_PATH] = sched
    ctl, tasks, _ = _controller(api)
    ctl.on_schedule("MODIFIED", sched)
    done = render_run(ctl.index.schedules[("ns", "nightly")], M1, run_name("nightly", M1))
    done["status"] = {"phase": "Succeeded", "completedAt": "2026-11-20T09:01:30Z"}
    created = asyncio.run(api.create(RUNS_PATH, done))
    ctl.on_run("MODIFIED", created)
    api.calls.clear()
    ctl.after_pass(ClusterView(), datetime(2026, 11, 20, 9, 1, 40, tzinfo=UTC))
    asyncio.run(_drain(tasks))
    ctl.after_pass(ClusterView(), datetime(2026, 11, 20, 9, 1, 41, tzinfo=UTC))
    asyncio.run(_drain(tasks))
    assert [c[0] for c in api.calls] == ["patch", "delete"]
    assert api.objects[SCHED_PATH]["status"]["lastResult"] == "Succeeded"


def test_a_failing_api_pauses_the_schedule_instead_of_retrying_every_pass():
    api = FakeApi()
    api.objects[SCHED_PATH] = copy.deepcopy(SCHEDULE)
    ctl, tasks, _ = _controller(api)
    ctl.on_schedule("MODIFIED", SCHEDULE)

    async def unavailable(path, body):
        api.calls.append(("create", path))
        raise ApiError(503, '{"reason": "ServiceUnavailable", "message": "etcd away"}', "POST", path)

    api.create = unavailable
    t = datetime(2026, 11, 20, 9, 1, 5, tzinfo=UTC)
    for i in range(20):  # many passes within the pause (watch events, other executions)
        ctl.after_pass(ClusterView(), t + timedelta(milliseconds=50 * i))
        asyncio.run(_drain(tasks))
        ctl.dirty.add(("ns", "nightly"))
    assert [c[0] for c in api.calls] == ["create"]
    again = ctl.held[("ns", "nightly")]
    ctl.after_pass(ClusterView(), again + timedelta(milliseconds=1))
    asyncio.run(_drain(tasks))
    assert [c[0] for c in api.calls] == ["create", "create"]
    assert ctl.held[("ns", "nightly")] - datetime.now(UTC) > timedelta(seconds=3)  # the pause doubled (2 s, 4 s)
