"""Failures as they arrive and the live console of running executions, from the runners' Redis
streams (`sluice_runner/progress.py`: `test` events with outcome `failed`, `console` lines).

ONE reader thread for the whole dashboard, however many pages are open: it follows the streams of
every Running execution the feed sees (`progress.relay.stream_keys`, every shard), keeps per
execution its counts (done, total, failed), the failed tests and the last CONSOLE_LINES console
lines, marks the feed dirty when a test ends (it goes out with the next coalesced snapshot, ahead
of the operator's relayed `status.progress`) and hands each console line to the pages
following that execution (`subscribe`). Off unless SLUICE_REDIS_URL is set (with
SLUICE_REDIS_PASSWORD: a reader's credential, as `sluice logs -f` uses). Redis away: one log line
per outage and retries; the rest of the page is unaffected. It never writes to Redis or the API.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..progress.relay import stream_keys

log = logging.getLogger("sluice.dashboard")
CONSOLE_LINES = 2000
FAILURES_KEPT = 20
BLOCK_MS = 1000
RETRY_SECONDS = 2.0
KEPT_EXECUTIONS = 100  # finished ones keep their buffers this long (most recent first), then go


@dataclass
class Tail:
    """What the dashboard knows of one execution's current attempt."""
    attempt: int
    failures: list[dict] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # stream -> tests its shard runs (`start`)
    done: int = 0  # tests with a final outcome, every shard
    failed: int = 0
    console: collections.deque = field(default_factory=lambda: collections.deque(maxlen=CONSOLE_LINES))
    pages: set = field(default_factory=set)  # asyncio.Queue of each page following the console


def wanted_streams(executions: list[dict]) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """(namespace, name) -> (attempt, stream keys) of every Running execution (pure)."""
    out = {}
    for obj in executions:
        st = obj.get("status") or {}
        if st.get("phase") != "Running" or not st.get("attempt"):
            continue
        meta = obj["metadata"]
        shards = int((obj.get("spec") or {}).get("shards") or 1)
        attempt = int(st["attempt"])
        out[(meta.get("namespace", ""), meta["name"])] = (
            attempt, stream_keys(meta.get("namespace", ""), meta["name"], attempt, shards))
    return out


class LiveReader:
    def __init__(self, executions: Callable[[], list[dict]], mark: Callable[[], None]):
        self.executions, self.mark = executions, mark
        self.tails: dict[tuple[str, str], Tail] = {}
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.enabled = bool(os.environ.get("SLUICE_REDIS_URL"))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.enabled:
            threading.Thread(target=self._run, name="redis-streams", daemon=True).start()

    # ---- asyncio side ---------------------------------------------------------------------------
    def progress(self) -> dict[tuple[str, str], dict]:
        """(namespace, name) -> {done, total, failed, failures} as the streams tell it, for the
        executions the streams said anything about."""
        with self.lock:
            return {k: {"done": t.done, "total": sum(t.totals.values()), "failed": t.failed,
                        "failures": list(t.failures)}
                    for k, t in self.tails.items() if t.done or t.totals or t.failures}

    def subscribe(self, key: tuple[str, str]) -> tuple[list[str], asyncio.Queue]:
        """The console so far and a queue of the lines to come."""
        q: asyncio.Queue = asyncio.Queue(maxsize=CONSOLE_LINES)
        with self.lock:
            tail = self.tails.get(key)
            if tail is None:
                tail = self.tails[key] = Tail(attempt=0)
            tail.pages.add(q)
            return list(tail.console), q

    def unsubscribe(self, key: tuple[str, str], q: asyncio.Queue) -> None:
        with self.lock:
            tail = self.tails.get(key)
            if tail is not None:
                tail.pages.discard(q)

    @staticmethod
    def _offer(q: asyncio.Queue, line: str) -> None:
        if q.full():
            q.get_nowait()  # a page far behind loses its oldest lines, never the newest
        q.put_nowait(line)

    # ---- thread ---------------------------------------------------------------------------------
    def _client(self):
        import redis
        return redis.from_url(os.environ["SLUICE_REDIS_URL"], password=os.environ.get("SLUICE_REDIS_PASSWORD") or None,
                              socket_timeout=BLOCK_MS / 1000 + 5)

    def _run(self) -> None:
        import redis
        r, cursors, outage = None, {}, False
        key_owner: dict[str, tuple[str, str]] = {}
        while True:
            try:
                wanted = wanted_streams(self.executions())
                key_owner = {k: ex for ex, (_, keys) in wanted.items() for k in keys}
                cursors = {k: cursors.get(k, "0-0") for k in key_owner}
                self._attempts(wanted)
                if not cursors:
                    time.sleep(BLOCK_MS / 1000)
                    continue
                r = r or self._client()
                got = r.xread(cursors, block=BLOCK_MS, count=500) or []
                if outage:
                    log.info("redis: reading the progress streams again")
                    outage = False
                for stream, entries in got:
                    name = stream.decode()
                    owner = key_owner.get(name)
                    for entry_id, fields in entries:
                        cursors[name] = entry_id.decode()
                        if owner is not None:
                            self._event(owner, {k.decode(): v.decode(errors="replace") for k, v in fields.items()},
                                        name)
            except redis.RedisError as exc:
                if not outage:
                    log.warning("redis: cannot read the progress streams (%s); retrying", type(exc).__name__)
                    outage = True
                r = None
                time.sleep(RETRY_SECONDS)
            except Exception:  # noqa: BLE001 - never stop following
                log.exception("live console reader")
                time.sleep(RETRY_SECONDS)

    def _attempts(self, wanted: dict) -> None:
        """A new attempt starts empty; finished executions keep their buffers (bounded)."""
        with self.lock:
            for key, (attempt, _) in wanted.items():
                tail = self.tails.get(key)
                if tail is None:
                    self.tails[key] = Tail(attempt=attempt)
                elif tail.attempt != attempt:
                    tail.attempt, tail.failures, tail.totals, tail.done, tail.failed = attempt, [], {}, 0, 0
                    tail.console.clear()
            extra = len(self.tails) - KEPT_EXECUTIONS
            if extra > 0:
                for key in [k for k, t in self.tails.items() if k not in wanted and not t.pages][:extra]:
                    del self.tails[key]

    def _event(self, key: tuple[str, str], ev: dict[str, str], stream: str = "") -> None:
        kind = ev.get("type")
        with self.lock:
            tail = self.tails.get(key)
            if tail is None:
                return
            if kind == "start":
                try:
                    tail.totals[stream] = int(ev.get("total") or 0)
                except ValueError:
                    pass
                self.mark()
            elif kind == "test":
                tail.done += 1
                if ev.get("outcome") == "failed":
                    tail.failed += 1
                    if len(tail.failures) < FAILURES_KEPT:
                        tail.failures.append({"test": ev.get("title", ""), "error": ev.get("error", "")})
                self.mark()
            elif kind == "console":
                line = ev.get("line", "")
                tail.console.append(line)
                if self.loop is not None:
                    for q in list(tail.pages):
                        self.loop.call_soon_threadsafe(self._offer, q, line)
