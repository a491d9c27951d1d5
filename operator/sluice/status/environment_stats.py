"""TestEnvironment.status from the view: holders from unfinished runner Jobs, waiters from queues.

Pure: reads the view, never writes. Holders are the same Jobs the planner counts (their
`sluice.dev/environments` annotation), so what `kubectl get tenv` shows is what admission used.
"""
from __future__ import annotations

from ..api.environment import TestEnvironmentStatus
from ..api.execution import Phase
from ..cache.view import ClusterView

HOLDERS_SHOWN = 20  # status.holders lists at most this many (inUse counts them all)


def environment_statuses(view: ClusterView) -> dict[str, TestEnvironmentStatus]:
    """Every known environment's status, computed in one walk over Jobs and waiting executions."""
    out = {name: TestEnvironmentStatus(observed_generation=env.generation) for name, env in view.environments.items()}
    for job in view.slot_holders():
        for name in job.environments:
            st = out.get(name)
            if st is not None:
                st.in_use += 1
                if len(st.holders) < HOLDERS_SHOWN:
                    st.holders.append(f"{job.namespace}/{job.execution}")
    for key in view.active:
        rec = view.executions.get(key)
        if rec is None or rec.spec is None or not rec.spec.environments:
            continue
        if rec.status.phase in (Phase.Queued, Phase.BackingOff):
            for name in rec.spec.environments:
                if name in out:
                    out[name].waiting += 1
    for st in out.values():
        st.holders.sort()
    return out
