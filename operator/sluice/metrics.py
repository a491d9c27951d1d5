"""Prometheus metrics: counters and histograms fed by the dispatcher, gauges read from the view
at scrape time (so they always agree with what the API shows)."""
from __future__ import annotations

import collections
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .api.execution import Phase
from .view import ClusterView

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class Metrics:
    def __init__(self, view_getter, settings, is_leader=lambda: True):
        self.registry = CollectorRegistry()
        self._view_getter, self._settings, self._is_leader = view_getter, settings, is_leader
        self.admissions = Counter("sluice_admissions_total", "Attempts started (Jobs created).",
                                  ["namespace", "queue"], registry=self.registry)
        self.outcomes = Counter("sluice_outcomes_total", "Executions that reached a terminal phase.",
                                ["namespace", "queue", "phase", "reason"], registry=self.registry)
        self.wait = Histogram("sluice_wait_seconds", "Time from queued to first attempt started.",
                              ["namespace", "queue"], buckets=_SECONDS_BUCKETS, registry=self.registry)
        self.run = Histogram("sluice_run_seconds", "Time from first attempt started to terminal phase.",
                             ["namespace", "queue"], buckets=_SECONDS_BUCKETS, registry=self.registry)
        self.dispatch_latency = Histogram(
            "sluice_dispatch_latency_seconds", "Time from a running slot freeing to the next Job existing.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry)
        self.api_errors = Counter("sluice_api_errors_total", "Failed Kubernetes API requests by the operator.",
                                  ["operation"], registry=self.registry)
        self.registry.register(_ViewCollector(self))
        self._freed: collections.deque[float] = collections.deque()
        self._counted: set[tuple[str, str, str]] = set()
        self.latencies: list[float] = []  # raw samples for the benchmark

    # ---- hooks called by the dispatcher ----
    def slot_freed(self, at: float) -> None:
        self._freed.append(at)

    def no_waiters(self) -> None:
        self._freed.clear()

    def admitted(self, namespace: str, queue: str) -> None:
        self.admissions.labels(namespace, queue).inc()
        if self._freed:
            latency = time.monotonic() - self._freed.popleft()
            self.dispatch_latency.observe(latency)
            self.latencies.append(latency)

    def status_written(self, obj: dict) -> None:
        meta, status, spec = obj.get("metadata") or {}, obj.get("status") or {}, obj.get("spec") or {}
        phase = status.get("phase")
        if phase not in {p.value for p in Phase if p.terminal}:
            return
        ident = (meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
        if ident in self._counted:
            return
        self._counted.add(ident)
        ns, queue = ident[0], spec.get("queue", "default")
        self.outcomes.labels(ns, queue, phase, status.get("reason", "")).inc()
        from .view import _ts
        if status.get("startedAt") and status.get("queuedAt"):
            self.wait.labels(ns, queue).observe((_ts(status["startedAt"]) - _ts(status["queuedAt"])).total_seconds())
        if status.get("startedAt") and status.get("completedAt"):
            self.run.labels(ns, queue).observe((_ts(status["completedAt"]) - _ts(status["startedAt"])).total_seconds())


class _ViewCollector:
    """Queue depth, running slots and capacities straight from the view at scrape time."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self):
        view: ClusterView = self.m._view_getter()
        depth = GaugeMetricFamily("sluice_queue_depth", "Executions waiting (phase Queued).", labels=["namespace", "queue"])
        running = GaugeMetricFamily("sluice_running", "Running slots held by unfinished Jobs.", labels=["namespace", "queue"])
        cap = GaugeMetricFamily("sluice_running_capacity", "Running capacity in slots.", labels=["namespace", "queue"])
        leader = GaugeMetricFamily("sluice_leader", "1 on the replica that dispatches.")
        counts: dict[tuple[str, str], int] = {}
        slots: dict[tuple[str, str], int] = {}
        if view is not None:
            for rec in view.executions.values():
                if rec.spec is not None and rec.status.phase == Phase.Queued:
                    k = (rec.namespace, rec.spec.queue)
                    counts[k] = counts.get(k, 0) + 1
            for job in view.jobs.values():
                if job.occupies:
                    k = (job.namespace, job.queue)
                    slots[k] = slots.get(k, 0) + job.slots
            for k, q in view.queues.items():
                cap.add_metric(list(k), q.spec.running_capacity)
                counts.setdefault(k, 0)
                slots.setdefault(k, 0)
        for k, v in counts.items():
            depth.add_metric(list(k), v)
        for k, v in slots.items():
            running.add_metric(list(k), v)
        cap.add_metric(["", ""], self.m._settings.running_capacity)
        leader.add_metric([], 1 if self.m._is_leader() else 0)
        yield from (depth, running, cap, leader)
