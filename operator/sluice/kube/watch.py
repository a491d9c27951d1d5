"""The operator's own list-then-watch of its busiest kinds: executions, runner Jobs, unstarted pods.

Why not kopf for these: kopf gives every event its per-object worker pipeline (causes, body
and patch wrappers, logger adapters, a worker task per object) built for retried change
handlers. Sluice only folds each event into its view, and under `bench/dispatch.py` kopf's
machinery cost more CPU than the fold itself (bench/README.md, issue 17). Here each watch line
is decoded once (orjson) and handed to the handler; kopf still watches the low-rate kinds
(queues, environments, namespaces, schedules; see handlers.py).

The protocol is the one client-go's reflector follows: list (paged, `kube.relist` folds it
and drops what vanished), then watch from the list's resourceVersion with bookmarks; a closed
stream resumes from the last resourceVersion seen; `410 Gone` (the version was compacted away)
lists again. An API server that is away is retried with a capped backoff, never given up.

Readiness need not wait for everything: with `ready_selector` the first list is only what
dispatching needs (for executions: the unfinished ones), the watch starts from it at once, and
the rest (`rest_selectors`, whose union with it is everything: the finished executions, phase by
phase) is listed in the background; `backfilled` is set when it is in. An object the watch saw
deleted meanwhile is not brought back by an older page of the backfill (tombstones). An API
server without that field selector (400) gets the plain full list.

It never writes and never decides: a handler gets ("ADDED" | "MODIFIED" | "DELETED", object).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Collection, Sequence

import aiohttp
import orjson

from .client import ApiError, Kube, all_namespaces, resource_version
from .relist import relist

log = logging.getLogger("sluice.watch")

Key = tuple[str, str]
Handler = Callable[[str, dict], None]

WATCH_SERVER_TIMEOUT_SECONDS = 300  # the API server closes a watch after this; we resume at once
READ_GRACE_SECONDS = 30  # no byte (not even a bookmark) this long after the server's timeout: reconnect
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.5, 15.0


class Expired(Exception):
    """The resourceVersion to resume from is gone (410): only a new list can continue."""


class WatchStream:
    """One kind in one namespace (or all): `run()` lists, then watches forever.

    `listed` is set after the first complete list (the dispatcher is not ready before it);
    `relist()` may also be called from outside (on becoming the leader)."""

    def __init__(self, kube: Kube, path: str, namespace: str | None, store: dict, handler: Handler,
                 params: dict | None = None, protect: Callable[[], Collection[Key]] | None = None,
                 ready_selector: str | None = None, rest_selectors: Sequence[str] = ()):
        self.kube, self.namespace, self.store, self.handler = kube, namespace, store, handler
        self.path = path if namespace else all_namespaces(path)
        self.list_path = path  # relist takes the namespaced template and its namespace
        self.params, self.protect = dict(params or {}), protect
        self.listed = asyncio.Event()
        self.resource_version = ""
        self.ready_selector, self.rest_selectors = ready_selector, list(rest_selectors)
        self.backfilled = asyncio.Event()
        self.tombstones: dict[Key, int] | None = None  # while backfilling: deleted key -> its version
        self.backfill_task: asyncio.Task | None = None

    async def relist(self, full: bool = False) -> str:
        """Lists into the view (and drops what vanished); returns the list's resourceVersion. Called
        from outside (on becoming the leader) it leaves the watch alone: the watch is continuous,
        so with a `ready_selector` only that part is read again and nothing is dropped; `full`
        (after a 410: the watch missed events) reads and drops over everything."""
        if self.ready_selector and self.listed.is_set() and not full:
            try:
                return await self._list(self.ready_selector, self.handler, drop=False)
            except ApiError:
                pass
        rv = await relist(self.kube, self.list_path, self.namespace, self.store, self.handler, self.params,
                          protect=self.protect)
        self.listed.set()
        self.backfilled.set()
        return rv

    async def _list(self, selector: str, handler: Handler, drop: bool) -> str:
        params = dict(self.params, fieldSelector=selector)
        return await relist(self.kube, self.list_path, self.namespace, self.store, handler, params,
                            protect=self.protect, drop=drop)

    async def _first_list(self) -> str:
        if self.ready_selector:
            try:
                rv = await self._list(self.ready_selector, self.handler, drop=False)
            except ApiError as exc:
                log.warning("list %s with fieldSelector %s refused (%s): listing everything before ready",
                            self.path, self.ready_selector, exc.text[:200])
            else:
                self.listed.set()
                self.tombstones = {}
                self.backfill_task = asyncio.create_task(self._backfill(), name=f"backfill {self.path}")
                return rv
        return await self.relist()

    async def _backfill(self) -> None:
        try:
            for selector in self.rest_selectors:
                await self._list(selector, self._backfilled_object, drop=False)
        except ApiError as exc:  # a selector refused: the rest comes in one full list
            log.warning("backfill of %s refused (%s): listing everything", self.path, exc.text[:200])
            await relist(self.kube, self.list_path, self.namespace, self.store, self._backfilled_object,
                         self.params, protect=self.protect, drop=False)
        finally:
            self.tombstones = None
        self.backfilled.set()
        log.info("watch %s: backfill done", self.path)

    def _backfilled_object(self, kind: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        gone = (self.tombstones or {}).get((meta.get("namespace", ""), meta.get("name", "")))
        if gone is not None and resource_version(obj) <= gone:
            return  # deleted since this page was read: do not bring it back
        self.handler(kind, obj)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self.backfill_task is not None:
                self.backfill_task.cancel()

    async def _run(self) -> None:
        self.resource_version = await self._first_list()
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                if await self._watch_once():
                    delay = RETRY_FIRST_SECONDS  # the server ended the watch in order: resume now
                    continue
            except Expired:
                log.info("watch %s: resourceVersion %s expired, listing again", self.path, self.resource_version)
                self.resource_version = await self.relist(full=True)
                delay = RETRY_FIRST_SECONDS
                continue
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, ApiError, OSError, ValueError) as exc:
                log.warning("watch %s interrupted (%s); resuming in %.1f s", self.path, exc, delay)
            except Exception:  # a bug must not end the watch: the view would silently go stale
                log.exception("watch %s failed; resuming in %.1f s", self.path, delay)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_SECONDS, delay * 2)

    async def _watch_once(self) -> bool:
        """One watch request, events to the handler until the server closes it (True)."""
        params = dict(self.params, watch="true", allowWatchBookmarks="true",
                      timeoutSeconds=str(WATCH_SERVER_TIMEOUT_SECONDS))
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                        sock_read=WATCH_SERVER_TIMEOUT_SECONDS + READ_GRACE_SECONDS)
        async with self.kube.stream("GET", self.path, params=params, timeout=timeout) as resp:
            if resp.status == 410:
                raise Expired()
            if resp.status >= 400:
                raise ApiError(resp.status, (await resp.read()).decode(errors="replace"), "WATCH", self.path)
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if b"\n" not in chunk:
                    continue  # a large object arrives in many chunks: split only on a line's end
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line:
                        self._event(orjson.loads(line))
        return True

    def _event(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired()
            raise ApiError(int(obj.get("code") or 500), orjson.dumps(obj).decode(), "WATCH", self.path)
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if kind == "DELETED" and self.tombstones is not None:
            self.tombstones[(meta.get("namespace", ""), meta.get("name", ""))] = resource_version(obj)
        if kind != "BOOKMARK":
            try:
                self.handler(kind, obj)
            except Exception:  # one object the view cannot take must not stop the stream
                log.exception("watch %s: handling %s %s failed", self.path, kind, meta.get("name"))
        if rv:
            self.resource_version = rv

