"""Writes TestQueue.status at a bounded rate: at most once per interval per queue, only on change.

A `Subsystem` of the dispatcher loop: it reads the view after each pass and never changes it."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from ..api.settings import Settings
from ..kube.client import Kube, queue_path
from ..status.queue_stats import queue_conditions, queue_status
from ..cache.view import ClusterView

log = logging.getLogger("sluice.queue_status")


class QueueStatusWriter:
    def __init__(self, kube: Kube, settings: Settings, spawn: Callable[[Awaitable], object]):
        self.kube, self.settings, self.spawn = kube, settings, spawn
        self.last_at: datetime | None = None
        self.last_written: dict[tuple[str, str], dict] = {}

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        """Writes what changed, or returns when it may next write if the interval holds it back."""
        interval = timedelta(seconds=self.settings.queue_status_interval_seconds)
        if self.last_at is not None and now - self.last_at < interval:
            return self.last_at + interval if view.queues else None
        self.last_at = now
        for key, q in list(view.queues.items()):
            st = queue_status(view, *key)
            st.observed_generation = q.generation
            queue_conditions(st, q.status.conditions, q.spec.paused, q.generation, now)
            body = st.wire()
            if body == self.last_written.get(key) or body == q.status.wire():
                continue
            self.last_written[key] = body
            self.spawn(self._write(key, body))
        return None

    async def _write(self, key: tuple[str, str], body: dict) -> None:
        try:
            await self.kube.merge_patch(queue_path(key[0], key[1], "status"), {"status": body})
        except Exception as exc:
            self.last_written.pop(key, None)
            log.warning("could not write status of TestQueue %s/%s: %s", key[0], key[1], exc)
