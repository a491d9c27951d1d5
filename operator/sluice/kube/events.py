"""Kubernetes Events, so `kubectl describe tx NAME` tells the story.

Which of an execution's transitions get one is decided by `status.event_policy` (by default
not the ordinary course its conditions already tell); this module only posts what it is given.

Posted in the background after the status write they describe; a lost Event is only a lost
log line, so failures are logged and dropped, never retried in a loop. Each execution has a
budget (a token bucket: EVENT_BURST at once, then one per EVENT_REFILL_SECONDS), so no loop,
whatever its cause, can flood the namespace with Events; past it Events are dropped with one
warning naming the execution.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Awaitable, Callable

from ..api.common import GROUP_VERSION
from .client import Kube, core_path

log = logging.getLogger("sluice.events")

EVENT_BURST = 20
EVENT_REFILL_SECONDS = 30.0
RECENT_KEPT = 10_000  # (object, reason) pairs remembered for `told_since`


class EventBudget:
    """Per-object token buckets; an object's bucket is forgotten once it is full again."""

    def __init__(self, burst: int = EVENT_BURST, refill_seconds: float = EVENT_REFILL_SECONDS):
        self.burst, self.refill = burst, refill_seconds
        self.buckets: dict[str, tuple[float, float]] = {}  # uid -> (tokens, at)
        self.warned: set[str] = set()

    def take(self, uid: str, now: float) -> bool:
        tokens, at = self.buckets.get(uid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill)
        if tokens < 1:
            self.buckets[uid] = (tokens, now)
            return False
        self.buckets[uid] = (tokens - 1, now)
        if len(self.buckets) > 10_000:  # forget the full ones: bounded memory
            self.buckets = {k: v for k, v in self.buckets.items()
                            if v[0] + (now - v[1]) / self.refill < self.burst}
        return True


class EventPoster:
    def __init__(self, kube: Kube, spawn: Callable[[Awaitable], object], component: str = "sluice-operator"):
        self.kube, self.spawn, self.component = kube, spawn, component
        self.budget = EventBudget()
        # (uid, reason) -> (when, message) of the last one posted, so one part of the operator can
        # see that another already told a change (the webhook names who moved a priority; the
        # dispatcher only says it moved when nobody did); bounded
        self.recent: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def told_since(self, uid: str, reason: str, message: str, since: float) -> bool:
        """True when the last Event with `reason` for `uid` was posted at or after `since` (monotonic)
        and says `message` (perhaps with more after it)."""
        at, told = self.recent.get((uid, reason), (float("-inf"), ""))
        return at >= since and told.startswith(message)

    def post(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        self.post_for(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""), type_, reason, message,
                      meta.get("resourceVersion"))

    def post_for(self, namespace: str, name: str, uid: str, type_: str, reason: str, message: str,
                 resource_version: str | None = None, kind: str = "TestExecution") -> None:
        if not self.budget.take(uid or f"{namespace}/{name}", time.monotonic()):
            if uid not in self.budget.warned:
                self.budget.warned.add(uid)
                log.warning("Event budget of %s/%s used up: dropping its Events (%s: %s)", namespace, name,
                            reason, message[:200])
            return
        self.recent[(uid, reason)] = (time.monotonic(), message)
        self.recent.move_to_end((uid, reason))
        if len(self.recent) > RECENT_KEPT:
            self.recent.popitem(last=False)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "involvedObject": {"apiVersion": GROUP_VERSION, "kind": kind, "name": name,
                               "namespace": namespace, "uid": uid, "resourceVersion": resource_version},
            "type": type_, "reason": reason, "message": message[:1024],
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self.spawn(self._send(namespace, body))

    async def _send(self, namespace: str, body: dict) -> None:
        try:
            await self.kube.create(core_path(namespace, "events"), body)
        except Exception as exc:
            log.debug("event not posted: %s", exc)
