"""`sluice dashboard [-n NS | -A] [--port 8090]`: the live page on 127.0.0.1, with aiohttp.

Routes: `/` and `/x/<ns>/<name>` (the one self-contained page, page.py), `/events` (server-sent
events: the feed's JSON snapshot on connect and on every change), `/api/x/<ns>/<name>` (one
execution with its Events), `/api/stats` (pages connected, watch requests, snapshots built), `/artifacts/<bucket>/<key>` (S3 objects streamed, artifacts.py) and
`/console/<ns>/<name>` (SSE: the live console from Redis, live.py), `/trace/` (Playwright's trace viewer from the installed `playwright` package, when present), and
three POSTs, `/api/x/<ns>/<name>/cancel`, `/api/x/<ns>/<name>/rerun`, `/api/q/<ns>/<queue>/pause`
(body `{"paused": bool}`), offered on the page only where the user's RBAC allows them (actions.py,
permissions.py).
It talks to the API with the user's kubeconfig (RBAC applies unchanged: it shows what the user may
list, and `-A` for a user who may not list every namespace shows the kubeconfig's namespace, saying
so). It listens on 127.0.0.1 unless `--host` says otherwise (the chart's in-cluster Deployment,
which runs `--read-only` behind an authenticating ingress); `--read-only` offers no action at all.
"""
from __future__ import annotations

import asyncio
import errno
import json
import sys
from pathlib import Path

from aiohttp import web

from kubernetes import client

from ..api.common import API_GROUP
from ..cli.connect import CliError, api_errors
from . import actions
from .artifacts import ArtifactStore
from .feed import Feed
from .model import execution_detail
from .page import HTML
from .permissions import Permissions

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


LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def local_host_header(host: str | None) -> bool:
    """The Host header names this machine (pure). A page of another site whose name was made to
    resolve to 127.0.0.1 (DNS rebinding) sends its own name and is refused."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOCAL_NAMES


def narrow_scope(conn, namespace: str | None) -> tuple[str | None, list[str]]:
    """`-A` for a user who may not list executions in every namespace becomes the kubeconfig's
    namespace (with a note for the page); anything else stays as asked."""
    if namespace is not None:
        return namespace, []
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(verb="watch", group=API_GROUP, resource="testexecutions")))
    try:
        answer = client.AuthorizationV1Api(conn.api_client).create_self_subject_access_review(review)
    except Exception:  # noqa: BLE001 - no answer: try every namespace, the watch will say
        return None, []
    if answer.status and answer.status.allowed:
        return None, []
    return conn.namespace, [f"you may not watch executions in every namespace: showing namespace {conn.namespace}"]


def build_app(conn, namespace: str | None, feed: Feed | None = None, read_only: bool = False,
              notes: list[str] | None = None, local: bool = True) -> web.Application:
    """`local`: listening on 127.0.0.1, so every request must name this machine in Host."""
    feed = feed or Feed(conn, namespace, Permissions(conn.api_client, read_only), notes)
    store = ArtifactStore(feed)
    page = HTML.encode()
    @web.middleware
    async def only_local(request: web.Request, handler):
        if local and not local_host_header(request.headers.get("Host")):
            return web.Response(status=421, text="this dashboard answers only to 127.0.0.1 and localhost\n")
        return await handler(request)

    app = web.Application(middlewares=[only_local])
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

    def _in_scope(ns: str) -> None:
        if namespace is not None and ns != namespace:
            raise web.HTTPNotFound(text=f"{ns} is not the namespace this dashboard shows ({namespace})\n")

    async def act(request: web.Request, ns: str, action: str, fn) -> web.Response:
        """Runs one write after the checks; the answer is one line either way."""
        if request.headers.get(actions.ACTION_HEADER) != "1" or not actions.same_origin(
                request.headers.get("Origin"), request.headers.get("Host")):
            return web.json_response({"error": "refused: not a request from this dashboard's page"}, status=403)
        _in_scope(ns)
        if not feed.permissions.allows(ns, action):
            return web.json_response({"error": f"you may not {action} in namespace {ns}"}, status=403)
        try:
            message = await asyncio.get_running_loop().run_in_executor(None, fn)
        except CliError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"message": message})

    async def cancel(request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        return await act(request, ns, "cancel", lambda: actions.cancel(conn, ns, name))

    async def rerun(request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]

        def go() -> str:
            new = actions.rerun(conn, ns, name)
            return f"testexecution/{new} created (rerun of {name}, same spec)"
        return await act(request, ns, "rerun", go)

    async def pause(request: web.Request) -> web.Response:
        ns, queue = request.match_info["ns"], request.match_info["queue"]
        try:
            paused = (await request.json())["paused"]
        except Exception:  # noqa: BLE001 - any malformed body
            return web.json_response({"error": 'body must be {"paused": true|false}'}, status=400)
        if not isinstance(paused, bool):
            return web.json_response({"error": 'body must be {"paused": true|false}'}, status=400)
        return await act(request, ns, "pause", lambda: actions.set_paused(conn, ns, queue, paused))

    async def console(request: web.Request) -> web.StreamResponse:
        """The execution's live console: the lines so far, then each as it arrives (SSE `line`)."""
        ns, name = request.match_info["ns"], request.match_info["name"]
        _in_scope(ns)
        if not feed.live.enabled:
            return web.json_response({"error": "no live console: start the dashboard with SLUICE_REDIS_URL "
                                               "(and SLUICE_REDIS_PASSWORD) set"}, status=404)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        past, q = feed.live.subscribe((ns, name))
        try:
            for line in past:
                await resp.write(b"event: line\ndata: " + json.dumps(line).encode() + b"\n\n")
            while True:
                try:
                    line = await asyncio.wait_for(q.get(), HEARTBEAT_SECONDS)
                    await resp.write(b"event: line\ndata: " + json.dumps(line).encode() + b"\n\n")
                except asyncio.TimeoutError:
                    await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            feed.live.unsubscribe((ns, name), q)
        return resp

    async def stats(request: web.Request) -> web.Response:
        """The dashboard's own cost: pages connected, watch requests made, snapshots built."""
        return web.json_response({"pages": len(feed.clients), "watchStarts": feed.watch_starts,
                                  "snapshots": feed.snapshots})

    app.router.add_get("/api/stats", stats)
    app.router.add_get("/console/{ns}/{name}", console)
    app.router.add_post("/api/x/{ns}/{name}/cancel", cancel)
    app.router.add_post("/api/x/{ns}/{name}/rerun", rerun)
    app.router.add_post("/api/q/{ns}/{queue}/pause", pause)
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


async def serve(conn, namespace: str | None, port: int, host: str = HOST, read_only: bool = False) -> None:
    namespace, notes = await asyncio.get_running_loop().run_in_executor(None, narrow_scope, conn, namespace)
    runner = web.AppRunner(build_app(conn, namespace, read_only=read_only, notes=notes, local=host == HOST),
                           handle_signals=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=False)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is in use: pass --port", 2) from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    scope = f"namespace {namespace}" if namespace else "all namespaces"
    extra = ", read-only" if read_only else ""
    print(f"sluice dashboard: http://{host}:{port}/ ({scope}{extra}, server {conn.server})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(conn, args) -> int:
    namespace = None if args.all_namespaces else conn.namespace
    try:
        asyncio.run(serve(conn, namespace, args.port, getattr(args, "host", None) or HOST,
                          bool(getattr(args, "read_only", False))))
    except KeyboardInterrupt:
        print("sluice dashboard: stopped", file=sys.stderr)
    return 0
