"""Queue totals and percentiles survive history limits; finished executions are compact in memory.

The queue status writer (dispatch/queue_status.py) is driven against a double of the API that
behaves like it where it matters here: merge patches of a queue's status honour a
metadata.resourceVersion precondition (409 otherwise) and bump the resourceVersion, deletes
honour a UID precondition. It differs in that nothing is watched: the test feeds the view.
"""
from __future__ import annotations

import asyncio
import copy
import json
import random
from datetime import timedelta

import pytest

from sluice.api.execution import Phase, TestExecutionStatus
from sluice.api.queue import Retired
from sluice.api.settings import Settings
from sluice.cache.view import ClusterView, ExecutionRecord
from sluice.cli.stats import compute_stats
from sluice.dispatch.queue_status import QueueStatusWriter
from sluice.kube.client import ApiError
from sluice.status.queue_stats import queue_status, queue_statuses, retire

from .builders import T0, execution, queue

NOW = T0 + timedelta(hours=2)


def _iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _finished(name: str, phase: str, queued: float, started: float | None, completed: float, q: str = "q",
              inline_kb: int = 0) -> dict:
    st = {"phase": phase, "reason": "TestsPassed" if phase == "Succeeded" else "TestsFailed",
          "queuedAt": _iso(queued), "completedAt": _iso(completed), "attempt": 1, "observedGeneration": 1,
          "results": {"total": 4, "passed": 4, "failed": 0, "skipped": 0, "flaky": 0, "durationSeconds": 1.5,
                      "failures": [{"test": "t", "error": "e"}]},
          "conditions": [{"type": "Complete", "status": "True", "reason": "TestsPassed",
                          "lastTransitionTime": _iso(completed), "observedGeneration": 1}]}
    if started is not None:
        st["startedAt"] = _iso(started)
        st["attempts"] = [{"attempt": 1, "jobName": f"{name}-a1", "startedAt": _iso(started),
                           "completedAt": _iso(completed), "outcome": phase}]
    files = {"test_a.py": "x" * (inline_kb * 1024) or "def test_a(): pass"}
    return execution(name, queued, status=st, queue=q, priority="high", shards=2, source={"inline": {"files": files}})


# ---- the compact record -------------------------------------------------------------------

def test_a_finished_execution_keeps_no_source_and_its_status_whole_on_demand():
    obj = _finished("a", "Succeeded", 0, 2, 10, inline_kb=20)
    rec = ExecutionRecord.from_object(copy.deepcopy(obj))
    assert rec.compact and rec.spec.source is None
    assert (rec.spec.queue, rec.spec.priority.value, rec.spec.shards, rec.queue) == ("q", "high", 2, "q")
    assert rec.status == TestExecutionStatus.model_validate(obj["status"])  # nothing lost
    s = rec.summary
    assert (s.phase, s.attempt, s.observed_generation, s.results.passed) == (Phase.Succeeded, 1, 1, 4)
    assert (s.completed_at - s.started_at).total_seconds() == 8
    assert len(rec._packed) < 1000


def test_setting_a_status_keeps_both_forms_right():
    rec = ExecutionRecord.from_object(execution("a", status={"phase": "Queued"}))
    assert not rec.compact and rec.spec.source.inline is not None
    running = TestExecutionStatus(phase=Phase.Running, attempt=1)
    rec.status = running
    assert rec.status is running and rec.summary.phase == Phase.Running  # the planner's identity checks hold
    done = running.model_copy(update={"phase": Phase.Failed, "reason": "TestsFailed"})
    rec.status = done
    assert rec.compact and rec.status == done and rec.summary.reason == "TestsFailed"


def test_the_view_indexes_compact_records_from_their_summary():
    view = ClusterView()
    view.upsert_execution(_finished("a", "Succeeded", 0, 1, 2))
    assert ("ns", "a") not in view.active
    unacked = _finished("b", "Succeeded", 0, 1, 2)
    unacked["metadata"]["generation"] = 2
    view.upsert_execution(unacked)
    assert ("ns", "b") in view.active


def test_an_invalid_spec_still_counts_in_the_queue_it_names():
    obj = execution("bad", status={"phase": "Pending"}, queue="q", shards="many")
    rec = ExecutionRecord.from_object(obj)
    assert rec.spec is None and rec.spec_error and rec.queue == "q"


# ---- totals and percentiles survive deletions ------------------------------------------------

def _random_executions(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        queued = rng.uniform(0, 3600)
        started = queued + rng.lognormvariate(0, 2)
        completed = started + rng.lognormvariate(3, 1)
        phase = rng.choice(["Succeeded", "Succeeded", "Failed", "TimedOut", "Cancelled", "Rejected"])
        out.append(_finished(f"e{i}", phase, queued, None if phase == "Rejected" else started, completed))
    out.append(execution("waiting", 10, status={"phase": "Queued", "queuePosition": 1}, queue="q"))
    return out


def _essence(st) -> dict:
    body = st.wire()
    body.pop("retired")
    return body


@pytest.mark.parametrize("seed", range(5))
def test_retiring_then_deleting_never_changes_the_queue_status(seed):
    rng = random.Random(seed)
    view = ClusterView()
    for obj in _random_executions(rng, 200):
        view.upsert_execution(obj)
    key = ("ns", "q")
    before = queue_statuses(view, {key: Retired()})[key]
    assert before.admitted_total > 0 and before.run_seconds.p95 is not None
    finished = [r for r in view.executions.values() if r.summary.phase.terminal]
    victims = rng.sample(finished, 120)
    retired = retire(Retired(), ((r.uid, r.summary) for r in victims))
    assert sorted(retired.deleting) == sorted(r.uid for r in victims)
    assert retire(retired, ((r.uid, r.summary) for r in victims)) == retired  # a UID is retired once
    during = queue_statuses(view, {key: retired})[key]  # written, not deleted yet
    for r in victims:
        view.delete_execution(r.namespace, r.name)
    after = queue_statuses(view, {key: retired.model_copy(update={"deleting": []})})[key]
    assert _essence(before) == _essence(during) == _essence(after)


def test_sluice_stats_adds_what_the_queue_retired():
    items = [_finished(f"s{i}", "Succeeded", 0, i, 10 + i) for i in range(4)]
    retired = retire(Retired(), [(f"old{i}", ExecutionRecord.from_object(_finished(f"old{i}", "Failed", 0, 1, 5)).summary)
                                 for i in range(3)]).model_copy(update={"deleting": []})
    q = dict(queue("q"), status={"retired": retired.wire()})
    [s] = compute_stats(items, [], NOW, queues=[q])
    assert (s.admitted, s.succeeded, s.failed) == (7, 4, 3)
    view = ClusterView()
    for obj in items:
        view.upsert_execution(obj)
    assert s.run_p95 == queue_status(view, "ns", "q", retired).run_seconds.p95


# ---- the writer: retire, then delete; crash-safe ---------------------------------------------

class FakeApi:
    """Queues and executions by key; see the module docstring for where it differs from the API."""

    def __init__(self):
        self.queues: dict[tuple, dict] = {}
        self.executions: dict[tuple, dict] = {}
        self.rv = 1000
        self.calls: list[tuple] = []

    def _bump(self, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(obj)

    @staticmethod
    def _key(path: str) -> tuple:
        parts = path.split("/")
        i = parts.index("namespaces")
        return parts[i + 1], parts[i + 3]

    async def merge_patch(self, path: str, body: dict) -> dict:
        self.calls.append(("PATCH", path))
        key = self._key(path)
        obj = self.queues[key]
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want and want != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, json.dumps({"reason": "Conflict", "message": "the object has been modified"}), "PATCH", path)
        obj["status"] = json.loads(json.dumps(body["status"]))
        return self._bump(obj)

    async def get(self, path: str, params=None) -> dict:
        return copy.deepcopy(self.queues[self._key(path)])

    async def request(self, method: str, path: str, body=None, params=None) -> dict:
        assert method == "DELETE"
        self.calls.append(("DELETE", path))
        key = self._key(path)
        obj = self.executions.get(key)
        if obj is None:
            raise ApiError(404, "{}", method, path)
        if obj["metadata"]["uid"] != body["preconditions"]["uid"]:
            raise ApiError(409, "{}", method, path)
        del self.executions[key]
        return {}


class Harness:
    def __init__(self, api: FakeApi):
        self.api, self.view, self.tasks = api, ClusterView(), []
        self.writer = QueueStatusWriter(api, Settings(queue_status_interval_seconds=0), self.tasks.append)
        self.sync()

    def sync(self) -> None:
        """What the watch would deliver: the API's current objects."""
        for key in [k for k in self.view.executions if k not in self.api.executions]:
            self.view.delete_execution(*key)
        for obj in self.api.executions.values():
            self.view.upsert_execution(copy.deepcopy(obj))
        for obj in self.api.queues.values():
            self.view.upsert_queue(copy.deepcopy(obj))

    def step(self, run: bool = True, now=NOW) -> None:
        self.writer.after_pass(self.view, now)
        if run:
            self.drain()
        self.sync()

    def drain(self) -> None:
        async def go():
            while self.tasks:
                await self.tasks.pop(0)
        asyncio.run(go())

    def status(self) -> dict:
        return self.api.queues[("ns", "q")]["status"]


def _world(succeeded: int = 10, failed: int = 5) -> FakeApi:
    api = FakeApi()
    api.queues[("ns", "q")] = dict(queue("q", history={"succeeded": 3, "failed": 2}), status={})
    for i in range(succeeded):
        api.executions[("ns", f"s{i}")] = _finished(f"s{i}", "Succeeded", i, i + 1 + i / 10, 60 + i)
    for i in range(failed):
        api.executions[("ns", f"f{i}")] = _finished(f"f{i}", "Failed", i, i + 2, 100 + i)
    return api


def _totals(status: dict) -> tuple:
    return (status["admittedTotal"], status["succeededTotal"], status["failedTotal"], status["waitSeconds"],
            status["runSeconds"])


def test_history_limits_keep_the_newest_and_the_totals():
    api = _world()
    h = Harness(api)
    h.step()  # one write counts the 10 beyond the limits in `retired`, then they are deleted
    assert len(h.status()["retired"]["deleting"]) == 10
    h.step()  # gone from the view: dropped from `deleting`
    assert sorted(k[1] for k in api.executions) == ["f3", "f4", "s7", "s8", "s9"]
    st = h.status()
    assert _totals(st)[:3] == (15, 10, 5) and st["retired"]["deleting"] == []
    exact = Harness(_world())  # the same executions, no deletes: the same figures
    exact.api.queues[("ns", "q")]["spec"]["history"] = {"succeeded": 100, "failed": 100}
    exact.sync()
    exact.step()
    assert _totals(exact.status()) == _totals(st)


def test_a_crash_between_the_count_and_the_delete_never_counts_twice():
    api = _world()
    h = Harness(api)
    h.writer.after_pass(h.view, NOW)
    write = h.tasks.pop(0)  # only the status write lands; the operator dies before any delete
    asyncio.run(write)
    for lost in h.tasks:
        lost.close()
    h.tasks.clear()
    assert len(api.executions) == 15 and len(h.status()["retired"]["deleting"]) == 10
    assert _totals(h.status())[:3] == (15, 10, 5)
    successor = Harness(api)  # the next leader starts from the API
    successor.step()
    successor.step()
    assert len(api.executions) == 5 and _totals(h.status())[:3] == (15, 10, 5)
    assert h.status()["retired"]["deleting"] == [] and h.status()["retired"]["succeeded"] == 7


def test_a_write_over_a_newer_queue_is_refused_and_read_again():
    api = _world()
    h = Harness(api)
    api.queues[("ns", "q")]["status"] = {"retired": {"admitted": 40, "succeeded": 30, "failed": 10}}
    api._bump(api.queues[("ns", "q")])  # another leader wrote after our view was taken
    h.step()  # 409: nothing deleted, the queue re-read
    assert len(api.executions) == 15 and ("DELETE",) not in {c[:1] for c in api.calls}
    h.step()
    h.step()
    assert len(api.executions) == 5 and _totals(h.status())[:3] == (55, 40, 15)


def test_default_without_an_object_is_held_to_the_default_limits():
    api = FakeApi()
    for i in range(103):
        api.executions[("ns", f"s{i}")] = _finished(f"s{i}", "Succeeded", i, i + 1, 200 + i, q="default")
    h = Harness(api)
    h.step()
    assert sorted(k[1] for k in api.executions) == sorted(f"s{i}" for i in range(3, 103))


def test_ttl_deletes_after_the_ttl_only():
    api = _world(succeeded=2, failed=0)
    api.queues[("ns", "q")]["spec"]["ttlSecondsAfterFinished"] = 600
    h = Harness(api)
    finished_at = T0 + timedelta(seconds=61)
    wake = h.writer.after_pass(h.view, finished_at + timedelta(seconds=300))
    h.drain()
    assert len(api.executions) == 2 and wake is not None
    h.step(now=finished_at + timedelta(seconds=601))
    h.step(now=finished_at + timedelta(seconds=602))
    assert len(api.executions) == 0 and h.status()["succeededTotal"] == 2


def test_an_execution_deleted_by_other_hands_still_counts():
    api = _world()
    api.queues[("ns", "q")]["spec"]["history"] = {"succeeded": 100, "failed": 100}
    h = Harness(api)
    h.step()
    before = _totals(h.status())
    assert before[:3] == (15, 10, 5)
    for name in ("s0", "s1", "f0"):  # `kubectl delete tx`, or a schedule's own history limits
        del api.executions[("ns", name)]
    h.sync()
    h.step()
    st = h.status()
    assert _totals(st) == before and (st["retired"]["succeeded"], st["retired"]["failed"]) == (2, 1)
    h.step()
    h.step()
    assert _totals(h.status()) == before and h.status()["retired"]["deleting"] == []


def test_a_deleted_execution_is_counted_once_when_the_write_that_counted_it_seemed_to_fail():
    api = _world()
    api.queues[("ns", "q")]["spec"]["history"] = {"succeeded": 100, "failed": 100}
    h = Harness(api)
    h.step()
    before = _totals(h.status())
    del api.executions[("ns", "s3")]
    h.sync()
    real_patch = api.merge_patch

    async def landed_but_lost(path, body):  # the write lands, its answer never comes back
        await real_patch(path, body)
        raise ConnectionError("connection reset")
    api.merge_patch = landed_but_lost
    h.step()
    api.merge_patch = real_patch
    for _ in range(3):
        h.step()
    assert _totals(h.status()) == before and h.status()["retired"]["succeeded"] == 1
