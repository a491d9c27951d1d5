"""`sluice cancel NAME`: sets `spec.cancel: true`, the one spec field that may change after admission."""
from __future__ import annotations

from ..api.execution import TERMINAL_PHASES

from ..api.common import API_GROUP, API_VERSION
from .connect import api_errors

TERMINAL = {p.value for p in TERMINAL_PHASES}


def run(conn, args) -> int:
    obj = conn.get_execution(conn.namespace, args.name)
    phase = (obj.get("status") or {}).get("phase")
    if phase in TERMINAL:
        print(f"testexecution/{args.name} already finished ({phase}); nothing to cancel")
        return 0
    with api_errors("patch testexecution", conn.namespace, args.name):
        conn.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, conn.namespace, "testexecutions",
                                                   args.name, {"spec": {"cancel": True}})
    print(f"testexecution/{args.name} cancel requested (was {phase or 'Pending'})")
    return 0
