"""`sluice watch [-n NS | -A] [NAME]`: a live view of the queues and the running executions.

Each refresh lists the executions and queues once and renders, with `rich`: per queue its
capacity line, the waiting executions in admission order with their exact rank (the operator's
own ordering, as `sluice queue`), their estimated start and why they wait; the running ones
with a progress bar from `status.progress` and their failures so far; with NAME, only that
execution. On a terminal it redraws in place; otherwise (CI logs) it prints one plain line per
change. It never writes anything.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .queue import queue_blocks
from .text import age, parse_time

REFRESH_SECONDS = 1.0


def _progress(st: dict) -> tuple[int, int, str]:
    p = st.get("progress") or {}
    return int(p.get("done") or 0), int(p.get("total") or 0), p.get("currentTest") or ""


def running_table(executions: list[dict]) -> Table:
    table = Table(title="running", expand=True, title_justify="left")
    for col in ("NAME", "ATTEMPT", "ELAPSED", "PROGRESS", "", "FAILED", "NOW"):
        table.add_column(col, no_wrap=col != "NOW")
    now = datetime.now(timezone.utc)
    for o in executions:
        st = o.get("status") or {}
        if st.get("phase") != "Running":
            continue
        done, total, current = _progress(st)
        started = parse_time(st.get("startedAt"))
        failed = int((st.get("progress") or {}).get("failed") or 0)
        table.add_row(o["metadata"]["name"], str(st.get("attempt") or "-"),
                      age((now - started).total_seconds()) if started else "-",
                      ProgressBar(total=max(total, 1), completed=done, width=20),
                      f"{done}/{total}" if total else "-", Text(str(failed), style="red" if failed else ""),
                      current[:60])
    return table


def waiting_table(executions: list[dict], queues: list[dict], namespaces: list[str] | None) -> Table:
    table = Table(title="waiting (admission order)", expand=True, title_justify="left")
    for col in ("QUEUE", "RANK", "NAME", "PRIORITY", "WAITED", "ETA", "WHY"):
        table.add_column(col, no_wrap=col != "WHY")
    now = datetime.now(timezone.utc)
    by_name = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in executions}
    for b in queue_blocks(executions, queues, now, namespaces=namespaces):
        rank = 0
        for row in b.rows:
            o = by_name.get((b.namespace, row[1]))
            st = (o or {}).get("status") or {}
            if st.get("phase") != "Queued":
                continue
            rank += 1
            eta = parse_time(st.get("estimatedStartAt"))
            table.add_row(b.queue, str(rank), row[1], row[3], row[5],
                          f"~{eta.astimezone():%H:%M:%S}" if eta else "-", st.get("reason") or "")
    return table


def render(executions: list[dict], queues: list[dict], namespaces: list[str] | None, name: str | None) -> Group:
    if name:
        executions = [o for o in executions if o["metadata"]["name"] == name]
    capacity = [] if name else [Text(f"queue {b.queue}: {b.capacity_line()}")
                                for b in queue_blocks(executions, queues, datetime.now(timezone.utc),
                                                      namespaces=namespaces)]
    return Group(*capacity, running_table(executions), waiting_table(executions, queues, namespaces))


def plain_lines(executions: list[dict]) -> dict[str, str]:
    """One line per execution, for logs without a terminal."""
    out = {}
    for o in executions:
        st = o.get("status") or {}
        done, total, current = _progress(st)
        extra = f" {done}/{total}" if total else ""
        if st.get("phase") == "Queued":
            extra = f" position {st.get('queuePosition')}" + (f", eta {st['estimatedStartAt']}"
                                                               if st.get("estimatedStartAt") else "")
        out[o["metadata"]["name"]] = f"{o['metadata']['name']}: {st.get('phase') or 'Pending'}{extra}"
    return out


def run(conn, args) -> int:
    ns = None if args.all_namespaces else conn.namespace
    namespaces = None if ns is None else [ns]

    def snapshot() -> tuple[list[dict], list[dict]]:
        return conn.list_executions(ns), conn.list_queues(ns)

    if not sys.stdout.isatty():
        seen: dict[str, str] = {}
        while True:
            executions, _ = snapshot()
            if args.name:
                executions = [o for o in executions if o["metadata"]["name"] == args.name]
            for key, line in plain_lines(executions).items():
                if seen.get(key) != line:
                    print(line, flush=True)
                    seen[key] = line
            if args.once:
                return 0
            time.sleep(REFRESH_SECONDS)
    console = Console()
    with Live(render(*snapshot(), namespaces, args.name), console=console, refresh_per_second=4) as live:
        while not args.once:
            time.sleep(REFRESH_SECONDS)
            live.update(render(*snapshot(), namespaces, args.name))
    return 0
