"""Start-up and periodic re-lists: rebuild the view from the API and drop what a watch missed.

A list is read page by page (bounded memory after a restart); an object absent from it is
dropped from the view unless it is younger than the list (created after it was taken) or is
one of the operator's own assertions still in flight (a Job being created, a status being
written), which the API may simply not show yet.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Collection

from .client import ApiError, Kube, all_namespaces

log = logging.getLogger("sluice.dispatch")

Key = tuple[str, str]
LIST_RETRY_SECONDS = 2.0


async def relist(kube: Kube, path: str, ns: str | None, store: dict, handler: Callable[[str, dict], None],
                 params: dict | None = None, protect: Callable[[], Collection[Key]] | None = None,
                 drop: bool = True) -> str:
    """Feeds every listed object to `handler` as MODIFIED, then (with `drop`) the missing ones as
    DELETED; returns the list's resourceVersion (where a watch continues from). A 400 (a selector
    this API server does not support) is raised; anything else is listed again."""
    url = path if ns else all_namespaces(path)
    while True:
        seen: set[Key] = set()
        rv = ""
        try:
            async for items, rv in kube.list_pages(url, params):
                for obj in items:
                    meta = obj["metadata"]
                    seen.add((meta["namespace"], meta["name"]))
                    handler("MODIFIED", obj)
                del items
            break
        except Exception as exc:  # an expired continue token or the API away: list again
            if isinstance(exc, ApiError) and exc.status == 400:
                raise
            log.warning("list %s failed (%s); retrying", url, exc)
            await asyncio.sleep(LIST_RETRY_SECONDS)
    try:
        list_rv = int(rv)
    except ValueError:
        list_rv = 0
    if not drop:
        return rv
    protected = protect() if protect else ()  # read after the list: creates begun meanwhile count
    for key in [k for k in store if k not in seen and (ns is None or k[0] == ns)]:
        if key in protected:
            continue
        if list_rv and getattr(store[key], "resource_version", 0) > list_rv:
            continue  # created after the list was taken
        handler("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
    return rv
