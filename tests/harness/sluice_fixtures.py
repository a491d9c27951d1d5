"""Fixtures for tests that run the operator against the real control plane: the CRDs, a `Sluice`
API helper for the test's namespace, and `start_operator(**settings)` (an operator per test)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .operator_proc import OperatorProcess
from .sluice_api import Sluice

ROOT = Path(__file__).resolve().parents[2]
# Most status writes one execution may get in any test: a life is about 3 to 5 writes, plus
# about log2(its first queue position) + 3 position and estimate writes while it waits.
MAX_STATUS_WRITES_PER_EXECUTION = 60


@pytest.fixture(scope="session")
def crds(cluster):
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/testexecutions.sluice.dev", "crd/testqueues.sluice.dev",
                    "crd/testenvironments.sluice.dev", "crd/testschedules.sluice.dev")
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
        writes = op.status_writes_max()
        op.stop()
        # A write storm shows as one execution written many times (issue 11: 392 in 10 s).
        assert writes is None or writes <= MAX_STATUS_WRITES_PER_EXECUTION, (
            f"an execution got {writes} status writes (bound {MAX_STATUS_WRITES_PER_EXECUTION}): a write loop?")
