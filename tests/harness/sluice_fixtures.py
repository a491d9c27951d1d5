"""Fixtures for tests that run the operator against the real control plane: the CRDs, a `Sluice`
API helper for the test's namespace, and `start_operator(**settings)` (an operator per test)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .operator_proc import OperatorProcess
from .sluice_api import Sluice

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds(cluster):
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/testexecutions.sluice.dev", "crd/testqueues.sluice.dev")
    return True


@pytest.fixture
def sluice(cluster, namespace, crds) -> Sluice:
    return Sluice(cluster.api_client(), namespace)


@pytest.fixture
def start_operator(cluster, namespace, crds):
    """start_operator(**settings) runs `sluice operator` watching this test's namespace only."""
    started: list[OperatorProcess] = []
    log_dir = Path(cluster.state_dir) / "logs"

    def start(wait: bool = True, **settings) -> OperatorProcess:
        op = OperatorProcess(cluster.kubeconfig, namespace, log_dir, **settings)
        started.append(op)
        return op.start(wait=wait)

    yield start
    for op in started:
        op.stop()
