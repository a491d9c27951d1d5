"""What the dashboard page shows, computed from listed objects (pure): the JSON snapshot pushed to
every page.

Why a pure function: the same objects always give the same snapshot, so ranks are exactly the
operator's admission order (`sluice.cli.queue.queue_blocks`, which applies
`sluice.queue.ordering.order`), and it is unit-testable without a cluster. It never calls the API
and never writes anything; times are sent as seconds at `now` and the page only adds the time
elapsed since it received them.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from ..cli.artifacts import artifact_links, split_s3
from ..cli.queue import queue_blocks
from ..cli.text import parse_time

TERMINAL = ("Succeeded", "Failed", "TimedOut", "Cancelled", "Rejected")
FINISHED_SHOWN = 50
THROUGHPUT_WINDOW_SECONDS = 3600  # "executions finished per hour": those completed in the last hour


def artifact_href(url: str) -> str | None:
    """`s3://bucket/key` -> the dashboard's own route `/artifacts/bucket/key` (None for others)."""
    parts = split_s3(url)
    if parts is None or not parts[1] or parts[1].endswith("/"):
        return None
    return f"/artifacts/{quote(parts[0])}/{quote(parts[1])}"


def links(status: dict) -> list[dict]:
    """Every artifact as {label, href}: through the dashboard for s3://, as is for http(s)."""
    out = []
    for label, url in artifact_links(status.get("artifacts")):
        if label == "prefix":
            continue
        href = artifact_href(url) or (url if url.startswith(("http://", "https://")) else None)
        if href is None:
            continue
        out.append({"label": label, "href": href, "name": url.rsplit("/", 1)[-1]})
        if label == "trace":
            out.append({"label": "open trace", "href": "/trace/index.html?trace=" + quote(href, safe=""),
                        "name": url.rsplit("/", 1)[-1]})
    return out


def console_link(status: dict) -> dict | None:
    """The attempt's uploaded console output (`status.artifacts.console`), through the dashboard."""
    arts = status.get("artifacts") or {}
    entry = arts.get("console")
    if not entry:
        return None
    url = entry if "://" in entry else (arts.get("url") or "").rstrip("/") + "/" + entry.lstrip("/")
    href = artifact_href(url)
    return {"label": "console", "href": href, "name": url.rsplit("/", 1)[-1]} if href else None


def shard_reports(obj: dict) -> list[dict]:
    """A sharded execution's report and junit of every shard (pure): the runner uploads shard i
    under `<status.artifacts.url>shard-<i>/` (runner upload.shard_dir), and status points at one."""
    shards = int((obj.get("spec") or {}).get("shards") or 1)
    base = (((obj.get("status") or {}).get("artifacts") or {}).get("url")) or ""
    if shards < 2 or not base.startswith("s3://"):
        return []
    base = base.rstrip("/") + "/"
    return [{"shard": i, "report": artifact_href(f"{base}shard-{i}/report/index.html"),
             "junit": artifact_href(f"{base}shard-{i}/junit.xml")} for i in range(shards)]


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def _current_start(st: dict) -> datetime | None:
    attempts = st.get("attempts") or []
    if attempts and attempts[-1].get("startedAt"):
        return parse_time(attempts[-1]["startedAt"])
    return parse_time(st.get("startedAt"))


def _base(obj: dict) -> dict:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    st = obj.get("status") or {}
    return {"namespace": meta.get("namespace", ""), "name": meta["name"], "rv": meta.get("resourceVersion", ""),
            "queue": spec.get("queue") or "default", "priority": spec.get("priority") or "normal",
            "phase": st.get("phase") or "Pending", "attempt": st.get("attempt"),
            "reason": st.get("reason") or "", "message": st.get("message") or ""}


def throughput(executions: list[dict], now: datetime) -> dict[tuple[str, str], int]:
    """(namespace, queue) -> executions finished in the last hour, from the ones still listed (pure;
    finished executions deleted by the queue's history limits are not counted)."""
    out: dict[tuple[str, str], int] = {}
    for obj in executions:
        st = obj.get("status") or {}
        if st.get("phase") not in TERMINAL:
            continue
        done = parse_time(st.get("completedAt"))
        if done is None or (now - done).total_seconds() > THROUGHPUT_WINDOW_SECONDS:
            continue
        key = (obj["metadata"].get("namespace", ""), (obj.get("spec") or {}).get("queue") or "default")
        out[key] = out.get(key, 0) + 1
    return out


def environment_rows(executions: list[dict], environments: list[dict] | None) -> dict[tuple[str, str], list[dict]]:
    """(namespace, queue) -> the TestEnvironments its visible executions name, with their holders
    and waiters (pure). `environments` None: the user may not read them; names only."""
    by_name = {e["metadata"]["name"]: e for e in environments or []}
    names: dict[tuple[str, str], set[str]] = {}
    for obj in executions:
        spec = obj.get("spec") or {}
        key = (obj["metadata"].get("namespace", ""), spec.get("queue") or "default")
        names.setdefault(key, set()).update(spec.get("environments") or [])
    out: dict[tuple[str, str], list[dict]] = {}
    for key, envs in names.items():
        rows = []
        for name in sorted(envs):
            env = by_name.get(name)
            if env is None:
                rows.append({"name": name, "known": False})
                continue
            spec, st = env.get("spec") or {}, env.get("status") or {}
            rows.append({"name": name, "known": True, "concurrency": spec.get("concurrency", 1),
                         "inUse": st.get("inUse", len(st.get("holders") or [])),
                         "holders": list(st.get("holders") or []), "waiting": st.get("waiting", 0)})
        if rows:
            out[key] = rows
    return out


def queue_rows(executions: list[dict], queues: list[dict], now: datetime, namespaces: list[str] | None,
               caps: tuple[int, int] | None, environments: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """(queues, waiting): capacity per queue, and the waiters of each queue in admission order."""
    per_hour = throughput(executions, now)
    envs = environment_rows(executions, environments)
    by_key = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in executions}
    queue_objs = {(q["metadata"].get("namespace", ""), q["metadata"]["name"]): q for q in queues}
    out_queues, waiting = [], []
    for b in queue_blocks(executions, queues, now, namespaces=namespaces, caps=caps):
        qst = (queue_objs.get((b.namespace, b.queue)) or {}).get("status") or {}
        out_queues.append({
            "namespace": b.namespace, "name": b.queue, "exists": b.exists, "paused": b.paused,
            "running": b.running, "runningCapacity": b.running_capacity,
            "queued": b.queued, "queuedCapacity": b.queued_capacity,
            "wait": qst.get("waitSeconds") or {}, "run": qst.get("runSeconds") or {},
            "succeeded": qst.get("succeededTotal"), "failed": qst.get("failedTotal"),
            "finishedLastHour": per_hour.get((b.namespace, b.queue), 0),
            "environments": envs.get((b.namespace, b.queue), [])})
        rank = 0
        for name in b.order:
            obj = by_key.get((b.namespace, name))
            if obj is None:
                continue
            row = _base(obj)
            if row["phase"] == "Running":
                continue
            st = obj.get("status") or {}
            if row["phase"] == "Queued":
                rank += 1
                row["rank"] = rank
            else:
                row["rank"] = None
            row["writtenPosition"] = st.get("queuePosition")
            queued_at = parse_time(st.get("queuedAt")) or parse_time(obj["metadata"].get("creationTimestamp"))
            row["waited"] = _seconds(queued_at, now)
            row["eta"] = st.get("estimatedStartAt")
            waiting.append(row)
    return out_queues, waiting


def running_rows(executions: list[dict], now: datetime,
                 live: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """Running executions with progress; `live`: {done, total, failed, failures} of the current
    attempt as the live channel told them (live.py), by (namespace, name): whichever of it and
    `status.progress` is further along is shown (the status is relayed, so it lags)."""
    rows = []
    for obj in executions:
        row = _base(obj)
        if row["phase"] != "Running":
            continue
        st = obj.get("status") or {}
        p = st.get("progress") or {}
        fresh = (live or {}).get((row["namespace"], row["name"])) or {}
        row.update(done=max(int(p.get("done") or 0), fresh.get("done", 0)),
                   total=max(int(p.get("total") or 0), fresh.get("total", 0)),
                   failed=max(int(p.get("failed") or 0), fresh.get("failed", 0)),
                   current=p.get("currentTest") or "", elapsed=_seconds(_current_start(st), now),
                   failures=fresh.get("failures", []))
        rows.append(row)
    return sorted(rows, key=lambda r: (r["namespace"], -(r["elapsed"] or 0), r["name"]))


def _row_links(obj: dict) -> list[dict]:
    """links(); a sharded execution's one report link goes to its page listing every shard."""
    st = obj.get("status") or {}
    out = links(st)
    console = console_link(st)
    if console:
        out.append(console)
    shards = shard_reports(obj)
    if shards:
        meta = obj["metadata"]
        page = f"/x/{quote(meta.get('namespace', ''))}/{quote(meta['name'])}#shards"
        out = [{"label": "reports", "href": page, "name": f"{len(shards)} shards"}] + [
            link for link in out if link["label"] not in ("report", "junit")]
    return out


def finished_rows(executions: list[dict], limit: int = FINISHED_SHOWN) -> list[dict]:
    rows = []
    for obj in executions:
        row = _base(obj)
        if row["phase"] not in TERMINAL:
            continue
        st = obj.get("status") or {}
        res = st.get("results") or {}
        row.update(passed=res.get("passed"), failedTests=res.get("failed"), skipped=res.get("skipped"),
                   completedAt=st.get("completedAt") or "",
                   duration=_seconds(parse_time(st.get("startedAt")), parse_time(st.get("completedAt"))),
                   links=_row_links(obj))
        rows.append(row)
    rows.sort(key=lambda r: (r["completedAt"], r["name"]), reverse=True)
    return rows[:limit]


def snapshot(executions: list[dict], queues: list[dict], now: datetime, namespaces: list[str] | None,
             caps: tuple[int, int] | None = None, errors: list[str] | None = None,
             environments: list[dict] | None = None, actions: dict[str, list[str]] | None = None,
             notes: list[str] | None = None, live: dict[tuple[str, str], dict] | None = None) -> dict:
    """The whole page's data, one JSON object (what `/events` sends on every change). `actions`:
    namespace -> the actions the user may take there (permissions.py); none when absent."""
    qs, waiting = queue_rows(executions, queues, now, namespaces, caps, environments)
    return {"now": now.isoformat(), "scope": namespaces[0] if namespaces else "*", "queues": qs,
            "waiting": waiting, "running": running_rows(executions, now, live), "finished": finished_rows(executions),
            "errors": errors or [], "notes": notes or [], "actions": actions or {}}


def execution_detail(obj: dict, events: list[dict]) -> dict:
    """One execution's page: status, attempts, links and its Events (oldest first)."""
    st = obj.get("status") or {}
    row = _base(obj)
    row.update(status=st, spec=obj.get("spec") or {}, attempts=st.get("attempts") or [], links=_row_links(obj),
               shards=shard_reports(obj), events=events)
    return row
