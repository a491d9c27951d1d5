"""The dashboard's three writes, each the CLI's own: cancel an execution (`spec.cancel: true`, as
`sluice cancel`), rerun it (`sluice rerun`'s naming and copy: `cli.rerun`), pause or resume a
queue (`spec.paused`). They run with the dashboard user's kubeconfig, so the API server's RBAC
decides; the page offers them only where `permissions.Permissions` says they are allowed, each
behind a confirm.

A POST must carry the header `X-Sluice-Action` and, when the browser sends one, an `Origin` equal to
the page's own: another site open in the same browser cannot make the user's browser act
(a cross-origin request with a custom header needs a CORS preflight, which is never answered).
It never deletes anything and never changes any other field.
"""
from __future__ import annotations

from kubernetes import client

from ..api.common import API_GROUP, API_VERSION
from ..api.execution import TERMINAL_PHASES
from ..cli.connect import CliError, api_errors
from ..cli.rerun import create_rerun

ACTION_HEADER = "X-Sluice-Action"
TERMINAL = {p.value for p in TERMINAL_PHASES}


def same_origin(origin: str | None, host: str | None) -> bool:
    """A request from the page itself: no Origin (not a browser fetch) or http(s)://<Host> (pure)."""
    if not origin:
        return True
    return bool(host) and origin in (f"http://{host}", f"https://{host}")


def cancel(conn, namespace: str, name: str) -> str:
    obj = conn.get_execution(namespace, name)
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if phase in TERMINAL:
        return f"testexecution/{name} already finished ({phase}); nothing to cancel"
    with api_errors("patch testexecution", namespace, name):
        conn.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions", name,
                                                   {"spec": {"cancel": True}})
    return f"testexecution/{name} cancel requested (was {phase})"


def rerun(conn, namespace: str, name: str) -> str:
    """`sluice rerun NAME`: the same spec under the next free `<first run>-r<N>`; returns its name."""
    return create_rerun(conn, namespace, name)


def set_paused(conn, namespace: str, queue: str, paused: bool) -> str:
    with api_errors("patch testqueue", namespace, queue):
        try:
            conn.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testqueues", queue,
                                                       {"spec": {"paused": paused}})
        except client.ApiException as exc:
            if exc.status == 404:
                raise CliError(f"testqueue {queue} does not exist in namespace {namespace}") from None
            raise
    return f"testqueue/{queue} {'paused' if paused else 'resumed'}"
