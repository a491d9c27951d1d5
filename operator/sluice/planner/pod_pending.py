"""The rule for runner pods that never start: after the queue's grace, the attempt fails.

A pod of the attempt's Job that is still Pending `podPendingGraceSeconds` after it was created,
and says why it cannot start (unschedulable, image pull failing, a missing Secret: see
`cache.pods.stuck_words`), fails the attempt with reason `PodPendingTooLong` and the pod's own
words; the attempt is then an infrastructure failure, retried with backoff like any other.
A pod that is merely slow (scheduling, pulling a large image) is left alone.

Pure: the pods and the clock are arguments; it never reads the view and never does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from ..cache.pods import PodRecord

REASON_POD_PENDING_TOO_LONG = "PodPendingTooLong"


@dataclass(frozen=True)
class PendingVerdict:
    stuck: PodRecord | None = None  # a pod past its grace that says it cannot start: fail the attempt
    recheck_at: datetime | None = None  # otherwise, when the next pod's grace runs out


def judge_pending_pods(pods: Iterable[PodRecord], grace_seconds: int, now: datetime) -> PendingVerdict:
    """Fail when a pod is past its grace and stuck (first by name); else when to look again."""
    grace = timedelta(seconds=grace_seconds)
    recheck: datetime | None = None
    for pod in sorted(pods, key=lambda p: p.name):
        due = pod.created + grace
        if due > now:
            recheck = due if recheck is None or due < recheck else recheck
        elif pod.words is not None:
            return PendingVerdict(stuck=pod)
    return PendingVerdict(recheck_at=recheck)


def pending_message(pod: PodRecord, grace_seconds: int) -> str:
    """The attempt's message: which pod, the grace, and the pod's own words."""
    return f"runner pod {pod.name} not started within podPendingGraceSeconds ({grace_seconds}s): {pod.words}"
