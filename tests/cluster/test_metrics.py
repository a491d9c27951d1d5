"""Operator metrics and queue statistics against the real control plane (kwok runner pods)."""
from __future__ import annotations

import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.cli import sluice_cli
from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))


def _scrape(op) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(op.metrics()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _k(name: str, **labels) -> tuple:
    return (name, tuple(sorted(labels.items())))


def _bucket(value: float) -> int:
    return next(i for i, le in enumerate(BUCKETS) if value <= le)


def _histogram_quantile_bucket(samples: dict, name: str, q: float, **labels) -> int:
    """The index of the bucket holding the q-quantile (what histogram_quantile interpolates within)."""
    total = samples[_k(f"{name}_count", **labels)]
    for i, le in enumerate(BUCKETS):
        key = _k(f"{name}_bucket", **labels, le="+Inf" if le == float("inf") else str(float(le)))
        if samples[key] >= q * total:
            return i
    raise AssertionError("no bucket")


def test_metrics_agree_with_the_api(namespace, sluice, start_operator):
    op = start_operator(running_capacity=4, queued_capacity=40)
    sluice.create_queue("q", {"runningCapacity": 2, "queuedCapacity": 5, "paused": True})
    for i in range(7):
        sluice.create(f"ok-{i}", {"queue": "q", "runner": kwok_runner("1s")})
        time.sleep(0.05)
    items = [sluice.wait_phase(f"ok-{i}", "Queued", "Rejected") for i in range(7)]
    lab = {"namespace": namespace, "queue": "q"}
    s = _scrape(op)
    queued = sum(1 for i in items if i["status"]["phase"] == "Queued")
    assert queued == 5
    assert s[_k("sluice_queue_depth", **lab)] == queued
    assert s[_k("sluice_running_capacity", **lab)] == 2 and s[_k("sluice_queued_capacity", **lab)] == 5
    assert s[_k("sluice_queue_paused", **lab)] == 1 and s[_k("sluice_running", **lab)] == 0
    assert s[_k("sluice_operator_running_capacity")] == 4 and s[_k("sluice_operator_queued_capacity")] == 40
    assert s[_k("sluice_executions", **lab, phase="Rejected")] == 2
    assert s[_k("sluice_outcomes_total", **lab, phase="Rejected", reason="QueueFull")] == 2

    sluice.create("bad", {"runner": kwok_runner("1s", exit_code=1, message="")})
    sluice.patch_queue("q", {"paused": False})
    peak_running = 0
    deadline = time.time() + 90
    while time.time() < deadline:
        s = _scrape(op)
        peak_running = max(peak_running, s.get(_k("sluice_running", **lab), 0))
        if all((x.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Rejected") for x in sluice.list()):
            break
        time.sleep(0.2)
    assert peak_running == 2  # the queue's capacity, as the API's Jobs say
    time.sleep(0.5)  # the last status write's hook runs right after the API returned it
    items = sluice.list()
    s = _scrape(op)
    api_phases: dict[tuple[str, str], int] = {}
    for x in items:
        key = ((x["spec"].get("queue") or "default"), x["status"]["phase"])
        api_phases[key] = api_phases.get(key, 0) + 1
    for (queue, phase), n in api_phases.items():
        assert s[_k("sluice_executions", namespace=namespace, queue=queue, phase=phase)] == n
    attempts = sum(x["status"].get("attempt") or 0 for x in items)
    metric_admissions = sum(v for (name, labels), v in s.items() if name == "sluice_admissions_total"
                            and ("namespace", namespace) in labels)
    assert metric_admissions == attempts == 6  # 5 in q, 1 (no retry on TestFailure) in default
    assert s[_k("sluice_outcomes_total", **lab, phase="Succeeded", reason="TestsPassed")] == 5
    assert s[_k("sluice_outcomes_total", namespace=namespace, queue="default", phase="Failed", reason="TestsFailed")] == 1
    assert s[_k("sluice_wait_seconds_count", **lab)] == 5 and s[_k("sluice_run_seconds_count", **lab)] == 5
    assert s[_k("sluice_queue_depth", **lab)] == 0 and s[_k("sluice_running", **lab)] == 0
    assert s[_k("sluice_dispatch_latency_seconds_count")] >= 1
    assert s[_k("sluice_leader")] == 1


def test_queue_stats_of_a_known_run_match_expected_percentiles(cluster, namespace, sluice, start_operator):
    op = start_operator(running_capacity=10)
    sluice.create_queue("stats", {"runningCapacity": 10, "paused": True})
    delays = list(range(1, 11))  # run times 1s..10s (plus the Job/pod overhead)
    for d in delays:
        sluice.create(f"d{d:02d}", {"queue": "stats", "runner": kwok_runner(f"{d}s")})
    for d in delays:
        sluice.wait_phase(f"d{d:02d}", "Queued")
    sluice.patch_queue("stats", {"paused": False})
    sluice.wait_all_terminal(timeout=120)
    time.sleep(0.5)

    out = sluice_cli(cluster.kubeconfig, namespace, "stats", "--queue", "stats")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"admitted\s+10\s+succeeded 10\s+failed 0", text), text
    run = re.search(r"run\s+p50 ([\d.]+)s\s+p95 ([\d.]+)s", text)
    p50, p95 = float(run.group(1)), float(run.group(2))
    # nearest rank over 10 runs: p50 is the 5th (5s), p95 the 10th (10s), plus a little overhead
    assert 5 <= p50 <= 7.5 and 10 <= p95 <= 12.5, text
    s = _scrape(op)
    lab = {"namespace": namespace, "queue": "stats"}
    assert s[_k("sluice_run_seconds_count", **lab)] == 10
    for q, value in ((0.5, p50), (0.95, p95)):
        assert abs(_histogram_quantile_bucket(s, "sluice_run_seconds", q, **lab) - _bucket(value)) <= 1
    # TestQueue.status (written by the operator at a bounded rate) says the same as the CLI
    deadline = time.time() + 15
    while time.time() < deadline:
        st = sluice.get_queue("stats").get("status") or {}
        if st.get("succeededTotal") == 10:
            break
        time.sleep(0.5)
    assert st["runSeconds"]["p50"] == pytest.approx(p50, abs=0.051)  # the CLI prints 2 or 1 decimals
    assert st["runSeconds"]["p95"] == pytest.approx(p95, abs=0.051)
