"""Operator metrics: gauges from the view, counters counted once, API errors by operation (pure)."""
from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sluice.api.settings import Settings
from sluice.metrics import Metrics, api_operation
from sluice.cache.view import ClusterView

from .builders import execution, queue, ts


def _samples(metrics: Metrics) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _k(name: str, labels: tuple = (), **more) -> tuple:
    return (name, tuple(sorted((*labels, *more.items()))))


def _job(name, execution_name, queue_name="default", ns="ns", parallelism=1, finished=False):
    job = {"metadata": {"name": name, "namespace": ns, "resourceVersion": "1",
                        "ownerReferences": [{"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
                                             "name": execution_name, "uid": f"uid-{execution_name}",
                                             "controller": True}],
                        "labels": {"sluice.dev/execution": execution_name, "sluice.dev/queue": queue_name,
                                   "sluice.dev/attempt": "1"}},
           "spec": {"parallelism": parallelism}, "status": {}}
    if finished:
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    return job


def test_gauges_come_from_the_view_at_scrape_time():
    view = ClusterView()
    view.upsert_queue(queue("q", runningCapacity=3, queuedCapacity=9, paused=True))
    view.upsert_execution(execution("a", queue="q", status={"phase": "Queued"}))
    view.upsert_execution(execution("b", queue="q", status={"phase": "Queued"}))
    view.upsert_execution(execution("c", queue="q", status={"phase": "Running"}))
    view.upsert_execution(execution("d", status={"phase": "Running"}))
    view.upsert_execution(execution("e", status={"phase": "Succeeded"}))
    view.upsert_job(_job("c-a1", "c", "q", parallelism=2))
    view.upsert_job(_job("d-a1", "d"))
    view.upsert_job(_job("e-a1", "e", finished=True))
    m = Metrics(lambda: view, Settings(running_capacity=7, queued_capacity=70))
    s = _samples(m)
    q, d = (("namespace", "ns"), ("queue", "q")), (("namespace", "ns"), ("queue", "default"))
    assert s[("sluice_queue_depth", q)] == 2 and s[("sluice_queue_depth", d)] == 0
    assert s[("sluice_running", q)] == 2 and s[("sluice_running", d)] == 1
    assert s[("sluice_running_capacity", q)] == 3 and s[("sluice_queued_capacity", q)] == 9
    assert s[("sluice_running_capacity", d)] == 7 and s[("sluice_queued_capacity", d)] == 70  # no object
    assert s[("sluice_queue_paused", q)] == 1 and s[("sluice_queue_paused", d)] == 0
    assert s[_k("sluice_executions", d, phase="Succeeded")] == 1
    assert s[_k("sluice_executions", q, phase="Queued")] == 2
    assert s[("sluice_operator_running_capacity", ())] == 7
    assert s[("sluice_leader", ())] == 1


def _written(phase, reason="", queued=0, started=None, completed=None, uid="u1"):
    obj = execution("x", status={"phase": phase, "reason": reason, "queuedAt": ts(queued)})
    obj["metadata"]["uid"] = uid
    if started is not None:
        obj["status"]["startedAt"] = ts(started)
    if completed is not None:
        obj["status"]["completedAt"] = ts(completed)
    return obj


def test_outcomes_wait_and_run_are_counted_once_per_execution():
    m = Metrics(lambda: None, Settings())
    m.status_written(_written("Queued"))
    m.status_written(_written("Running", started=4))
    m.status_written(_written("Running", started=4))  # a position/retry rewrite: not a second wait
    m.status_written(_written("Failed", "TestsFailed", started=4, completed=34))
    m.status_written(_written("Failed", "TestsFailed", started=4, completed=34))
    m.status_written(_written("Rejected", "QueueFull", uid="u2"))
    s = _samples(m)
    lab = (("namespace", "ns"), ("queue", "default"))
    assert s[_k("sluice_outcomes_total", lab, phase="Failed", reason="TestsFailed")] == 1
    assert s[_k("sluice_outcomes_total", lab, phase="Rejected", reason="QueueFull")] == 1
    assert s[("sluice_wait_seconds_count", lab)] == 1 and s[("sluice_wait_seconds_sum", lab)] == 4
    assert s[_k("sluice_wait_seconds_bucket", lab, le="5.0")] == 1
    assert s[_k("sluice_wait_seconds_bucket", lab, le="2.5")] == 0
    assert s[("sluice_run_seconds_count", lab)] == 1 and s[("sluice_run_seconds_sum", lab)] == 30


def test_admissions_and_dispatch_latency():
    m = Metrics(lambda: None, Settings())
    import time
    m.slot_freed(time.monotonic() - 0.2)
    m.admitted("ns", "q")
    m.admitted("ns", "q")  # no freed slot left: no latency sample
    s = _samples(m)
    assert s[("sluice_admissions_total", (("namespace", "ns"), ("queue", "q")))] == 2
    assert s[("sluice_dispatch_latency_seconds_count", ())] == 1
    assert s[("sluice_dispatch_latency_seconds_bucket", (("le", "0.1"),))] == 0


@pytest.mark.parametrize("method,path,op", [
    ("PATCH", "/apis/sluice.dev/v1alpha1/namespaces/a/testexecutions/x/status", "patch_testexecutions_status"),
    ("POST", "/apis/batch/v1/namespaces/a/jobs", "post_jobs"),
    ("GET", "/apis/sluice.dev/v1alpha1/testexecutions", "get_testexecutions"),
    ("GET", "/api/v1/namespaces/a/pods", "get_pods"),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/sluice", "put_leases"),
])
def test_api_operation_names(method, path, op):
    assert api_operation(method, path) == op


def test_watch_api_counts_failed_requests_and_reraises():
    class Boom(Exception):
        status = 409

    class FakeKube:
        async def request(self, method, path, body=None):
            if method == "POST":
                raise Boom()
            return {}

        async def get(self, path):
            return await self.request("GET", path)

    m = Metrics(lambda: None, Settings())
    kube = FakeKube()
    m.watch_api(kube)
    m.watch_api(kube)  # idempotent
    asyncio.run(kube.get("/api/v1/namespaces/a/pods"))
    with pytest.raises(Boom):
        asyncio.run(kube.request("POST", "/apis/batch/v1/namespaces/a/jobs", {}))
    s = _samples(m)
    assert s[("sluice_api_errors_total", (("code", "409"), ("operation", "post_jobs")))] == 1
    assert not any(k[0] == "sluice_api_errors_total" and ("operation", "get_pods") in k[1] for k in s)


def test_overdue_seconds_is_how_late_the_latest_waiter_of_each_queue_is():
    """sluice_queue_overdue_seconds (the SluiceExecutionOverdue alert's input): now minus the
    oldest status.estimatedStartAt among Queued executions, 0 for an on-time or ETA-less queue."""
    from .builders import T0
    from datetime import timedelta
    view = ClusterView()
    view.upsert_queue(queue("q", runningCapacity=1, queuedCapacity=9))
    view.upsert_queue(queue("idle"))
    view.upsert_execution(execution("a", queue="q", status={"phase": "Queued", "estimatedStartAt": ts(0)}))
    view.upsert_execution(execution("b", queue="q", status={"phase": "Queued", "estimatedStartAt": ts(300)}))
    view.upsert_execution(execution("c", queue="q", status={"phase": "Running", "estimatedStartAt": ts(-900)}))
    view.upsert_execution(execution("d", status={"phase": "Queued", "estimatedStartAt": ts(3600)}))  # not due
    view.upsert_execution(execution("e", status={"phase": "Queued"}))  # no ETA yet
    m = Metrics(lambda: view, Settings(), clock=lambda: T0 + timedelta(seconds=600))
    s = _samples(m)
    q, d, idle = ((("namespace", "ns"), ("queue", n)) for n in ("q", "default", "idle"))
    assert s[("sluice_queue_overdue_seconds", q)] == 600  # a, not the Running c
    assert s[("sluice_queue_overdue_seconds", d)] == 0
    assert s[("sluice_queue_overdue_seconds", idle)] == 0


def test_overdue_is_measured_against_the_first_estimate_written_not_the_moved_one():
    """The operator moves a waiter's ETA along with its queue; the promise is the first one."""
    from .builders import T0
    from datetime import timedelta
    view = ClusterView()
    first = execution("a", queue="q", status={"phase": "Queued", "estimatedStartAt": ts(0)})
    moved = execution("a", queue="q", status={"phase": "Queued", "estimatedStartAt": ts(900)})
    now = [T0 + timedelta(seconds=1000)]
    m = Metrics(lambda: view, Settings(), clock=lambda: now[0])
    m.status_written(first)
    m.status_written(moved)
    view.upsert_execution(moved)
    key = ("sluice_queue_overdue_seconds", (("namespace", "ns"), ("queue", "q")))
    assert _samples(m)[key] == 1000
    admitted = execution("a", queue="q", status={"phase": "Running"})
    m.status_written(admitted)
    view.upsert_execution(admitted)
    assert key not in _samples(m) or _samples(m)[key] == 0
    assert m._promised == {}


def test_promises_stay_bounded_without_scrapes(monkeypatch):
    import sluice.metrics as metrics_module
    monkeypatch.setattr(metrics_module, "REMEMBERED", 3)
    m = Metrics(ClusterView, Settings())
    for i in range(5):
        m.status_written(execution(f"x{i}", status={"phase": "Queued", "estimatedStartAt": ts(i)}))
    assert list(m._promised) == ["uid-x2", "uid-x3", "uid-x4"]


def test_each_planner_pass_is_timed_by_kind():
    """The first pass after start is full (every waiter looked at), the next incremental: the
    histogram's count per kind is the number of passes (bench/dispatch.py prints it per execution)."""
    from sluice.dispatch.loop import Dispatcher

    d = Dispatcher(kube=None, settings=Settings())
    d.metrics = m = Metrics(lambda: d.view, Settings())
    d.pass_once()
    d.pass_once()
    s = _samples(m)
    assert s[_k("sluice_planner_pass_seconds_count", kind="full")] == 1
    assert s[_k("sluice_planner_pass_seconds_count", kind="incremental")] == 1
    assert s[_k("sluice_planner_pass_seconds_sum", kind="full")] >= 0
