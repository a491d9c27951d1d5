#!/usr/bin/env python3
"""Dispatch benchmark (issue: operator core, "Speed"): prints figures, asserts nothing.

On a local control plane with kwok nodes (pods finish 1 s after they start):
  1. Sluice: N executions (default 1,000), running capacity 50. Measures dispatch latency
     (a Job finishing -> the next Job added, both seen by one outside watcher), end-to-end
     throughput, and API writes per execution from kube-apiserver's apiserver_request_total.
  2. Baseline: a bare script that only creates the Jobs (same capacity) and patches each
     execution's status twice (Running, Succeeded), as fast as it can: the ceiling here.
  3. Scale: 5,000 queued executions: operator RSS, and the time to rebuild its view after a
     restart (start -> /readyz).

    python bench/dispatch.py [--kubeconfig K] [--executions 1000] [--capacity 50] [--queued 5000]
Without --kubeconfig it starts its own local control plane (hack/build-tools binaries).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402

from tests.harness.operator_proc import OperatorProcess  # noqa: E402
from tests.harness.sluice_api import Sluice, kwok_runner  # noqa: E402

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
SLUICE_RESOURCES = {("testexecutions", "status"), ("jobs", ""), ("configmaps", ""), ("leases", "")}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))]


class ApiServerMetrics:
    """Reads apiserver_request_total straight from kube-apiserver's /metrics."""

    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig

    def writes(self) -> Counter:
        text = kubectl(self.kubeconfig, "get", "--raw", "/metrics")
        out: Counter = Counter()
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, value = line.rsplit(" ", 1)
            labels = dict(kv.split("=", 1) for kv in labels_text[len("apiserver_request_total{"):-1].split(","))
            labels = {k: v.strip('"') for k, v in labels.items()}
            if labels.get("verb") in WRITE_VERBS:
                out[(labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])] += float(value)
        return out


class JobWatcher(threading.Thread):
    """Pairs each Job that finishes with the next Job added: the dispatch latency seen from outside."""

    def __init__(self, api_client: client.ApiClient, namespace: str):
        super().__init__(daemon=True)
        self.batch = client.BatchV1Api(api_client)
        self.ns = namespace
        self.freed: deque[float] = deque()
        self.latencies: list[float] = []
        self.finished: set[str] = set()
        self.added = 0
        self.peak_unfinished = 0
        self.unfinished: set[str] = set()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        try:
            self._watch()
        except Exception:  # noqa: BLE001 - the cluster going away after the run is not news
            if not self.stop_flag.is_set():
                raise

    def _watch(self) -> None:
        w = watch.Watch()
        for ev in w.stream(self.batch.list_namespaced_job, self.ns, timeout_seconds=3600):
            now = time.monotonic()
            job = ev["object"]
            name = job.metadata.name
            conds = job.status.conditions or []
            done = any(c.type in ("Complete", "Failed") and c.status == "True" for c in conds)
            if ev["type"] == "ADDED" and name not in self.finished and name not in self.unfinished:
                self.added += 1
                self.unfinished.add(name)
                if self.freed:
                    self.latencies.append(now - self.freed.popleft())
            if done and name not in self.finished:
                self.finished.add(name)
                self.unfinished.discard(name)
                self.freed.append(now)
            self.peak_unfinished = max(self.peak_unfinished, len(self.unfinished))
            if self.stop_flag.is_set():
                w.stop()

    def drain(self) -> None:
        self.freed.clear()


def create_many(sluice: Sluice, names: list[str], spec: dict, threads: int = 16) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda n: sluice.create(n, spec), names))


def new_namespace(core: client.CoreV1Api, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": ns}})
    return ns


def run_sluice(api_client, kubeconfig: str, log_dir: Path, n: int, capacity: int) -> dict:
    core = client.CoreV1Api(api_client)
    ns = new_namespace(core, "bench-sluice")
    sluice = Sluice(api_client, ns)
    op = OperatorProcess(kubeconfig, ns, log_dir, running_capacity=capacity, queued_capacity=n + 10,
                         resync_seconds=300).start()
    watcher = JobWatcher(api_client, ns)
    watcher.start()
    time.sleep(1)
    metrics = ApiServerMetrics(kubeconfig)
    before = metrics.writes()
    names = [f"tx-{i:05d}" for i in range(n)]
    t0 = time.monotonic()
    create_many(sluice, names, {"runner": kwok_runner("1s")})
    created = time.monotonic() - t0
    items = sluice.wait_all_terminal(timeout=1800)
    elapsed = time.monotonic() - t0
    time.sleep(6)  # let trailing writes (queue status, events) land
    after = metrics.writes()
    watcher.stop_flag.set()
    delta = after - before
    by_resource = Counter()
    for (res, sub, verb), v in delta.items():
        if (res, sub) in SLUICE_RESOURCES:
            by_resource[f"{res}{'/' + sub if sub else ''} {verb}"] += v
    events = [e for e in core.list_namespaced_event(ns).items if (e.source and e.source.component == "sluice-operator")]
    writes = sum(by_resource.values()) + len(events)
    op_rss = rss_mb(op.proc.pid)
    op_cpu = cpu_seconds(op.proc.pid)
    inside = histogram_quantiles(f"http://127.0.0.1:{op.metrics_port}/metrics",
                                 "sluice_dispatch_latency_seconds", (50, 95))
    position_writes = counter_value(f"http://127.0.0.1:{op.metrics_port}/metrics", "sluice_position_writes_total")
    op.stop()
    phases = Counter(i["status"]["phase"] for i in items)
    return {
        "namespace": ns, "executions": n, "capacity": capacity, "phases": dict(phases),
        "create_seconds": round(created, 1), "elapsed_seconds": round(elapsed, 1),
        "throughput_per_s": round(n / elapsed, 1),
        "dispatch_latency_ms_p50": round(pct(watcher.latencies, 50) * 1000),
        "dispatch_latency_ms_p95": round(pct(watcher.latencies, 95) * 1000),
        "dispatch_latency_samples": len(watcher.latencies),
        # the operator's own view: Job-finished event received -> next Job created (bucket bounds)
        "operator_dispatch_latency_ms_p50_p95_le": [round(v * 1000) for v in inside],
        "peak_unfinished_jobs": watcher.peak_unfinished,
        "writes_per_execution": round(writes / n, 2),
        # of which only to move a queue position or a start estimate (the live-truth promise)
        "position_writes_per_execution": round(position_writes / n, 2),
        "core_writes_per_execution": round((writes - position_writes) / n, 2),
        "writes_breakdown_per_execution": {k: round(v / n, 2) for k, v in sorted(by_resource.items())}
        | {"events POST (sluice Events listed)": round(len(events) / n, 2)},
        "operator_rss_mb": op_rss,
        "operator_cpu_seconds": op_cpu,
    }


def run_baseline(api_client, kubeconfig: str, n: int, capacity: int) -> dict:
    """The ceiling: no queue logic, just create Jobs up to capacity and patch two statuses each."""
    core = client.CoreV1Api(api_client)
    ns = new_namespace(core, "bench-bare")
    sluice = Sluice(api_client, ns)
    names = [f"tx-{i:05d}" for i in range(n)]
    create_many(sluice, names, {"runner": kwok_runner("1s")})  # no operator: they stay as created
    items = {i["metadata"]["name"]: i for i in sluice.list()}
    watcher = JobWatcher(api_client, ns)
    watcher.start()
    time.sleep(1)
    metrics = ApiServerMetrics(kubeconfig)
    before = metrics.writes()
    batch = client.BatchV1Api(api_client)
    api = client.CustomObjectsApi(api_client)
    pending = deque(names)
    running: set[str] = set()
    done = 0
    lock = threading.Lock()
    pool = ThreadPoolExecutor(32)
    t0 = time.monotonic()

    def start(name: str) -> None:
        uid = items[name]["metadata"]["uid"]
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"{name}-a1", "labels": {"sluice.dev/execution": name},
                            "ownerReferences": [{"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
                                                 "name": name, "uid": uid, "controller": True}]},
               "spec": {"backoffLimit": 0, "template": {
                   "metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "1s"}},
                   "spec": {"restartPolicy": "Never", "containers": [{"name": "runner", "image": "x"}],
                            **{k: v for k, v in kwok_runner().items() if k in ("nodeSelector", "tolerations")}}}}}
        batch.create_namespaced_job(ns, job)
        api.patch_namespaced_custom_object_status("sluice.dev", "v1alpha1", ns, "testexecutions", name,
                                                  {"status": {"phase": "Running"}})

    def finish(name: str) -> None:
        api.patch_namespaced_custom_object_status("sluice.dev", "v1alpha1", ns, "testexecutions", name,
                                                  {"status": {"phase": "Succeeded"}})

    def fill() -> None:
        with lock:
            while pending and len(running) < capacity:
                name = pending.popleft()
                running.add(name)
                pool.submit(start, name)

    fill()
    w = watch.Watch()
    for ev in w.stream(batch.list_namespaced_job, ns, timeout_seconds=1800):
        job = ev["object"]
        conds = job.status.conditions or []
        if any(c.type in ("Complete", "Failed") and c.status == "True" for c in conds):
            name = job.metadata.labels["sluice.dev/execution"]
            with lock:
                if name not in running:
                    continue
                running.discard(name)
            pool.submit(finish, name)
            done += 1
            fill()
            if done == n:
                w.stop()
    pool.shutdown(wait=True)
    elapsed = time.monotonic() - t0
    time.sleep(3)
    delta = metrics.writes() - before
    writes = sum(v for (res, sub, verb), v in delta.items() if (res, sub) in SLUICE_RESOURCES)
    watcher.stop_flag.set()
    return {
        "namespace": ns, "executions": n, "elapsed_seconds": round(elapsed, 1),
        "throughput_per_s": round(n / elapsed, 1),
        "dispatch_latency_ms_p50": round(pct(watcher.latencies, 50) * 1000),
        "dispatch_latency_ms_p95": round(pct(watcher.latencies, 95) * 1000),
        "writes_per_execution": round(writes / n, 2),
    }


def histogram_quantiles(url: str, name: str, qs: tuple[int, ...]) -> list[float]:
    """Upper bucket bounds holding the given percentiles of a Prometheus histogram."""
    buckets: list[tuple[float, float]] = []
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + "_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    return [next((le for le, n in buckets if total and n >= total * q / 100), float("nan")) for q in qs]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run_scale(api_client, kubeconfig: str, log_dir: Path, queued: int) -> dict:
    core = client.CoreV1Api(api_client)
    ns = new_namespace(core, "bench-scale")
    sluice = Sluice(api_client, ns)
    sluice.create_queue("default", {"runningCapacity": 1, "queuedCapacity": queued + 10, "paused": True})
    op = OperatorProcess(kubeconfig, ns, log_dir, running_capacity=5, queued_capacity=queued + 10,
                         resync_seconds=300).start()
    t0 = time.monotonic()
    create_many(sluice, [f"q-{i:05d}" for i in range(queued)], {"runner": kwok_runner("1s")}, threads=24)
    created = time.monotonic() - t0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        items = sluice.api.list_namespaced_custom_object("sluice.dev", "v1alpha1", ns, "testexecutions")["items"]
        if sum(1 for i in items if (i.get("status") or {}).get("phase") == "Queued") == queued:
            break
        time.sleep(2)
    queued_after = time.monotonic() - t0
    time.sleep(3)
    rss = rss_mb(op.proc.pid)
    op.kill()
    t1 = time.monotonic()
    op.start(wait=True)
    rebuild = time.monotonic() - t1
    rss_after = rss_mb(op.proc.pid)
    op.stop()
    return {"namespace": ns, "queued": queued, "create_seconds": round(created, 1),
            "all_queued_after_seconds": round(queued_after, 1), "operator_rss_mb": rss,
            "restart_to_ready_seconds": round(rebuild, 2), "operator_rss_mb_after_restart": rss_after}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--executions", type=int, default=1000)
    ap.add_argument("--capacity", type=int, default=50)
    ap.add_argument("--queued", type=int, default=5000)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: sluice,baseline,scale")
    args = ap.parse_args()
    cluster = None
    kubeconfig = args.kubeconfig or os.environ.get("SLUICE_BENCH_KUBECONFIG")
    if not kubeconfig:
        from tests.harness.cluster import LocalCluster
        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="sluice-bench-")), process_node=False).start()
        kubeconfig = str(cluster.kubeconfig)
    log_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-logs-"))
    config.load_kube_config(kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 64
    api_client = client.ApiClient(cfg)
    subprocess_crds(kubeconfig)
    skip = set(filter(None, args.skip.split(",")))
    out = {}
    try:
        if "sluice" not in skip:
            out["sluice"] = run_sluice(api_client, kubeconfig, log_dir, args.executions, args.capacity)
            print(json.dumps({"sluice": out["sluice"]}, indent=2), flush=True)
        if "baseline" not in skip:
            out["baseline"] = run_baseline(api_client, kubeconfig, args.executions, args.capacity)
            print(json.dumps({"baseline": out["baseline"]}, indent=2), flush=True)
        if "sluice" in out and "baseline" in out:
            ratio = out["sluice"]["throughput_per_s"] / out["baseline"]["throughput_per_s"]
            print(f"sluice throughput is {ratio:.0%} of the bare-script ceiling on this machine")
        if "scale" not in skip:
            out["scale"] = run_scale(api_client, kubeconfig, log_dir, args.queued)
            print(json.dumps({"scale": out["scale"]}, indent=2), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"operator logs: {log_dir}")
    return 0


def counter_value(url: str, name: str) -> float:
    """A counter from a Prometheus text page (0 when absent)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def kubectl(kubeconfig: str, *args: str) -> str:
    from tests.harness.tools import ensure_bin_dir
    exe = str(ensure_bin_dir() / "kubectl")
    return subprocess.run([exe, "--kubeconfig", kubeconfig, *args], check=True, capture_output=True, text=True).stdout


def subprocess_crds(kubeconfig: str) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/testexecutions.sluice.dev", "crd/testqueues.sluice.dev")


if __name__ == "__main__":
    sys.exit(main())
