"""`sluice queue clear [--queue Q] [--yes]`: cancel every waiting execution of a queue (admin only).

Waiting means `Pending`, `Queued` or `BackingOff` (and not already cancelled); running and
finished executions are left alone. Each is cancelled the way `sluice cancel` does it
(`spec.cancel: true`), with its listed resourceVersion, so one that started meanwhile is seen
again and left running rather than cancelled by a stale decision.

Who may clear a queue is RBAC's answer (`patch` on testexecutions): the command asks the API
server first (a SelfSubjectAccessReview) and says so in one line instead of asking a question it
cannot act on. It asks for a confirmation that says how many; `--yes` skips it for scripts, and
without a terminal it refuses rather than guess. It never deletes anything.
"""
from __future__ import annotations

import sys
from collections import Counter

from kubernetes import client

from ..api.common import API_GROUP, API_VERSION, DEFAULT_QUEUE
from .connect import CliError, api_errors

WAITING_PHASES = ("Pending", "Queued", "BackingOff")
CONFLICT_TRIES = 5  # a waiter's status moves (positions): re-read and try again this often
EXIT_ABORTED = 1


def is_waiting(obj: dict) -> bool:
    """Waiting to start an attempt and not cancelled yet (pure); no status yet counts as Pending."""
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    return phase in WAITING_PHASES and not (obj.get("spec") or {}).get("cancel")


def waiting_in(executions: list[dict], queue: str) -> list[dict]:
    """The waiting executions of `queue` (pure)."""
    return [o for o in executions if ((o.get("spec") or {}).get("queue") or DEFAULT_QUEUE) == queue and is_waiting(o)]


def forbidden(namespace: str) -> CliError:
    return CliError(f"you may not cancel executions in namespace {namespace} "
                    f"(RBAC: patch on testexecutions.{API_GROUP})")


def question(waiting: list[dict], queue: str, namespace: str) -> str:
    """The confirmation prompt (pure): how many, and in which phases."""
    phases = Counter((o.get("status") or {}).get("phase") or "Pending" for o in waiting)
    detail = ", ".join(f"{phases[p]} {p}" for p in WAITING_PHASES if phases[p])
    noun = "execution" if len(waiting) == 1 else "executions"
    return f"cancel {len(waiting)} waiting {noun} of queue {queue} in namespace {namespace} ({detail})? [y/N] "


def summary(cancelled: int, skipped: int, queue: str, namespace: str) -> str:
    noun = "execution" if cancelled == 1 else "executions"
    line = f"cancelled {cancelled} waiting {noun} of queue {queue} in namespace {namespace}"
    if skipped:
        line += f"; {skipped} started, ended or changed meanwhile and {'was' if skipped == 1 else 'were'} left alone"
    return line


def may_patch(conn, namespace: str) -> bool | None:
    """The API server's answer to "may I patch testexecutions here?"; None when it cannot say."""
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb="patch", group=API_GROUP,
                                                        resource="testexecutions")))
    try:
        answer = client.AuthorizationV1Api(conn.api_client).create_self_subject_access_review(review)
    except Exception:  # noqa: BLE001 - no answer: the patch itself will tell
        return None
    return bool(answer.status and answer.status.allowed)


def _list(conn, namespace: str, queue: str) -> list[dict]:
    """The queue's executions, filtered by the API server (selectableFields) where it can."""
    with api_errors("list testexecutions", namespace):
        try:
            items = conn.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions",
                                                              field_selector=f"spec.queue={queue}")["items"]
        except client.ApiException as exc:
            if exc.status != 400:  # 400: a cluster older than selectableFields (Kubernetes 1.32)
                raise
            items = conn.list_executions(namespace)
    return waiting_in(items, queue)


def _cancel(conn, namespace: str, obj: dict) -> bool:
    """Cancels one waiter unless it stopped waiting; False when it was left alone."""
    name = obj["metadata"]["name"]
    for _ in range(CONFLICT_TRIES):
        if not is_waiting(obj):
            return False
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "spec": {"cancel": True}}
        with api_errors("cancel testexecution", namespace, name):
            try:
                conn.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions",
                                                           name, body)
                return True
            except client.ApiException as exc:
                if exc.status == 403:
                    raise forbidden(namespace) from None
                if exc.status == 404:
                    return False
                if exc.status != 409:
                    raise
                try:
                    obj = conn.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace,
                                                                   "testexecutions", name)
                except client.ApiException as again:
                    if again.status == 404:
                        return False
                    raise
    return False


def _confirmed(prompt: str) -> bool:
    print(prompt, end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def run(conn, args) -> int:
    ns, queue = conn.namespace, args.queue or DEFAULT_QUEUE
    if may_patch(conn, ns) is False:
        raise forbidden(ns)
    waiting = _list(conn, ns, queue)
    if not waiting:
        missing = queue != DEFAULT_QUEUE and conn.get_queue(ns, queue) is None
        print(f"{'no TestQueue ' + queue if missing else 'queue ' + queue} in namespace {ns} "
              f"{'and no execution waits for it' if missing else 'has no waiting executions'}: nothing to cancel")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"would cancel {len(waiting)} waiting executions of queue {queue} in namespace {ns}, "
                           "but there is no terminal to confirm on: pass --yes", 2)
        if not _confirmed(question(waiting, queue, ns)):
            print("nothing cancelled")
            return EXIT_ABORTED
    cancelled = sum(_cancel(conn, ns, obj) for obj in waiting)
    print(summary(cancelled, len(waiting) - cancelled, queue, ns))
    return 0
