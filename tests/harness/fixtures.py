"""pytest fixtures for the real local control plane: `cluster` (session) and `namespace` (test).

`cluster` starts one LocalCluster for the whole session in a temporary state dir, or reuses a
running one when SLUICE_TEST_KUBECONFIG points at its kubeconfig (e.g. `hack/cluster up`, then
`SLUICE_TEST_KUBECONFIG=.cluster/kubeconfig pytest ...` for fast iterations). Missing binaries
skip the test with the reason, except under CI (env CI set), where they are an error: a CI that
silently skips the cluster layer proves nothing.

Import them from tests/conftest.py: `from tests.harness.fixtures import cluster, namespace`.
"""

from __future__ import annotations

import atexit
import os
import time
import uuid
from pathlib import Path

import pytest

from .cluster import ClusterAccess, LocalCluster
from .tools import HarnessError, ensure_bin_dir


def _bin_dir_or_skip() -> Path:
    try:
        return ensure_bin_dir()
    except HarnessError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the control plane cannot start: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The session's cluster: .kubeconfig, .bin_dir, .state_dir, .kubectl(...), .api_client()."""
    bin_dir = _bin_dir_or_skip()
    reuse = os.environ.get("SLUICE_TEST_KUBECONFIG")
    if reuse:
        kubeconfig = Path(reuse).resolve()
        yield ClusterAccess(kubeconfig, bin_dir, kubeconfig.parent)
        return
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), bin_dir)
    atexit.register(local.stop)  # also on KeyboardInterrupt paths that skip fixture teardown
    try:
        local.start()
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield local
    local.stop()


@pytest.fixture
def namespace(cluster, request):
    """A fresh namespace (with its default ServiceAccount ready); deleted afterwards, no waiting."""
    from kubernetes import client

    base = request.node.name.lower().replace("_", "-")
    name = "".join(ch for ch in base if ch.isalnum() or ch == "-")[:40].strip("-")
    name = f"{name}-{uuid.uuid4().hex[:6]}"
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=name, labels={"test.sluice.dev/namespace": "true"})))
        # Pods cannot be created before the ServiceAccount controller made `default`.
        deadline = time.monotonic() + 30
        while True:
            try:
                core.read_namespaced_service_account("default", name)
                break
            except client.ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    yield name
    with cluster.api_client() as api:
        try:
            client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
        except client.ApiException:
            pass
