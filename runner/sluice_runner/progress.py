"""The live channel: progress events of this attempt appended to a Redis Stream, best effort.

Runner pods have no API credentials; live progress (what a watching person sees before the run
ends) goes to Redis instead (API.md, "Live channel (Redis)"). One stream per attempt, and per
shard when the run is sharded:

    sluice:progress:<namespace>:<name>:<attempt>            SLUICE_SHARD_TOTAL = 1
    sluice:progress:<namespace>:<name>:<attempt>:<shard>    sharded; <shard> is 0-based

appended with `XADD key MAXLEN ~ 1000 * field value ...` and kept for a day (`EXPIRE key 86400`
after every batch). Entries are flat string fields with a `type`:

    start    total                               tests this shard will run (after sharding)
    test     title outcome duration error        one per test, once its outcome is final;
                                                 outcome passed|failed|skipped|flaky, duration in
                                                 seconds, error = first line (<= 200 chars) or ""
    console  line                                one line of the test command's output
    end      outcome passed failed skipped flaky total
                                                 outcome passed|failed|error; the same counts and
                                                 outcome as the termination message

Who writes what: the test command writes `start` and `test` events as JSON lines into an events
file (the pytest plugin `pytest_progress`, the Playwright Test reporter in NODE_REPORTER_JS);
this process tails that file (EventTail), reads the command's output (`console`), and publishes
`end` itself from the verdict, so only the runner talks to Redis and its credential never
reaches the test command's environment (execute.child_env drops it).

Degradation is the rule: the termination message is the source of truth, progress is a view.
No SLUICE_REDIS_URL: a NullPublisher (one log line). Redis unreachable, restarted, or refusing:
the run goes on and ends exactly as it would without Redis; events are dropped while it is away
(bounded memory: at most QUEUE_LIMIT pending), one log line per outage, reconnection with backoff
(BACKOFF_MAX_SECONDS at most) as events keep coming, so publishing resumes when Redis is back.
Callers never wait on Redis: `publish` appends to a bounded deque and a background thread sends
batches (one pipelined round trip per batch). The password (SLUICE_REDIS_PASSWORD, or in the URL)
is never logged: log lines name only host:port.

Inputs: SLUICE_REDIS_URL (`redis://[user@]host:port[/db]` or `rediss://...`; the runner's ACL user
goes in the URL), SLUICE_REDIS_PASSWORD, and the execution identity (SLUICE_EXECUTION,
SLUICE_ATTEMPT, SLUICE_SHARD_INDEX/JOB_COMPLETION_INDEX, SLUICE_SHARD_TOTAL) from config.Settings.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sluice_runner.config import Settings
    from sluice_runner.process import Supervisor
    from sluice_runner.results import RunResults

log = logging.getLogger("sluice_runner")

KEY_PREFIX = "sluice:progress:"
MAXLEN = 1000  # approximate (MAXLEN ~): Redis trims whole macro nodes, cheaply
TTL_SECONDS = 86400
QUEUE_LIMIT = 2000  # pending events; beyond that new events are dropped (and counted)
BATCH = 256  # events per pipelined round trip
SOCKET_TIMEOUT_SECONDS = 2.0
BACKOFF_MIN_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0
CLOSE_TIMEOUT_SECONDS = 3.0
ERROR_CHARS = 200
LINE_CHARS = 2000
TAIL_INTERVAL_SECONDS = 0.05
EVENTS_FROM_CHILD = frozenset({"start", "test"})
OUTCOMES = frozenset({"passed", "failed", "skipped", "flaky"})
# The live channel's secrets: kept in the runner, dropped from the test command's environment.
SECRET_ENV = ("SLUICE_REDIS_URL", "SLUICE_REDIS_PASSWORD")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def stream_key(execution: str, attempt: int, shard: int = 0, shard_total: int = 1) -> str:
    """`sluice:progress:<ns>:<name>:<attempt>` (+ `:<shard>` when sharded)."""
    namespace, name = execution.split("/", 1)
    key = f"{KEY_PREFIX}{namespace}:{name}:{attempt}"
    return f"{key}:{shard}" if shard_total > 1 else key


def first_line(text: str | None, limit: int = ERROR_CHARS) -> str:
    """The first non-blank line of `text`, without terminal colours, at most `limit` chars."""
    if not text:
        return ""
    for line in _ANSI.sub("", text).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def redis_endpoint(url: str) -> str:
    """`host:port` of a Redis URL, for log lines (never the userinfo)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or '?'}:{parts.port or 6379}"
    except ValueError:
        return "?"


class Publisher(Protocol):
    def publish(self, fields: Mapping[str, str]) -> None: ...
    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None: ...


class NullPublisher:
    """No live channel configured: every event is ignored."""

    enabled = False
    sent = dropped = outages = 0

    def publish(self, fields: Mapping[str, str]) -> None:
        pass

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        pass


class RedisPublisher:
    """Appends events to one stream from a background thread; `publish` never waits on Redis."""

    enabled = True

    def __init__(
        self,
        client: Any,
        key: str,
        endpoint: str,
        *,
        maxlen: int = MAXLEN,
        ttl: int = TTL_SECONDS,
        limit: int = QUEUE_LIMIT,
    ) -> None:
        self.key, self.endpoint = key, endpoint
        self.maxlen, self.ttl, self.limit = maxlen, ttl, limit
        self.sent = self.dropped = self.outages = 0
        self._client = client
        self._pending: collections.deque[Mapping[str, str]] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_MIN_SECONDS
        self._thread = threading.Thread(target=self._loop, name="sluice-progress", daemon=True)
        self._thread.start()

    def publish(self, fields: Mapping[str, str]) -> None:
        """Queue one event (flat string fields); dropped when QUEUE_LIMIT are already pending."""
        if self._closing or len(self._pending) >= self.limit:
            self.dropped += 1
            return
        self._pending.append(fields)
        self._wake.set()

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Send what is pending (one more try even while Redis is away), within `timeout`."""
        self._retry_at = 0.0
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.dropped += len(self._pending)
        if self.outages:
            log.info(
                "live progress: %d events sent, %d dropped while Redis at %s was unreachable",
                self.sent, self.dropped, self.endpoint,
            )  # fmt: skip
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
            pass

    def _loop(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                self._send(batch)
            if self._closing:
                return

    def _send(self, batch: list[Mapping[str, str]]) -> None:
        now = time.monotonic()
        if self._down_since is not None and now < self._retry_at:
            self.dropped += len(batch)  # Redis is away: drop rather than grow
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for fields in batch:
                pipe.xadd(self.key, dict(fields), maxlen=self.maxlen, approximate=True)
            pipe.expire(self.key, self.ttl)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - any failure is an outage: the run must go on
            self.dropped += len(batch)
            if self._down_since is None:
                self._down_since = now
                self.outages += 1
                log.warning(
                    "live progress: Redis at %s unavailable (%s); dropping progress events until it is back",
                    self.endpoint, _describe(exc),
                )  # fmt: skip
            self._retry_at = now + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_SECONDS)
            return
        self.sent += len(batch)
        if self._down_since is not None:
            self._down_since = None
            self._backoff = BACKOFF_MIN_SECONDS


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(str(exc), 160)}"


def make_client(url: str, password: str | None) -> Any:
    """A redis-py client that fails fast (short timeouts, no retries of its own: we back off)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # The runner's ACL user may only XADD and EXPIRE: no CLIENT SETINFO / MAINT_NOTIFICATIONS
    # on connect (redis-py ignores their refusal, but Redis would log each one in its ACL LOG).
    quiet: dict[str, Any] = {"driver_info": None}
    try:
        from redis.maint_notifications import MaintNotificationsConfig

        quiet["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    except ImportError:  # redis-py < 7
        quiet = {"lib_name": None, "lib_version": None}
    return redis.Redis.from_url(
        url,
        password=password or None,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        **quiet,
    )


def open_publisher(settings: Settings) -> Publisher:
    """The publisher for this attempt: Redis when SLUICE_REDIS_URL is set, else a no-op."""
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    if not url:
        log.info("live progress: off (SLUICE_REDIS_URL is not set)")
        return NullPublisher()
    endpoint = redis_endpoint(url)
    if not url.startswith(("redis://", "rediss://")):
        log.warning("live progress: off (SLUICE_REDIS_URL must be redis:// or rediss://)")
        return NullPublisher()
    if settings.execution is None:
        log.info("live progress: off (SLUICE_EXECUTION is not set: no stream to publish to)")
        return NullPublisher()
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    try:
        client = make_client(url, password)
    except Exception as exc:  # noqa: BLE001 - a malformed URL turns progress off, not the run
        log.warning("live progress: off (SLUICE_REDIS_URL %s: %s)", endpoint, type(exc).__name__)
        return NullPublisher()
    key = stream_key(settings.execution, settings.attempt, settings.shard, settings.shard_total)
    log.info("live progress: publishing to %s on %s", key, endpoint)
    return RedisPublisher(client, key, endpoint)


# ---- events ---------------------------------------------------------------------------------


def start_event(total: int) -> dict[str, str]:
    return {"type": "start", "total": str(total)}


def test_event(title: str, outcome: str, duration: float, error: str | None = None) -> dict[str, str]:
    return {
        "type": "test",
        "title": title,
        "outcome": outcome,
        "duration": f"{duration:.3f}",
        "error": first_line(error),
    }


test_event.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def console_event(line: str) -> dict[str, str]:
    line = line.rstrip("\r\n")
    return {"type": "console", "line": line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"}


def end_event(outcome: str, results: RunResults | None) -> dict[str, str]:
    counts = {k: getattr(results, k, 0) if results is not None else 0 for k in ("passed", "failed", "skipped", "flaky", "total")}
    return {"type": "end", "outcome": outcome, **{k: str(v) for k, v in counts.items()}}


def child_event(raw: str) -> dict[str, str] | None:
    """One JSON line from the events file as an event, or None if it is not a start/test event."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") not in EVENTS_FROM_CHILD:
        return None
    if data["type"] == "start":
        total = data.get("total")
        return start_event(int(total)) if isinstance(total, int | str) and str(total).isdigit() else None
    outcome = data.get("outcome")
    if outcome not in OUTCOMES or not isinstance(data.get("title"), str):
        return None
    try:
        duration = float(data.get("duration") or 0.0)
    except (TypeError, ValueError):
        duration = 0.0
    error = data.get("error")
    return test_event(data["title"], outcome, duration, error if isinstance(error, str) else None)


class EventWriter:
    """The test command's side: one JSON line per event, appended to the events file.

    Used on the test's own thread (pytest hooks), so it only formats and writes a line; it also
    measures its own cost per event (`seconds`, `events`), written as a `_stats` line on close.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)  # line-buffered: one write per event
        self.events = 0
        self.seconds = 0.0
        self.max_seconds = 0.0
        self.samples: list[float] = []

    def write(self, event: Mapping[str, Any], started: float | None = None) -> None:
        """Append one event; `started` (perf_counter) lets callers count their own work too."""
        t0 = time.perf_counter() if started is None else started
        try:
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        except (OSError, ValueError):
            return  # a full disk must not fail a test; progress is best effort
        spent = time.perf_counter() - t0
        self.events += 1
        self.samples.append(round(spent * 1000, 4))
        self.seconds += spent
        self.max_seconds = max(self.max_seconds, spent)

    def close(self) -> None:
        stats = {
            "type": "_stats",
            "events": self.events,
            "meanMs": round(self.seconds / self.events * 1000, 4) if self.events else 0.0,
            "maxMs": round(self.max_seconds * 1000, 4),
            "samplesMs": self.samples[:50],
        }
        try:
            self._file.write(json.dumps(stats) + "\n")
            self._file.close()
        except (OSError, ValueError):
            pass


class EventTail:
    """The runner's side: follows the events file the test command writes and publishes them."""

    def __init__(self, path: Path, publish: Callable[[Mapping[str, str]], None]) -> None:
        self.path = path
        self._publish = publish
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sluice-progress-tail", daemon=True)

    def start(self) -> EventTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following and publish whatever the command wrote last."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self._read()

    def _loop(self) -> None:
        while not self._stop.wait(TAIL_INTERVAL_SECONDS):
            self._read()

    def _read(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read(1 << 20)
        except OSError:
            return  # not written yet
        if not chunk:
            return
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            event = child_event(raw.decode("utf-8", "replace"))
            if event is not None:
                self._publish(event)


class LiveChannel:
    """What cli.py holds: the publisher, and the wiring around the test command."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    @property
    def enabled(self) -> bool:
        return bool(getattr(self.publisher, "enabled", False))

    def console(self, line: str) -> None:
        self.publisher.publish(console_event(line))

    def during_tests(self, events_file: Path, supervisor: Supervisor) -> _DuringTests:
        return _DuringTests(self, events_file, supervisor)

    def end(self, outcome: str, results: RunResults | None) -> None:
        self.publisher.publish(end_event(outcome, results))

    def close(self) -> None:
        self.publisher.close()


class _DuringTests:
    """`with live.during_tests(file, supervisor):` tails the events file and forwards console lines."""

    def __init__(self, live: LiveChannel, events_file: Path, supervisor: Supervisor) -> None:
        self.live, self.events_file, self.supervisor = live, events_file, supervisor
        self.tail: EventTail | None = None

    def __enter__(self) -> _DuringTests:
        if self.live.enabled:
            self.events_file.unlink(missing_ok=True)  # only this command's events
            self.tail = EventTail(self.events_file, self.live.publisher.publish).start()
            self.supervisor.on_line = self.live.console
        return self

    def __exit__(self, *exc: object) -> None:
        self.supervisor.on_line = None
        if self.tail is not None:
            self.tail.stop()


def open_live(settings: Settings) -> LiveChannel:
    """The live channel for this attempt; never raises."""
    try:
        return LiveChannel(open_publisher(settings))
    except Exception as exc:  # noqa: BLE001 - progress must never cost the run
        log.warning("live progress: off (%s)", type(exc).__name__)
        return LiveChannel(NullPublisher())
