"""`sluice bump NAME --priority P`: re-prioritize a waiting execution ("job priority update").

It only patches `spec.priority`; whether that is allowed is the API server's answer, not this
command's: the CRD lets the priority change only while the execution waits (Pending, Queued,
BackingOff), so a running or finished one is refused by the schema, and the schema's own
message is shown as one line. The operator re-orders the queue and records the change in an
Event on the execution.
"""
from __future__ import annotations

import json
import re

from kubernetes import client

from ..api.common import API_GROUP, API_VERSION
from ..api.execution import Priority
from .connect import CliError, api_errors

EXIT_REFUSED = 2
# "Invalid value: " (and, from older API servers, the offending value "object": ) before a rule's message
_INVALID_PREFIX = re.compile(r'^Invalid value: (?:"[^"]*": )?')


def schema_refusal(body) -> str:
    """The rule messages of a 422 answer, in one line (pure); its message when it has no causes."""
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    causes = [_INVALID_PREFIX.sub("", c.get("message") or "") for c in (parsed.get("details") or {}).get("causes") or []]
    text = "; ".join(c for c in causes if c) or parsed.get("message") or str(body or "refused")
    return " ".join(text.split())


def run(conn, args) -> int:
    ns = conn.namespace
    obj = conn.get_execution(ns, args.name)
    before = (obj.get("spec") or {}).get("priority") or Priority.normal.value
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if before == args.priority:
        print(f"testexecution/{args.name} already has priority {before} ({phase}); nothing to change")
        return 0
    refusal = None
    with api_errors("patch testexecution", ns, args.name):
        try:
            conn.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, ns, "testexecutions", args.name,
                                                       {"spec": {"priority": args.priority}})
        except client.ApiException as exc:
            if exc.status != 422:  # RBAC, not found, connection: the common one-line answers
                raise
            refusal = schema_refusal(exc.body)
    if refusal is not None:
        now = (conn.get_execution(ns, args.name).get("status") or {}).get("phase") or "Pending"  # it may have moved on
        raise CliError(f"testexecution/{args.name} is {now}: {refusal}", EXIT_REFUSED)
    print(f"testexecution/{args.name} priority {before} -> {args.priority} ({phase}); the operator re-orders its queue")
    return 0
