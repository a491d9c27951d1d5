"""`sluice logs NAME [--attempt N] [-f]`: the runner pod logs of the latest (or a given) attempt.

With `-f` it follows the console live: from the attempt's Redis progress streams when
SLUICE_REDIS_URL (and SLUICE_REDIS_PASSWORD, a reader's credential) are set, until every shard
ended; otherwise from the runner pod's log, as `kubectl logs -f`.

Runner pods carry `sluice.dev/execution` and `sluice.dev/attempt`; a sharded attempt has one pod
per shard, printed one after the other under a header. Finished Jobs (and their pods) are
removed after the operator's `ttlSecondsAfterFinished`, so old attempts may have no logs left.
"""
from __future__ import annotations

import json
import os
import sys
import time

from .connect import CliError, api_errors


def pod_order_key(pod) -> tuple:
    """Shard index first (from the Indexed Job's annotation), then creation time, then name."""
    ann = pod.metadata.annotations or {}
    try:
        index = int(ann.get("batch.kubernetes.io/job-completion-index", "0"))
    except ValueError:
        index = 0
    return (index, pod.metadata.creation_timestamp or 0, pod.metadata.name)


FOLLOW_BLOCK_MS = 2000


def follow_streams(conn, args, obj: dict, attempt: int) -> int:
    """Prints the console lines of every shard's stream as they come, until all shards ended."""
    import redis

    from ..progress.relay import stream_keys

    shards = int((obj.get("spec") or {}).get("shards") or 1)
    keys = stream_keys(conn.namespace, args.name, attempt, shards)
    try:
        r = redis.from_url(os.environ["SLUICE_REDIS_URL"], password=os.environ.get("SLUICE_REDIS_PASSWORD") or None,
                           socket_timeout=FOLLOW_BLOCK_MS / 1000 + 5)
        cursor = {k: "0-0" for k in keys}
        ended: set[str] = set()
        while len(ended) < len(keys):
            for stream, entries in r.xread(cursor, block=FOLLOW_BLOCK_MS, count=500) or []:
                name = stream.decode()
                for entry_id, fields in entries:
                    cursor[name] = entry_id.decode()
                    kind = fields.get(b"type", b"").decode()
                    if kind == "console":
                        print(fields.get(b"line", b"").decode(errors="replace"), flush=True)
                    elif kind == "end":
                        ended.add(name)
    except redis.RedisError as exc:
        raise CliError(f"cannot follow the progress stream in Redis ({exc}): check SLUICE_REDIS_URL and "
                       "SLUICE_REDIS_PASSWORD, or unset them to follow the pod log") from None
    return 0


def follow_pod(conn, pod) -> int:
    """`kubectl logs -f` for the runner container, once the pod has started."""
    from kubernetes.client import ApiException

    for _ in range(120):
        try:
            stream = conn.core.read_namespaced_pod_log(pod.metadata.name, conn.namespace, container="runner",
                                                       follow=True, _preload_content=False)
            break
        except ApiException as exc:
            if exc.status != 400:  # 400: the container is still creating
                raise
            time.sleep(1)
    else:
        raise CliError(f"pod {pod.metadata.name} did not start within 2 minutes", 1)
    for chunk in stream.stream():
        sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
    return 0


def run(conn, args) -> int:
    obj = conn.get_execution(conn.namespace, args.name)
    attempt = args.attempt or (obj.get("status") or {}).get("attempt")
    if not attempt:
        raise CliError(f"{args.name} has not started an attempt yet "
                       f"(phase {(obj.get('status') or {}).get('phase') or 'Pending'})", 1)
    if getattr(args, "follow", False) and os.environ.get("SLUICE_REDIS_URL"):
        return follow_streams(conn, args, obj, attempt)
    selector = f"sluice.dev/execution={args.name},sluice.dev/attempt={attempt}"
    with api_errors("list pods", conn.namespace):
        pods = conn.core.list_namespaced_pod(conn.namespace, label_selector=selector).items
    if not pods:
        raise CliError(f"no runner pods left for attempt {attempt} of {args.name} "
                       "(finished Jobs are deleted after ttlSecondsAfterFinished)", 1)
    pods.sort(key=pod_order_key)
    from kubernetes.client import ApiException

    if getattr(args, "follow", False):
        with api_errors("follow pod logs", conn.namespace, pods[0].metadata.name):
            return follow_pod(conn, pods[0])

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
