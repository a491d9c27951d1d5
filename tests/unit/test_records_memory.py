"""The view's records are lightened (`cache.records.lighten`): they must say exactly what a freshly
validated model says, stay usable (copies, assignments), and cost what the issue 17 figures need."""
from __future__ import annotations

import gc
import tracemalloc

from .builders import execution

from sluice.api.execution import TestExecutionSpec, TestExecutionStatus
from sluice.cache.records import ExecutionRecord
from sluice.cache.view import ClusterView

CONDITIONS = ("Admitted", "Running", "Complete", "Succeeded", "Ready", "Reconciling", "Stalled")


def queued_status(i: int = 0) -> dict:
    return {"phase": "Queued", "reason": "Queued", "message": f"waiting: position {i + 1} in queue default",
            "queuePosition": i + 1, "queuedAt": "2026-01-01T12:00:00Z", "observedGeneration": 1,
            "estimatedStartTime": "2026-01-01T12:10:00Z",
            "conditions": [{"type": t, "status": "False", "reason": "Queued", "message": "waiting",
                            "lastTransitionTime": "2026-01-01T12:00:00Z", "observedGeneration": 1} for t in CONDITIONS]}


def running_status() -> dict:
    st = queued_status()
    st.update(phase="Running", reason="Admitted", attempt=2, jobName="x-a2", startedAt="2026-01-01T12:01:00Z",
              attempts=[{"attempt": 1, "jobName": "x-a1", "outcome": "Failed", "reason": "InfrastructureError"}],
              progress={"total": 10, "passed": 3, "failed": 1})
    st.pop("queuePosition")
    return st


SPECS = [
    {},
    {"priority": "high", "shards": 3, "retries": {"limit": 2, "backoff": {"initialSeconds": 1, "factor": 2}},
     "environments": ["staging"], "runner": {"image": "ghcr.io/x/y:1", "env": [{"name": "A", "value": "b"}]}},
]


def test_a_lightened_record_says_what_a_fresh_model_says():
    for spec in SPECS:
        for status in (queued_status(), running_status(), {}):
            obj = execution("x", status=status, **spec)
            rec = ExecutionRecord.from_object(obj)
            assert rec.spec.wire() == TestExecutionSpec.model_validate(obj["spec"]).wire()
            assert rec.status.wire() == TestExecutionStatus.model_validate(status).wire()
            assert rec.status == TestExecutionStatus.model_validate(status)


def test_lightened_models_still_copy_and_assign():
    a = ExecutionRecord.from_object(execution("a", status=queued_status(0)))
    b = ExecutionRecord.from_object(execution("b", status=queued_status(1)))
    copy = a.status.model_copy(deep=True)
    copy.queue_position = 7
    copy.conditions[0].reason = "Moved"
    assert (a.status.queue_position, a.status.conditions[0].reason) == (1, "Queued")
    assert copy.wire()["queuePosition"] == 7 and copy.wire()["conditions"][0]["reason"] == "Moved"
    a.status.conditions[1].message = "changed in place"
    assert b.status.conditions[1].message == "waiting"  # the shared set carries names, never values
    assert a.status.model_copy(update={"reason": "Other"}).reason == "Other"


def test_a_waiting_execution_costs_under_8_kb_in_the_view():
    objs = [execution(f"q-{i:05d}", status=queued_status(i), runner={"image": "registry.local/runner:1"})
            for i in range(500)]
    view = ClusterView()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for obj in objs:
        view.upsert_execution(obj)
    del objs, obj
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_record = sum(s.size_diff for s in after.compare_to(before, "filename")) / 500
    assert per_record < 8 * 1024, per_record  # 14.4 KB before lighten (issue 17)
