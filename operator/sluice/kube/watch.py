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

It never writes and never decides: a handler gets ("ADDED" | "MODIFIED" | "DELETED", object).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Collection

import aiohttp
import orjson

from .client import ApiError, Kube, all_namespaces
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
                 params: dict | None = None, protect: Callable[[], Collection[Key]] | None = None):
        self.kube, self.namespace, self.store, self.handler = kube, namespace, store, handler
        self.path = path if namespace else all_namespaces(path)
        self.list_path = path  # relist takes the namespaced template and its namespace
        self.params, self.protect = dict(params or {}), protect
        self.listed = asyncio.Event()
        self.resource_version = ""
        self.relists = 0

    async def relist(self) -> str:
        """Lists into the view (and drops what vanished); returns the list's resourceVersion. Called
        from outside it leaves the watch alone: the watch is continuous, at most it replays."""
        rv = await relist(self.kube, self.list_path, self.namespace, self.store, self.handler, self.params,
                          protect=self.protect)
        self.relists += 1
        self.listed.set()
        return rv

    async def run(self) -> None:
        self.resource_version = await self.relist()
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                if await self._watch_once():
                    delay = RETRY_FIRST_SECONDS  # the server ended the watch in order: resume now
                    continue
            except Expired:
                log.info("watch %s: resourceVersion %s expired, listing again", self.path, self.resource_version)
                self.resource_version = await self.relist()
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
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind != "BOOKMARK":
            try:
                self.handler(kind, obj)
            except Exception:  # one object the view cannot take must not stop the stream
                log.exception("watch %s: handling %s %s failed", self.path, kind,
                              (obj.get("metadata") or {}).get("name"))
        if rv:
            self.resource_version = rv
