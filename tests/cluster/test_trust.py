"""Trust nothing a user can write (issue 11) on the real control plane: a Job with Sluice's labels
but not controlled by the execution neither counts nor reports; a pre-created object under the
name Sluice would use is never adopted; a Job deleted mid-run closes its attempt once."""
from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.harness.sluice_api import KWOK_PLACEMENT, kwok_runner

pytestmark = pytest.mark.cluster

PASSED = json.dumps({"v": 1, "outcome": "passed", "total": 99, "passed": 99, "failed": 0, "skipped": 0,
                     "flaky": 0, "durationSeconds": 1})


def _forged_job(ns: str, name: str, execution: str, attempt: int, parallelism: int = 1,
                suspend: bool = False) -> dict:
    """A Job anyone allowed to create Jobs could write: Sluice's labels, no controller."""
    labels = {"sluice.dev/execution": execution, "sluice.dev/attempt": str(attempt), "sluice.dev/queue": "default"}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"suspend": suspend, "parallelism": parallelism, "completions": parallelism, "backoffLimit": 0,
                 "template": {"metadata": {"labels": labels, "annotations": {
                     "pod-complete.stage.kwok.x-k8s.io/delay": "1s",
                     "test.sluice.dev/termination-message": PASSED}},
                     "spec": {"restartPolicy": "Never", **KWOK_PLACEMENT,
                              "containers": [{"name": "runner", "image": "forged:1"}]}}},
    }


def test_forged_jobs_neither_report_nor_hold_capacity(cluster, sluice, start_operator):
    batch = client.BatchV1Api(cluster.api_client())
    start_operator(running_capacity=2)
    # A suspended Job labelled for an execution, as wide as the whole cluster cap: it must hold nothing.
    batch.create_namespaced_job(sluice.ns, _forged_job(sluice.ns, "blocker-a1", "blocker", 1, parallelism=5,
                                                       suspend=True))
    # A "passed" Job under the very name of victim's attempt 9.
    batch.create_namespaced_job(sluice.ns, _forged_job(sluice.ns, "victim-a9", "victim", 9))
    sluice.create("victim", {"runner": kwok_runner("2s", exit_code=1, message="1 failed")})
    sluice.create("bystander", {"runner": kwok_runner("1s")})
    st = sluice.wait_phase("victim", "Succeeded", "Failed", timeout=60)["status"]
    assert (st["phase"], st["reason"], st["attempt"]) == ("Failed", "TestsFailed", 1)
    assert "99" not in st["message"]
    assert sluice.wait_phase("bystander", "Succeeded", "Failed", timeout=60)["status"]["phase"] == "Succeeded"


def test_a_precreated_source_configmap_is_never_mounted(cluster, sluice, start_operator):
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_config_map(sluice.ns, {
        "metadata": {"name": "nightly-src"},
        "data": {"conftest.py": "import os\nprint(os.environ)\n"}})
    start_operator()
    sluice.create("nightly", {"runner": kwok_runner("1s")})
    st = sluice.wait_phase("nightly", "Rejected", "Succeeded", "Failed", timeout=60)["status"]
    assert (st["phase"], st["reason"]) == ("Rejected", "InvalidSpec")
    assert "nightly-src" in st["message"] and "does not belong" in st["message"]
    assert sluice.jobs() == []


def test_a_job_deleted_mid_run_is_closed_once_and_retried(cluster, sluice, start_operator):
    batch = client.BatchV1Api(cluster.api_client())
    start_operator()
    sluice.create("victim", {"retries": {"limit": 1, "backoff": {"initialSeconds": 2}},
                             "runner": kwok_runner("600s")})
    sluice.wait_phase("victim", "Running")
    before = int(sluice.get("victim")["metadata"]["resourceVersion"])
    batch.delete_namespaced_job("victim-a1", sluice.ns, propagation_policy="Background")
    st = sluice.wait("victim", lambda o: (o.get("status") or {}).get("attempt") == 2
                     and o["status"].get("phase") == "Running", timeout=60, what="attempt 2 running")["status"]
    first = st["attempts"][0]
    assert first["outcome"] == "Failed" and "disappeared" in first["message"]
    writes = [e for e in sluice.events("victim")]
    assert len(writes) <= 6, [(e.reason, e.message) for e in writes]  # Admitted, RetryScheduled, Admitted
    assert int(sluice.get("victim")["metadata"]["resourceVersion"]) > before
