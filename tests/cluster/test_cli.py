"""The `sluice` CLI against the real control plane and a running operator (kwok runner pods)."""
from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from tests.harness.cli import execution_doc, normalize, sluice_cli, write_executions
from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _failed_message(passed: int, failed: int) -> str:
    return json.dumps({"v": 1, "outcome": "failed", "total": passed + failed, "passed": passed, "failed": failed,
                       "skipped": 0, "flaky": 0, "durationSeconds": 1.0,
                       "artifacts": {"url": "s3://artifacts/sluice/x/attempt-1/", "report": "report/index.html",
                                     "junit": "junit.xml", "traces": ["traces/test_a.zip"]}})


def test_queue_table_order_is_the_admission_order(cluster, namespace, sluice, start_operator):
    start_operator(running_capacity=5)
    sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20, "paused": True})
    plan = [("tx-a", "low"), ("tx-b", "normal"), ("tx-c", "critical"), ("tx-d", "high"),
            ("tx-e", "normal"), ("tx-f", "critical"), ("tx-g", "low")]
    for name, priority in plan:
        sluice.create(name, {"queue": "q", "priority": priority, "runner": kwok_runner("1s")})
        time.sleep(1.05)  # distinct creationTimestamps (seconds): FIFO within a class is observable
    for name, _ in plan:
        sluice.wait_phase(name, "Queued")
    # The exact rank is computed by the CLI; a written position that still lags (the promise: at
    # most 5 s in the head of a queue) is shown beside it as `rank(written)`. Wait for them to agree.
    deadline = time.time() + 8
    while True:
        out = sluice_cli(cluster.kubeconfig, namespace, "queue", "--queue", "q")
        if "(" not in out.stdout.split("\n", 1)[-1] or time.time() > deadline:
            break
        time.sleep(0.5)
    assert out.returncode == 0, out.stderr
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    assert normalize(out.stdout) == [
        "queue q: running 0/1, queued 7/20, paused",
        "POS NAME PHASE PRIORITY ATTEMPT WAITED RUNNING",
        "1 tx-c Queued critical - AGE -",
        "2 tx-f Queued critical - AGE -",
        "3 tx-d Queued high - AGE -",
        "4 tx-b Queued normal - AGE -",
        "5 tx-e Queued normal - AGE -",
        "6 tx-a Queued low - AGE -",
        "7 tx-g Queued low - AGE -",
    ]
    shown = [line.split()[1] for line in out.stdout.splitlines()[2:]]
    sluice.patch_queue("q", {"paused": False})
    sluice.wait_phase(shown[0], "Running", "Succeeded", timeout=30)
    during = sluice_cli(cluster.kubeconfig, namespace, "queue", "--queue", "q")
    assert during.returncode == 0 and "running 1/1" in during.stdout
    items = sluice.wait_all_terminal(timeout=120)
    admitted = [i["metadata"]["name"] for i in sorted(items, key=lambda i: _t(i["status"]["startedAt"]))]
    assert admitted == shown  # capacity 1: one at a time, so startedAt spells out the admission order
    assert [i["status"]["phase"] for i in items] == ["Succeeded"] * len(plan)


def test_run_wait_exit_codes(cluster, namespace, sluice, start_operator, tmp_path):
    start_operator(running_capacity=5)
    files = {
        "pass": write_executions(tmp_path / "pass.yaml",
                                 execution_doc("passing", runner=kwok_runner("1s")),
                                 execution_doc(generate_name="passing-", runner=kwok_runner("2s"))),
        "fail": write_executions(tmp_path / "fail.yaml", execution_doc(
            "failing", runner=kwok_runner("1s", exit_code=1, message=_failed_message(2, 1)))),
        "rejected": write_executions(tmp_path / "rejected.yaml", execution_doc(
            "too-wide", shards=10, runner=kwok_runner("1s"))),
        "schema": write_executions(tmp_path / "schema.yaml", execution_doc(
            "bad-priority", priority="urgent", runner=kwok_runner("1s"))),
        "timedout": write_executions(tmp_path / "timedout.yaml", execution_doc(
            "slow", timeoutSeconds=2, runner=kwok_runner("60s"))),
        "cli-timeout": write_executions(tmp_path / "cli-timeout.yaml", execution_doc(
            "slower", runner=kwok_runner("120s"))),
    }
    procs = {k: sluice_cli(cluster.kubeconfig, namespace, "run", "-f", str(f), "--wait", "--timeout",
                           "8" if k == "cli-timeout" else "90", popen=True) for k, f in files.items()}
    results = {k: (p.wait(timeout=150), *p.communicate()) for k, p in procs.items()}
    codes = {k: r[0] for k, r in results.items()}
    assert codes == {"pass": 0, "fail": 1, "rejected": 2, "schema": 2, "timedout": 3, "cli-timeout": 3}, results
    for code, out, err in results.values():
        assert "Traceback" not in out + err
        assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("  ")), out

    out = results["fail"][1]
    lines = normalize(out)
    assert lines[0] == "testexecution/failing created"
    assert "failing: Failed, attempt 1, 2/3 passed, TestsFailed" in lines
    summary = lines[lines.index("NAME PHASE REASON PASSED FAILED SKIPPED ATTEMPT DURATION"):]
    assert summary[:3] == ["NAME PHASE REASON PASSED FAILED SKIPPED ATTEMPT DURATION",
                           "failing Failed TestsFailed 2 1 0 1 AGE",
                           "failing: 2/3 passed, 1 failed, 0 skipped, 0 flaky"]
    assert "artifacts of failing (s3:// URLs: no S3 credentials to presign):" in lines or \
        "artifacts of failing:" in lines
    assert any(line.strip().startswith("report") and "report/index.html" in line for line in lines)

    assert "Rejected InvalidSpec" in " ".join(normalize(results["rejected"][1]))
    assert "shards (10) exceed" in results["rejected"][1]
    schema_out = results["schema"][1]
    assert "testexecution/bad-priority not created" in schema_out and "spec.priority" in schema_out
    assert "NotCreated" in schema_out
    assert "slow TimedOut DeadlineExceeded" in " ".join(normalize(results["timedout"][1]))
    assert "timed out after 8s waiting for slower" in results["cli-timeout"][1]
    passing = normalize(results["pass"][1])
    assert passing[0] == "testexecution/passing created" and passing[1].startswith("testexecution/passing-")
    assert sum(1 for line in passing if " Succeeded TestsPassed " in line) == 2
    assert sluice.phase("slower") == "Running"  # --timeout gives up waiting; it does not cancel


def test_cancel_logs_artifacts_and_clear_errors(cluster, namespace, sluice, start_operator, tmp_path):
    start_operator(running_capacity=5)
    sluice.create_queue("held", {"paused": True})
    sluice.create("waiting", {"queue": "held", "runner": kwok_runner("1s")})
    sluice.wait_phase("waiting", "Queued")
    out = sluice_cli(cluster.kubeconfig, namespace, "cancel", "waiting")
    assert out.returncode == 0 and "cancel requested (was Queued)" in out.stdout
    sluice.wait_phase("waiting", "Cancelled", timeout=30)
    again = sluice_cli(cluster.kubeconfig, namespace, "cancel", "waiting")
    assert again.returncode == 0 and "already finished (Cancelled)" in again.stdout

    sluice.create("failing", {"runner": kwok_runner("1s", exit_code=1, message=_failed_message(0, 1))})
    sluice.wait_phase("failing", "Failed", timeout=60)
    arts = sluice_cli(cluster.kubeconfig, namespace, "artifacts", "failing",
                      env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                           "AWS_CONFIG_FILE": "/nonexistent"})
    assert arts.returncode == 0, arts.stderr
    assert normalize(arts.stdout)[:3] == [
        "report s3://artifacts/sluice/x/attempt-1/report/index.html",
        "junit s3://artifacts/sluice/x/attempt-1/junit.xml",
        "trace s3://artifacts/sluice/x/attempt-1/traces/test_a.zip"]
    signed = sluice_cli(cluster.kubeconfig, namespace, "artifacts", "failing",
                        env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                             "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_REGION": "us-east-1"})
    report = signed.stdout.splitlines()[0].split()[1]
    assert report.startswith("http://127.0.0.1:9000/artifacts/sluice/x/attempt-1/report/index.html?")
    assert "X-Amz-Signature=" in report

    logs = sluice_cli(cluster.kubeconfig, namespace, "logs", "failing")
    # kwok pods have no kubelet to serve logs: a clear sentence, not a trace.
    assert logs.returncode == 1 and "no logs for pod failing-a1-" in logs.stderr and "Traceback" not in logs.stderr
    none = sluice_cli(cluster.kubeconfig, namespace, "logs", "failing", "--attempt", "7")
    assert none.returncode == 1 and "no runner pods left for attempt 7 of failing" in none.stderr

    missing = sluice_cli(cluster.kubeconfig, namespace, "cancel", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        1, f"sluice cancel: testexecution nope not found in namespace {namespace}")
    nokube = sluice_cli(tmp_path / "absent.yaml", namespace, "queue")
    assert nokube.returncode == 3 and "kubeconfig" in nokube.stderr and "Traceback" not in nokube.stderr


def test_rbac_denial_is_one_sentence(cluster, namespace, crds, tmp_path):
    import yaml

    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = cluster.kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    kc = yaml.safe_load(cluster.kubeconfig.read_text())
    kc["users"] = [{"name": "nobody", "user": {"token": token}}]
    for ctx in kc["contexts"]:
        ctx["context"]["user"] = "nobody"
        ctx["context"]["namespace"] = namespace  # the kubeconfig's namespace is the default
    path = tmp_path / "nobody.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    out = sluice_cli(path, None, "queue")
    assert out.returncode == 3
    assert out.stderr.startswith(f"sluice queue: forbidden: you may not list testexecutions in namespace {namespace}")
    assert "Traceback" not in out.stderr
