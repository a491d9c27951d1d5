"""Kubernetes-style conditions: lastTransitionTime changes only when the status flips."""
from __future__ import annotations

from datetime import datetime

from ..api.execution import Condition, Phase, TestExecutionStatus

CONDITION_TYPES = ("Admitted", "Running", "Complete", "Succeeded")


def set_condition(
    conditions: list[Condition], type_: str, status: bool, reason: str, message: str, now: datetime, generation: int
) -> list[Condition]:
    value = "True" if status else "False"
    out = []
    found = False
    for c in conditions:
        if c.type != type_:
            out.append(c)
            continue
        found = True
        out.append(Condition(
            type=type_, status=value, reason=reason, message=message,
            last_transition_time=c.last_transition_time if c.status == value else now,
            observed_generation=generation,
        ))
    if not found:
        out.append(Condition(type=type_, status=value, reason=reason, message=message,
                             last_transition_time=now, observed_generation=generation))
    out.sort(key=lambda c: CONDITION_TYPES.index(c.type) if c.type in CONDITION_TYPES else 99)
    return out


def apply_phase_conditions(st: TestExecutionStatus, now: datetime, generation: int) -> None:
    """Sets the four conditions from the phase, reason and message already in `st`."""
    phase, reason, message = st.phase, st.reason or "", st.message or ""
    conds = st.conditions
    admitted = st.started_at is not None or phase in (Phase.Running, Phase.BackingOff)
    if phase == Phase.Rejected:
        conds = set_condition(conds, "Admitted", False, reason, message, now, generation)
    elif admitted:
        conds = set_condition(conds, "Admitted", True, "Admitted", "admitted to run", now, generation)
    else:
        conds = set_condition(conds, "Admitted", False, reason or "Queued", message, now, generation)
    running = phase == Phase.Running
    conds = set_condition(conds, "Running", running, reason if running else (reason or "NotRunning"),
                          message if running else "", now, generation)
    terminal = phase is not None and phase.terminal
    conds = set_condition(conds, "Complete", terminal, reason if terminal else "InProgress",
                          message if terminal else "", now, generation)
    if terminal:
        conds = set_condition(conds, "Succeeded", phase == Phase.Succeeded, reason, message, now, generation)
    st.conditions = conds
