"""Prometheus metrics of the operator, served on /metrics (port SLUICE_METRICS_PORT).

Two kinds, so that what Prometheus shows agrees with what the API shows:
- gauges (queue depth, running slots, capacities, executions by phase) are computed from the
  dispatcher's view at scrape time, never kept as counters that could drift (the one memory:
  each waiter's first estimated start, the promise `sluice_queue_overdue_seconds` measures against);
- counters and histograms (admissions, outcomes, wait, run, dispatch latency, API errors) are
  fed by the dispatcher's hooks when its writes succeed; each execution is counted once (by uid).

Names follow Prometheus conventions: `sluice_` prefix, seconds, `_total` for counters. The
global caps carry no labels (`sluice_operator_*_capacity`); per-queue series carry `namespace`
and `queue`. Nothing here decides anything: it only observes.
"""
from __future__ import annotations

import collections
import time
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .api.execution import TERMINAL_PHASES, Phase
from .cache.records import _ts
from .cache.view import ClusterView
from .status.environment_stats import environment_statuses

_TERMINAL = frozenset(p.value for p in TERMINAL_PHASES)  # as the API writes them

SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
DISPATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
PASS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
REMEMBERED = 100_000  # uids remembered to count each execution once; bounded, oldest forgotten


class _SeenOnce:
    """A bounded set: `first(x)` is True the first time x is seen (among the last `size`)."""

    def __init__(self, size: int = REMEMBERED):
        self.size, self.items = size, collections.OrderedDict()

    def first(self, item) -> bool:
        if item in self.items:
            return False
        self.items[item] = None
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return True


def api_operation(method: str, path: str) -> str:
    """`PATCH /apis/sluice.dev/v1alpha1/namespaces/x/testexecutions/y/status` -> `patch_testexecutions_status`."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    resource, sub = "", ""
    if "namespaces" in parts:
        i = parts.index("namespaces")
        rest = parts[i + 2:]
        if not rest:
            resource = "namespaces"
        else:
            resource = rest[0]
            sub = rest[2] if len(rest) > 2 else ""
    elif parts:
        resource = parts[-1] if parts[0] == "api" or len(parts) <= 3 else parts[3]
    op = f"{method.lower()}_{resource}"
    return f"{op}_{sub}" if sub else op


class Metrics:
    def __init__(self, view_getter, settings, is_leader=lambda: True, writes_getter=dict,
                 clock=lambda: datetime.now(timezone.utc)):
        self.registry = CollectorRegistry()
        self._clock = clock  # wall clock (aware UTC) for how late waiters are past their ETA
        self._view_getter, self._settings, self._is_leader = view_getter, settings, is_leader
        self._writes_getter = writes_getter  # execution -> status writes sent to it
        self.admissions = Counter("sluice_admissions_total", "Attempts started (runner Jobs created).",
                                  ["namespace", "queue"], registry=self.registry)
        self.outcomes = Counter("sluice_outcomes_total", "Executions that reached a terminal phase, by phase and reason.",
                                ["namespace", "queue", "phase", "reason"], registry=self.registry)
        self.wait = Histogram("sluice_wait_seconds", "Time from queued to the first attempt started.",
                              ["namespace", "queue"], buckets=SECONDS_BUCKETS, registry=self.registry)
        self.run = Histogram("sluice_run_seconds", "Time from the first attempt started to the terminal phase "
                             "(Succeeded, Failed, TimedOut).",
                             ["namespace", "queue"], buckets=SECONDS_BUCKETS, registry=self.registry)
        self.dispatch_latency = Histogram(
            "sluice_dispatch_latency_seconds", "Time from a running slot freeing to the next Job existing.",
            buckets=DISPATCH_BUCKETS, registry=self.registry)
        self.planner_pass = Histogram(
            "sluice_planner_pass_seconds", "CPU time of each planner pass: full (every waiter looked at, at "
            "least every 10 s) or incremental (only what changed).", ["kind"], buckets=PASS_BUCKETS,
            registry=self.registry)
        self.position_writes = Counter("sluice_position_writes_total",
                                       "Status writes made only to move a queue position or a start estimate.",
                                       registry=self.registry)
        self.api_errors = Counter("sluice_api_errors_total", "Failed Kubernetes API requests by the operator.",
                                  ["operation", "code"], registry=self.registry)
        self.notifications = Counter("sluice_notifications_total",
                                     "Notification POSTs by result: delivered, retried (an attempt to be retried), "
                                     "given_up, unknown (in flight when the operator stopped: not sent again).",
                                     ["namespace", "queue", "result"], registry=self.registry)
        self.webhook_reviews = Counter("sluice_webhook_reviews_total",
                                       "Admission reviews the webhook answered, by operation and verdict: allowed, "
                                       "denied (HTTP 429, queue full), standby (not the leader: allowed).",
                                       ["operation", "verdict"], registry=self.registry)
        self.registry.register(_ViewCollector(self))
        self._freed: collections.deque[float] = collections.deque()
        self._outcome_seen = _SeenOnce()
        self._wait_seen = _SeenOnce()
        # uid -> the first status.estimatedStartAt written for it while Queued (the promise an
        # overdue waiter is measured against: later writes move the ETA along with the queue).
        self._promised: dict[str, datetime] = {}

    # ---- hooks called by the dispatcher ----
    def slot_freed(self, at: float) -> None:
        self._freed.append(at)

    def no_waiters(self) -> None:
        self._freed.clear()

    def admitted(self, namespace: str, queue: str) -> None:
        self.admissions.labels(namespace, queue).inc()
        if self._freed:
            self.dispatch_latency.observe(time.monotonic() - self._freed.popleft())

    def status_written(self, obj: dict) -> None:
        """Called with the object the API returned for each status write of an execution."""
        meta, status, spec = obj.get("metadata") or {}, obj.get("status") or {}, obj.get("spec") or {}
        phase = status.get("phase")
        ns, queue = meta.get("namespace", ""), spec.get("queue") or "default"
        ident = (ns, meta.get("name", ""), meta.get("uid", ""))
        if phase == "Queued":
            if status.get("estimatedStartAt") and ident[2] not in self._promised:
                self._promised[ident[2]] = _ts(status["estimatedStartAt"])
                if len(self._promised) > REMEMBERED:  # never scraped (scrapes prune it): stay bounded
                    del self._promised[next(iter(self._promised))]
        else:
            self._promised.pop(ident[2], None)
        started, queued = status.get("startedAt"), status.get("queuedAt")
        if started and queued and phase not in ("Pending", "Queued"):
            if self._wait_seen.first(ident):  # once per execution, at its first write after admission
                self.wait.labels(ns, queue).observe(max(0.0, (_ts(started) - _ts(queued)).total_seconds()))
        if phase not in _TERMINAL or not self._outcome_seen.first(ident):
            return
        self.outcomes.labels(ns, queue, phase, status.get("reason", "")).inc()
        if phase in ("Succeeded", "Failed", "TimedOut") and started and status.get("completedAt"):
            self.run.labels(ns, queue).observe(max(0.0, (_ts(status["completedAt"]) - _ts(started)).total_seconds()))

    def notification(self, namespace: str, queue: str, result: str) -> None:
        self.notifications.labels(namespace, queue, result).inc()

    def webhook_reviewed(self, operation: str, verdict: str) -> None:
        self.webhook_reviews.labels(operation, verdict).inc()

    def api_error(self, method: str, path: str, code: int | str) -> None:
        self.api_errors.labels(api_operation(method, path), str(code)).inc()

    def watch_api(self, kube) -> None:
        """Counts the failed requests of `kube` (a sluice.kube.client.Kube) in sluice_api_errors_total."""
        if getattr(kube, "_sluice_metrics_wrapped", False):
            return
        request = kube.request

        async def counted(method, path, *args, **kwargs):
            try:
                return await request(method, path, *args, **kwargs)
            except Exception as exc:
                self.api_error(method, path, getattr(exc, "status", None) or type(exc).__name__)
                raise

        kube.request = counted
        kube._sluice_metrics_wrapped = True


class _ViewCollector:
    """Queue depth, running slots, capacities and executions by phase from the view at scrape time."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self):
        view: ClusterView = self.m._view_getter()
        settings = self.m._settings
        labels = ["namespace", "queue"]
        depth = GaugeMetricFamily("sluice_queue_depth", "Executions waiting (phase Queued).", labels=labels)
        running = GaugeMetricFamily("sluice_running", "Running slots held by unfinished Jobs.", labels=labels)
        cap = GaugeMetricFamily("sluice_running_capacity", "Running capacity of a queue, in slots.", labels=labels)
        qcap = GaugeMetricFamily("sluice_queued_capacity", "Queued capacity of a queue.", labels=labels)
        paused = GaugeMetricFamily("sluice_queue_paused", "1 while a queue is paused.", labels=labels)
        overdue = GaugeMetricFamily("sluice_queue_overdue_seconds", "How far past the start time first estimated "
                                    "for it (status.estimatedStartAt) the most overdue Queued execution of a queue "
                                    "is; 0 when none is.", labels=labels)
        phases = GaugeMetricFamily("sluice_executions", "TestExecutions by phase.", labels=[*labels, "phase"])
        op_cap = GaugeMetricFamily("sluice_operator_running_capacity", "Cluster-wide running cap (SLUICE_RUNNING_CAPACITY).")
        op_qcap = GaugeMetricFamily("sluice_operator_queued_capacity", "Cluster-wide queued cap (SLUICE_QUEUED_CAPACITY).")
        leader = GaugeMetricFamily("sluice_leader", "1 on the replica that dispatches.")
        most = GaugeMetricFamily("sluice_status_writes_max", "Most status writes sent to one execution "
                                 "(among those the operator still knows): a loop shows here.")
        counts: dict[tuple[str, str], int] = {}
        slots: dict[tuple[str, str], int] = {}
        by_phase: dict[tuple[str, str, str], int] = {}
        queues: dict[tuple[str, str], tuple[int, int, bool]] = {}
        late: dict[tuple[str, str], float] = {}
        queued_uids: set[str] = set()
        now = self.m._clock()
        if view is not None:
            for rec in view.executions.values():
                if rec.spec is None:
                    continue
                k = (rec.namespace, rec.queue)
                # the summary, not rec.status: a finished execution's status is packed (cache/compact.py)
                phase = rec.summary.phase.value if rec.summary.phase else "Pending"
                by_phase[(*k, phase)] = by_phase.get((*k, phase), 0) + 1
                if rec.summary.phase == Phase.Queued:
                    counts[k] = counts.get(k, 0) + 1
                    queued_uids.add(rec.uid)
                    eta = self.m._promised.get(rec.uid) or rec.status.estimated_start_at
                    if eta is not None:
                        eta = eta if eta.tzinfo else eta.replace(tzinfo=timezone.utc)
                        late[k] = max(late.get(k, 0.0), (now - eta).total_seconds())
                if k not in queues and rec.spec.queue == "default" and k not in view.queues:
                    # `default` needs no object: the operator-wide caps bound it.
                    queues[k] = (settings.running_capacity, settings.queued_capacity, False)
            for job in view.slot_holders():
                k = (job.namespace, job.queue)
                slots[k] = slots.get(k, 0) + job.slots
            for uid in set(self.m._promised) - queued_uids:  # deleted or admitted: forget the promise
                del self.m._promised[uid]
            for k, q in view.queues.items():
                queues[k] = (q.spec.running_capacity, q.spec.queued_capacity, q.spec.paused)
        for k, (rc, qc, p) in queues.items():
            cap.add_metric(list(k), rc)
            qcap.add_metric(list(k), qc)
            paused.add_metric(list(k), 1 if p else 0)
            counts.setdefault(k, 0)
            slots.setdefault(k, 0)
        for k, v in counts.items():
            depth.add_metric(list(k), v)
        for k, v in slots.items():
            running.add_metric(list(k), v)
        for k in counts:
            overdue.add_metric(list(k), max(0.0, late.get(k, 0.0)))
        for k, v in by_phase.items():
            phases.add_metric(list(k), v)
        op_cap.add_metric([], settings.running_capacity)
        op_qcap.add_metric([], settings.queued_capacity)
        leader.add_metric([], 1 if self.m._is_leader() else 0)
        most.add_metric([], max(self.m._writes_getter().values(), default=0))
        yield from (depth, running, cap, qcap, paused, phases, op_cap, op_qcap, leader, most)
        yield overdue
        yield from _environment_metrics(view)


def _environment_metrics(view: ClusterView | None):
    """Per TestEnvironment: its concurrency, holders now (from unfinished Jobs) and waiters."""
    env_cap = GaugeMetricFamily("sluice_environment_concurrency", "spec.concurrency of a TestEnvironment.",
                                labels=["environment"])
    in_use = GaugeMetricFamily("sluice_environment_in_use", "Executions holding a TestEnvironment (unfinished Jobs).",
                               labels=["environment"])
    waiting = GaugeMetricFamily("sluice_environment_waiting", "Waiting executions that name a TestEnvironment.",
                                labels=["environment"])
    if view is not None and view.environments:
        for name, st in environment_statuses(view).items():
            env_cap.add_metric([name], view.environments[name].spec.concurrency)
            in_use.add_metric([name], st.in_use)
            waiting.add_metric([name], st.waiting)
    yield from (env_cap, in_use, waiting)
