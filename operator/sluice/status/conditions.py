"""Kubernetes-style conditions: lastTransitionTime changes only when the status flips.

Two families, both derived from the phase so they can never disagree with it:
- Sluice's own: `Admitted`, `Running`, `Complete` (any end), `Succeeded` (a pass);
- the kstatus convention (sigs.k8s.io/cli-utils kstatus, which Flux, `kubectl wait` and other
  GitOps clients read with no configuration): `Reconciling` True while the execution waits or
  runs, `Stalled` True when it ended without passing (Failed, TimedOut, Rejected, Cancelled), and
  `Ready` True once it Succeeded. With `observedGeneration`, kstatus then says InProgress,
  Failed or Current.
"""
from __future__ import annotations

from datetime import datetime

from ..api.execution import Condition, Phase, TestExecutionStatus

CONDITION_TYPES = ("Admitted", "Running", "Complete", "Succeeded", "Ready", "Reconciling", "Stalled")


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
    succeeded = phase == Phase.Succeeded
    conds = set_condition(conds, "Ready", succeeded, reason or "Pending", message, now, generation)
    conds = set_condition(conds, "Reconciling", not terminal, reason or "Pending",
                          message if not terminal else "", now, generation)
    conds = set_condition(conds, "Stalled", terminal and not succeeded, reason if terminal else "InProgress",
                          message if terminal and not succeeded else "", now, generation)
    st.conditions = conds


def acknowledge_generation(st: TestExecutionStatus, now: datetime, generation: int) -> None:
    """The operator saw `generation` (say a late `spec.cancel` on a finished execution) and it
    changes nothing: say so, or `kubectl wait` and kstatus would wait for it forever."""
    st.observed_generation = generation
    apply_phase_conditions(st, now, generation)
