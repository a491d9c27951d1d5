"""Writes TestEnvironment.status (inUse, holders, waiting) at a bounded rate, only on change.

A `Subsystem` of the dispatcher loop, like the queue status writer: it reads the view after a
pass, at most once per `queue_status_interval_seconds`, and never changes the view. Holders are
informational: admission counts them from the Jobs, never from this status. With several releases
in one cluster, each writes only the environments it has something to say about
(`status/environment_scope.py`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from ..api.settings import Settings
from ..cache.view import ClusterView
from ..kube.client import Kube, environment_path
from ..status.environment_scope import writes_environment_status
from ..status.environment_stats import environment_statuses

log = logging.getLogger("sluice.environment_status")


class EnvironmentStatusWriter:
    def __init__(self, kube: Kube, settings: Settings, spawn: Callable[[Awaitable], object]):
        self.kube, self.settings, self.spawn = kube, settings, spawn
        self.last_at: datetime | None = None
        self.last_written: dict[str, dict] = {}

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        if not view.environments:  # (subsystems run on the leader only)
            return None
        interval = timedelta(seconds=self.settings.queue_status_interval_seconds)
        if self.last_at is not None and now - self.last_at < interval:
            return self.last_at + interval
        self.last_at = now
        for name, st in environment_statuses(view).items():
            body = st.wire()
            rec = view.environments.get(name)
            if body == self.last_written.get(name) or (rec is not None and body == rec.status.wire()):
                continue
            if rec is not None and not writes_environment_status(rec, st, self.settings.watch_namespaces,
                                                                 view.namespace_labels, self.last_written.get(name)):
                continue  # another release's environment (sharding): its status is not ours to write
            self.last_written[name] = body
            self.spawn(self._write(name, body))
        return None

    async def _write(self, name: str, body: dict) -> None:
        try:
            await self.kube.merge_patch(environment_path(name, "status"), {"status": body})
        except Exception as exc:
            self.last_written.pop(name, None)
            log.warning("could not write status of TestEnvironment %s: %s", name, exc)
