"""The busy kinds the operator watches with its own streams (`kube.watch`), and into what.

TestExecutions, runner Jobs (label `sluice.dev/execution`) and unstarted runner pods (that label
and `status.phase=Pending`, selected by the API server: a pod that starts leaves the selection,
which the watch reports as DELETED), in each watched namespace or cluster-wide. The low-rate
kinds (queues, environments, namespaces, schedules) stay with kopf (handlers.py).

Executions are listed unfinished first (`status.phase` is a selectable field of the CRD): the
operator is ready once it knows what waits and runs; the finished ones, which can be tens of
thousands with 20 KB suites each, come in the background, phase by phase (issue 17: 50,000
finished executions, restart to ready).

Never decides, never writes: each stream hands its events to the dispatcher's `on_*` handler.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..api.common import LABEL_EXECUTION
from ..api.execution import TERMINAL_PHASES
from ..cache.pods import RUNNER_POD_FIELD_SELECTOR
from ..kube.client import Kube, core_path, execution_path, job_path
from ..kube.watch import WatchStream

if TYPE_CHECKING:
    from .loop import Dispatcher


_TERMINAL = sorted(p.value for p in TERMINAL_PHASES)
UNFINISHED = ",".join(f"status.phase!={phase}" for phase in _TERMINAL)  # no phase yet counts too
FINISHED_BY_PHASE = [f"status.phase={phase}" for phase in _TERMINAL]  # field selectors cannot say "or"


def hot_streams(kube: Kube, namespaces: list[str] | None, dispatcher: "Dispatcher") -> list[WatchStream]:
    view, assumed = dispatcher.view, dispatcher.assumed
    streams: list[WatchStream] = []
    for ns in namespaces or [None]:
        template = ns or "_"  # a cluster-wide stream drops the namespace part (all_namespaces)
        streams += [
            WatchStream(kube, job_path(template), ns, view.jobs, dispatcher.on_job,
                        {"labelSelector": LABEL_EXECUTION}, protect=assumed.protected_jobs),
            WatchStream(kube, execution_path(template), ns, view.executions, dispatcher.on_execution,
                        protect=assumed.protected_executions, ready_selector=UNFINISHED,
                        rest_selectors=FINISHED_BY_PHASE),
            WatchStream(kube, core_path(template, "pods"), ns, view.runner_pods.by_key, dispatcher.on_pod,
                        {"labelSelector": LABEL_EXECUTION, "fieldSelector": RUNNER_POD_FIELD_SELECTOR}),
        ]
    return streams
