"""Reads a notification's webhook URL from the Secret its queue names, cached briefly.

The URL is a credential (a Slack webhook URL is enough to post to the channel): it is read with
a plain GET of the one Secret (the operator may not list Secrets), kept in memory for
CACHE_SECONDS so a burst of outcomes costs one read, and never logged or written anywhere. A
missing Secret or key, or a value that is not an http(s) URL, is a `UrlProblem` whose text says
what to fix without the value. Nothing here decides about delivery.
"""
from __future__ import annotations

import base64
import binascii
import time

from ..api.queue import SecretKeyRef
from ..kube.client import ApiError, Kube, core_path
from .policy import url_problem

CACHE_SECONDS = 30.0


class UrlProblem(Exception):
    """The URL cannot be had or used; the text is one line for the status and the Event."""


class WebhookUrls:
    def __init__(self, kube: Kube):
        self.kube = kube
        self.cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}  # (ns, secret) -> (read at, data)

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        """The URL, or UrlProblem. Other API errors (the API server away) propagate: worth a retry."""
        data = await self._data(namespace, ref.name)
        where = f"Secret {ref.name!r} key {ref.key!r}"
        if ref.key not in data:
            raise UrlProblem(f"{where}: the Secret has no such key")
        try:
            url = base64.b64decode(data[ref.key], validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise UrlProblem(f"{where}: the value is not UTF-8 text") from None
        problem = url_problem(url)
        if problem:
            raise UrlProblem(f"{where}: the value {problem}")
        return url

    async def _data(self, namespace: str, name: str) -> dict[str, str]:
        now = time.monotonic()
        hit = self.cache.get((namespace, name))
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            obj = await self.kube.get(core_path(namespace, "secrets", name))
        except ApiError as exc:
            if exc.not_found:
                raise UrlProblem(f"Secret {name!r} not found in namespace {namespace!r}") from None
            if exc.status == 403:
                raise UrlProblem(f"the operator may not read Secret {name!r} in namespace {namespace!r} "
                                 "(its RBAC needs get on secrets)") from None
            raise
        data = obj.get("data") or {}
        if len(self.cache) > 1000:
            self.cache.clear()
        self.cache[(namespace, name)] = (now, data)
        return data
