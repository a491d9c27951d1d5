"""Pods that never start fail fast (issue 15 part 3), on the real control plane: an unschedulable
pod (the real scheduler's words), an image that cannot be pulled and a missing Secret (the
process node's kubelet words) end their attempt with PodPendingTooLong after the queue's grace,
long before timeoutSeconds, are retried, then end Failed with the pod's reason in the message.

The pull and Secret cases run on a private process node started by this test from the checkout
(tainted so no other test's pod lands on it): a long-running shared cluster may run an older agent.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from datetime import datetime

import pytest
from kubernetes import client

from tests.harness.procs import kill_group
from tests.harness.sluice_api import TERMINAL

pytestmark = pytest.mark.cluster

GRACE = 10  # the CRD's minimum podPendingGraceSeconds
TIMEOUT = 600  # timeoutSeconds: a TimedOut attempt would take this long
RETRIES = {"limit": 1, "backoff": {"initialSeconds": 1, "factor": 1, "maxSeconds": 1}}
IMAGE = "registry.invalid/sluice/runner:1"
MISSING_IMAGE = "registry.invalid/sluice/does-not-exist:1"
PRIVATE_TAINT = "test.sluice.dev/private-node"


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture
def private_node(cluster, tmp_path):
    """A process node agent of this checkout on a fresh Node only pods tolerating PRIVATE_TAINT use."""
    name = f"pp-{uuid.uuid4().hex[:8]}"
    log = open(tmp_path / "agent.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.process_node", "--kubeconfig", str(cluster.kubeconfig),
         "--node-name", name, "--work-dir", str(tmp_path / "node"), "--taint", f"{PRIVATE_TAINT}={name}:NoSchedule"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    core = client.CoreV1Api(cluster.api_client())
    try:
        deadline = time.monotonic() + 30
        while not _ready(core, name):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "agent.log").read_text()[-2000:]
            time.sleep(0.2)
        yield name
    finally:
        kill_group(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, 9)
        log.close()
        for delete in (lambda: core.delete_node(name),
                       lambda: client.CoordinationV1Api(cluster.api_client()).delete_namespaced_lease(
                           name, "kube-node-lease")):
            try:
                delete()
            except client.ApiException:
                pass


def _ready(core, name: str) -> bool:
    try:
        node = core.read_node(name)
    except client.ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def _queue(sluice) -> None:
    sluice.create_queue("pending", {"podPendingGraceSeconds": GRACE, "allowedImages": [IMAGE, MISSING_IMAGE]})


def _execution(sluice, name: str, runner: dict, **spec) -> None:
    sluice.create(name, {"queue": "pending", "timeoutSeconds": TIMEOUT, "retries": RETRIES,
                         "runner": dict({"image": IMAGE}, **runner), **spec})


def _assert_failed_fast(sluice, name: str, words: str) -> dict:
    st = sluice.wait_phase(name, *TERMINAL, timeout=120)["status"]
    assert (st["phase"], st["reason"]) == ("Failed", "PodPendingTooLong"), st
    assert st["message"].startswith("attempt 2 of 2: runner pod ") and words in st["message"], st["message"]
    attempts = st["attempts"]
    assert [(a["attempt"], a["outcome"], a["reason"]) for a in attempts] == [
        (1, "Failed", "PodPendingTooLong"), (2, "Failed", "PodPendingTooLong")]
    for a in attempts:
        ran = (_t(a["completedAt"]) - _t(a["startedAt"])).total_seconds()
        assert GRACE - 1 <= ran <= GRACE + 15, f"attempt {a['attempt']} ended after {ran}s (grace {GRACE}s)"
        assert words in a["message"] and f"podPendingGraceSeconds ({GRACE}s)" in a["message"]
    total = (_t(st["completedAt"]) - _t(st["queuedAt"])).total_seconds()
    assert total < TIMEOUT / 10, f"ended after {total}s: not long before timeoutSeconds ({TIMEOUT}s)"
    return st


def _jobs_gone(sluice, name: str, timeout: float = 30) -> None:
    """The attempts' Jobs were deleted (a pod that never starts would otherwise hold its slot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [j.metadata.name for j in sluice.jobs() if j.metadata.labels.get("sluice.dev/execution") == name]
        if not left:
            return
        time.sleep(0.5)
    raise AssertionError(f"Jobs of {name} still there: {left}")


def test_pods_that_never_start_fail_their_attempts_after_the_grace_then_the_execution(
        sluice, start_operator, private_node):
    start_operator()
    _queue(sluice)
    placement = {"nodeSelector": {"kubernetes.io/hostname": private_node},
                 "tolerations": [{"key": "sluice.dev/process-node", "operator": "Exists", "effect": "NoSchedule"},
                                 {"key": PRIVATE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}
    _execution(sluice, "nowhere", {"nodeSelector": {"test.sluice.dev/nowhere": "true"}})
    _execution(sluice, "no-image", dict(placement, image=MISSING_IMAGE))
    _execution(sluice, "no-secret", placement,
               artifacts={"s3": {"bucket": "arts", "secretRef": {"name": "no-such-secret"}}})

    st = _assert_failed_fast(sluice, "nowhere", "nodes are available: ")  # the scheduler's words
    assert re.search(r"\): 0/\d+ nodes are available: \d+ node\(s\)", st["message"]), st["message"]
    st = _assert_failed_fast(sluice, "no-image", "ErrImagePull: ")  # the (process node's) kubelet's
    assert f'Failed to pull image "{MISSING_IMAGE}"' in st["message"]
    st = _assert_failed_fast(sluice, "no-secret", "CreateContainerConfigError: ")
    assert "no-such-secret" in st["message"]
    for name in ("nowhere", "no-image", "no-secret"):
        _jobs_gone(sluice, name)
        reasons = [e.reason for e in sluice.events(name)]
        assert "RetryScheduled" in reasons and "PodPendingTooLong" in reasons, reasons
