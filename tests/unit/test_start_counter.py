"""The harness's StartCounter (tests/harness/start_counter.py) counts what test_queue relies on: a
second Job for an execution, even one deleted at once, and a start announced twice."""
from tests.harness.start_counter import StartCounter


def _tx(name: str, phase: str | None, message: str | None = None) -> dict:
    return {"metadata": {"name": name}, "status": {"phase": phase, "message": message} if phase else {}}


def _job(name: str, execution: str) -> dict:
    return {"metadata": {"name": name, "labels": {"sluice.dev/execution": execution}}}


def test_one_start_is_one_and_a_start_announced_again_is_two():
    c = StartCounter(sluice=None)
    for obj in [_tx("a", None), _tx("a", "Queued", "1 ahead"), _tx("a", "Running", "attempt 1 started (Job a-a1)"),
                _tx("a", "Running", "attempt 1 started (Job a-a1)"), _tx("a", "Succeeded", "1/1 passed")]:
        c._on_execution("MODIFIED", obj)
    # the race test_queue guards against: a stale Queued status, then the Job "adopted"
    for obj in [_tx("b", "Running", "attempt 1 started (Job b-a1)"), _tx("b", "Queued", "2 ahead"),
                _tx("b", "Running", "attempt 1 started (Job b-a1)"), _tx("c", "Running", "attempt 1 started (Job c-a1)"),
                _tx("c", "Running", "attempt 1 is running (Job c-a1)")]:
        c._on_execution("MODIFIED", obj)
    c._on_execution("DELETED", _tx("a", "Running", "gone"))
    assert dict(c.starts) == {"a": 1, "b": 2, "c": 2}


def test_a_job_deleted_and_created_again_counts_twice():
    c = StartCounter(sluice=None)
    for event_type, job in [("ADDED", _job("a-a1", "a")), ("MODIFIED", _job("a-a1", "a")), ("DELETED", _job("a-a1", "a")),
                            ("ADDED", _job("a-a1", "a")), ("ADDED", _job("b-a1", "b"))]:
        c._on_job(event_type, job)
    assert dict(c.jobs) == {"a": 2, "b": 1} and c.job_names["a"] == ["a-a1", "a-a1"]
