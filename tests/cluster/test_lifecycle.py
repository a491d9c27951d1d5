"""One execution's life against the real control plane: outcomes, retries, cancel, delete."""
from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from typing import Callable

import pytest

from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


RESULT = json.dumps({"v": 1, "outcome": "passed", "total": 4, "passed": 4, "failed": 0, "skipped": 0, "flaky": 0,
                     "durationSeconds": 1.2, "artifacts": {"url": "s3://arts/x/attempt-1/",
                                                           "report": "s3://arts/x/attempt-1/report/index.html"}})


def _events_settle(sluice, name: str, until: Callable[[list[str]], bool], seconds: float = 10) -> list[str]:
    """The reasons of the execution's Events once `until` holds (Events are posted after the
    status write they tell, in the background), or after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        reasons = [e.reason for e in sluice.events(name)]
        if until(reasons) or time.monotonic() > deadline:
            return reasons
        time.sleep(0.25)


def _pod_lists(cluster) -> int:
    """How many LISTs of pods the API server answered so far (its own counter), once no namespace
    is being deleted: the namespace controller LISTs the pods of each one it empties (an earlier
    test's), which would count here too."""
    deadline = time.monotonic() + 120
    while "Terminating" in cluster.kubectl("get", "ns", "-o", "jsonpath={.items[*].status.phase}").stdout:
        assert time.monotonic() < deadline, "a namespace is still Terminating after 120 s"
        time.sleep(0.5)
    return int(cluster.apiserver_metric("apiserver_request_total", resource="pods", verb="LIST"))


def test_success_fills_results_and_conditions_and_posts_no_event(cluster, sluice, start_operator):
    """The default SLUICE_EVENTS=notable: a pass is told by its conditions, not by Events. The
    results come from the pod, read by name (the pod watch saw it): no LIST of the namespace's pods."""
    start_operator()
    lists = _pod_lists(cluster)
    sluice.create("ok", {"runner": kwok_runner("1s", termination=RESULT)})
    wait = cluster.kubectl("wait", "--for=condition=Complete", "--timeout=60s", f"-n={sluice.ns}", "tx/ok", check=False)
    assert wait.returncode == 0, wait.stderr
    assert _pod_lists(cluster) == lists
    st = sluice.get("ok")["status"]
    assert st["phase"] == "Succeeded" and st["reason"] == "TestsPassed" and st["attempt"] == 1
    assert st["results"]["passed"] == 4 and st["artifacts"]["report"].endswith("report/index.html")
    conds = {c["type"]: (c["status"], c.get("observedGeneration")) for c in st["conditions"]}
    assert conds == {"Admitted": ("True", 1), "Running": ("False", 1), "Complete": ("True", 1), "Succeeded": ("True", 1),
                     "Ready": ("True", 1), "Reconciling": ("False", 1), "Stalled": ("False", 1)}
    said = {c["type"]: (c["reason"], c["message"]) for c in st["conditions"]}
    assert said["Succeeded"] == ("TestsPassed", st["message"])  # all that a TestsPassed Event said
    assert _events_settle(sluice, "ok", bool, seconds=3) == []
    table = cluster.kubectl("get", "tx", f"-n={sluice.ns}").stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "PRIORITY", "QUEUE", "POSITION", "ATTEMPT", "PASSED", "FAILED", "PROGRESS",
                                     "AGE"]
    job = sluice.jobs()[0]
    assert job.metadata.owner_references[0].kind == "TestExecution" and job.spec.backoff_limit == 0


def test_infrastructure_errors_retry_with_backoff_then_succeed(sluice, start_operator):
    start_operator()
    sluice.create("flaky-infra", {
        "retries": {"limit": 2, "backoff": {"initialSeconds": 1, "factor": 2, "maxSeconds": 30}},
        "runner": kwok_runner("1s", exit_code=3, fail_attempts=(1, 2),
                              message=json.dumps({"v": 1, "outcome": "error", "errorClass": "InfrastructureError",
                                                  "message": "upload failed"}))})
    st = sluice.wait_phase("flaky-infra", "Succeeded", "Failed", timeout=90)["status"]
    assert st["phase"] == "Succeeded" and st["attempt"] == 3
    a = st["attempts"]
    assert [x["outcome"] for x in a] == ["Failed", "Failed", "Succeeded"]
    assert [x.get("exitCode") for x in a] == [3, 3, 0] and a[0]["reason"] == "InfrastructureError"
    assert [x["jobName"] for x in a] == ["flaky-infra-a1", "flaky-infra-a2", "flaky-infra-a3"]
    for n, delay in ((0, 1), (1, 2)):
        gap = (_t(a[n + 1]["startedAt"]) - _t(a[n]["completedAt"])).total_seconds()
        assert gap >= delay, f"gap after attempt {n + 1} was {gap}s, policy says {delay}s"


@pytest.mark.parametrize("code,phase,reason", [(1, "Failed", "TestsFailed"), (2, "Failed", "InvalidSpec")])
def test_test_failures_and_invalid_source_are_not_retried(sluice, start_operator, code, phase, reason):
    start_operator()
    sluice.create("no-retry", {"runner": kwok_runner("1s", exit_code=code, message="boom")})
    st = sluice.wait_phase("no-retry", "Succeeded", "Failed", "TimedOut", timeout=60)["status"]
    assert (st["phase"], st["reason"], len(st["attempts"])) == (phase, reason, 1)
    assert st["attempts"][0]["exitCode"] == code
    # SLUICE_EVENTS=notable: the failure keeps its Warning; the admission posts none
    assert _events_settle(sluice, "no-retry", lambda r: reason in r) == [reason]
    (event,) = sluice.events("no-retry")
    assert (event.type, event.message) == ("Warning", st["message"])


def test_events_all_tells_the_ordinary_course_too(sluice, start_operator):
    start_operator(events="all")
    sluice.create("told", {"runner": kwok_runner("1s")})
    sluice.wait_phase("told", "Succeeded", "Failed", timeout=60)
    reasons = _events_settle(sluice, "told", lambda r: {"Admitted", "TestsPassed"} <= set(r))
    assert sorted(reasons) == ["Admitted", "TestsPassed"]


def test_deadline_ends_timed_out(sluice, start_operator):
    start_operator()
    sluice.create("slow", {"timeoutSeconds": 2, "runner": kwok_runner("120s")})
    st = sluice.wait_phase("slow", "TimedOut", "Failed", "Succeeded", timeout=60)["status"]
    assert (st["phase"], st["reason"], len(st["attempts"])) == ("TimedOut", "DeadlineExceeded", 1)


def test_cancel_queued_and_running_and_delete_running(sluice, start_operator):
    start_operator(running_capacity=1)
    sluice.create("running", {"runner": kwok_runner("300s")})
    sluice.wait_phase("running", "Running")
    sluice.create("waiting", {"runner": kwok_runner("1s")})
    sluice.wait_phase("waiting", "Queued")
    sluice.patch("waiting", {"cancel": True})
    assert sluice.wait_phase("waiting", "Cancelled")["status"]["reason"] == "Cancelled"
    sluice.create("next", {"runner": kwok_runner("300s")})
    sluice.wait_phase("next", "Queued")
    sluice.patch("running", {"cancel": True})
    sluice.wait_phase("running", "Cancelled")
    sluice.wait_phase("next", "Running", timeout=30)  # its slot was freed
    deadline = time.time() + 30
    while time.time() < deadline and any(j.metadata.name == "running-a1" for j in sluice.jobs()):
        time.sleep(0.2)
    assert not any(j.metadata.name == "running-a1" for j in sluice.jobs())
    sluice.create("after", {"runner": kwok_runner("1s")})
    sluice.wait_phase("after", "Queued")
    sluice.delete("next")
    sluice.wait_phase("after", "Succeeded", timeout=60)


def test_cluster_wide_operator_runs_executions(sluice, start_operator):
    """Without SLUICE_NAMESPACES the operator watches every namespace (the Helm default)."""
    start_operator(namespaces="")
    sluice.create("anywhere", {"runner": kwok_runner("1s")})
    assert sluice.wait_phase("anywhere", "Succeeded", "Failed", timeout=60)["status"]["phase"] == "Succeeded"
