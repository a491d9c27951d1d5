"""`sluice logs NAME [--attempt N]`: the runner pod logs of the latest (or a given) attempt.

Runner pods carry `sluice.dev/execution` and `sluice.dev/attempt`; a sharded attempt has one pod
per shard, printed one after the other under a header. Finished Jobs (and their pods) are
removed after the operator's `ttlSecondsAfterFinished`, so old attempts may have no logs left.
"""
from __future__ import annotations

import json
import sys

from .connect import CliError, api_errors


def pod_order_key(pod) -> tuple:
    """Shard index first (from the Indexed Job's annotation), then creation time, then name."""
    ann = pod.metadata.annotations or {}
    try:
        index = int(ann.get("batch.kubernetes.io/job-completion-index", "0"))
    except ValueError:
        index = 0
    return (index, pod.metadata.creation_timestamp or 0, pod.metadata.name)


def run(conn, args) -> int:
    obj = conn.get_execution(conn.namespace, args.name)
    attempt = args.attempt or (obj.get("status") or {}).get("attempt")
    if not attempt:
        raise CliError(f"{args.name} has not started an attempt yet "
                       f"(phase {(obj.get('status') or {}).get('phase') or 'Pending'})", 1)
    selector = f"sluice.dev/execution={args.name},sluice.dev/attempt={attempt}"
    with api_errors("list pods", conn.namespace):
        pods = conn.core.list_namespaced_pod(conn.namespace, label_selector=selector).items
    if not pods:
        raise CliError(f"no runner pods left for attempt {attempt} of {args.name} "
                       "(finished Jobs are deleted after ttlSecondsAfterFinished)", 1)
    pods.sort(key=pod_order_key)
    from kubernetes.client import ApiException

    read = 0
    for i, pod in enumerate(pods):
        if len(pods) > 1:
            print(f"{'' if i == 0 else chr(10)}==> pod {pod.metadata.name} <==")
        try:
            text = conn.core.read_namespaced_pod_log(pod.metadata.name, conn.namespace, container="runner")
        except ApiException as exc:
            if exc.status in (401, 403):
                with api_errors("read pod logs", conn.namespace, pod.metadata.name):
                    raise
            print(f"sluice logs: no logs for pod {pod.metadata.name}: {_reason(exc)}", file=sys.stderr)
            continue
        read += 1
        print(text, end="" if text.endswith("\n") or not text else "\n")
    return 0 if read else 1


def _reason(exc) -> str:
    try:
        return json.loads(exc.body).get("message", "")[:300]
    except (TypeError, ValueError):
        return f"HTTP {exc.status}"
