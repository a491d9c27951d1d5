"""Fixtures for tests against the real control plane: CRDs, an operator per test, API helpers."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness.operator_proc import OperatorProcess
from tests.harness.sluice_api import Sluice

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
def start_operator(cluster, namespace, crds, tmp_path_factory):
    """start_operator(**settings) runs `sluice operator` watching this test's namespace."""
    started: list[OperatorProcess] = []
    log_dir = Path(cluster.state_dir) / "logs"

    def start(wait: bool = True, **settings) -> OperatorProcess:
        op = OperatorProcess(cluster.kubeconfig, namespace, log_dir, **settings)
        started.append(op)
        return op.start(wait=wait)

    yield start
    for op in started:
        op.stop()


def kubectl_json(cluster, *args) -> subprocess.CompletedProcess:
    return cluster.kubectl(*args, check=False)
