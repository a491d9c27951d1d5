"""Deletes finished executions for the history limits: by UID, bounded, never hot-looping.

Each delete carries a UID precondition, so an execution re-created under the same name is never
taken for the one retention chose; its Jobs and source ConfigMap go with it (ownerReferences,
background propagation) and its artifacts stay in S3. At most `MAX_IN_FLIGHT` deletes run at
once, and an execution whose delete failed is not tried again for `RETRY_SECONDS`. It decides
nothing: `retention.policy` chooses, and the queue status writer counts an execution in
`status.retired` before it hands it here.
"""
from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from ..kube.client import ApiError, Kube, execution_path

log = logging.getLogger("sluice.retention")

MAX_IN_FLIGHT = 100
RETRY_SECONDS = 5.0


class Deleter:
    def __init__(self, kube: Kube, spawn: Callable[[Awaitable], object]):
        self.kube, self.spawn = kube, spawn
        self.in_flight: set[str] = set()  # UIDs
        self.failed_at: dict[str, float] = {}  # UID -> when its delete last failed (monotonic)

    def room(self) -> int:
        return MAX_IN_FLIGHT - len(self.in_flight)

    def busy(self, uid: str) -> bool:
        """In flight, or failed too recently to try again."""
        if uid in self.in_flight:
            return True
        failed = self.failed_at.get(uid)
        if failed is not None and time.monotonic() - failed >= RETRY_SECONDS:
            del self.failed_at[uid]
            failed = None
        return failed is not None

    def delete(self, namespace: str, name: str, uid: str) -> bool:
        """Starts deleting it unless it is busy or the bound is reached; True when started."""
        if self.busy(uid) or self.room() <= 0:
            return False
        self.in_flight.add(uid)
        self.spawn(self._delete(namespace, name, uid))
        return True

    async def _delete(self, namespace: str, name: str, uid: str) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "preconditions": {"uid": uid}}
        try:
            await self.kube.request("DELETE", execution_path(namespace, name), body)
            self.failed_at.pop(uid, None)
        except ApiError as exc:
            if exc.not_found or exc.conflict:  # gone already, or the name now holds another execution
                self.failed_at.pop(uid, None)
            else:
                self.failed_at[uid] = time.monotonic()
                log.warning("could not delete finished TestExecution %s/%s for its queue's history limits: %s",
                            namespace, name, exc)
        except Exception as exc:  # the API away: the next pass tries again after the pause
            self.failed_at[uid] = time.monotonic()
            log.warning("could not delete finished TestExecution %s/%s: %s", namespace, name, exc)
        finally:
            self.in_flight.discard(uid)
