"""Writes TestQueue.status, the one writer of each queue's status, and carries out history limits.

A `Subsystem` of the dispatcher loop: it reads the view after each pass and never changes it.
A queue's status is written at most once per interval and only on change, except to retire
executions for its history limits, which goes as soon as the queue's previous write returned.
Retiring is idempotent across crashes:

1. `retention.policy` chooses finished executions to delete; one status write adds what they
   contributed to `status.retired` and puts their UIDs in `retired.deleting`;
2. only after that write succeeded does `retention.deleter` delete them;
3. once the view no longer has a UID of `deleting`, the next write drops it.

While a UID is in `deleting` the live side of the totals skips it (`status.queue_stats`), so
nothing is counted twice; a crash between 1 and 2 leaves the UIDs there for the next leader to
delete. Every write carries the queue's resourceVersion as a precondition, because `retired` is
read-modify-write: neither a stale view nor another leader's write is ever overwritten (a 409
re-reads the queue). Queues without an object (`default`) have no status: their executions are
deleted for the default limits without being counted anywhere.

Executions deleted by other hands (`kubectl delete`, a schedule's own history limits) are counted
the same way, best effort: one that counted in the last walk and is gone from the view now is
added to `retired` (its UID in `deleting` until the next write), so the totals keep it. One
deleted while no operator watched is not counted.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from ..api.queue import Retired, TestQueueStatus
from ..cache.compact import StatusSummary
from ..api.settings import Settings
from ..cache.view import ClusterView
from ..kube.client import ApiError, Kube, queue_path
from ..retention.deleter import Deleter
from ..cache.view import ExecutionRecord
from ..retention.policy import Finished, finished_at, finished_by_queue, limits_of, victims_of
from ..status.queue_stats import queue_conditions, queue_statuses, retire

log = logging.getLogger("sluice.queue_status")

QueueKey = tuple[str, str]
MAX_DELETING = 100  # UIDs one queue's `retired.deleting` may hold (the schema allows 1000)
BACKLOG_GAP = timedelta(seconds=1)  # between walks while deletes are under way or some wait
MAX_VANISHED_PER_WRITE = 500  # executions deleted by other hands counted per write (deleting <= 1000)
GONE_MEMORY = 20_000  # UIDs known deleted, ignored should a late list show them again


@dataclass(frozen=True)
class Base:
    """A queue's `retired` as of one resourceVersion (the write's precondition)."""

    resource_version: int
    retired: Retired


class RecentUids:
    """A bounded set: the newest `size` UIDs added."""

    def __init__(self, size: int):
        self.order: deque[str] = deque()
        self.members: set[str] = set()
        self.size = size

    def add(self, uid: str) -> None:
        if uid in self.members:
            return
        self.order.append(uid)
        self.members.add(uid)
        if len(self.order) > self.size:
            self.members.discard(self.order.popleft())

    def __contains__(self, uid: str) -> bool:
        return uid in self.members


class QueueStatusWriter:
    def __init__(self, kube: Kube, settings: Settings, spawn: Callable[[Awaitable], object]):
        self.kube, self.settings, self.spawn = kube, settings, spawn
        self.deleter = Deleter(kube, spawn)
        self.last_at: datetime | None = None
        self.backlog = False
        self.last_written: dict[QueueKey, dict] = {}
        self.known: dict[QueueKey, Base] = {}  # what our last write or read of the queue returned
        self.writing: set[QueueKey] = set()  # one write per queue at a time
        self.gone = RecentUids(GONE_MEMORY)
        self.wake_at: datetime | None = None  # when the clock alone makes the next victim (TTL, settling)
        # what counted in each walk (UID -> queue, summary), to count what vanished by other hands
        self.seen: dict[str, ExecutionRecord] = {}
        self.vanished: dict[QueueKey, dict[str, StatusSummary]] = {}  # to count in the queue's next write

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        """Writes what changed and retires what the limits say, or returns when it may next."""
        if not view.history_listed:  # totals and retention over part of the history would be wrong
            return None  # the dispatcher wakes the loop when the backfill is in
        interval = timedelta(seconds=self.settings.queue_status_interval_seconds)
        gap = min(interval, BACKLOG_GAP) if self.backlog else interval
        if self.last_at is not None and now - self.last_at < gap:
            next_walk = self.last_at + gap
            if view.queues or self.backlog:
                return next_walk
            return None if self.wake_at is None else max(next_walk, self.wake_at)
        if self.last_at is not None and (now - self.last_at).total_seconds() > self.settings.lease_duration_seconds:
            # maybe another leader ran meanwhile and counted what went: start seeing afresh
            self.seen, self.vanished = {}, {}
        self.last_at = now
        bases = {key: self._base(key, q.resource_version, q.status.retired) for key, q in view.queues.items()}
        deleting = {uid for b in bases.values() for uid in b.retired.deleting}
        present = {rec.uid: key for key, rec in view.executions.items() if rec.uid in deleting} if deleting else {}
        skip = deleting | self.gone.members | self.deleter.in_flight
        finished, wake = finished_by_queue(view, now, skip)
        budget = self.deleter.room()
        self.backlog = bool(deleting or self.deleter.in_flight)
        retired: dict[QueueKey, Retired] = {}
        victims: dict[QueueKey, list[Finished]] = {}
        dropped: dict[QueueKey, bool] = {}
        for key, base in bases.items():
            if key in self.writing:
                continue
            still = [uid for uid in base.retired.deleting if uid in present]
            for uid in still:  # counted already (maybe by a leader that crashed): finish the delete
                self.deleter.delete(*present[uid], uid)
            for uid in base.retired.deleting:
                if uid not in present:
                    self.gone.add(uid)
            dropped[key] = len(still) < len(base.retired.deleting)
            chosen, wake = self._choose(view, key, finished.get(key, []), now, min(budget, MAX_DELETING - len(still)),
                                        wake)
            budget -= len(chosen)
            victims[key] = chosen
            retired[key] = retire(base.retired.model_copy(update={"deleting": still}),
                                  ((f.uid, f.summary) for f in chosen))
        statuses, counted = self._statuses(view, bases, retired, dropped)
        self._write_statuses(view, now, statuses, bases, victims, dropped, counted)
        for key, group in finished.items():
            if key not in view.queues and budget > 0:  # `default` without an object: nothing to count in
                chosen, wake = self._choose(view, key, group, now, budget, wake)
                for f in chosen:
                    budget -= self.deleter.delete(*f.key, f.uid)
        self.wake_at = wake
        return now + BACKLOG_GAP if self.backlog else wake

    def _statuses(self, view: ClusterView, bases: dict[QueueKey, Base], retired: dict[QueueKey, Retired],
                  dropped: dict[QueueKey, bool]) -> tuple[dict[QueueKey, TestQueueStatus], dict[QueueKey, list[str]]]:
        """The queues' statuses, with the executions that vanished by other hands (`kubectl
        delete`, a schedule's own history limits) counted in `retired` like retention's own: the
        totals keep them. Best effort: one deleted while no operator watched is not counted.
        Returns the statuses and, per queue, the UIDs of vanished ones its write counts."""
        seen: dict[str, ExecutionRecord] = {}
        statuses = queue_statuses(view, retired, skip=self.gone.members, seen=seen)
        for uid, rec in self.seen.items():
            key = (rec.namespace, rec.queue)
            if key not in retired:
                seen.setdefault(uid, rec)  # its queue was not walked this time
            elif uid not in seen and uid not in self.gone and uid not in retired[key].deleting:
                self.vanished.setdefault(key, {})[uid] = rec.summary  # as it last counted
        self.seen = seen
        counted: dict[QueueKey, list[str]] = {}
        for key in retired:
            pending = self.vanished.get(key)
            if not pending:
                continue
            for uid in [u for u in pending if u in self.gone or u in bases[key].retired.deleting]:
                del pending[uid]  # counted by a write whose answer was lost
            items = list(pending.items())[:MAX_VANISHED_PER_WRITE]
            if items:
                retired[key] = retire(retired[key], items)
                counted[key] = [uid for uid, _ in items]
                dropped[key] = True
        if counted:
            statuses = queue_statuses(view, retired, skip=self.gone.members)
        return statuses, counted

    def _choose(self, view: ClusterView, key: QueueKey, group: list[ExecutionRecord], now: datetime, room: int,
                wake: datetime | None) -> tuple[list[Finished], datetime | None]:
        """The queue's victims, and the earlier of `wake` and when its TTL next expires one."""
        limits = limits_of(view, key)
        if limits is None or not group:
            return [], wake
        chosen = victims_of(group, limits, now, room)
        if len(chosen) == room and room < len(group):
            self.backlog = True  # maybe more beyond the bound: look again soon
        if limits.ttl_seconds is not None:
            left = {f.uid for f in chosen}
            expiry = min((finished_at(r) for r in group if r.uid not in left), default=None)
            if expiry is not None:
                at = max(now, expiry + timedelta(seconds=limits.ttl_seconds))
                wake = at if wake is None else min(wake, at)
        return chosen, wake

    def _write_statuses(self, view: ClusterView, now: datetime, statuses: dict[QueueKey, TestQueueStatus],
                        bases: dict[QueueKey, Base], victims: dict[QueueKey, list[Finished]],
                        dropped: dict[QueueKey, bool], counted: dict[QueueKey, list[str]]) -> None:
        for key, st in statuses.items():
            q = view.queues[key]
            st.observed_generation = q.generation
            queue_conditions(st, q.status.conditions, q.spec.paused, q.generation, now)
            body = st.wire()
            urgent = bool(victims[key]) or dropped[key]
            if not urgent and (body == self.last_written.get(key) or body == q.status.wire()):
                continue
            self.last_written[key] = body
            self.writing.add(key)
            self.spawn(self._write(key, bases[key].resource_version, body, victims[key], counted.get(key, [])))

    def _base(self, key: QueueKey, resource_version: int, retired: Retired) -> Base:
        """The newest `retired` known: the view's, or what our last write or read returned."""
        known = self.known.get(key)
        if known is not None and known.resource_version > resource_version:
            return known
        self.known.pop(key, None)
        return Base(resource_version, retired)

    def _remember(self, key: QueueKey, obj: dict) -> None:
        try:
            rv = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
            retired = TestQueueStatus.model_validate(obj.get("status") or {}).retired
        except ValueError:
            return
        self.known[key] = Base(rv, retired)

    async def _write(self, key: QueueKey, resource_version: int, body: dict, victims: list[Finished],
                     counted: list[str]) -> None:
        patch: dict = {"status": body}
        if resource_version:
            patch["metadata"] = {"resourceVersion": str(resource_version)}
        try:
            self._remember(key, await self.kube.merge_patch(queue_path(key[0], key[1], "status"), patch))
        except ApiError as exc:
            self.last_written.pop(key, None)
            if exc.conflict:  # changed since we read it: read it again, decide again on the next walk
                await self._reread(key)
            elif not exc.not_found:
                log.warning("could not write status of TestQueue %s/%s: %s", key[0], key[1], exc)
            return
        except Exception as exc:
            self.last_written.pop(key, None)
            log.warning("could not write status of TestQueue %s/%s: %s", key[0], key[1], exc)
            return
        finally:
            self.writing.discard(key)
        pending = self.vanished.get(key, {})
        for uid in counted:  # counted now, their UIDs in `deleting` until the next write drops them
            pending.pop(uid, None)
        for f in victims:  # counted in `retired` now: delete them
            self.deleter.delete(*f.key, f.uid)

    async def _reread(self, key: QueueKey) -> None:
        try:
            self._remember(key, await self.kube.get(queue_path(key[0], key[1])))
        except Exception as exc:
            log.warning("could not read TestQueue %s/%s: %s", key[0], key[1], exc)

