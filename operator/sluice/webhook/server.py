"""The HTTPS endpoint the API server calls for TestExecution creates and priority changes.

A create is judged by `decision.admit_create` on the dispatcher's view, and only by the replica
that holds the Lease with a listed view: a standby or a starting replica allows (as the API
server does with `failurePolicy: Ignore` when no replica answers), and the leader's
`Rejected/QueueFull` remains the backstop. A priority change is always allowed; the webhook is
where the requesting user is known, so it posts the `PriorityChanged` Event naming them (not on
dry runs: the configuration says `sideEffects: NoneOnDryRun`).

It never writes an execution and never blocks on the API: the Event goes out in the background,
within the per-execution Event budget.
"""
from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Callable

from aiohttp import web
from pydantic import ValidationError

from ..api.settings import Settings
from ..cache.view import ClusterView
from ..kube.events import EventPoster
from .decision import ALLOW, Verdict, admit_create, priority_message, priority_move
from .review import AdmissionRequest, AdmissionReview, review_response

log = logging.getLogger("sluice.webhook")

WEBHOOK_PATH = "/validate-testexecutions"  # the chart's ValidatingWebhookConfiguration calls this path
CERT_FILE, KEY_FILE = "tls.crt", "tls.key"  # the keys of a kubernetes.io/tls Secret, mounted as files


class WebhookCertError(Exception):
    """The webhook's certificate cannot be used, as one sentence that says what to change."""


def load_tls(cert_dir: str) -> ssl.SSLContext | None:
    """The server's TLS context from `cert_dir`/tls.crt and tls.key; None when they are not there."""
    directory = Path(cert_dir) if cert_dir else None
    if directory is None or not (directory / CERT_FILE).is_file() or not (directory / KEY_FILE).is_file():
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
    except (ssl.SSLError, OSError) as exc:
        raise WebhookCertError(f"cannot load the webhook certificate from {directory} ({exc}): "
                               f"{CERT_FILE} and {KEY_FILE} must be a PEM certificate and its key") from None
    return context


class AdmissionWebhook:
    def __init__(self, view: Callable[[], ClusterView], settings: Settings, decides: Callable[[], bool],
                 events: EventPoster, reviewed: Callable[[str, str], None] = lambda operation, verdict: None):
        """`decides()`: this replica holds the Lease and has listed its view; `reviewed(operation,
        verdict)` counts each answer (allowed, denied, standby)."""
        self.view, self.settings, self.decides, self.events = view, settings, decides, events
        self.reviewed = reviewed

    def review(self, body: dict) -> dict:
        """The AdmissionReview answer to `body` (raises ValidationError on a malformed review)."""
        review = AdmissionReview.model_validate(body)
        req = review.request
        verdict = self._judge(req)
        return review_response(review.api_version, req.uid, verdict.allowed, verdict.code, verdict.reason,
                               verdict.message)

    def _judge(self, req: AdmissionRequest) -> Verdict:
        if req.operation == "CREATE":
            if not self.decides():
                self.reviewed(req.operation, "standby")
                return ALLOW
            verdict = admit_create(self.view(), self.settings, req.namespace, req.object)
            self.reviewed(req.operation, "allowed" if verdict.allowed else "denied")
            if not verdict.allowed:
                log.info("denied creating %s/%s: %s", req.namespace, req.name or "(generated name)", verdict.message)
            return verdict
        self.reviewed(req.operation, "allowed")
        if req.operation == "UPDATE":
            moved = priority_move(req.old_object, req.object)
            if moved is not None and not req.dry_run:
                meta = (req.object or {}).get("metadata") or {}
                message = priority_message(*moved, req.user_info.username)
                log.info("%s/%s: %s", req.namespace, req.name, message)
                self.events.post_for(req.namespace, req.name, meta.get("uid", ""), "Normal", "PriorityChanged",
                                     message)
        return ALLOW

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            return web.json_response(self.review(body))
        except (ValueError, ValidationError) as exc:  # not JSON, or not an AdmissionReview
            first = str(exc).splitlines()[0]
            return web.Response(status=400, text=f"expected an admission.k8s.io/v1 AdmissionReview: {first}\n")


async def serve_webhook(webhook: AdmissionWebhook, port: int, context: ssl.SSLContext) -> web.AppRunner:
    """Serves `webhook` over HTTPS on `port` (all addresses); raises OSError when the port is taken."""
    app = web.Application(client_max_size=8 * 1024 * 1024)  # an execution with large inline files
    app.router.add_post(WEBHOOK_PATH, webhook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port, ssl_context=context).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
