"""Proof that the test control plane behaves like Kubernetes where Sluice relies on it.

Each test names one promise of the harness (tests/harness/): kwok pods follow their labels and
annotations, the process node really runs and really kills processes, the real Job controller and
garbage collector do their work, and two clusters run side by side.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from tests.harness.cluster import LocalCluster

pytestmark = pytest.mark.cluster

KWOK = {"nodeSelector": {"type": "kwok"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}
PROCESS = {"nodeSelector": {"sluice.dev/process-node": "true"},
           "tolerations": [{"key": "sluice.dev/process-node", "operator": "Exists",
                            "effect": "NoSchedule"}]}
FAIL = "pod-container-running-failed.stage.kwok.x-k8s.io"


def job(name: str, pod: dict, container: dict | None = None, labels: dict | None = None,
        annotations: dict | None = None, **spec) -> dict:
    container = container or {"name": "main", "image": "fake"}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, **spec, "template": {
                "metadata": {"labels": labels or {}, "annotations": annotations or {}},
                "spec": {"restartPolicy": "Never", "containers": [container], **pod}}}}


def apply(cluster, namespace: str, *objects: dict) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(cluster, namespace: str, *what: str) -> dict:
    return json.loads(cluster.kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def wait_job(cluster, namespace: str, name: str, condition: str, timeout: int = 60) -> dict:
    cluster.kubectl("wait", "-n", namespace, f"--for=condition={condition}",
                    f"--timeout={timeout}s", f"job/{name}", timeout=timeout + 10)
    return get(cluster, namespace, "job", name)


def terminated(cluster, namespace: str, job_name: str) -> dict:
    pods = get(cluster, namespace, "pods", "-l", f"batch.kubernetes.io/job-name={job_name}")
    [pod] = pods["items"]
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]


def test_kwok_job_completes_with_the_annotated_termination_message(cluster, namespace):
    apply(cluster, namespace, job("ok", KWOK, annotations={
        "pod-complete.stage.kwok.x-k8s.io/delay": "1s",
        "test.sluice.dev/termination-message": '{"v": 1, "outcome": "passed"}'}))
    wait_job(cluster, namespace, "ok", "Complete")
    state = terminated(cluster, namespace, "ok")
    assert state["exitCode"] == 0 and state["reason"] == "Completed"
    assert json.loads(state["message"]) == {"v": 1, "outcome": "passed"}


def test_kwok_chaos_label_fails_the_job_with_exit_code_reason_and_message(cluster, namespace):
    apply(cluster, namespace, job("chaos", KWOK, labels={FAIL: "true"}, annotations={
        f"{FAIL}/exit-code": "3", f"{FAIL}/reason": "BrowserCrash",
        f"{FAIL}/message": '{"errorClass": "BrowserCrash"}'}))
    wait_job(cluster, namespace, "chaos", "Failed")
    state = terminated(cluster, namespace, "chaos")
    assert (state["exitCode"], state["reason"]) == (3, "BrowserCrash")
    assert json.loads(state["message"]) == {"errorClass": "BrowserCrash"}


def test_per_attempt_failure_stage_fails_only_the_labelled_attempts(cluster, namespace):
    fail_twice = {"test.sluice.dev/fail-attempt-1": "true", "test.sluice.dev/fail-attempt-2": "true"}
    notes = {f"{FAIL}/exit-code": "3", f"{FAIL}/message": "infra"}
    apply(cluster, namespace, *(
        job(f"a{n}", KWOK, labels={"sluice.dev/attempt": str(n), **fail_twice}, annotations=notes)
        for n in (1, 2, 3)))
    for n in (1, 2):
        wait_job(cluster, namespace, f"a{n}", "Failed")
        state = terminated(cluster, namespace, f"a{n}")
        assert (state["exitCode"], state["message"]) == (3, "infra")
    wait_job(cluster, namespace, "a3", "Complete")
    assert terminated(cluster, namespace, "a3")["exitCode"] == 0


def test_process_node_runs_the_container_and_reports_its_termination_message(cluster, namespace):
    code = "import os; open(os.environ['SLUICE_TERMINATION_LOG'], 'w').write('ran as ' + os.environ['POD'])"
    apply(cluster, namespace, job("proc", PROCESS, container={
        "name": "main", "image": "none", "command": [sys.executable, "-c", code],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}))
    wait_job(cluster, namespace, "proc", "Complete")
    state = terminated(cluster, namespace, "proc")
    assert state["exitCode"] == 0 and state["reason"] == "Completed"
    assert state["message"].startswith("ran as proc-")


def test_process_node_maps_env_volumes_and_mount_paths(cluster, namespace, tmp_path):
    """Secrets, ConfigMaps, fieldRefs (JOB_COMPLETION_INDEX) and mountPaths reach the process."""
    out = tmp_path / "seen.json"
    code = ("import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': {k: os.environ.get(k) "
            "for k in ('TOKEN', 'CFG_mode', 'JOB_COMPLETION_INDEX', 'CONF')}, 'file': "
            "open(sys.argv[1]).read(), 'cwd': os.getcwd()}, open(sys.argv[2], 'w'))")
    apply(cluster, namespace,
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
           "stringData": {"token": "t0ps3cret"}},
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
           "data": {"mode": "fast", "suite.yaml": "suite: smoke\n"}},
          job("mapped", {**PROCESS, "volumes": [{"name": "suite", "configMap": {
                  "name": "cfg", "items": [{"key": "suite.yaml", "path": "suite.yaml"}]}},
                  {"name": "scratch", "emptyDir": {}}]}, completionMode="Indexed", completions=1, container={
              "name": "main", "image": "none", "workingDir": "/work",
              "command": [sys.executable, "-c", code], "args": ["/etc/suite/suite.yaml", str(out)],
              "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                      {"name": "CONF", "value": "/etc/suite"}],
              "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
              "volumeMounts": [{"name": "suite", "mountPath": "/etc/suite"},
                               {"name": "scratch", "mountPath": "/work"}]}))
    wait_job(cluster, namespace, "mapped", "Complete")
    seen = json.loads(out.read_text())
    assert seen["file"] == "suite: smoke\n"
    assert seen["env"]["TOKEN"] == "t0ps3cret" and seen["env"]["CFG_mode"] == "fast"
    assert seen["env"]["JOB_COMPLETION_INDEX"] == "0"
    assert seen["env"]["CONF"].endswith("/volumes/suite") and seen["argv"][0].endswith("/volumes/suite/suite.yaml")
    assert seen["cwd"].endswith("/volumes/scratch")


def test_active_deadline_is_enforced_by_the_job_controller_and_kills_the_process(cluster, namespace, tmp_path):
    pid_file = tmp_path / "pid"
    code = ("import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
            "time.sleep(600)")
    apply(cluster, namespace, job("slow", PROCESS, activeDeadlineSeconds=3, container={
        "name": "main", "image": "none", "command": [sys.executable, "-c", code],
        "args": [str(pid_file)]}))
    status = wait_job(cluster, namespace, "slow", "Failed", timeout=60)["status"]
    failed = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "DeadlineExceeded"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(pid), f"process {pid} survived the Job's deadline"
    cluster.kubectl("wait", "-n", namespace, "--for=delete", "--timeout=30s", "pods",
                    "-l", "batch.kubernetes.io/job-name=slow", timeout=40)


def test_deleting_the_owner_garbage_collects_the_job(cluster, namespace):
    apply(cluster, namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}})
    uid = get(cluster, namespace, "configmap", "owner")["metadata"]["uid"]
    owned = job("owned", KWOK, annotations={"pod-complete.stage.kwok.x-k8s.io/delay": "1h"})
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                             "name": "owner", "uid": uid}]
    apply(cluster, namespace, owned)
    cluster.kubectl("delete", "-n", namespace, "configmap", "owner")
    cluster.kubectl("wait", "-n", namespace, "--for=delete", "--timeout=60s", "job/owned", timeout=70)


def test_two_clusters_run_side_by_side(cluster, namespace, tmp_path):
    with LocalCluster(tmp_path / "second", cluster.bin_dir, kwok_nodes=1) as second:
        assert second.state_dir != cluster.state_dir
        assert second.status()["ports"]["apiserver"] not in _ports(cluster)
        for c, ns, value in ((cluster, namespace, "first"), (second, "default", "second")):
            c.kubectl("create", "configmap", "who", "-n", ns, f"--from-literal=value={value}")
        assert get(second, "default", "configmap", "who")["data"]["value"] == "second"
        assert get(cluster, namespace, "configmap", "who")["data"]["value"] == "first"
        apply(second, "default", job("there", KWOK))
        wait_job(second, "default", "there", "Complete")
        # A restart through another handle (as chaos tests do) must not leak the new process.
        LocalCluster(second.state_dir).restart("kube-apiserver")
        assert second.kubectl("get", "--raw", "/readyz").stdout == "ok"
        pids = [p["pid"] for p in second.status()["processes"].values()]
    assert not any(_running(pid) for pid in pids)
    assert cluster.kubectl("get", "--raw", "/readyz").stdout == "ok"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _ports(cluster) -> set:
    state = os.path.join(cluster.state_dir, "cluster.json")
    if not os.path.exists(state):
        return set()
    with open(state) as f:
        return set(json.load(f)["ports"].values())
