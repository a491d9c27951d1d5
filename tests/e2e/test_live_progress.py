"""Live progress end to end: the real runner on the process node appends to a real redis-server
as its append-only ACL user; the operator (a reader) relays `status.progress`; `sluice logs -f`
prints the console while the suite runs; `sluice run --wait` draws bars on a terminal and plain
lines without one; Redis killed mid-run and restarted changes nothing in the final results."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.e2e.test_end_to_end import e2e_queue  # noqa: F401 - the fixture

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

N_TESTS = 30
SLOW_SUITE = {"test_slow.py": (
    "import time, pytest\n"
    f"@pytest.mark.parametrize('i', range({N_TESTS}))\n"
    "def test_step(i):\n"
    "    print(f'step {i} says hello', flush=True)\n"
    "    time.sleep(0.4)\n"
)}


def _operator(start_operator, redis, namespace):
    return start_operator(redis_url=redis.url("reader"), redis_password=redis.reader_password,
                          runner_redis_url=redis.url("runner"), runner_redis_secret="sluice-redis-runner")


def _runner_secret(sluice, namespace, redis):
    sluice.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "sluice-redis-runner"}, "stringData": {"password": redis.runner_password}})


def _cli(cluster, namespace, redis, *args, tty=False, timeout=240):
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, SLUICE_REDIS_URL=redis.url("reader"),
               SLUICE_REDIS_PASSWORD=redis.reader_password, COLUMNS="100")
    cmd = [sys.executable, "-m", "sluice.cli.main", *args, "-n", namespace]
    if tty:  # a pseudo-terminal, as a person at a terminal has
        cmd = ["script", "-qec", " ".join(cmd), "/dev/null"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_progress_is_relayed_and_logs_follow_live(cluster, sluice, start_operator, e2e_queue, namespace,
                                                   redis_server):
    _runner_secret(sluice, namespace, redis_server)
    op = _operator(start_operator, redis_server, namespace)
    sluice.create("slow", {"framework": "playwright-python", "timeoutSeconds": 240, "retries": {"limit": 0},
                           "args": ["-s"], "source": {"inline": {"files": SLOW_SUITE}}})
    sluice.wait_phase("slow", "Running", "Succeeded", "Failed", timeout=120)
    follow = _cli(cluster, namespace, redis_server, "logs", "-f", "slow")
    seen: list[tuple[int, int]] = []
    while True:
        st = sluice.get("slow")["status"]
        p = st.get("progress") or {}
        if p.get("total"):
            seen.append((p["done"], p["total"]))
        if st.get("phase") != "Running":
            break
        time.sleep(0.5)
    out, _ = follow.communicate(timeout=60)
    st = sluice.wait_phase("slow", "Succeeded", "Failed", timeout=60)["status"]
    assert st["phase"] == "Succeeded" and st["results"]["passed"] == N_TESTS
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and len(set(dones)) >= 3, seen  # it moved, and only forward, while running
    assert {t for _, t in seen} == {N_TESTS}
    final = sluice.get("slow")["status"]["progress"]
    assert (final["done"], final["total"], final["summary"]) == (N_TESTS, N_TESTS, f"{N_TESTS}/{N_TESTS}")
    assert "step 0 says hello" in out and f"step {N_TESTS - 1} says hello" in out, out[-2000:]
    table = cluster.kubectl("get", "tx", "slow", f"-n={namespace}").stdout
    assert "PROGRESS" in table and f"{N_TESTS}/{N_TESTS}" in table
    assert op.status_writes_max() <= 20


def test_run_wait_draws_bars_on_a_terminal_and_lines_without(cluster, sluice, start_operator, e2e_queue,
                                                             namespace, redis_server, tmp_path):
    _runner_secret(sluice, namespace, redis_server)
    _operator(start_operator, redis_server, namespace)
    doc = {"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution", "metadata": {"name": "bars"},
           "spec": {"framework": "playwright-python", "timeoutSeconds": 240, "retries": {"limit": 0},
                    "source": {"inline": {"files": SLOW_SUITE}}}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc))
    tty = _cli(cluster, namespace, redis_server, "run", "-f", str(path), "--wait", tty=True)
    out, _ = tty.communicate(timeout=300)
    assert tty.returncode == 0, out[-2000:]
    assert "━" in out and "\x1b[" in out and "tests" in out, out[-2000:]  # bars, redrawn in place
    doc["metadata"]["name"] = "lines"
    path.write_text(yaml.safe_dump(doc))
    plain = _cli(cluster, namespace, redis_server, "run", "-f", str(path), "--wait")
    out, _ = plain.communicate(timeout=300)
    assert plain.returncode == 0 and "\x1b[" not in out, out[-2000:]
    assert any(line.startswith("lines: Running, attempt 1, ") and "/30 tests" in line for line in out.splitlines()), out


def test_redis_killed_mid_run_changes_nothing_in_the_results(cluster, sluice, start_operator, e2e_queue,
                                                             namespace, fresh_redis):
    _runner_secret(sluice, namespace, fresh_redis)
    _operator(start_operator, fresh_redis, namespace)
    sluice.create("outage", {"framework": "playwright-python", "timeoutSeconds": 240, "retries": {"limit": 0},
                             "source": {"inline": {"files": SLOW_SUITE}}})
    sluice.wait("outage", lambda o: ((o.get("status") or {}).get("progress") or {}).get("done", 0) >= 3,
                timeout=120, what="progress under way")
    fresh_redis.kill()
    time.sleep(3)
    fresh_redis.start()
    st = sluice.wait_phase("outage", "Succeeded", "Failed", timeout=180)["status"]
    assert st["phase"] == "Succeeded" and st["results"]["passed"] == N_TESTS  # exact: from the termination message
    p = st.get("progress") or {}
    assert p.get("done", 0) > 3  # progress resumed after the restart
