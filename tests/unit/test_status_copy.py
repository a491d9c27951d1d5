"""`TestExecutionStatus.working_copy` shares what transitions only replace, so a plan can never
change a status the view still holds: proven here through the real planner over every phase
(joins, positions, admissions, retries with backoff, successes, failures, a timeout in the
queue), by comparing each held status with its dump taken before the pass."""
from __future__ import annotations

import random

from sluice.api.execution import AttemptRecord, Condition, TestExecutionStatus
from sluice.api.settings import Settings
from sluice.status.transitions import close_attempt, to_running

from .builders import T0, execution
from .test_reconcile import Sim


def test_a_transition_on_a_working_copy_leaves_the_original_alone():
    st = TestExecutionStatus(attempts=[AttemptRecord(attempt=1, job_name="a-a1", started_at=T0)],
                             conditions=[Condition(type="Admitted", status="True")])
    before = st.model_dump()
    copy = st.working_copy()
    close_attempt(copy, 1, "Failed", "TestsFailed", T0, "1 failed", 1)
    to_running(copy, 2, "a-a2", "attempt 2 started", T0, T0, 1)
    assert st.model_dump() == before and copy.model_dump() != before


def test_no_pass_changes_a_status_the_view_holds():
    rng = random.Random(7)
    sim = Sim(Settings(running_capacity=3, queued_capacity=200))
    made = 0
    for t in range(60):
        for _ in range(rng.choice([0, 1, 3])):
            made += 1
            spec = {"retries": {"limit": rng.choice([0, 2]), "backoff": {"initialSeconds": 3}}}
            if rng.random() < 0.1:
                spec["queueTimeoutSeconds"] = 5
            sim.add(execution(f"e{made:03d}", created=t, **spec))
        running = [k[1] for k, j in sim.view.jobs.items() if j.occupies]
        if running and rng.random() < 0.6:
            sim.finish(rng.choice(running), rng.choice([0, 1]))
        held = {k: (rec.status, rec.status.model_dump()) for k, rec in sim.view.executions.items()}
        sim.step(t * 2.0)
        for key, (status, dump) in held.items():
            assert status.model_dump() == dump, key
    phases = {rec.status.phase for rec in sim.view.executions.values()}
    assert len(phases) >= 3, phases
