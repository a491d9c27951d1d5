"""Kubernetes Events on every transition, so `kubectl describe tx NAME` tells the story.

Posted in the background after the status write they describe; a lost Event is only a lost
log line, so failures are logged and dropped, never retried in a loop.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Awaitable, Callable

from ..api.common import GROUP_VERSION
from .client import Kube, core_path

log = logging.getLogger("sluice.events")


class EventPoster:
    def __init__(self, kube: Kube, spawn: Callable[[Awaitable], object], component: str = "sluice-operator"):
        self.kube, self.spawn, self.component = kube, spawn, component

    def post(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        self.post_for(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""), type_, reason, message,
                      meta.get("resourceVersion"))

    def post_for(self, namespace: str, name: str, uid: str, type_: str, reason: str, message: str,
                 resource_version: str | None = None) -> None:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "involvedObject": {"apiVersion": GROUP_VERSION, "kind": "TestExecution", "name": name,
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
