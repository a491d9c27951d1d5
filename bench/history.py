#!/usr/bin/env python3
"""History memory benchmark (issue 17, "Memory"): prints figures, asserts nothing.

On a control plane, in a fresh namespace:
  1. N finished executions, each with an inline suite of `--inline-kb` KB (default 20), are
     created while no operator runs, then given a terminal status (Succeeded, or Failed for one
     in five) through the status subresource, the way the operator writes one (attempts,
     results, artifacts, progress, the seven conditions): no runner is needed. Their queue
     `history` keeps 100,000 of each, so retention deletes none of them.
  2. The operator starts on them: time to ready (/readyz) and RSS (VmRSS of /proc/<pid>/status).
  3. `--queued` executions (default 1,000) are created in a paused queue and become Queued.
  4. RSS with both; then SIGKILL and restart: time to ready, RSS at ready, its peak over the next
     20 s and where it settles (the last sample).
An empty namespace's operator RSS is printed first, for reference.

    python bench/history.py --kubeconfig K [--finished 5000] [--queued 1000] [--inline-kb 20] [--json]
Without --kubeconfig it starts its own local control plane (hack/build-tools binaries). The
namespace is deleted at the end unless --keep.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kubernetes import client, config  # noqa: E402

from dispatch import control_plane, new_namespace, rss_mb, subprocess_crds  # noqa: E402
from tests.harness.operator_proc import OperatorProcess  # noqa: E402
from tests.harness.sluice_api import GROUP, VERSION, Sluice, kwok_runner  # noqa: E402

HISTORY_KEPT = {"succeeded": 100000, "failed": 100000}  # the schema's most: nothing is deleted
SETTLE_SECONDS = 20  # RSS is sampled this long after ready: the last sample is the settled figure
CONDITIONS = ("Admitted", "Running", "Complete", "Succeeded", "Ready", "Reconciling", "Stalled")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def inline_suite(i: int, kb: int) -> dict:
    """A suite of about `kb` KB that differs per execution (no shared strings to flatter memory)."""
    body = "".join(f"def test_{i}_{n}(page):\n    page.goto('https://shop.example/{i}/{n}')\n    assert page.title()\n\n"
                   for n in range(kb * 1024 // 80 + 1))
    return {"inline": {"files": {f"test_suite_{i}.py": body[: kb * 1024]}}}


def finished_status(name: str, i: int, at: datetime) -> dict:
    passed = i % 5 != 0
    queued, started, done = at, at + timedelta(seconds=1 + i % 7), at + timedelta(seconds=20 + i % 40)
    phase, reason = ("Succeeded", "TestsPassed") if passed else ("Failed", "TestsFailed")
    message = "12/12 passed, 0 failed, 0 skipped, 0 flaky" if passed else "11/12 passed, 1 failed, 0 skipped, 0 flaky"
    url = f"s3://reports/bench/{name}/attempt-1/"
    conds = []
    for kind in CONDITIONS:
        status = {"Running": "False", "Reconciling": "False", "Stalled": "False",
                  "Succeeded": "True" if passed else "False"}.get(kind, "True")
        conds.append({"type": kind, "status": status, "reason": reason, "message": message,
                      "lastTransitionTime": _iso(done), "observedGeneration": 1})
    return {
        "phase": phase, "reason": reason, "message": message, "queuedAt": _iso(queued), "startedAt": _iso(started),
        "completedAt": _iso(done), "attempt": 1, "jobName": f"{name}-a1", "observedGeneration": 1,
        "attempts": [{"attempt": 1, "jobName": f"{name}-a1", "startedAt": _iso(started), "completedAt": _iso(done),
                      "outcome": phase, "reason": reason, "exitCode": 0 if passed else 1}],
        "results": {"total": 12, "passed": 12 if passed else 11, "failed": 0 if passed else 1, "skipped": 0,
                    "flaky": 0, "durationSeconds": 18.5,
                    "failures": [] if passed else [{"test": f"test_suite_{i}.py::test_{i}_3",
                                                    "error": "AssertionError: assert ''"}]},
        "artifacts": {"url": url, "report": url + "report/index.html", "junit": url + "junit.xml",
                      "console": url + "console.txt"},
        "progress": {"total": 12, "done": 12, "passed": 12 if passed else 11, "failed": 0 if passed else 1,
                     "percent": 100, "summary": "12/12", "updatedAt": _iso(done)},
        "conditions": conds,
    }


def create_finished(api: client.CustomObjectsApi, ns: str, n: int, kb: int, threads: int) -> float:
    t0 = time.monotonic()
    base = datetime.now(timezone.utc) - timedelta(days=1)

    def one(i: int) -> None:
        name = f"done-{i:05d}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestExecution", "metadata": {"name": name},
                "spec": {"queue": "history", "source": inline_suite(i, kb), "runner": kwok_runner("1s")}}
        for attempt in range(5):
            try:
                api.create_namespaced_custom_object(GROUP, VERSION, ns, "testexecutions", body)
                break
            except client.ApiException as exc:
                if exc.status == 409:
                    break
                time.sleep(1 + attempt)
        status = finished_status(name, i, base + timedelta(seconds=i))
        for attempt in range(5):
            try:
                api.patch_namespaced_custom_object_status(GROUP, VERSION, ns, "testexecutions", name,
                                                          {"status": status})
                return
            except client.ApiException:
                time.sleep(1 + attempt)

    done = 0
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(n)):
            done += 1
            if done % 5000 == 0:
                print(f"  {done}/{n} finished executions created ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    return time.monotonic() - t0


def wait_queued(sluice: Sluice, n: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = sluice.api.list_namespaced_custom_object(GROUP, VERSION, sluice.ns, "testexecutions",
                                                         label_selector="bench.sluice.dev/queued=true")["items"]
        if sum(1 for i in items if (i.get("status") or {}).get("phase") == "Queued") == n:
            return
        time.sleep(2)
    raise TimeoutError(f"not {n} Queued within {timeout}s")


def start_timed(op: OperatorProcess) -> float:
    t0 = time.monotonic()
    op.start(wait=False)
    op.wait_ready(timeout=600)
    return time.monotonic() - t0


def rss_over(pid: int, seconds: float) -> tuple[float, float]:
    """(the highest VmRSS seen over `seconds`, the last one): kopf's own initial listing may
    still be landing after /readyz, so the peak comes later and the last is the settled figure."""
    peak, last, end = 0.0, 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        last = rss_mb(pid)
        peak = max(peak, last)
        time.sleep(0.5)
    return peak, last


def run(api_client, kubeconfig: str, log_dir: Path, finished: int, queued: int, kb: int, keep: bool) -> dict:
    core = client.CoreV1Api(api_client)
    api = client.CustomObjectsApi(api_client)
    out: dict = {"finished": finished, "queued": queued, "inline_kb": kb}
    empty_ns = new_namespace(core, "bench-empty")
    op = OperatorProcess(kubeconfig, empty_ns, log_dir).start()
    out["rss_mb_empty"] = rss_over(op.proc.pid, 3)[1]
    op.stop()
    core.delete_namespace(empty_ns)

    ns = new_namespace(core, "bench-history")
    out["namespace"] = ns
    sluice = Sluice(api_client, ns)
    sluice.create_queue("history", {"runningCapacity": 1, "queuedCapacity": 10, "history": HISTORY_KEPT})
    sluice.create_queue("waiting", {"runningCapacity": 1, "queuedCapacity": queued + 10, "paused": True})
    print(f"creating {finished} finished executions ({kb} KB inline suites) in {ns}", file=sys.stderr, flush=True)
    out["create_finished_seconds"] = round(create_finished(api, ns, finished, kb, threads=24), 1)

    op = OperatorProcess(kubeconfig, ns, log_dir, queued_capacity=queued + 10, resync_seconds=600)
    out["first_start_to_ready_seconds"] = round(start_timed(op), 2)
    out["rss_mb_history_peak"], out["rss_mb_history"] = rss_over(op.proc.pid, SETTLE_SECONDS)
    print(json.dumps(out), file=sys.stderr, flush=True)

    t0 = time.monotonic()
    with ThreadPoolExecutor(24) as pool:
        list(pool.map(lambda i: api.create_namespaced_custom_object(GROUP, VERSION, ns, "testexecutions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TestExecution",
            "metadata": {"name": f"wait-{i:05d}", "labels": {"bench.sluice.dev/queued": "true"}},
            "spec": {"queue": "waiting", "source": inline_suite(i, kb), "runner": kwok_runner("1s")}}),
            range(queued)))
    wait_queued(sluice, queued)
    out["queued_after_seconds"] = round(time.monotonic() - t0, 1)
    out["rss_mb_history_and_queued"] = rss_over(op.proc.pid, SETTLE_SECONDS)[1]

    op.kill()
    out["restart_to_ready_seconds"] = round(start_timed(op), 2)
    out["rss_mb_at_ready_after_restart"] = rss_mb(op.proc.pid)
    out["rss_mb_after_restart_peak"], out["rss_mb_after_restart"] = rss_over(op.proc.pid, SETTLE_SECONDS)
    out["operator_log"] = str(op.log_path)
    op.stop()
    if not keep:
        core.delete_namespace(ns)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--finished", type=int, default=5000)
    ap.add_argument("--queued", type=int, default=1000)
    ap.add_argument("--inline-kb", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the namespace (and its executions) afterwards")
    ap.add_argument("--json", action="store_true", help="print only the final JSON object")
    args = ap.parse_args()
    cluster, kubeconfig = control_plane(args.kubeconfig)
    log_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-logs-"))
    config.load_kube_config(kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 64
    api_client = client.ApiClient(cfg)
    subprocess_crds(kubeconfig)
    try:
        out = run(api_client, kubeconfig, log_dir, args.finished, args.queued, args.inline_kb, args.keep)
    finally:
        if cluster is not None:
            cluster.stop()
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
