"""Builders of API-shaped objects for the pure unit tests (no cluster)."""
from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
_rv = itertools.count(100)


def next_rv() -> str:
    return str(next(_rv))


def ts(seconds: float = 0) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def execution(name: str, created: float = 0, ns: str = "ns", status: dict | None = None, generation: int = 1,
              **spec) -> dict:
    """A TestExecution as the API server returns it; an edit of its spec comes with a higher
    `generation`, as the API server bumps it (the view keeps a parsed spec while it stays)."""
    spec.setdefault("source", {"inline": {"files": {"test_a.py": "def test_a(): pass"}}})
    return {
        "apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": generation,
                     "creationTimestamp": ts(created), "resourceVersion": str(next(_rv))},
        "spec": spec, "status": status or {},
    }


def queue(name: str, ns: str = "ns", **spec) -> dict:
    return {"apiVersion": "sluice.dev/v1alpha1", "kind": "TestQueue",
            "metadata": {"name": name, "namespace": ns, "generation": 1, "resourceVersion": str(next(_rv))},
            "spec": spec}


def finished(job: dict, kind: str = "Complete", reason: str | None = None, message: str = "") -> dict:
    job = json.loads(json.dumps(job))
    job["metadata"]["resourceVersion"] = str(next(_rv))
    cond = {"type": kind, "status": "True"}
    if reason:
        cond["reason"] = reason
        cond["message"] = message
    job["status"] = {"conditions": [cond]}
    return job


def pod(job_name: str, exit_code: int, message: str | dict = "", ns: str = "ns", index: int = 0,
        conditions: list | None = None, reason: str | None = None) -> dict:
    if isinstance(message, dict):
        message = json.dumps(message)
    term = {"exitCode": exit_code, "message": message, "reason": reason or ("Completed" if exit_code == 0 else "Error")}
    return {
        "metadata": {"name": f"{job_name}-{index}-abcde", "namespace": ns, "labels": {"batch.kubernetes.io/job-name": job_name}},
        "status": {"phase": "Succeeded" if exit_code == 0 else "Failed", "conditions": conditions or [],
                   "containerStatuses": [{"name": "runner", "state": {"terminated": term}}]},
    }


def pacing_copy(memo):
    """A fresh planner memo with `memo`'s pacing of positions and estimates: what a full pass
    keeps between passes, so that it can be compared with an incremental one."""
    from sluice.planner import Memo
    return Memo(moved_at=copy.deepcopy(memo.moved_at), eta_check_at=copy.deepcopy(memo.eta_check_at),
                admissions=copy.deepcopy(memo.admissions), deep_written=copy.deepcopy(memo.deep_written))


def plan_summary(p) -> dict:
    """Everything a plan decides, comparable between an incremental and a full pass."""
    def wire(status):
        return json.dumps(status.wire(), sort_keys=True, default=str)

    return {
        "writes": sorted(f"{w.key}|{wire(w.status)}|{w.event}" for w in p.writes),
        "creates": sorted(f"{c.key}|{c.job['metadata']['name']}|{wire(c.status)}" for c in p.creates),
        "deletes": sorted(f"{j.namespace}/{j.name}" for j in p.deletes),
        "fetch_pods": sorted(f"{j.namespace}/{j.name}" for j in p.fetch_pods),
        "check_config_maps": sorted(map(str, p.check_config_maps)),
        "sources": sorted(str(k) for k, _ in p.sources),
        "waiting": p.waiting,
        "position_writes": p.position_writes,
    }
