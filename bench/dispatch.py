#!/usr/bin/env python3
"""Dispatch benchmark (issue: operator core, "Speed"): prints figures, asserts nothing.

On a local control plane with kwok nodes (pods finish 1 s after they start):
  1. Sluice: N executions (default 1,000), running capacity 50. Measures dispatch latency
     (a Job finishing -> the next Job added, both seen by one outside watcher), end-to-end
     throughput, and API writes per execution from kube-apiserver's apiserver_request_total
     (the control plane's own Lease renewals, at the rate the bare script's side measures, taken
     off: `control_plane_lease_writes_per_execution`).
  2. Baseline: a bare script that only creates the Jobs (same capacity) and patches each
     execution's status twice (Running, Succeeded), as fast as it can: the ceiling here.
  3. Scale: 5,000 queued executions: operator RSS, and the time to rebuild its view after a
     restart (start -> /readyz).

    python bench/dispatch.py [--kubeconfig K] [--executions 1000] [--capacity 50] [--queued 5000]
Without --kubeconfig it starts its own local control plane (hack/build-tools binaries).

Interleaved (fair on a shared, loaded machine): `--rounds 3 --executions 300` runs Sluice and the
bare script alternately on one control plane (the order flips every round, so drifting load
lands on both sides) and reports each figure as the median over rounds with its min-max spread;
`--json` prints one JSON object at the end. `--stress-cpu` keeps one core busy
(`stress-ng --cpu 1`) beside both sides, for the tail latency under CPU pressure. `--profile
FILE` records the operator of the first Sluice round with py-spy (raw collapsed stacks; see
bench/profile_top.py and bench/README.md).

Both sides follow their run the same way (one Job watch; Sluice's executions are listed once
all Jobs are done, not polled) and print the same diagnostics: `job_seconds_p50/p95` (a Job's
life from outside), `mean_busy_slots` (capacity minus this is slots left idle),
`machine_cpu_ms_per_execution` (CPU of etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok, the operator and this script, by /proc: what the side cost the whole
machine) and, with `--stages`, the medians of each stage of a Job's life from a pod watch.
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
import shutil
import statistics
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402

from tests.harness.operator_proc import OperatorProcess  # noqa: E402
from tests.harness.sluice_api import TERMINAL, Sluice, kwok_runner  # noqa: E402

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
SLUICE_RESOURCES = {("testexecutions", "status"), ("jobs", ""), ("configmaps", ""), ("leases", "")}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))]


class ApiServerMetrics:
    """Reads apiserver_request_total straight from kube-apiserver's /metrics; made at the start
    of a measured window, `since_start` gives the writes during it and its length."""

    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig
        self.start, self.started_at = self.writes(), time.monotonic()

    def since_start(self) -> tuple[Counter, float]:
        """(writes by (resource, subresource, verb) since the start, seconds since the start)."""
        return self.writes() - self.start, time.monotonic() - self.started_at

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
        self.first_added: float | None = None  # monotonic time the first Job was seen
        self.peak_unfinished = 0
        self.unfinished: set[str] = set()
        self.seen_at: dict[str, float] = {}  # Job name -> monotonic time it was seen added
        self.done_at: dict[str, float] = {}  # ... and seen finished
        self.busy_area = 0.0  # integral of unfinished Jobs over time: mean slots in use
        self.last_change: float | None = None
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
                self.first_added = self.first_added or now
                self._count(now)
                self.unfinished.add(name)
                self.seen_at[name] = now
                if self.freed:
                    self.latencies.append(now - self.freed.popleft())
            if done and name not in self.finished:
                self.finished.add(name)
                self._count(now)
                self.unfinished.discard(name)
                self.freed.append(now)
                self.done_at[name] = now
            self.peak_unfinished = max(self.peak_unfinished, len(self.unfinished))
            if self.stop_flag.is_set():
                w.stop()

    def all_finished(self, n: int, timeout: float) -> None:
        """Waits until `n` Jobs were seen finished (the run's last Job done)."""
        deadline = time.monotonic() + timeout
        while len(self.finished) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.finished)} of {n} Jobs finished within {timeout}s")
            time.sleep(0.05)

    def _count(self, now: float) -> None:
        if self.last_change is not None:
            self.busy_area += len(self.unfinished) * (now - self.last_change)
        self.last_change = now

    def drain(self) -> None:
        self.freed.clear()

    def shape(self) -> dict:
        """How the slots were used: a Job's life as seen from outside, and the mean Jobs unfinished
        from the first one seen to the last change (capacity minus this is slots left idle)."""
        span = (self.last_change or 0) - (self.first_added or 0)
        lives = [done - self.seen_at[name] for name, done in self.done_at.items() if name in self.seen_at]
        return {"job_seconds_p50": round(pct(lives, 50), 2) if lives else None,
                "job_seconds_p95": round(pct(lives, 95), 2) if lives else None,
                "mean_busy_slots": round(self.busy_area / span, 1) if span > 0 else None}


class PodStages(threading.Thread):
    """With --stages: where a Job's life goes, from a pod watch (the same on both sides): Job seen
    -> pod created -> bound -> Running -> Succeeded -> Job seen finished, medians in ms."""

    def __init__(self, api_client: client.ApiClient, namespace: str, jobs: "JobWatcher"):
        super().__init__(daemon=True)
        self.core = client.CoreV1Api(api_client)
        self.ns, self.jobs = namespace, jobs
        self.seen: dict[str, dict[str, float]] = {}  # job name -> stage -> monotonic time
        self.stop_flag = threading.Event()

    def run(self) -> None:
        try:
            w = watch.Watch()
            for ev in w.stream(self.core.list_namespaced_pod, self.ns, timeout_seconds=3600):
                now = time.monotonic()
                pod = ev["object"]
                job = (pod.metadata.labels or {}).get("batch.kubernetes.io/job-name")
                if job:
                    stages = self.seen.setdefault(job, {})
                    stages.setdefault("pod", now)
                    if pod.spec.node_name:
                        stages.setdefault("bound", now)
                    if pod.status.phase == "Running":
                        stages.setdefault("running", now)
                    if pod.status.phase in ("Succeeded", "Failed"):
                        stages.setdefault("ended", now)
                if self.stop_flag.is_set():
                    w.stop()
        except Exception:  # noqa: BLE001 - the cluster going away after the run is not news
            if not self.stop_flag.is_set():
                raise

    def summary(self) -> dict:
        order = ["job", "pod", "bound", "running", "ended", "done"]
        gaps: dict[str, list[float]] = {f"{a}->{b}": [] for a, b in zip(order, order[1:])}
        for job, stages in self.seen.items():
            times = dict(stages, job=self.jobs.seen_at.get(job), done=self.jobs.done_at.get(job))
            for a, b in zip(order, order[1:]):
                if times.get(a) is not None and times.get(b) is not None:
                    gaps[f"{a}->{b}"].append(times[b] - times[a])
        return {k: round(pct(v, 50) * 1000) for k, v in gaps.items() if v}


def terminal_soon(sluice: Sluice, timeout: float) -> list[dict]:
    """The executions once all are terminal, listed every 0.1 s (called when little is left)."""
    deadline = time.monotonic() + timeout
    while True:
        items = sluice.list()
        if all((i.get("status") or {}).get("phase") in TERMINAL for i in items) or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def create_many(sluice: Sluice, names: list[str], spec: dict, threads: int = 16) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda n: sluice.create(n, spec), names))


def new_namespace(core: client.CoreV1Api, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": ns}})
    return ns


def run_sluice(api_client, kubeconfig: str, log_dir: Path, n: int, capacity: int,
               profile: str | None = None, stages: bool = False, history: int | None = None) -> dict:
    core = client.CoreV1Api(api_client)
    ns = new_namespace(core, "bench-sluice")
    sluice = Sluice(api_client, ns)
    if history is not None:  # the default queue as an object, keeping `history` succeeded
        sluice.create_queue("default", {"runningCapacity": capacity, "queuedCapacity": n + 10,
                                        "history": {"succeeded": history}})
    op = OperatorProcess(kubeconfig, ns, log_dir, running_capacity=capacity, queued_capacity=n + 10,
                         resync_seconds=300).start()
    watcher = JobWatcher(api_client, ns)
    watcher.start()
    pods = PodStages(api_client, ns, watcher) if stages else None
    if pods is not None:
        pods.start()
    time.sleep(1)
    metrics = ApiServerMetrics(kubeconfig)
    cpu_before = cpu_seconds(op.proc.pid, digits=3)  # start-up (imports, first lists) left out
    machine_before = machine_cpu(op.proc.pid)
    spy = start_profiler(op.proc.pid, profile) if profile else None
    names = [f"tx-{i:05d}" for i in range(n)]
    t0 = time.monotonic()
    create_many(sluice, names, {"runner": kwok_runner("1s")})
    created = time.monotonic() - t0
    # Follow the run by the Job watch the bare script's side has too, and list the executions
    # only at the end: listing them all every half second (as tests do) loaded the API server
    # on Sluice's side only (measured on the same operator: throughput ratio 0.52 with it,
    # 0.58-0.63 without).
    watcher.all_finished(n, timeout=1800)
    items = terminal_soon(sluice, timeout=120)
    ended = time.monotonic()
    elapsed = ended - t0
    time.sleep(6)  # let trailing writes (queue status, events) land
    delta, window = metrics.since_start()
    watcher.stop_flag.set()
    if pods is not None:
        pods.stop_flag.set()
    by_resource = Counter()
    for (res, sub, verb), v in delta.items():
        if (res, sub) in SLUICE_RESOURCES:
            by_resource[f"{res}{'/' + sub if sub else ''} {verb}"] += v
    events = [e for e in core.list_namespaced_event(ns).items if (e.source and e.source.component == "sluice-operator")]
    writes = sum(by_resource.values()) + len(events)
    op_rss = rss_mb(op.proc.pid)
    op_cpu = cpu_seconds(op.proc.pid, digits=3) - cpu_before
    machine = machine_cpu(op.proc.pid) - machine_before
    if spy is not None:
        spy.send_signal(2)  # py-spy writes its file on SIGINT
        spy.wait(60)
    inside = histogram_quantiles(f"http://127.0.0.1:{op.metrics_port}/metrics",
                                 "sluice_dispatch_latency_seconds", (50, 95))
    position_writes = counter_value(f"http://127.0.0.1:{op.metrics_port}/metrics", "sluice_position_writes_total")
    passes = [counter_value(f"http://127.0.0.1:{op.metrics_port}/metrics", f"sluice_planner_pass_seconds_{s}")
              for s in ("count", "sum")]  # from the operator's start (its first list included)
    op.stop()
    phases = Counter(i["status"]["phase"] for i in items)
    return {
        "namespace": ns, "executions": n, "capacity": capacity, "phases": dict(phases),
        "create_seconds": round(created, 1), "elapsed_seconds": round(elapsed, 1),
        "throughput_per_s": round(n / elapsed, 1),
        "dispatch_throughput_per_s": round(n / (ended - (watcher.first_added or t0)), 1),
        "dispatch_latency_ms_p50": round(pct(watcher.latencies, 50) * 1000),
        "dispatch_latency_ms_p95": round(pct(watcher.latencies, 95) * 1000),
        "dispatch_latency_samples": len(watcher.latencies),
        # the operator's own view: Job-finished event received -> next Job created (bucket bounds)
        "operator_dispatch_latency_ms_p50_p95_le": [round(v * 1000) if v < float("inf") else None for v in inside],
        "peak_unfinished_jobs": watcher.peak_unfinished,
        **watcher.shape(),
        **({"job_stages_ms_p50": pods.summary()} if pods is not None else {}),
        "writes_per_execution": round(writes / n, 2),
        # of which only to move a queue position or a start estimate (the live-truth promise)
        "position_writes_per_execution": round(position_writes / n, 2),
        "core_writes_per_execution": round((writes - position_writes) / n, 2),
        "writes_breakdown_per_execution": {k: round(v / n, 2) for k, v in sorted(by_resource.items())}
        | {"events POST (sluice Events listed)": round(len(events) / n, 2)},
        "operator_rss_mb": op_rss,
        "operator_cpu_seconds": round(op_cpu, 2),
        "operator_cpu_ms_per_execution": round(op_cpu * 1000 / n, 1),
        "planner_passes_per_execution": round(passes[0] / n, 2),
        "planner_cpu_ms_per_execution": round(passes[1] * 1000 / n, 2),
        "machine_cpu_ms_per_execution": per_execution_ms(machine, n),
        "_latencies": watcher.latencies, "_writes": writes, "_position_writes": position_writes,
        "_events": len(events), "_window_s": window, "_lease_puts": delta[("leases", "", "PUT")],
    }


def run_baseline(api_client, kubeconfig: str, n: int, capacity: int, stages: bool = False) -> dict:
    """The ceiling: no queue logic, just create Jobs up to capacity and patch two statuses each."""
    core = client.CoreV1Api(api_client)
    ns = new_namespace(core, "bench-bare")
    sluice = Sluice(api_client, ns)
    names = [f"tx-{i:05d}" for i in range(n)]
    create_many(sluice, names, {"runner": kwok_runner("1s")})  # no operator: they stay as created
    items = {i["metadata"]["name"]: i for i in sluice.list()}
    watcher = JobWatcher(api_client, ns)
    watcher.start()
    pods = PodStages(api_client, ns, watcher) if stages else None
    if pods is not None:
        pods.start()
    time.sleep(1)
    metrics = ApiServerMetrics(kubeconfig)
    machine_before = machine_cpu()
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
    ended = time.monotonic()
    elapsed = ended - t0
    time.sleep(3)
    delta, window = metrics.since_start()
    machine = machine_cpu() - machine_before
    writes = sum(v for (res, sub, verb), v in delta.items() if (res, sub) in SLUICE_RESOURCES)
    watcher.stop_flag.set()
    if pods is not None:
        pods.stop_flag.set()
    return {
        "namespace": ns, "executions": n, "elapsed_seconds": round(elapsed, 1),
        "throughput_per_s": round(n / elapsed, 1),
        "dispatch_throughput_per_s": round(n / (ended - (watcher.first_added or t0)), 1),
        "dispatch_latency_ms_p50": round(pct(watcher.latencies, 50) * 1000),
        "dispatch_latency_ms_p95": round(pct(watcher.latencies, 95) * 1000),
        **watcher.shape(),
        **({"job_stages_ms_p50": pods.summary()} if pods is not None else {}),
        "writes_per_execution": round(writes / n, 2),
        "machine_cpu_ms_per_execution": per_execution_ms(machine, n),
        "_latencies": watcher.latencies, "_window_s": window, "_lease_puts": delta[("leases", "", "PUT")],
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


def proc_stat(pid: int | str) -> tuple[str, float]:
    """A process's command name and CPU seconds so far (user + system), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        head, _, tail = f.read().rpartition(")")
    fields = tail.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, digits: int = 1) -> float:
    return round(proc_stat(pid)[1], digits)


CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok")


def machine_cpu(operator_pid: int | None = None) -> Counter:
    """CPU seconds so far of each control-plane program, the operator and this script (by /proc):
    the difference over a side is what that side cost the whole machine."""
    out: Counter = Counter()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm, cpu = proc_stat(entry)
        except OSError:
            continue
        name = ("operator" if int(entry) == operator_pid else "bench script" if int(entry) == os.getpid()
                else next((c for c in CONTROL_PLANE if comm.startswith(c)), None))
        if name:
            out[name] += cpu
    return out


def per_execution_ms(seconds: Counter, n: int) -> dict:
    return {k: round(v * 1000 / n, 1) for k, v in sorted(seconds.items())}


def start_profiler(pid: int, out: str) -> subprocess.Popen:
    """py-spy (the `bench` extra) sampling the operator without pausing it, raw collapsed stacks."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--nonblocking", "--rate", "100",
                             "--format", "raw", "--output", out], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc


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


def spread(values: list[float], digits: int = 2) -> dict:
    """Median over rounds with the min-max spread."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def summarize(rounds: list[dict], n: int) -> dict:
    """One object for --json: medians over rounds (spreads beside them), counts summed."""
    sl = [r["sluice"] for r in rounds]
    bare = [r["baseline"] for r in rounds if "baseline" in r]
    out: dict = {"rounds": len(rounds), "executions_per_round": n}
    if bare:
        ratios = [s["throughput_per_s"] / b["throughput_per_s"] for s, b in zip(sl, bare)]
        out["throughput_ratio"] = round(statistics.median(ratios), 3)
        out["throughput_ratio_spread"] = spread(ratios, 3)
        # The same clock on both sides: from the first Job seen to the end. throughput_ratio starts
        # Sluice's clock before its executions are created (the operator admits while they arrive)
        # and the bare script's after (it lists them first), so it also charges Sluice the creates.
        same_clock = [s["dispatch_throughput_per_s"] / b["dispatch_throughput_per_s"] for s, b in zip(sl, bare)]
        out["dispatch_throughput_ratio"] = round(statistics.median(same_clock), 3)
        out["dispatch_throughput_ratio_spread"] = spread(same_clock, 3)
        out["bare_p50_ms"] = round(statistics.median(b["dispatch_latency_ms_p50"] for b in bare))
        out["bare_p95_ms"] = round(statistics.median(b["dispatch_latency_ms_p95"] for b in bare))
        out["p95_minus_bare_ms_spread"] = spread(
            [s["dispatch_latency_ms_p95"] - b["dispatch_latency_ms_p95"] for s, b in zip(sl, bare)], 0)
        out["p95_over_bare_spread"] = spread(
            [s["dispatch_latency_ms_p95"] / max(1, b["dispatch_latency_ms_p95"]) for s, b in zip(sl, bare)])
        out["bare_throughput_per_s"] = spread([b["throughput_per_s"] for b in bare], 1)
    out["throughput_per_s"] = spread([s["throughput_per_s"] for s in sl], 1)
    out["p50_ms"] = round(statistics.median(s["dispatch_latency_ms_p50"] for s in sl))
    out["p95_ms"] = round(statistics.median(s["dispatch_latency_ms_p95"] for s in sl))
    out["p95_ms_spread"] = spread([s["dispatch_latency_ms_p95"] for s in sl], 0)
    total = n * len(sl)
    # DELETEs are the garbage collector removing the Jobs and ConfigMaps of executions that
    # history retention retired (not the operator's writes): printed apart, not in the core figure
    retired = [sum(v for k, v in s["writes_breakdown_per_execution"].items() if k.endswith(" DELETE")) for s in sl]
    # Lease renewals of kube-controller-manager, kube-scheduler and the kwok nodes land in the same
    # counter as the operator's own: their rate, measured on the bare script's side (no operator),
    # is taken off each Sluice round for its window (printed apart)
    others = [0.0] * len(sl)
    if bare:
        rate = sum(b["_lease_puts"] for b in bare) / sum(b["_window_s"] for b in bare)
        others = [rate * s["_window_s"] / n for s in sl]
        out["control_plane_lease_writes_per_execution"] = round(statistics.fmean(others), 3)
    core = [s["core_writes_per_execution"] - d - o for s, d, o in zip(sl, retired, others)]
    out["writes_per_execution"] = round(sum(s["_writes"] - s["_position_writes"] for s in sl) / total
                                        - statistics.fmean(retired) - statistics.fmean(others), 2)
    out["writes_per_execution_spread"] = spread(core)
    out["retention_deletes_per_execution"] = round(statistics.fmean(retired), 2)
    out["position_writes_per_execution"] = round(sum(s["_position_writes"] for s in sl) / total, 2)
    out["events_per_execution"] = round(sum(s["_events"] for s in sl) / total, 2)
    breakdown: Counter = Counter()
    for s in sl:
        breakdown.update({k: v * n for k, v in s["writes_breakdown_per_execution"].items()})
    out["writes_breakdown_per_execution"] = {k: round(v / total, 2) for k, v in sorted(breakdown.items())}
    out["operator_cpu_ms_per_execution"] = round(sum(s["operator_cpu_seconds"] for s in sl) * 1000 / total, 1)
    out["operator_cpu_ms_per_execution_spread"] = spread([s["operator_cpu_ms_per_execution"] for s in sl], 1)
    out["planner_passes_per_execution"] = spread([s["planner_passes_per_execution"] for s in sl])
    out["planner_cpu_ms_per_execution"] = spread([s["planner_cpu_ms_per_execution"] for s in sl])
    return out


def control_plane(kubeconfig: str | None):
    """(None, the kubeconfig given or SLUICE_BENCH_KUBECONFIG), else (a local control plane
    started for this run, its kubeconfig): the caller stops it at the end."""
    kubeconfig = kubeconfig or os.environ.get("SLUICE_BENCH_KUBECONFIG")
    if kubeconfig:
        return None, kubeconfig
    from tests.harness.cluster import LocalCluster
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="sluice-bench-")), process_node=False).start()
    return cluster, str(cluster.kubeconfig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--executions", type=int, default=1000)
    ap.add_argument("--capacity", type=int, default=50)
    ap.add_argument("--queued", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=1, help="Sluice and the bare script alternately, this many times each")
    ap.add_argument("--json", action="store_true", help="print one JSON object (medians, spreads) at the end")
    ap.add_argument("--stress-cpu", action="store_true", help="stress-ng --cpu 1 beside both sides throughout")
    ap.add_argument("--profile", help="py-spy raw profile of the first Sluice round's operator to this file")
    ap.add_argument("--stages", action="store_true",
                    help="also watch pods: medians of each stage of a Job's life (adds a watch to both sides)")
    ap.add_argument("--history", type=int,
                    help="the default queue keeps this many succeeded executions (default: no queue object, 100)")
    ap.add_argument("--warmup", type=int, default=100,
                    help="executions per side run first and not counted (0: none); the first phase on a fresh "
                         "control plane measured Sluice at 8.4/s against 13.5-14.3 in later rounds")
    ap.add_argument("--skip", default="", help="comma list of phases to skip: sluice,baseline,scale")
    args = ap.parse_args()
    cluster, kubeconfig = control_plane(args.kubeconfig)
    log_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-logs-"))
    config.load_kube_config(kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 64
    api_client = client.ApiClient(cfg)
    subprocess_crds(kubeconfig)
    skip = set(filter(None, args.skip.split(",")))
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    stress = None
    if args.stress_cpu:
        stress = subprocess.Popen(["stress-ng", "--cpu", "1", "--quiet"], start_new_session=True)
    load = {"before": os.getloadavg()[0]}
    rounds: list[dict] = []
    result: dict = {}
    try:
        if args.warmup:  # a fresh control plane is slow in its first minute, for whichever side runs first
            for side in ("sluice", "baseline"):
                if side not in skip:
                    (run_sluice(api_client, kubeconfig, log_dir, args.warmup, args.capacity) if side == "sluice"
                     else run_baseline(api_client, kubeconfig, args.warmup, args.capacity))
            say(f"warm-up: {args.warmup} executions each side, not counted", flush=True)
        for r in range(args.rounds):
            one: dict = {}
            order = ["sluice", "baseline"] if r % 2 == 0 else ["baseline", "sluice"]
            for side in order:
                if side in skip:
                    continue
                if side == "sluice":
                    one[side] = run_sluice(api_client, kubeconfig, log_dir, args.executions, args.capacity,
                                           profile=args.profile if r == 0 else None, stages=args.stages,
                                           history=args.history)
                else:
                    one[side] = run_baseline(api_client, kubeconfig, args.executions, args.capacity, stages=args.stages)
                say(json.dumps({f"round {r + 1} {side}": public(one[side])}, indent=2), flush=True)
            if "sluice" in one and "baseline" in one:
                ratio = one["sluice"]["throughput_per_s"] / one["baseline"]["throughput_per_s"]
                same = one["sluice"]["dispatch_throughput_per_s"] / one["baseline"]["dispatch_throughput_per_s"]
                say(f"round {r + 1}: sluice throughput is {ratio:.0%} of the bare-script ceiling "
                    f"({same:.0%} on the same clock: first Job seen to the end)", flush=True)
            if "sluice" in one:
                rounds.append(one)
        load["during"] = os.getloadavg()[0]
        if rounds:
            result = summarize(rounds, args.executions)
        result |= {"rss_mb_queued": None, "restart_ready_s": None, "rss_mb_history": None}
        if "scale" not in skip:
            scale = run_scale(api_client, kubeconfig, log_dir, args.queued)
            say(json.dumps({"scale": scale}, indent=2), flush=True)
            result |= {"rss_mb_queued": scale["operator_rss_mb"], "restart_ready_s": scale["restart_to_ready_seconds"],
                       "queued": args.queued}
        result["stress_cpu"] = args.stress_cpu
        result["load_average_1m"] = {k: round(v, 2) for k, v in load.items()}
        result["cpu_count"] = os.cpu_count()
        # bench/history.py (finished executions kept in memory) measures rss_mb_history
    finally:
        if stress is not None:
            os.killpg(stress.pid, 15)
            stress.wait()
        if cluster is not None:
            cluster.stop()
    say(f"operator logs: {log_dir}")
    print(json.dumps(result, indent=None if args.json else 2), flush=True)
    return 0


def public(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def counter_value(url: str, name: str) -> float:
    """A counter from a Prometheus text page, summed over its labels (0 when absent)."""
    total = 0.0
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith((name + " ", name + "{")):
                    total += float(line.rsplit(" ", 1)[1])
    except OSError:
        pass
    return total


def kubectl(kubeconfig: str, *args: str) -> str:
    from tests.harness.tools import ensure_bin_dir
    exe = str(ensure_bin_dir() / "kubectl")
    return subprocess.run([exe, "--kubeconfig", kubeconfig, *args], check=True, capture_output=True, text=True).stdout


def subprocess_crds(kubeconfig: str) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/testexecutions.sluice.dev", "crd/testqueues.sluice.dev")


if __name__ == "__main__":
    sys.exit(main())
