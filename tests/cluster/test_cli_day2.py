"""Day-2 operations against the real control plane: `sluice rerun`, `sluice queue clear` (an
admin and a user RBAC lets only read), `sluice bump` (the queue re-orders, the bumped one
starts first, a running one is refused by the schema), and kubectl's field selectors."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.harness.cli import sluice_cli
from tests.harness.sluice_api import GROUP, VERSION, kwok_runner

pytestmark = pytest.mark.cluster

RERUN_OF = "sluice.dev/rerun-of"
PRIORITY_RULE = ("spec.priority may change only while the execution waits (Pending, Queued or BackingOff), "
                 "not once it runs or has ended")


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _argv(kubeconfig, namespace: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "sluice.cli.main", *args, "--kubeconfig", str(kubeconfig), "-n", namespace]


def _run_without_terminal(kubeconfig, namespace: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(kubeconfig, namespace, *args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def _run_answering(kubeconfig, namespace: str, answer: str, *args: str) -> subprocess.CompletedProcess:
    """Runs the CLI with a terminal as stdin and types `answer` at its question."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(_argv(kubeconfig, namespace, *args), stdin=follower, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(leader, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _reader_kubeconfig(cluster, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may only get, list and watch executions and queues."""
    with cluster.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
        rbac.create_namespaced_role(namespace, {
            "metadata": {"name": "sluice-reader"},
            "rules": [{"apiGroups": [GROUP], "resources": ["testexecutions", "testqueues"],
                       "verbs": ["get", "list", "watch"]}]})
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": "sluice-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sluice-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    token = cluster.kubectl("create", "token", "reader", "-n", namespace, "--duration=10m").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    entry = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "reader",
        "clusters": [entry], "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "reader", "context": {"cluster": entry["name"], "user": "reader",
                                                    "namespace": namespace}}]}))
    return path


def test_rerun_same_spec_new_name_label_and_it_runs(cluster, namespace, sluice, start_operator):
    start_operator(running_capacity=5)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestExecution",
            "metadata": {"name": "smoke", "labels": {"team": "web"}, "annotations": {"note": "nightly"}},
            "spec": {"priority": "high", "timeoutSeconds": 120, "runner": kwok_runner("1s"),
                     "source": {"inline": {"files": {"test_ok.py": "def test_ok():\n    assert True\n"}}}}}
    sluice.api.create_namespaced_custom_object(GROUP, VERSION, namespace, "testexecutions", body)
    sluice.wait_phase("smoke", "Succeeded", timeout=60)

    out = sluice_cli(cluster.kubeconfig, namespace, "rerun", "smoke")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "testexecution/smoke-r1 created (rerun of smoke, same spec)",
        f"follow it: sluice watch smoke-r1 -n {namespace}   (console: sluice logs -f smoke-r1 -n {namespace})"]
    original, rerun = sluice.get("smoke"), sluice.get("smoke-r1")
    assert rerun["spec"] == original["spec"]
    assert rerun["metadata"]["labels"] == {"team": "web", RERUN_OF: "smoke"}
    assert rerun["metadata"]["annotations"] == {"note": "nightly"}
    assert sluice.wait_phase("smoke-r1", "Succeeded", timeout=60)["status"]["attempt"] == 1

    # a rerun of a rerun counts on from the first run, and a cancelled one's rerun is not cancelled
    sluice.patch("smoke-r1", {"cancel": True})
    again = sluice_cli(cluster.kubeconfig, namespace, "rerun", "smoke-r1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "testexecution/smoke-r2 created (rerun of smoke-r1, same spec)"
    second = sluice.get("smoke-r2")
    assert second["spec"]["cancel"] is False and second["spec"] == original["spec"]  # the schema's default
    assert second["metadata"]["labels"][RERUN_OF] == "smoke"
    listed = cluster.kubectl("get", "tx", "-n", namespace, "-l", f"{RERUN_OF}=smoke", "-o", "name").stdout.split()
    assert sorted(listed) == [f"testexecution.{GROUP}/smoke-r1", f"testexecution.{GROUP}/smoke-r2"]

    missing = sluice_cli(cluster.kubeconfig, namespace, "rerun", "nope")
    assert missing.returncode != 0 and missing.stdout == ""
    assert missing.stderr.splitlines() == [f"sluice rerun: testexecution nope not found in namespace {namespace}"]


def test_queue_clear_cancels_the_waiting_for_an_admin_only(cluster, namespace, sluice, start_operator, tmp_path):
    start_operator(running_capacity=5)
    sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20})
    sluice.create_queue("other", {"runningCapacity": 1, "queuedCapacity": 20, "paused": True})
    sluice.create("busy", {"queue": "q", "runner": kwok_runner("120s")})
    sluice.wait_phase("busy", "Running")
    waiters = ["w1", "w2", "w3"]
    for name in waiters:
        sluice.create(name, {"queue": "q", "runner": kwok_runner("1s")})
    sluice.create("elsewhere", {"queue": "other", "runner": kwok_runner("1s")})
    for name in [*waiters, "elsewhere"]:
        sluice.wait_phase(name, "Queued")

    reader = _reader_kubeconfig(cluster, namespace, tmp_path / "reader.kubeconfig")
    assert sluice_cli(reader, namespace, "queue", "--queue", "q").returncode == 0  # may read
    denied = sluice_cli(reader, namespace, "queue", "clear", "--queue", "q", "--yes")
    assert denied.returncode != 0 and denied.stdout == ""
    assert denied.stderr.splitlines() == [
        f"sluice queue: you may not cancel executions in namespace {namespace} "
        "(RBAC: patch on testexecutions.sluice.dev)"]

    refused = _run_without_terminal(cluster.kubeconfig, namespace, "queue", "clear", "--queue", "q")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"sluice queue: would cancel 3 waiting executions of queue q in namespace {namespace}, "
        "but there is no terminal to confirm on: pass --yes"]

    question = f"cancel 3 waiting executions of queue q in namespace {namespace} (3 Queued)? [y/N] "
    declined = _run_answering(cluster.kubeconfig, namespace, "n", "queue", "clear", "--queue", "q")
    assert declined.returncode == 1, declined.stderr
    assert declined.stdout == question + "nothing cancelled\n"
    assert all(sluice.phase(name) == "Queued" for name in waiters)

    confirmed = _run_answering(cluster.kubeconfig, namespace, "y", "queue", "clear", "--queue", "q")
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stdout == question + f"cancelled 3 waiting executions of queue q in namespace {namespace}\n"
    for name in waiters:
        assert sluice.wait_phase(name, "Cancelled", timeout=30)["status"]["reason"] == "Cancelled"
    assert sluice.phase("busy") == "Running"  # running ones are not waiting: left alone
    assert sluice.phase("elsewhere") == "Queued"  # another queue
    assert sluice.get("busy")["spec"]["cancel"] is False

    empty = sluice_cli(cluster.kubeconfig, namespace, "queue", "clear", "--queue", "q", "--yes")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == f"queue q in namespace {namespace} has no waiting executions: nothing to cancel\n"
    scripted = sluice_cli(cluster.kubeconfig, namespace, "queue", "clear", "--queue", "other", "--yes")
    assert scripted.stdout == f"cancelled 1 waiting execution of queue other in namespace {namespace}\n"
    sluice.wait_phase("elsewhere", "Cancelled", timeout=30)


def test_bump_moves_ahead_and_starts_first_and_a_running_one_is_refused(cluster, namespace, sluice,
                                                                         start_operator):
    start_operator(running_capacity=5)
    sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20})
    sluice.create("head", {"queue": "q", "runner": kwok_runner("12s")})
    sluice.wait_phase("head", "Running")
    for name, runs in (("a", "1s"), ("b", "1s"), ("c", "4s")):  # c runs long enough to be refused
        sluice.create(name, {"queue": "q", "runner": kwok_runner(runs)})
        time.sleep(1.05)  # distinct creationTimestamps: FIFO within a class
    sluice.wait("c", lambda o: (o.get("status") or {}).get("queuePosition") == 3, 15, "at position 3")

    out = sluice_cli(cluster.kubeconfig, namespace, "bump", "c", "--priority", "critical")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "testexecution/c priority normal -> critical (Queued); the operator re-orders its queue\n"
    began = time.time()
    sluice.wait("c", lambda o: o["status"].get("queuePosition") == 1, 10, "moved to position 1")
    moved_after = time.time() - began
    for name, position in (("a", 2), ("b", 3)):
        sluice.wait(name, lambda o, p=position: o["status"].get("queuePosition") == p, 10, f"at position {position}")
    assert sluice.phase("head") == "Running", "head finished before the bump was seen: the test proves less"
    shown = sluice_cli(cluster.kubeconfig, namespace, "queue", "--queue", "q")
    assert [line.split()[1] for line in shown.stdout.splitlines()[2:]] == ["head", "c", "a", "b"]
    deadline = time.time() + 10
    while not [e for e in sluice.events("c") if e.reason == "PriorityChanged"] and time.time() < deadline:
        time.sleep(0.25)
    (event,) = [e for e in sluice.events("c") if e.reason == "PriorityChanged"]
    assert (event.type, event.message) == ("Normal", "priority changed from normal to critical")

    sluice.wait_phase("c", "Running", timeout=40)
    refused = sluice_cli(cluster.kubeconfig, namespace, "bump", "c", "--priority", "low")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [f"sluice bump: testexecution/c is Running: {PRIORITY_RULE}"]
    assert sluice.get("c")["spec"]["priority"] == "critical"

    items = sluice.wait_all_terminal(timeout=60)
    started = [i["metadata"]["name"] for i in sorted(items, key=lambda i: _t(i["status"]["startedAt"]))]
    assert started == ["head", "c", "a", "b"]  # capacity 1: the bumped one went first
    assert moved_after < 8  # the head of a queue: never more than 5 s behind (SLUICE_POSITION_HEAD_LAG_SECONDS), + slack
    print(f"\nbumped execution written at position 1 after {moved_after:.2f} s")


def _set_phase(sluice, name: str, phase: str) -> None:
    sluice.api.patch_namespaced_custom_object_status(GROUP, VERSION, sluice.ns, "testexecutions", name,
                                                     {"status": {"phase": phase}})


def test_kubectl_field_selectors_get_and_delete(cluster, namespace, sluice):
    # No operator: the phases are written here, so each selector's answer is known exactly.
    plan = [("a", "q1", "high", "Failed"), ("b", "q1", "normal", "Succeeded"),
            ("c", "q2", "high", "Succeeded"), ("d", "q2", "low", "Queued")]
    for name, queue, priority, phase in plan:
        sluice.create(name, {"queue": queue, "priority": priority, "runner": kwok_runner("1s")})
        _set_phase(sluice, name, phase)

    def names(*selector: str) -> list[str]:
        out = cluster.kubectl("get", "tx", "-n", namespace, "--field-selector", ",".join(selector),
                              "-o", "jsonpath={.items[*].metadata.name}")
        return out.stdout.split()

    assert names("status.phase=Failed") == ["a"]
    assert names("status.phase=Succeeded") == ["b", "c"]
    assert names("spec.queue=q2") == ["c", "d"]
    assert names("spec.priority=high") == ["a", "c"]
    assert names("spec.queue=q1", "status.phase!=Failed") == ["b"]
    deleted = cluster.kubectl("delete", "tx", "-n", namespace, "--field-selector", "status.phase=Succeeded",
                              "-o", "name")
    assert deleted.stdout.split() == [f"testexecution.{GROUP}/b", f"testexecution.{GROUP}/c"]
    assert sorted(i["metadata"]["name"] for i in sluice.list()) == ["a", "d"]
