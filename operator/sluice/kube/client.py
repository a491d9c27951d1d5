"""A thin async Kubernetes client for the operator's own reads and writes.

It carries the operator's own watch streams (`kube.watch`) and its reads and writes (create
Jobs, patch status, lists, Leases, Events) over one pooled aiohttp session, with raw JSON in and
out, decoded and encoded by orjson (no generated model classes on the hot path). Credentials come from kubernetes_asyncio's loaders,
so kubeconfig, in-cluster tokens (refreshed) and exec plugins all work.
"""
from __future__ import annotations

import contextlib
import json
import ssl
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yarl
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client import Configuration

from ..api.common import API_GROUP, API_VERSION


KEEPALIVE_SECONDS = 60.0


class ApiError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str):
        self.status, self.body = status, body
        try:
            self.reason = json.loads(body).get("reason", "")
            self.text = json.loads(body).get("message", body)
        except ValueError:
            self.reason, self.text = "", body
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.text[:300]}")

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


def resource_version(obj: dict) -> int:
    """An object's resourceVersion as a number (0 when absent): versions are cluster-wide and
    grow, so comparing them orders two versions of one object."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def segment(value: str) -> str:
    """One path segment, percent-quoted with nothing safe: `/`, `?`, `#` and `%` cannot leave it,
    and a segment of only dots is quoted too (`%2E%2E`), so no client or proxy resolves it as a
    step up. Names come from user specs (e.g. source.configMap.name), so a path is only ever built
    from segments, never by joining raw strings; requests send it as is (`encoded=True`)."""
    if not value:
        raise ValueError("an empty name is not a path segment")
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if set(value) == {"."} else quoted


def api_path(prefix: str, *segments: str | None) -> str:
    """`prefix` (a fixed API root such as /api/v1) followed by the quoted non-None segments."""
    return prefix + "".join("/" + segment(s) for s in segments if s is not None)


def _group_root(group: str, version: str) -> str:
    return f"/apis/{segment(group)}/{segment(version)}"


def execution_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    return api_path(_group_root(API_GROUP, API_VERSION), "namespaces", namespace, "testexecutions", name, sub)


def queue_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    return api_path(_group_root(API_GROUP, API_VERSION), "namespaces", namespace, "testqueues", name, sub)


def environment_path(name: str | None = None, sub: str | None = None) -> str:
    """TestEnvironments are cluster-scoped."""
    return api_path(_group_root(API_GROUP, API_VERSION), "testenvironments", name, sub)


def namespace_path(name: str | None = None) -> str:
    return api_path("/api/v1", "namespaces", name)


def job_path(namespace: str, name: str | None = None) -> str:
    return api_path(_group_root("batch", "v1"), "namespaces", namespace, "jobs", name)


def core_path(namespace: str, plural: str, name: str | None = None, sub: str | None = None) -> str:
    return api_path("/api/v1", "namespaces", namespace, plural, name, sub)


def lease_path(namespace: str, name: str | None = None) -> str:
    return api_path(_group_root("coordination.k8s.io", "v1"), "namespaces", namespace, "leases", name)


def all_namespaces(path_template: str) -> str:
    """`/apis/g/v/namespaces/X/plural` -> `/apis/g/v/plural` for cluster-wide lists.

    Takes a path built by the helpers above (segments already quoted), so the split on `/`
    cannot be fooled by a name."""
    head, _, tail = path_template.partition("/namespaces/")
    return head + "/" + tail.split("/", 1)[1]


class Kube:
    """One session, many requests; create with `await Kube.connect()`."""

    def __init__(self, cfg: Configuration, session: aiohttp.ClientSession):
        self.cfg, self.session = cfg, session
        self.host = cfg.host.rstrip("/")

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, pool: int = 64) -> "Kube":
        cfg = Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException:
            await kconfig.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else ssl.create_default_context()
        if cfg.cert_file and cfg.key_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        if not cfg.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        # Idle connections are kept 60 s (aiohttp's default is 15 s): a burst of writes after a quiet
        # spell then reuses them instead of paying a TLS handshake each (seen in the issue 17
        # profile); kube-apiserver closes idle HTTP/1.1 connections only after 90 s.
        conn = aiohttp.TCPConnector(ssl=ctx, limit=pool, keepalive_timeout=KEEPALIVE_SECONDS)
        session = aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60))
        return cls(cfg, session)

    def connection_info(self):
        """The same credentials, in the shape kopf's login handler wants."""
        import kopf

        token = (self.cfg.api_key or {}).get("BearerToken") or (self.cfg.api_key or {}).get("authorization")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        return kopf.ConnectionInfo(
            server=self.host, ca_path=self.cfg.ssl_ca_cert, insecure=not self.cfg.verify_ssl,
            scheme="Bearer" if token else None, token=token or None,
            certificate_path=self.cfg.cert_file or None, private_key_path=self.cfg.key_file or None,
        )

    async def close(self) -> None:
        await self.session.close()

    async def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        auth = await self.cfg.auth_settings()
        if "BearerToken" in auth:
            headers["Authorization"] = auth["BearerToken"]["value"]
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                      content_type: str = "application/json") -> dict:
        data = orjson.dumps(body) if body is not None else None
        headers = await self._headers(content_type if data is not None else None)
        async with self.session.request(method, self._url(path), data=data, params=params, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise ApiError(resp.status, raw.decode(errors="replace"), method, path)
            return orjson.loads(raw) if raw else {}

    def _url(self, path: str) -> yarl.URL:
        # encoded=True: the path's quoting (see `segment`) reaches the server untouched.
        return yarl.URL(self.host + path, encoded=True)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, params: dict | None = None,
                     timeout: aiohttp.ClientTimeout | None = None):
        """The open response of a long request (a watch), for the caller to read as it comes."""
        headers = await self._headers()
        async with self.session.request(method, self._url(path), params=params, headers=headers,
                                        timeout=timeout) as resp:
            yield resp

    async def get(self, path: str, params: dict | None = None) -> dict:
        return await self.request("GET", path, params=params)

    async def list_pages(self, path: str, params: dict | None = None, page: int = 500):
        """Yields (items, resourceVersion of the list) page by page, so that a large list is never
        held whole in memory (the operator's peak RSS after a restart is one page, not all)."""
        query = dict(params or {}, limit=str(page))
        rv = ""
        while True:
            result = await self.get(path, query)
            meta = result.get("metadata") or {}
            rv = rv or meta.get("resourceVersion", "")
            yield result.get("items") or [], rv
            if not meta.get("continue"):
                return
            query["continue"] = meta["continue"]

    async def list_all(self, path: str, params: dict | None = None, page: int = 500) -> tuple[list[dict], str]:
        """Every item of a list (paginated); returns (items, resourceVersion of the list)."""
        items: list[dict] = []
        rv = ""
        async for chunk, rv in self.list_pages(path, params, page):
            items.extend(chunk)
        return items, rv

    async def create(self, path: str, body: dict) -> dict:
        return await self.request("POST", path, body)

    async def merge_patch(self, path: str, body: dict) -> dict:
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")

    async def delete(self, path: str, propagation: str = "Background") -> dict:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        return await self.request("DELETE", path, body)
