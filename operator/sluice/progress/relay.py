"""The progress relay: follows the Redis Streams of running executions into `status.progress`.

A `Subsystem` of the dispatcher loop. After a pass it looks at which executions are Running
(from the view, never from Redis) and, at most every READ_INTERVAL seconds, reads what their
runners appended since last time (one XREAD for all streams, non-blocking). It writes
`status.progress` through the dispatcher's status writer at most once per execution every
WRITE_INTERVAL seconds, and once more when the attempt ends, so progress costs a bounded
number of writes per execution-minute.

Without Redis configured it does nothing. With Redis away it logs one line per outage, keeps
no backlog (what it missed is read from the stream when Redis is back, within its MAXLEN) and
tries again with backoff; results never depend on it (they come from the termination message).
It never changes the view itself.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sluice_runner.progress import stream_key as runner_stream_key

from ..api.execution import Phase, Progress
from ..cache.view import ClusterView, Key
from .fold import StreamState, summarize

log = logging.getLogger("sluice.progress")

READ_INTERVAL = 1.0
WRITE_INTERVAL = 5.0
BACKOFF_MAX = 30.0
READ_COUNT = 500  # events per stream per read: bounded work and memory


def stream_keys(namespace: str, name: str, attempt: int, shards: int) -> list[str]:
    """Every shard's stream of an attempt, named by the runner's own `stream_key` (one definition)."""
    return [runner_stream_key(f"{namespace}/{name}", attempt, shard, shards) for shard in range(shards)]


class ProgressRelay:
    def __init__(self, client, write: Callable[[Key, Progress], None], spawn: Callable[[Awaitable], object]):
        """`client` is a redis.asyncio client (None: no live channel); `write(key, progress)` hands
        a progress to the dispatcher's status writer."""
        self.client, self.write, self.spawn = client, write, spawn
        self.streams: dict[Key, tuple[int, list[StreamState]]] = {}  # execution -> (attempt, per shard)
        self.written_at: dict[Key, float] = {}
        self.last: dict[Key, dict] = {}  # what was last written, without its timestamp
        self.reading = False
        self.next_read = 0.0
        self.backoff = READ_INTERVAL
        self.away = False

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        if self.client is None:
            return None
        running = {}
        for key in view.active:
            rec = view.executions.get(key)
            if rec is not None and rec.spec is not None and rec.status.phase == Phase.Running and rec.status.attempt:
                running[key] = (rec.status.attempt, rec.spec.shards)
        for key in [k for k in self.streams if k not in running]:
            del self.streams[key]  # ended: its last progress was written when it was read
            self.written_at.pop(key, None)
            self.last.pop(key, None)
        for key, (attempt, shards) in running.items():
            if self.streams.get(key, (None,))[0] != attempt:
                self.streams[key] = (attempt, [StreamState() for _ in range(shards)])
        if not running:
            return None
        if not self.reading and time.monotonic() >= self.next_read:
            self.reading = True
            self.spawn(self._read(now))
        # Wake the loop to read again even when nothing else happens while the tests run.
        return now + timedelta(seconds=max(READ_INTERVAL, self.next_read - time.monotonic()))

    def _keys(self) -> dict[str, StreamState]:
        out = {}
        for (ns, name), (attempt, states) in self.streams.items():
            out.update(zip(stream_keys(ns, name, attempt, len(states)), states))
        return out

    async def _read(self, now: datetime) -> None:
        try:
            states = self._keys()
            answer = await self.client.xread({k: s.last_id for k, s in states.items()}, count=READ_COUNT)
            if self.away:
                log.info("Redis is back: live progress resumes")
            self.away, self.backoff = False, READ_INTERVAL
            for stream, entries in answer or []:
                state = states.get(stream.decode() if isinstance(stream, bytes) else stream)
                for entry_id, fields in entries:
                    if state is not None:
                        state.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                        state.apply({_s(k): _s(v) for k, v in fields.items()})
            self._publish(datetime.now(now.tzinfo))
        except Exception as exc:  # Redis away: one line per outage, back off, no backlog
            if not self.away:
                log.warning("Redis unreachable, live progress paused: %s", exc)
            self.away = True
            self.backoff = min(BACKOFF_MAX, self.backoff * 2)
        finally:
            self.next_read = time.monotonic() + (self.backoff if self.away else READ_INTERVAL)
            self.reading = False

    def _publish(self, now: datetime) -> None:
        mono = time.monotonic()
        for key, (_, states) in self.streams.items():
            progress = summarize(states, now)
            if progress is None:
                continue
            essence = progress.model_dump(exclude={"updated_at"})
            if essence == self.last.get(key):
                continue
            ended = all(s.ended for s in states)
            if not ended and mono - self.written_at.get(key, 0.0) < WRITE_INTERVAL:
                continue
            self.written_at[key], self.last[key] = mono, essence
            self.write(key, progress)


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
