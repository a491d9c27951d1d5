"""Which transitions of an execution are worth a Kubernetes Event.

An Event is a write to the API server, and most executions only ever take the ordinary course:
admitted, ran, passed. That course is already told by the status (conditions `Admitted`,
`Running`, `Complete` and `Succeeded` with their reasons, messages and transition times, and
`status.attempts`) and by `kubectl get tx`, so under `SLUICE_EVENTS=notable` (the default) it
posts no Event. Every transition out of that course keeps its Event: rejections, failures,
timeouts, retries, cancels, a missing queue, and every Warning. `SLUICE_EVENTS=all` posts one
for every transition, as before. This module only answers the question; it never posts, and it
never decides what a transition is (`planner`, `status.transitions`).
"""
from __future__ import annotations

from ..api.settings import EventsMode

# Reasons of the ordinary course, each already said by a condition (status/conditions.py):
# `Admitted` (an attempt's Job exists: conditions Admitted and Running True) and `TestsPassed`
# (the end with a pass: Complete and Succeeded True).
ORDINARY_REASONS = frozenset({"Admitted", "TestsPassed"})


def worth_posting(type_: str, reason: str, mode: EventsMode) -> bool:
    """True when an execution's Event of this type ("Normal"/"Warning") and reason is posted."""
    return mode == "all" or type_ != "Normal" or reason not in ORDINARY_REASONS
