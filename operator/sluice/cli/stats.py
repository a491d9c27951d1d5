"""`sluice stats`: totals, wait/run percentiles and throughput of a queue.

The totals and percentiles are the operator's own computation of `TestQueue.status`
(`sluice.status.queue_stats.queue_status`) run over the listed executions and Jobs and the
queues' `status.retired` (what executions deleted by history limits contributed), so the CLI
and the TestQueue status agree by construction (the CLI is just not rate-limited); throughput
over the last hour is counted from `status.completedAt`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..api.queue import TestQueueStatus
from ..status.queue_stats import queue_status
from ..cache.view import ClusterView
from .text import parse_time, seconds_text

FINISHED = ("Succeeded", "Failed", "TimedOut")
WINDOW = timedelta(hours=1)


@dataclass
class QueueStats:
    namespace: str
    queue: str
    running: int
    queued: int
    admitted: int
    succeeded: int
    failed: int
    timed_out: int
    rejected: int
    cancelled: int
    wait_p50: float | None
    wait_p95: float | None
    run_p50: float | None
    run_p95: float | None
    finished_last_hour: int
    succeeded_last_hour: int


def _retired(queues: list[dict]) -> dict:
    """(namespace, queue) -> its `status.retired`, from TestQueue objects."""
    out = {}
    for obj in queues:
        meta = obj.get("metadata") or {}
        try:
            out[(meta.get("namespace", ""), meta.get("name", ""))] = \
                TestQueueStatus.model_validate(obj.get("status") or {}).retired
        except ValueError:
            continue
    return out


def compute_stats(executions: list[dict], jobs: list[dict], now: datetime,
                  only_queue: str | None = None, queues: list[dict] = ()) -> list[QueueStats]:
    """Per (namespace, queue) statistics from execution, Job and TestQueue objects (pure)."""
    retired = _retired(list(queues))
    view = ClusterView()
    for obj in executions:
        view.upsert_execution(obj)
    for job in jobs:
        view.upsert_job(job)
    keys: set[tuple[str, str]] = {k for k, r in retired.items() if r.admitted or r.succeeded or r.failed}
    for rec in view.executions.values():
        keys.add((rec.namespace, rec.queue))
    if only_queue:
        keys = {k for k in keys if k[1] == only_queue}
    out = []
    for ns, q in sorted(keys):
        st = queue_status(view, ns, q, retired.get((ns, q)))
        phases: dict[str, int] = {}
        finished = succeeded = 0
        for obj in executions:
            if obj["metadata"].get("namespace", "") != ns or ((obj.get("spec") or {}).get("queue") or "default") != q:
                continue
            status = obj.get("status") or {}
            phase = status.get("phase") or "Pending"
            phases[phase] = phases.get(phase, 0) + 1
            done = parse_time(status.get("completedAt"))
            if phase in FINISHED and done is not None and now - done <= WINDOW:
                finished += 1
                succeeded += phase == "Succeeded"
        out.append(QueueStats(
            namespace=ns, queue=q, running=st.running, queued=st.queued, admitted=st.admitted_total,
            succeeded=st.succeeded_total, failed=st.failed_total, timed_out=phases.get("TimedOut", 0),
            rejected=phases.get("Rejected", 0), cancelled=phases.get("Cancelled", 0),
            wait_p50=st.wait_seconds.p50, wait_p95=st.wait_seconds.p95,
            run_p50=st.run_seconds.p50, run_p95=st.run_seconds.p95,
            finished_last_hour=finished, succeeded_last_hour=succeeded,
        ))
    return out


def render_stats(stats: list[QueueStats], show_namespace: bool) -> list[str]:
    """The text of `sluice stats` (pure)."""
    if not stats:
        return ["no executions"]
    lines: list[str] = []
    for s in stats:
        if lines:
            lines.append("")
        title = f"queue {s.queue}" + (f" in {s.namespace}" if show_namespace else "")
        lines += [
            f"{title}: running {s.running}, queued {s.queued}",
            f"  admitted   {s.admitted:<6} succeeded {s.succeeded:<6} failed {s.failed} "
            f"(of which timed out {s.timed_out})",
            f"  rejected   {s.rejected:<6} cancelled {s.cancelled}",
            f"  wait       p50 {seconds_text(s.wait_p50):<8} p95 {seconds_text(s.wait_p95)}",
            f"  run        p50 {seconds_text(s.run_p50):<8} p95 {seconds_text(s.run_p95)}",
            f"  last hour  {s.finished_last_hour} finished ({s.finished_last_hour}/h), "
            f"{s.succeeded_last_hour} succeeded",
        ]
    return lines


def run(conn, args) -> int:
    import sys

    from .connect import CliError, api_errors

    ns = None if args.all_namespaces else conn.namespace
    executions = conn.list_executions(ns)
    try:
        with api_errors("list jobs", ns):
            if ns is None:
                jobs = conn.batch.list_job_for_all_namespaces(label_selector="sluice.dev/execution").items
            else:
                jobs = conn.batch.list_namespaced_job(ns, label_selector="sluice.dev/execution").items
    except CliError as exc:  # running slots are counted from Jobs; without them, say so
        print(f"sluice stats: {exc}; 'running' is not counted", file=sys.stderr)
        jobs = []
    job_dicts = conn.api_client.sanitize_for_serialization(jobs)
    try:
        queues = conn.list_queues(ns)
    except CliError as exc:  # totals of deleted executions live in the queues' status
        print(f"sluice stats: {exc}; executions deleted by history limits are not counted", file=sys.stderr)
        queues = []
    stats = compute_stats(executions, job_dicts, datetime.now(timezone.utc), args.queue, queues)
    print("\n".join(render_stats(stats, show_namespace=args.all_namespaces)))
    return 0
