"""`sluice dashboard [-n NS | -A] [--port 8090]`: the live page on 127.0.0.1, with aiohttp.

Routes: `/` and `/x/<ns>/<name>` (the one self-contained page, page.py), `/events` (server-sent
events: the feed's JSON snapshot on connect and on every change), `/api/x/<ns>/<name>` (one
execution with its Events), `/artifacts/<bucket>/<key>` (S3 objects streamed, artifacts.py) and
`/trace/` (Playwright's trace viewer from the installed `playwright` package, when present).
It talks to the API with the user's kubeconfig (RBAC applies unchanged: it shows what the user may
list) and only ever lists, watches and gets: it never writes to the API, and it listens on
127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import errno
import json
import sys
from pathlib import Path

from aiohttp import web

from ..cli.connect import CliError, api_errors
from .artifacts import ArtifactStore
from .feed import Feed
from .model import execution_detail
from .page import HTML

HOST = "127.0.0.1"
HEARTBEAT_SECONDS = 15.0


def trace_viewer_dir() -> Path | None:
    """Playwright's trace viewer shipped in the python package (None when not installed)."""
    try:
        import playwright
    except ImportError:
        return None
    root = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for candidate in (root / "vite" / "traceViewer", root / "webpack" / "traceViewer"):
        if (candidate / "index.html").exists():
            return candidate
    return None


def _event_dict(ev) -> dict:
    when = ev.last_timestamp or ev.event_time or ev.first_timestamp or ev.metadata.creation_timestamp
    return {"type": ev.type, "reason": ev.reason, "message": ev.message, "count": ev.count or 1,
            "time": when.isoformat() if when else ""}


def build_app(conn, namespace: str | None, feed: Feed | None = None) -> web.Application:
    feed = feed or Feed(conn, namespace)
    store = ArtifactStore(feed)
    page = HTML.encode()
    app = web.Application()
    app["feed"] = feed

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q = feed.subscribe()
        try:
            while True:
                try:
                    data = await asyncio.wait_for(q.get(), HEARTBEAT_SECONDS)
                    await resp.write(b"event: snapshot\ndata: " + data + b"\n\n")
                except asyncio.TimeoutError:
                    await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            feed.unsubscribe(q)
        return resp

    async def detail(request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        if namespace is not None and ns != namespace:
            raise web.HTTPNotFound(text=f"{ns} is not the namespace this dashboard shows ({namespace})\n")
        loop = asyncio.get_running_loop()

        def fetch():
            obj = feed.execution(ns, name) or conn.get_execution(ns, name)
            with api_errors("list events", ns):
                items = conn.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
            evs = sorted((_event_dict(e) for e in items), key=lambda e: e["time"])
            return execution_detail(obj, evs)

        try:
            body = await loop.run_in_executor(None, fetch)
        except CliError as exc:
            return web.json_response({"error": str(exc)}, status=404 if "not found" in str(exc) else 502)
        return web.json_response(body, dumps=lambda o: json.dumps(o, default=str))

    app.router.add_get("/", index)
    app.router.add_get("/x/{ns}/{name}", index)
    app.router.add_get("/events", events)
    app.router.add_get("/api/x/{ns}/{name}", detail)
    app.router.add_get("/artifacts/{bucket}/{key:.+}", store.handle)
    viewer = trace_viewer_dir()
    if viewer is not None:
        app.router.add_static("/trace/", viewer)

    async def on_startup(app: web.Application) -> None:
        feed.start(asyncio.get_running_loop())

    app.on_startup.append(on_startup)
    return app


async def serve(conn, namespace: str | None, port: int) -> None:
    runner = web.AppRunner(build_app(conn, namespace), handle_signals=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, reuse_address=False)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {HOST} is in use: pass --port", 2) from None
        raise CliError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}", 2) from None
    scope = f"namespace {namespace}" if namespace else "all namespaces"
    print(f"sluice dashboard: http://{HOST}:{port}/ ({scope}, server {conn.server})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(conn, args) -> int:
    namespace = None if args.all_namespaces else conn.namespace
    try:
        asyncio.run(serve(conn, namespace, args.port))
    except KeyboardInterrupt:
        print("sluice dashboard: stopped", file=sys.stderr)
    return 0
