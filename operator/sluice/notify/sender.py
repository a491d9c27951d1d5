"""The notifier: a dispatcher `Subsystem` that POSTs an execution's outcome to its queue's webhooks.

After a pass (only the leader's loop runs subsystems), at most every SCAN_SECONDS, it looks at
the executions the watch changed since the last scan (`Dispatcher.listen`; all of them once, at
its first scan) and asks `decide.steps` what each ended one of a queue with notifications needs:
its cost follows the changes, not the thousands of finished executions the view keeps.
A POST runs in its own task (at most SEND_CONCURRENCY at once), never in the loop. Every step is
recorded in the execution's status through the dispatcher's status writer
(`Dispatcher.write_notification`), and a POST goes out only once the API holds the record that
announces it (`decide` explains why that makes it at most once). Retries pause in their task;
after a restart they resume from the record. A stop (SIGTERM) waits up to DRAIN_SECONDS for
POSTs in flight so their answers are recorded.

It never changes the view itself, never follows redirects, and never logs or records the URL.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Protocol

import aiohttp

from ..api.execution import NotificationRecord
from ..api.queue import Notification, TestQueueSpec
from ..cache.view import ClusterView, Key
from ..kube.events import EventPoster
from .decide import Record, Send, answered, idempotency_key, in_flight, notification_name, record_of, same, steps
from .payload import body, outcome_payload
from .policy import (ELIGIBLE_SECONDS, MAX_ATTEMPTS, REQUEST_TIMEOUT_SECONDS, SEND_CONCURRENCY, Answer, Verdict,
                     backoff_seconds, judge_error, judge_status)
from .webhook_url import UrlProblem, WebhookUrls

log = logging.getLogger("sluice.notify")

SCAN_SECONDS = 1.0  # ended executions are looked at this often at most
SETTLE_POLL_SECONDS = 0.05  # how often a task checks that its record reached the API
PERSIST_WAIT_SECONDS = 30.0  # for one status write to land
PERSIST_TRIES = 3
API_RETRY_SECONDS = 5.0  # the Secret could not be read for a reason other than the Secret itself
DRAIN_SECONDS = REQUEST_TIMEOUT_SECONDS + 2
ANSWER_BYTES = 2048  # of the receiver's answer read

RESULT_DELIVERED, RESULT_RETRIED, RESULT_GIVEN_UP = "delivered", "retried", "given_up"
RESULT_UNKNOWN = "unknown"  # in flight when the operator stopped: not sent again


class StatusPort(Protocol):
    """What the notifier needs of the dispatcher (see `dispatch.loop.Dispatcher`)."""

    view: ClusterView
    events: EventPoster
    is_leader: Callable[[], bool]

    def write_notification(self, key: Key, uid: str, record: NotificationRecord) -> bool: ...

    def status_settled(self, key: Key) -> bool: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Notifier:
    def __init__(self, port: StatusPort, urls: WebhookUrls, spawn: Callable[[Awaitable], asyncio.Task],
                 metrics=None):
        self.port, self.urls, self.spawn, self.metrics = port, urls, spawn, metrics
        self.delivering: dict[str, dict[str, asyncio.Task]] = {}  # execution uid -> notification name -> task
        self.sem = asyncio.Semaphore(SEND_CONCURRENCY)
        self.next_scan = 0.0
        self.candidates: set[Key] = set()  # executions changed since the last scan
        # (namespace, queue, name, outcomes) -> when it appeared (None: there at the first scan)
        self.seen: dict[tuple, datetime | None] = {}
        self.first_scan = True
        self.unsure = 0  # deliveries between their in-flight record and their recorded answer
        self.stopping = False
        self.session: aiohttp.ClientSession | None = None

    # ---- the subsystem ----------------------------------------------------------------------
    def noticed(self, key: Key) -> None:
        """The watch changed this execution (`Dispatcher.listen`): look at it on the next scan."""
        self.candidates.add(key)

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        mono = time.monotonic()
        if mono < self.next_scan:
            return now + timedelta(seconds=self.next_scan - mono) if self.candidates else None
        self.next_scan = mono + SCAN_SECONDS
        specs = {k: q.spec for k, q in view.queues.items() if q.spec.notifications}
        if self.first_scan:  # what ended while no operator was leading: the only walk over all
            self.candidates.update(view.executions)
        since = self._appeared(specs, now)
        keys, self.candidates = self.candidates, set()
        if not specs or self.stopping:
            return None
        horizon = now - timedelta(seconds=ELIGIBLE_SECONDS)
        for key in keys:
            rec = view.executions.get(key)
            if rec is None or rec.spec is None:
                continue
            # the cheap fields first: a finished record unpacks its whole status on each read
            ended = rec.summary
            spec = specs.get((rec.namespace, rec.spec.queue))
            mine = self.delivering.get(rec.uid)
            if spec is None or ended.phase is None or not ended.phase.terminal or mine or (
                    ended.completed_at is not None and ended.completed_at < horizon):
                continue  # a delivery re-notes its execution when it ends
            st = rec.status
            for step in steps(st, rec.uid, spec, now, set(), since.get((rec.namespace, rec.spec.queue))):
                if isinstance(step, Record):
                    self._record(key, rec.uid, rec.spec.queue, step)
                else:
                    self._start(key, rec.uid, rec.spec.queue, st.phase.value, step)
        return None

    def _appeared(self, specs: dict[Key, TestQueueSpec], now: datetime) -> dict[Key, dict[str, datetime]]:
        """When each notification appeared while this process led (queue -> name -> time); those
        there at its first scan are absent (ELIGIBLE_SECONDS bounds them)."""
        current = set()
        for qk, spec in specs.items():
            for i, n in enumerate(spec.notifications):
                ident = (*qk, notification_name(n, i), tuple(sorted(n.outcomes)))
                current.add(ident)
                self.seen.setdefault(ident, None if self.first_scan else now)
        self.seen = {k: v for k, v in self.seen.items() if k in current}
        self.first_scan = False
        out: dict[Key, dict[str, datetime]] = {}
        for (ns, queue, name, _), at in self.seen.items():
            if at is not None:
                out.setdefault((ns, queue), {})[name] = at
        return out

    def _start(self, key: Key, uid: str, queue: str, outcome: str, step: Send) -> None:
        task = self.spawn(self._deliver(key, uid, queue, outcome, step))
        self.delivering.setdefault(uid, {})[step.name] = task

    def _record(self, key: Key, uid: str, queue: str, step: Record) -> None:
        record = step.record
        if self.port.write_notification(key, uid, record):
            self._count(key[0], queue, RESULT_UNKNOWN if step.unknown else RESULT_GIVEN_UP)
            self._event(key, uid, "Warning", "NotificationGivenUp", f"notification {record.name}: {record.message}")

    # ---- one notification of one execution -------------------------------------------------
    async def _deliver(self, key: Key, uid: str, queue: str, outcome: str, step: Send) -> None:
        name, n, attempt = step.name, step.notification, step.attempt
        try:
            await asyncio.sleep(max(0.0, (step.at - _now()).total_seconds()))
            rec = self.port.view.executions.get(key)
            if rec is None or rec.uid != uid:
                return
            key_header = idempotency_key(uid, outcome, name)
            data = body(n.format, outcome_payload(key[0], key[1], uid, queue, rec.status, name, key_header))
            headers = {"Content-Type": "application/json", "Idempotency-Key": key_header,
                       "User-Agent": "sluice-operator"}
            while True:
                url = await self._url(key, uid, queue, outcome, name, n, attempt)
                if url is None:
                    return
                async with self.sem:
                    if self.stopping or not self.port.is_leader():
                        return  # nothing recorded for this attempt: the next leader sends it
                    answer, state = await self._attempt(key, uid, in_flight(name, outcome, key_header, attempt, _now()),
                                                        url, data, headers)
                if answer is None:
                    return
                self._report(key, uid, queue, name, attempt, answer, state)
                if state != "Pending":
                    return
                await asyncio.sleep(backoff_seconds(attempt, answer.retry_after))
                attempt += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification %s of %s/%s failed", name, *key)
        finally:
            mine = self.delivering.get(uid, {})
            if mine.get(name) is asyncio.current_task():
                del mine[name]
                if not mine:
                    self.delivering.pop(uid, None)
            self.candidates.add(key)  # the next scan sees what it left

    async def _url(self, key: Key, uid: str, queue: str, outcome: str, name: str, n: Notification,
                   attempt: int) -> str | None:
        """The webhook URL; None (with the record GivenUp) when the Secret cannot give one."""
        while True:
            try:
                return await self.urls.get(key[0], n.webhook.url_secret_ref)
            except UrlProblem as exc:
                record = NotificationRecord(name=name, outcome=outcome, state="GivenUp", attempts=attempt - 1,
                                            key=idempotency_key(uid, outcome, name), last_attempt_at=_now(),
                                            message=str(exc))
                if await self._persist(key, uid, record):
                    self._count(key[0], queue, RESULT_GIVEN_UP)
                    self._event(key, uid, "Warning", "NotificationGivenUp", f"notification {name}: {exc}")
                return None
            except Exception as exc:  # the API server away: nothing was sent, try again
                log.warning("notification %s of %s/%s: cannot read its Secret (%s); retrying", name, *key, exc)
                await asyncio.sleep(API_RETRY_SECONDS)
                if self.stopping or not self.port.is_leader():
                    return None

    async def _attempt(self, key: Key, uid: str, sent: NotificationRecord, url: str, data: bytes,
                       headers: dict[str, str]) -> tuple[Answer | None, str]:
        """One POST between two records: none goes out unless the API holds `sent` first."""
        self.unsure += 1
        try:
            if not await self._persist(key, uid, sent):
                return None, "Pending"
            answer = await self._post(url, data, headers)
            state = {Verdict.DELIVERED: "Delivered", Verdict.GIVE_UP: "GivenUp"}.get(answer.verdict, "Pending")
            message = answer.message
            if state == "Pending" and sent.attempts >= MAX_ATTEMPTS:
                state, message = "GivenUp", f"{message}; given up after {sent.attempts} attempts"
            if not await self._persist(key, uid, answered(sent, state, message)):
                log.warning("notification %s of %s/%s: the answer (%s) could not be recorded", sent.name, *key, message)
            return Answer(answer.verdict, message, answer.retry_after), state
        finally:
            self.unsure -= 1

    def _report(self, key: Key, uid: str, queue: str, name: str, attempt: int, answer: Answer, state: str) -> None:
        if state == "Delivered":
            self._count(key[0], queue, RESULT_DELIVERED)
            self._event(key, uid, "Normal", "NotificationSent", f"notification {name}: {answer.message} "
                        f"(attempt {attempt})")
        elif state == "GivenUp":
            self._count(key[0], queue, RESULT_GIVEN_UP)
            self._event(key, uid, "Warning", "NotificationGivenUp", f"notification {name}: {answer.message}")
        else:
            self._count(key[0], queue, RESULT_RETRIED)

    async def _persist(self, key: Key, uid: str, record: NotificationRecord) -> bool:
        """Writes `record` through the dispatcher and waits until the API holds it (True)."""
        for _ in range(PERSIST_TRIES):
            if not self.port.write_notification(key, uid, record):
                return False  # the execution is gone (or is another one now)
            deadline = time.monotonic() + PERSIST_WAIT_SECONDS
            while not self.port.status_settled(key) and time.monotonic() < deadline:
                await asyncio.sleep(SETTLE_POLL_SECONDS)
            if self.port.status_settled(key):
                rec = self.port.view.executions.get(key)
                if rec is None or rec.uid != uid:
                    return False
                if same(record_of(rec.status, record.name), record):
                    return True
            await asyncio.sleep(SETTLE_POLL_SECONDS * 20)
        return False

    async def _post(self, url: str, data: bytes, headers: dict[str, str]) -> Answer:
        if self.session is None:
            self.session = aiohttp.ClientSession(trust_env=True)
        try:
            async with self.session.post(url, data=data, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)) as resp:
                text = (await resp.content.read(ANSWER_BYTES)).decode("utf-8", "replace")
                return judge_status(resp.status, text, resp.headers.get("Retry-After"))
        except aiohttp.InvalidURL:
            return Answer(Verdict.GIVE_UP, "the URL in the Secret is not valid")
        except asyncio.TimeoutError:
            return judge_error("timeout", f"no answer within {REQUEST_TIMEOUT_SECONDS:.0f}s")
        except aiohttp.ClientConnectorError as exc:
            return judge_error("cannot connect", f"{exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}")
        except (aiohttp.ClientError, OSError) as exc:
            return judge_error(type(exc).__name__)

    # ---- bookkeeping ------------------------------------------------------------------------
    def _count(self, namespace: str, queue: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notification(namespace, queue, result)

    def _event(self, key: Key, uid: str, type_: str, reason: str, message: str) -> None:
        self.port.events.post_for(key[0], key[1], uid, type_, reason, message)

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """On stop: no new POST; those in flight get up to `seconds` to have their answers recorded."""
        self.stopping = True
        deadline = time.monotonic() + seconds
        while self.unsure and time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_POLL_SECONDS)
        for tasks in list(self.delivering.values()):
            for task in list(tasks.values()):
                task.cancel()
        if self.session is not None:
            await self.session.close()
