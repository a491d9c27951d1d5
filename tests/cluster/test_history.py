"""History limits against the real control plane: the oldest finished executions are deleted
beyond `spec.history` and after `ttlSecondsAfterFinished`, and `TestQueue.status` totals and
percentiles stay exactly what they were, across a SIGKILL of the operator mid-retention too."""
from __future__ import annotations

import json
import random
import time
from datetime import datetime

import pytest

from sluice.api.queue import Retired
from sluice.cache.view import ExecutionRecord
from sluice.status.queue_stats import retire
from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster

PASSED = json.dumps({"v": 1, "outcome": "passed", "total": 2, "passed": 2, "failed": 0, "skipped": 0, "flaky": 0,
                     "durationSeconds": 0.5})
FAILED = json.dumps({"v": 1, "outcome": "failed", "total": 2, "passed": 1, "failed": 1, "skipped": 0, "flaky": 0,
                     "durationSeconds": 0.5})
FIGURES = ("admittedTotal", "succeededTotal", "failedTotal", "waitSeconds", "runSeconds")


def _passing(delay: str = "1s") -> dict:
    return kwok_runner(delay, termination=PASSED)


def _failing(delay: str = "1s") -> dict:
    return kwok_runner(delay, exit_code=1, message=FAILED)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _figures(status: dict) -> dict:
    return {k: status.get(k) for k in FIGURES}


def _wait_queue(sluice, name: str, predicate, timeout: float = 60, what: str = "") -> dict:
    deadline = time.time() + timeout
    st: dict = {}
    while time.time() < deadline:
        st = sluice.get_queue(name).get("status") or {}
        if predicate(st):
            return st
        time.sleep(0.3)
    raise TimeoutError(f"TestQueue {name}: not {what} within {timeout}s; status: {st}")


def _wait_names(sluice, predicate, timeout: float = 60, what: str = "") -> list[dict]:
    deadline = time.time() + timeout
    items: list[dict] = []
    while time.time() < deadline:
        items = sluice.list()
        if predicate(items):
            return items
        time.sleep(0.3)
    raise TimeoutError(f"executions: not {what} within {timeout}s; left: {sorted(i['metadata']['name'] for i in items)}")


def _wait_leader(op, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if "sluice_leader 1.0" in op.metrics():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the operator did not take the Lease within {timeout}s")


def _run(sluice, queue: str, passing: int, failing: int, spacing: float = 0.2) -> None:
    """Creates them one after the other (so their ends are ordered) and waits for all to end."""
    for i in range(passing):
        sluice.create(f"pass-{i:02d}", {"queue": queue, "runner": _passing()})
        time.sleep(spacing)
    for i in range(failing):
        sluice.create(f"fail-{i:02d}", {"queue": queue, "runner": _failing()})
        time.sleep(spacing)
    sluice.wait_all_terminal(timeout=120)


def _settled(passing: int, failing: int):
    def check(st: dict) -> bool:
        return (st.get("succeededTotal"), st.get("failedTotal"), st.get("running"), st.get("queued")) == \
            (passing, failing, 0, 0) and not (st.get("retired") or {}).get("deleting")
    return check


def test_limits_keep_the_newest_and_the_totals_and_percentiles(sluice, start_operator):
    start_operator(running_capacity=5, queue_status_interval_seconds=1)
    sluice.create_queue("hist", {"runningCapacity": 5, "history": {"succeeded": 100, "failed": 100}})
    _run(sluice, "hist", passing=10, failing=5)
    before = _wait_queue(sluice, "hist", _settled(10, 5), what="10 succeeded, 5 failed")
    assert before["admittedTotal"] == 15 and before["runSeconds"]["p50"] >= 1
    assert len(sluice.list()) == 15 and len(sluice.jobs()) == 15
    ended = sorted(sluice.list(), key=lambda i: (i["status"]["completedAt"], i["metadata"]["name"]))
    newest = {*[i["metadata"]["name"] for i in ended if i["status"]["phase"] == "Succeeded"][-3:],
              *[i["metadata"]["name"] for i in ended if i["status"]["phase"] == "Failed"][-2:]}

    sluice.patch_queue("hist", {"history": {"succeeded": 3, "failed": 2}})
    items = _wait_names(sluice, lambda items: len(items) == 5, what="down to 3 + 2")
    assert {i["metadata"]["name"] for i in items} == newest  # the oldest went, per outcome
    after = _wait_queue(sluice, "hist", _settled(10, 5), what="settled after the deletes")
    assert _figures(after) == _figures(before), "totals or percentiles moved with the deletions"
    retired = after["retired"]
    assert (retired["admitted"], retired["succeeded"], retired["failed"]) == (10, 7, 3)
    assert sum(retired["waitBuckets"]) == 10 and sum(retired["runBuckets"]) == 10
    deadline = time.time() + 60  # their Jobs follow them (garbage collector, ownerReferences)
    while len(sluice.jobs()) != 5 and time.time() < deadline:
        time.sleep(0.5)
    assert sorted(j.metadata.labels["sluice.dev/execution"] for j in sluice.jobs()) == sorted(newest)

    # deleted by other hands (kubectl delete): still counted
    by_hand = sorted(newest)[0]
    sluice.delete(by_hand)
    _wait_names(sluice, lambda items: len(items) == 4, what="deleted by hand")
    final = _wait_queue(sluice, "hist", lambda st: _settled(10, 5)(st) and st["retired"]["admitted"] == 11,
                        what="the one deleted by hand counted")
    assert _figures(final) == _figures(before)


def test_ttl_seconds_after_finished_deletes_after_the_ttl(sluice, start_operator):
    ttl = 8
    start_operator(queue_status_interval_seconds=1)
    sluice.create_queue("ttl", {"ttlSecondsAfterFinished": ttl})
    _run(sluice, "ttl", passing=2, failing=1)
    ended = {i["metadata"]["name"]: _epoch(i["status"]["completedAt"]) for i in sluice.list()}
    status = _wait_queue(sluice, "ttl", _settled(2, 1), what="counted")
    gone: dict[str, float] = {}
    deadline = time.time() + ttl + 30
    while len(gone) < len(ended) and time.time() < deadline:
        left = {i["metadata"]["name"] for i in sluice.list()}
        gone.update({name: time.time() for name in ended if name not in left and name not in gone})
        time.sleep(0.2)
    assert set(gone) == set(ended), f"not deleted within {ttl + 30}s: {set(ended) - set(gone)}"
    for name, at in gone.items():
        # completedAt is truncated to the second: it ended at or after it
        assert ended[name] + ttl <= at <= ended[name] + ttl + 10, (name, at - ended[name])
    after = _wait_queue(sluice, "ttl", _settled(2, 1), what="settled")
    assert _figures(after) == _figures(status)


def test_a_crash_during_retention_never_counts_twice(sluice, start_operator):
    rng = random.Random(20261124)
    op = start_operator(running_capacity=10, queue_status_interval_seconds=1, lease_duration_seconds=3,
                        lease_renew_seconds=1)
    sluice.create_queue("crash", {"runningCapacity": 10, "history": {"succeeded": 100, "failed": 100}})
    _run(sluice, "crash", passing=12, failing=4, spacing=0.05)
    before = _wait_queue(sluice, "crash", _settled(12, 4), what="all counted")
    # SIGKILL at random moments while the limits come down step by step
    for succeeded, failed in ((8, 3), (4, 2), (2, 1)):
        _wait_leader(op)  # so that the kill lands while it retires, not while it waits for the Lease
        sluice.patch_queue("crash", {"history": {"succeeded": succeeded, "failed": failed}})
        time.sleep(rng.uniform(0.0, 1.2))
        op.kill()
        op.start(wait=True)
    _wait_names(sluice, lambda items: len(items) == 3, timeout=60, what="down to 2 + 1")
    after = _wait_queue(sluice, "crash", _settled(12, 4), what="exact after the crashes")
    assert _figures(after) == _figures(before)

    # The exact crash: a leader wrote an execution's contribution and UID, then died before the
    # delete. The next leader deletes it and counts it once.
    op.stop()
    victim = next(i for i in sluice.list() if i["status"]["phase"] == "Succeeded")
    queue = sluice.get_queue("crash")
    counted = retire(Retired.model_validate(queue["status"]["retired"]),
                     [(victim["metadata"]["uid"], ExecutionRecord.from_object(victim).summary)])
    sluice.api.patch_namespaced_custom_object_status(
        "sluice.dev", "v1alpha1", sluice.ns, "testqueues", "crash",
        {"metadata": {"resourceVersion": queue["metadata"]["resourceVersion"]}, "status": {"retired": counted.wire()}})
    op.start(wait=True)
    _wait_names(sluice, lambda items: victim["metadata"]["name"] not in {i["metadata"]["name"] for i in items},
                what="the counted one deleted")
    final = _wait_queue(sluice, "crash", _settled(12, 4), what="exact after the half-done retirement")
    assert _figures(final) == _figures(before)
    assert final["retired"]["succeeded"] == 11 and len(sluice.list()) == 2
