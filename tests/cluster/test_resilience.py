"""The operator survives SIGKILL at any moment and hands over to a standby: nothing lost, nothing
run twice, capacity never exceeded (sampled from the API, not from the operator)."""
from __future__ import annotations

import collections
import json
import random
import time

import pytest

from tests.harness.sluice_api import CapacityWatcher, kwok_runner

pytestmark = pytest.mark.cluster

INFRA = json.dumps({"v": 1, "outcome": "error", "errorClass": "InfrastructureError", "message": "flake"})


def _assert_no_duplicates_and_all_terminal(sluice, items):
    per_attempt = collections.Counter()
    for job in sluice.jobs():
        labels = job.metadata.labels
        per_attempt[(labels["sluice.dev/execution"], labels["sluice.dev/attempt"])] += 1
    assert max(per_attempt.values()) == 1
    jobs_per_execution = collections.Counter(e for e, _ in per_attempt)
    for item in items:
        st = item["status"]
        name = item["metadata"]["name"]
        assert st["phase"] == "Succeeded", (name, st)
        # every Job that exists for it is an attempt the status accounts for: none ran twice
        assert jobs_per_execution[name] == st["attempt"] == len(st["attempts"]), (name, st["attempts"])


def test_sigkill_at_random_moments_during_200_executions(sluice, start_operator):
    rng = random.Random(20261123)
    op = start_operator(running_capacity=10, queued_capacity=500)
    # The default queue's caps, and a history that keeps all 200 (the default keeps 100 succeeded).
    sluice.create_queue("default", {"runningCapacity": 10, "queuedCapacity": 500,
                                    "history": {"succeeded": 1000, "failed": 1000}})
    for i in range(200):
        retry = i % 10 == 0  # some fail once with an infrastructure error, then succeed
        runner = kwok_runner("1s", exit_code=3, fail_attempts=(1,), message=INFRA) if retry else kwok_runner("1s")
        sluice.create(f"tx-{i:03d}", {"runner": runner, "priority": rng.choice(["high", "normal", "low"]),
                                      "retries": {"limit": 2, "backoff": {"initialSeconds": 1}}})
    watcher = CapacityWatcher(sluice)
    watcher.start()
    kills = 0
    deadline = time.time() + 120  # chaos window; then it must finish on its own
    while time.time() < deadline:
        time.sleep(rng.uniform(0.5, 4.0))
        op.kill()
        kills += 1
        time.sleep(rng.uniform(0, 1.5))
        op.start(wait=False)
        phases = [(i.get("status") or {}).get("phase") for i in sluice.list()]
        if all(p in ("Succeeded", "Failed", "TimedOut", "Cancelled", "Rejected") for p in phases):
            break
    op.wait_ready()
    items = sluice.wait_all_terminal(timeout=240)
    watcher.stop()
    assert kills >= 5
    assert watcher.peak <= 10, f"capacity exceeded: {watcher.peak} unfinished Jobs"
    _assert_no_duplicates_and_all_terminal(sluice, items)
    print(f"\n{kills} SIGKILLs, peak {watcher.peak} unfinished Jobs over {watcher.samples} samples")


def test_standby_replica_takes_over_when_the_leader_dies(sluice, start_operator):
    first = start_operator(running_capacity=3)
    second = start_operator(running_capacity=3)
    leaders = [op for op in (first, second) if "sluice_leader 1.0" in op.metrics()]
    assert len(leaders) == 1
    leader = leaders[0]
    standby = second if leader is first else first
    for i in range(30):
        sluice.create(f"ha-{i:02d}", {"runner": kwok_runner("1s")})
    watcher = CapacityWatcher(sluice)
    watcher.start()
    sluice.wait_phase("ha-00", "Running", "Succeeded", timeout=30)
    leader.kill()
    took_over = time.time()
    while "sluice_leader 1.0" not in standby.metrics():
        assert time.time() - took_over < 20, "the standby did not take over"
        time.sleep(0.2)
    items = sluice.wait_all_terminal(timeout=180)
    watcher.stop()
    assert watcher.peak <= 3
    _assert_no_duplicates_and_all_terminal(sluice, items)


class _TolerantWatcher(CapacityWatcher):
    """CapacityWatcher that keeps sampling through API server outages."""

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, self.sluice.unfinished_job_slots())
                self.samples += 1
            except Exception:  # noqa: BLE001 - the API server is down on purpose
                pass
            time.sleep(0.05)


def test_api_server_restarts_drop_watches_without_losing_or_doubling_work(cluster, sluice, start_operator):
    """Two kube-apiserver restarts (every watch drops, writes fail meanwhile) mid-run: the operator
    reconnects, relists, and every execution still ends once, within capacity."""
    from tests.harness.cluster import LocalCluster

    op = start_operator(running_capacity=5)
    for i in range(40):
        runner = kwok_runner("2s", exit_code=3, fail_attempts=(1,), message=INFRA) if i % 8 == 0 else kwok_runner("2s")
        sluice.create(f"tx-{i:02d}", {"runner": runner, "retries": {"limit": 2, "backoff": {"initialSeconds": 1}}})
    watcher = _TolerantWatcher(sluice)
    watcher.start()
    control_plane = LocalCluster(cluster.state_dir)
    for _ in range(2):
        time.sleep(5)
        control_plane.restart("kube-apiserver", down_seconds=3)
    items = sluice.wait_all_terminal(timeout=240)
    watcher.stop()
    assert op.proc.poll() is None, "the operator died with the API server:\n" + op.log_tail()
    assert watcher.peak <= 5, f"capacity exceeded: {watcher.peak} unfinished Jobs"
    _assert_no_duplicates_and_all_terminal(sluice, items)
