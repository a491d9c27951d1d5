"""Leader election through a coordination.k8s.io Lease, as client-go's leaderelection does it.

Exactly one replica dispatches; the others keep a warm view (their watches run) and take over
when the Lease is not renewed for a full lease duration. Expiry is judged by when *this*
replica last saw the Lease change (not by comparing clocks), and a leader stops dispatching as
soon as it cannot prove a renewal within the duration minus a margin, so two leaders never
overlap while clocks run at the same rate.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import Callable

from .api.common import LABEL_OPERATOR_LEASE
from .kube.client import ApiError, Kube, lease_path

log = logging.getLogger("sluice.leader")


def _micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, duration: float, renew_every: float,
                 on_start: Callable[[], None] | None = None, identity: str | None = None,
                 annotations: dict[str, str] | None = None, on_resume: Callable[[], None] | None = None):
        self.kube, self.namespace, self.name = kube, namespace, name
        self.duration, self.renew_every = duration, renew_every
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        self.on_start = on_start or (lambda: None)  # took the Lease: a new leadership
        self.on_resume = on_resume or (lambda: None)  # leader again after a late renewal of our own Lease
        self.valid_until = 0.0  # monotonic time until which we are surely the leader
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._took_over = False  # the last acquire took the Lease from another holder (or none)
        # what the leader publishes on its Lease (the caps it applies, for `sluice queue`)
        self.annotations = dict(annotations or {})

    @property
    def path(self) -> str:
        return lease_path(self.namespace, self.name)

    def is_leader(self) -> bool:
        return time.monotonic() < self.valid_until

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            was_leader = self.is_leader()
            try:
                if await self._try_acquire_or_renew():
                    self.valid_until = started + self.duration * 0.8
                    if not was_leader and self._took_over:
                        log.info("became the leader (%s)", self.identity)
                        self.on_start()
                    elif not was_leader:
                        # a renewal came late but the Lease stayed ours: nobody else led
                        # meanwhile, so there is nothing to re-list (on a loaded machine a
                        # re-list here cost more CPU than the dispatching it protects)
                        log.info("leader again after a late renewal (%s)", self.identity)
                        self.on_resume()
            except Exception as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            if was_leader and not self.is_leader():
                log.warning("lost the leader lease; dispatching stops")
            await asyncio.sleep(self.renew_every if self.is_leader() else min(self.renew_every, 2.0))

    async def _try_acquire_or_renew(self) -> bool:
        now = _micro_now()
        try:
            lease = await self.kube.get(self.path)
        except ApiError as exc:
            if not exc.not_found:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {LABEL_OPERATOR_LEASE: "true"}, "annotations": self.annotations},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration),
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
            }
            try:
                await self.kube.create(lease_path(self.namespace), body)
                self._took_over = True
                return True
            except ApiError as exc2:
                if exc2.conflict:
                    return False
                raise
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        seen = (holder, spec.get("renewTime") or "")
        if seen != self._observed:
            self._observed, self._observed_at = seen, time.monotonic()
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if time.monotonic() < self._observed_at + duration:
                return False  # someone else holds a live lease
        taking_over = holder != self.identity
        spec = dict(spec, holderIdentity=self.identity, renewTime=now, leaseDurationSeconds=int(self.duration))
        if taking_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        lease["spec"] = spec
        meta = lease.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), LABEL_OPERATOR_LEASE: "true"}
        meta["annotations"] = {**(meta.get("annotations") or {}), **self.annotations}
        try:
            await self.kube.request("PUT", self.path, lease)  # resourceVersion makes this a compare-and-swap
            self._took_over = taking_over
            return True
        except ApiError as exc:
            if exc.conflict:
                return False
            raise

    async def release(self) -> None:
        """Hands the lease back on shutdown so a standby takes over at once."""
        if not self.is_leader():
            return
        self.valid_until = 0.0
        try:
            lease = await self.kube.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.kube.request("PUT", self.path, lease)
        except Exception as exc:
            log.warning("could not release the lease: %s", exc)


def default_lease_namespace() -> str:
    ns = os.environ.get("POD_NAMESPACE")
    if ns:
        return ns
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"
