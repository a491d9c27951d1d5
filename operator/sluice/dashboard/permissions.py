"""Which actions the dashboard's user may take, per namespace, as the API server answers
(SelfSubjectAccessReview), cached so the page never asks on its own.

Why: a button the user may not use is noise and a 403 after a confirm is worse; the API server's
own answer (not a guess from role names) decides. Every POST is still checked by the API server
itself, so a stale cache can only show a button that then fails with one line. It never grants
anything and never writes to the API except the reviews themselves (which change nothing).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from kubernetes import client

from ..api.common import API_GROUP

CACHE_SECONDS = 60.0

# action -> (verb, resource) the API server must allow in the namespace
ACTIONS: dict[str, tuple[str, str]] = {
    "cancel": ("patch", "testexecutions"),   # spec.cancel: true
    "rerun": ("create", "testexecutions"),   # a copy named <first>-r<N>
    "pause": ("patch", "testqueues"),        # spec.paused, both ways
}


def allowed_actions(answers: dict[str, bool]) -> list[str]:
    """The actions whose every review said yes, in a fixed order (pure)."""
    return [a for a in ACTIONS if answers.get(a)]


@dataclass
class _Entry:
    actions: list[str]
    at: float


class Permissions:
    """namespace -> allowed actions, each answer kept CACHE_SECONDS."""

    def __init__(self, api_client, read_only: bool = False):
        self.api = api_client
        self.read_only = read_only
        self.cache: dict[str, _Entry] = {}
        self.lock = threading.Lock()

    def _review(self, namespace: str, verb: str, resource: str) -> bool:
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=API_GROUP,
                                                            resource=resource)))
        try:
            answer = client.AuthorizationV1Api(self.api).create_self_subject_access_review(review)
        except Exception:  # noqa: BLE001 - no answer (even reviews forbidden): no button
            return False
        return bool(answer.status and answer.status.allowed)

    def refresh(self, namespaces: set[str], now: float | None = None) -> bool:
        """Reviews the namespaces with no fresh answer; True when any namespace's actions changed."""
        now = time.monotonic() if now is None else now
        changed = False
        for ns in sorted(namespaces):
            with self.lock:
                entry = self.cache.get(ns)
            if entry is not None and now - entry.at < CACHE_SECONDS:
                continue
            actions = [] if self.read_only else allowed_actions(
                {a: self._review(ns, verb, res) for a, (verb, res) in ACTIONS.items()})
            with self.lock:
                changed |= entry is None or entry.actions != actions
                self.cache[ns] = _Entry(actions, now)
        return changed

    def snapshot(self) -> dict[str, list[str]]:
        with self.lock:
            return {ns: list(e.actions) for ns, e in self.cache.items()}

    def allows(self, namespace: str, action: str) -> bool:
        with self.lock:
            entry = self.cache.get(namespace)
        return entry is not None and action in entry.actions
