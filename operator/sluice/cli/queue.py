"""`sluice queue`: running and waiting executions in the operator's admission order.

The order comes from the operator's own pure rule (`sluice.queue.ordering.order`) applied to the
listed objects, so what the table shows is what the dispatcher will do; `status.queuePosition`
(written by the operator at a bounded rate) is shown beside it when it differs. The default
queue, which needs no TestQueue, is bounded by the operator's own caps: those are read from the
leader's Lease (`sluice.dev/running-capacity`), and shown as `?` when they cannot be read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..api.common import DEFAULT_QUEUE
from ..api.execution import Priority
from ..api.queue import TestQueueSpec
from ..queue.ordering import Candidate, order
from .text import age, parse_time, table

_QUEUE_DEFAULTS = TestQueueSpec()
SHOWN_PHASES = ("Running", "Queued", "BackingOff", "Pending")


@dataclass
class QueueBlock:
    namespace: str
    queue: str
    running_capacity: int | None  # None: not known (the operator's caps could not be read)
    queued_capacity: int | None
    paused: bool = False
    exists: bool = True
    rows: list[list[str]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # names, in the order shown
    running: int = 0
    queued: int = 0

    def capacity_line(self) -> str:
        def cap(value: int | None) -> str:
            return "?" if value is None else str(value)

        line = f"running {self.running}/{cap(self.running_capacity)}, queued {self.queued}/{cap(self.queued_capacity)}"
        return line + (", paused" if self.paused else "")


def _queue_name(obj: dict) -> str:
    return (obj.get("spec") or {}).get("queue") or DEFAULT_QUEUE


def _priority(obj: dict) -> Priority:
    try:
        return Priority((obj.get("spec") or {}).get("priority") or "normal")
    except ValueError:
        return Priority.normal


def _candidate(obj: dict, now: datetime) -> Candidate:
    meta, st = obj["metadata"], obj.get("status") or {}
    created = parse_time(meta.get("creationTimestamp")) or now
    return Candidate(namespace=meta.get("namespace", ""), name=meta["name"], queue=_queue_name(obj),
                     priority=_priority(obj), created=created,
                     queued_at=parse_time(st.get("queuedAt")) or created,
                     shards=int((obj.get("spec") or {}).get("shards") or 1))


def queue_blocks(executions: list[dict], queues: list[dict], now: datetime,
                 only_queue: str | None = None, namespaces: list[str] | None = None,
                 caps: tuple[int, int] | None = None) -> list[QueueBlock]:
    """One block per (namespace, queue): its capacity line and its rows in admission order (pure).

    `caps` are the operator's (running, queued) caps, which bound a default queue without object.
    """
    blocks: dict[tuple[str, str], QueueBlock] = {}

    def block(ns: str, name: str) -> QueueBlock:
        if (ns, name) not in blocks:
            running, queued = caps if caps and name == DEFAULT_QUEUE else (None, None)
            blocks[(ns, name)] = QueueBlock(ns, name, running, queued, exists=False)
        return blocks[(ns, name)]

    aging: dict[tuple[str, str], int] = {}
    for q in queues:
        meta, spec = q["metadata"], q.get("spec") or {}
        if only_queue and meta["name"] != only_queue:
            continue
        b = block(meta.get("namespace", ""), meta["name"])
        b.exists = True
        b.running_capacity = int(spec.get("runningCapacity", _QUEUE_DEFAULTS.running_capacity))
        b.queued_capacity = int(spec.get("queuedCapacity", _QUEUE_DEFAULTS.queued_capacity))
        b.paused = bool(spec.get("paused", False))
        aging[(b.namespace, b.queue)] = int(spec.get("agingSeconds") or 0)
    for ns in namespaces or []:  # the queue asked for (or `default`) is shown even when empty
        block(ns, only_queue or DEFAULT_QUEUE)
    by_phase: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for obj in executions:
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if phase not in SHOWN_PHASES:
            continue
        qname = _queue_name(obj)
        if only_queue and qname != only_queue:
            continue
        key = (obj["metadata"].get("namespace", ""), qname)
        block(*key)
        by_phase.setdefault(key, {}).setdefault(phase, []).append(obj)
    for key, b in blocks.items():
        phases = by_phase.get(key, {})
        running = sorted(phases.get("Running", []), key=lambda o: (_current_start(o) or now, o["metadata"]["name"]))
        queued = phases.get("Queued", [])
        by_name = {o["metadata"]["name"]: o for o in queued}
        ordered = [by_name[c.name] for c in order([_candidate(o, now) for o in queued], now, aging)]
        rest = sorted(phases.get("BackingOff", []) + phases.get("Pending", []),
                      key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]))
        b.running = sum(int((o.get("spec") or {}).get("shards") or 1) for o in running)
        b.queued = len(queued)
        for o in running:
            b.rows.append(_row(o, "-", now))
        for i, o in enumerate(ordered, start=1):
            written = (o.get("status") or {}).get("queuePosition")
            pos = str(i) if written in (None, i) else f"{i}({written})"
            b.rows.append(_row(o, pos, now))
        for o in rest:
            b.rows.append(_row(o, "-", now))
        b.order = [r[1] for r in b.rows]
    return [blocks[k] for k in sorted(blocks)]


def _current_start(obj: dict) -> datetime | None:
    st = obj.get("status") or {}
    attempts = st.get("attempts") or []
    if attempts:
        return parse_time(attempts[-1].get("startedAt")) or parse_time(st.get("startedAt"))
    return parse_time(st.get("startedAt"))


def _row(obj: dict, pos: str, now: datetime) -> list[str]:
    meta, st = obj["metadata"], obj.get("status") or {}
    phase = st.get("phase") or "Pending"
    queued_at = parse_time(st.get("queuedAt")) or parse_time(meta.get("creationTimestamp"))
    started = parse_time(st.get("startedAt"))
    if phase == "Running" and started and queued_at:
        waited = (started - queued_at).total_seconds()
    elif queued_at:
        waited = (now - queued_at).total_seconds()
    else:
        waited = None
    current = _current_start(obj)
    running = age((now - current).total_seconds()) if phase == "Running" and current else "-"
    attempt = str(st.get("attempt")) if st.get("attempt") else "-"
    if phase == "BackingOff" and st.get("attempt"):
        attempt = f"{st['attempt']}>{st['attempt'] + 1}"
    return [pos, meta["name"], phase, (obj.get("spec") or {}).get("priority") or "normal", attempt,
            age(waited), running]


HEADERS = ["POS", "NAME", "PHASE", "PRIORITY", "ATTEMPT", "WAITED", "RUNNING"]


def render_queue(blocks: list[QueueBlock], show_namespace: bool) -> list[str]:
    """The text of `sluice queue` (pure): per queue, its capacity line then its table."""
    if not blocks:
        return ["no executions are running or waiting"]
    lines: list[str] = []
    for b in blocks:
        if lines:
            lines.append("")
        title = f"queue {b.queue}" + (f" in {b.namespace}" if show_namespace else "")
        note = ""
        if not b.exists:
            note = " (no TestQueue: operator caps)" if b.queue == DEFAULT_QUEUE else " (TestQueue missing)"
        lines.append(f"{title}: {b.capacity_line()}{note}")
        if b.rows:
            lines.extend(table(HEADERS, b.rows))
    return lines


def run(conn, args) -> int:
    ns = None if args.all_namespaces else conn.namespace
    executions = conn.list_executions(ns)
    queues = conn.list_queues(ns)
    blocks = queue_blocks(executions, queues, datetime.now(timezone.utc), args.queue,
                          namespaces=None if ns is None else [ns], caps=conn.operator_caps(ns))
    print("\n".join(render_queue(blocks, show_namespace=args.all_namespaces)))
    return 0
