"""`sluice operator`: kopf watches, the dispatcher, the leader Lease and the HTTP endpoints
(/healthz, /readyz, /metrics) in one asyncio loop, and the admission webhook on its own TLS port."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from .api.common import ANNOTATION_QUEUED_CAPACITY, ANNOTATION_RUNNING_CAPACITY, ANNOTATION_WATCHED_NAMESPACES
from .api.settings import Settings
from .dispatch import Dispatcher
from .handlers import register
from .kube.client import Kube
from .leader import LeaderElector, default_lease_namespace
from .metrics import Metrics
from .notify.sender import Notifier
from .notify.webhook_url import WebhookUrls
from .progress.relay import ProgressRelay
from .schedule.controller import ScheduleController
from .webhook.server import AdmissionWebhook, WebhookCertError, load_tls, serve_webhook

log = logging.getLogger("sluice.operator")


class StartupError(Exception):
    """What keeps the operator from starting, as one sentence that says what to change."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"SLUICE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise StartupError(f"bad setting: {problems}") from None


async def _serve(metrics: Metrics, dispatcher: Dispatcher, settings: Settings) -> web.AppRunner:
    async def healthz(_):
        return web.Response(text="ok")

    async def readyz(_):
        return web.Response(text="ready" if dispatcher.ready else "listing", status=200 if dispatcher.ready else 503)

    async def metrics_handler(_):
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    runner = web.AppRunner(web.Application())
    app = runner.app
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    await runner.setup()
    for port, setting in {settings.metrics_port: "SLUICE_METRICS_PORT", settings.health_port: "SLUICE_HEALTH_PORT"}.items():
        if port:
            try:
                await web.TCPSite(runner, "0.0.0.0", port).start()
            except OSError as exc:
                await runner.cleanup()
                raise StartupError(f"cannot listen on port {port} ({exc.strerror}): another process uses it; "
                                   f"set {setting} to a free port") from None
    return runner


async def _serve_webhook(webhook: AdmissionWebhook, settings: Settings) -> web.AppRunner | None:
    """The admission webhook on its own TLS port, or None when it is off or has no certificate."""
    if not settings.webhook_port:
        return None
    try:
        context = load_tls(settings.webhook_cert_dir)
    except WebhookCertError as exc:
        raise StartupError(str(exc)) from None
    if context is None:
        log.info("no tls.crt/tls.key in SLUICE_WEBHOOK_CERT_DIR (%s): the admission webhook is off "
                 "(queues are still bounded by Rejected/QueueFull)", settings.webhook_cert_dir)
        return None
    try:
        runner = await serve_webhook(webhook, settings.webhook_port, context)
    except OSError as exc:
        raise StartupError(f"cannot listen on port {settings.webhook_port} ({exc.strerror}): another process uses "
                           f"it; set SLUICE_WEBHOOK_PORT to a free port") from None
    log.info("admission webhook serving HTTPS on port %d", settings.webhook_port)
    return runner


def connect_redis(settings: Settings):
    """A redis.asyncio client for the progress relay, or None when no live channel is set up."""
    if not settings.redis_url:
        log.info("no SLUICE_REDIS_URL: live progress is off (everything else works)")
        return None
    import redis.asyncio as redis  # only needed with a live channel

    try:
        return redis.from_url(settings.redis_url, password=settings.redis_password or None,
                              socket_timeout=5, socket_connect_timeout=5)
    except ValueError as exc:
        raise StartupError(f"bad SLUICE_REDIS_URL ({exc}): use redis://host:port or rediss://host:port") from None


async def run_operator(kubeconfig: str | None = None, settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    try:
        kube = await Kube.connect(kubeconfig)
    except Exception as exc:  # no kubeconfig, a bad one, no in-cluster token
        raise StartupError(f"cannot load Kubernetes credentials ({exc}): set KUBECONFIG or --kubeconfig") from None
    dispatcher = Dispatcher(kube, settings)
    elector = LeaderElector(kube, settings.lease_namespace or default_lease_namespace(), settings.lease_name,
                            settings.lease_duration_seconds, settings.lease_renew_seconds,
                            on_start=dispatcher.on_leadership, on_resume=dispatcher.wake,
                            annotations={ANNOTATION_RUNNING_CAPACITY: str(settings.running_capacity),
                                         ANNOTATION_QUEUED_CAPACITY: str(settings.queued_capacity),
                                         ANNOTATION_WATCHED_NAMESPACES: ",".join(settings.watch_namespaces)})
    dispatcher.is_leader = elector.is_leader
    metrics = Metrics(lambda: dispatcher.view, settings, elector.is_leader, lambda: dispatcher.act.writes)
    dispatcher.set_metrics(metrics)
    redis_client = connect_redis(settings)
    dispatcher.plug(ProgressRelay(redis_client, dispatcher.write_progress, dispatcher._spawn))
    notifier = Notifier(dispatcher, WebhookUrls(kube), dispatcher._spawn, metrics)
    dispatcher.plug(notifier)
    dispatcher.listen(notifier.noticed)
    schedules = ScheduleController(kube, settings, dispatcher.events, dispatcher._spawn, dispatcher.wake)
    dispatcher.plug(schedules)
    registry = kopf.OperatorRegistry()
    register(registry, dispatcher, schedules=schedules)
    try:
        http = await _serve(metrics, dispatcher, settings)
    except StartupError:
        await kube.close()
        raise
    webhook = AdmissionWebhook(lambda: dispatcher.view, settings, lambda: dispatcher.ready and elector.is_leader(),
                               dispatcher.events, metrics.webhook_reviewed)
    try:
        webhook_http = await _serve_webhook(webhook, settings)
    except StartupError:
        await http.cleanup()
        await kube.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    namespaces = settings.watch_namespaces
    tasks = [
        asyncio.create_task(kopf.operator(registry=registry, standalone=True, clusterwide=not namespaces,
                                          namespaces=namespaces, stop_flag=stop), name="kopf"),
        asyncio.create_task(dispatcher.run(), name="dispatcher"),
        asyncio.create_task(elector.run(), name="leader"),
    ]
    log.info("sluice operator started: running capacity %d, queued capacity %d, namespaces %s",
             settings.running_capacity, settings.queued_capacity, namespaces or "all")
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for t in done:
        if t is not stopper and not t.cancelled() and t.exception() is not None:
            log.error("task %s failed: %r", t.get_name(), t.exception())
    stop.set()
    await notifier.drain()  # POSTs in flight get their answers recorded (while still the leader)
    await elector.release()
    for t in tasks:
        t.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)
    await http.cleanup()
    if webhook_http is not None:
        await webhook_http.cleanup()
    await kube.close()
    if redis_client is not None:
        await redis_client.aclose()
