"""The dashboard's one source of truth: ONE watch per resource type, fanned out to every page.

Three daemon threads (TestExecutions, TestQueues, and the cluster-scoped TestEnvironments) each list once, then watch from the list's
resourceVersion with the kubernetes client (`watch.Watch`), re-listing after any error (410 Gone,
a dropped connection, RBAC) with a 1 s pause. Every change marks the feed dirty; the asyncio side
rebuilds the snapshot (`model.snapshot`) at most every COALESCE_SECONDS, serialises it once and
hands the same bytes to every connected page, so N pages cost one watch pair and one JSON
encoding per change, never N. A slow page only ever holds the latest snapshot (older ones are
dropped). A fourth thread keeps the user's allowed actions per visible namespace
(permissions.py, SelfSubjectAccessReviews cached a minute). It never writes to the API.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import datetime, timezone

from kubernetes import watch

from ..api.common import API_GROUP, API_VERSION
from ..cli.connect import explain_api_error
from . import model
from .live import LiveReader
from .permissions import Permissions

log = logging.getLogger("sluice.dashboard")
COALESCE_SECONDS = 0.2
RETRY_SECONDS = 1.0
WATCH_SECONDS = 240
CAPS_SECONDS = 30.0
FORBIDDEN_RETRY_SECONDS = 30.0  # a resource the user may not list (TestEnvironments, often): ask rarely
PERMISSIONS_POLL_SECONDS = 1.0
CLUSTER_SCOPED = frozenset({"testenvironments"})


class Feed:
    def __init__(self, conn, namespace: str | None, permissions: Permissions | None = None,
                 notes: list[str] | None = None):
        self.conn, self.namespace = conn, namespace
        self.objects: dict[str, dict[tuple[str, str], dict]] = {
            "testexecutions": {}, "testqueues": {}, "testenvironments": {}}
        self.errors: dict[str, str] = {}
        self.forbidden: set[str] = set()  # plurals the user may not list (shown as such, not as errors)
        self.permissions = permissions or Permissions(conn.api_client)
        self.notes = list(notes or [])
        self.live = LiveReader(self._executions, self._mark)
        self.caps: tuple[int, int] | None = None
        self.lock = threading.Lock()
        self.clients: set[asyncio.Queue] = set()
        self.latest: bytes = b""
        self.watch_starts = 0  # how many watch requests were made (for figures: stays flat with pages)
        self.snapshots = 0  # snapshots built and fanned out (one per coalesced change, not per page)
        self._dirty: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- threads: list + watch -------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._dirty = loop, asyncio.Event()
        for plural in self.objects:
            threading.Thread(target=self._follow, args=(plural,), name=f"watch-{plural}", daemon=True).start()
        threading.Thread(target=self._review, name="permissions", daemon=True).start()
        self.live.start(loop)
        loop.create_task(self._publisher())

    def _executions(self) -> list[dict]:
        with self.lock:
            return list(self.objects["testexecutions"].values())

    def visible_namespaces(self) -> set[str]:
        with self.lock:
            seen = {ns for plural in ("testexecutions", "testqueues") for ns, _ in self.objects[plural]}
        return seen | ({self.namespace} if self.namespace else set())

    def _review(self) -> None:
        while True:
            try:
                if self.permissions.refresh(self.visible_namespaces()):
                    self._mark()
            except Exception:  # noqa: BLE001 - no answer now: the buttons stay as they were
                log.exception("could not review the user's permissions")
            time.sleep(PERMISSIONS_POLL_SECONDS)

    def _list_fn(self, plural: str = ""):
        custom = self.conn.custom
        if self.namespace is None or plural in CLUSTER_SCOPED:
            return custom.list_cluster_custom_object, (API_GROUP, API_VERSION)
        return custom.list_namespaced_custom_object, (API_GROUP, API_VERSION, self.namespace)

    def _follow(self, plural: str) -> None:
        fn, args = self._list_fn(plural)
        while True:
            try:
                listed = fn(*args, plural)
                with self.lock:
                    self.objects[plural] = {self._key(o): o for o in listed.get("items") or []}
                    self.errors.pop(plural, None)
                    self.forbidden.discard(plural)
                if plural == "testqueues":
                    self.caps = self.conn.operator_caps(self.namespace)
                self._mark()
                rv = (listed.get("metadata") or {}).get("resourceVersion")
                while True:
                    w = watch.Watch()
                    self.watch_starts += 1
                    for ev in w.stream(fn, *args, plural, resource_version=rv, timeout_seconds=WATCH_SECONDS,
                                       _request_timeout=WATCH_SECONDS + 30,
                                       allow_watch_bookmarks=True):
                        obj, kind = ev["object"], ev["type"]
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if kind == "BOOKMARK":
                            continue
                        with self.lock:
                            if kind == "DELETED":
                                self.objects[plural].pop(self._key(obj), None)
                            else:
                                self.objects[plural][self._key(obj)] = obj
                        self._mark()
            except Exception as exc:  # noqa: BLE001 - any failure: say it on the page, re-list
                status = getattr(exc, "status", None)
                if status == 403 and plural in CLUSTER_SCOPED:
                    with self.lock:
                        self.forbidden.add(plural)
                        self.objects[plural] = {}
                    self._mark()
                    time.sleep(FORBIDDEN_RETRY_SECONDS)
                    continue
                if status and status != 410:
                    msg = str(explain_api_error(status, getattr(exc, "body", None), f"watch {plural}",
                                                self.namespace))
                elif status == 410:
                    msg = ""
                else:
                    msg = f"watch {plural}: {type(exc).__name__}: {str(exc)[:200]}"
                with self.lock:
                    if msg:
                        self.errors[plural] = msg
                if msg:
                    log.warning("%s", msg)
                    self._mark()
                time.sleep(RETRY_SECONDS)

    @staticmethod
    def _key(obj: dict) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return (meta.get("namespace", ""), meta.get("name", ""))

    def _mark(self) -> None:
        if self._loop is not None and self._dirty is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)

    # ---- asyncio side: snapshot and fan-out --------------------------------------------------------
    def build(self) -> dict:
        with self.lock:
            executions = list(self.objects["testexecutions"].values())
            queues = list(self.objects["testqueues"].values())
            environments = (None if "testenvironments" in self.forbidden
                            else list(self.objects["testenvironments"].values()))
            errors = sorted(self.errors.values())
        namespaces = None if self.namespace is None else [self.namespace]
        return model.snapshot(executions, queues, datetime.now(timezone.utc), namespaces, self.caps, errors,
                              environments, self.permissions.snapshot(), self.notes, self.live.progress())

    def execution(self, namespace: str, name: str) -> dict | None:
        with self.lock:
            return self.objects["testexecutions"].get((namespace, name))

    async def _publisher(self) -> None:
        assert self._dirty is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                self.latest = json.dumps(self.build(), separators=(",", ":"), default=str).encode()
                self.snapshots += 1
            except Exception:  # noqa: BLE001 - a bad object must not stop the page's updates
                log.exception("could not build the dashboard snapshot")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for q in list(self.clients):
                if q.full():
                    q.get_nowait()  # a slow page only needs the newest snapshot
                q.put_nowait(self.latest)
            await asyncio.sleep(COALESCE_SECONDS)

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=1)
        if self.latest:
            q.put_nowait(self.latest)
        self.clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.clients.discard(q)
