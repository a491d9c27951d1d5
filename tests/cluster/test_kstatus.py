"""kstatus, the health library Flux and other GitOps clients use with no configuration, reads
executions right in every phase: the real library (sigs.k8s.io/cli-utils v0.37.2, built from the
Go module proxy into a small helper) on real objects written by the operator."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster

HELPER = Path(__file__).resolve().parents[1] / "harness" / "kstatus"


@pytest.fixture(scope="session")
def kstatus() -> Path:
    """Builds the helper once per source version (cached outside the repo, like the other tools)."""
    digest = hashlib.sha256(b"".join((HELPER / f).read_bytes() for f in ("main.go", "go.mod", "go.sum"))).hexdigest()[:12]
    out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sluice" / f"kstatus-{digest}"
    if not out.exists():
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=HELPER, check=True,
                       env=dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0"))
    return out


def verdicts(helper: Path, objects: list[dict]) -> dict[str, str]:
    out = subprocess.run([str(helper)], input=json.dumps(objects), capture_output=True, text=True, check=True)
    return {o["metadata"]["name"]: v["status"] for o, v in zip(objects, json.loads(out.stdout))}


def test_kstatus_reads_every_phase_and_a_late_cancel(cluster, sluice, start_operator, kstatus):
    start_operator(running_capacity=10)
    sluice.create_queue("narrow", {"runningCapacity": 1})
    infra = json.dumps({"v": 1, "outcome": "error", "errorClass": "InfrastructureError", "message": "net down"})
    specs = {
        "passes": {"runner": kwok_runner("1s")},
        "fails": {"runner": kwok_runner("1s", exit_code=1)},
        "times-out": {"timeoutSeconds": 2, "runner": kwok_runner("60s")},
        "rejected": {"shards": 20, "runner": kwok_runner("1s")},
        "cancelled": {"queue": "narrow", "runner": kwok_runner("1s")},
        "runs": {"queue": "narrow", "runner": kwok_runner("120s")},
        "waits": {"queue": "narrow", "runner": kwok_runner("1s")},
        "backs-off": {"retries": {"limit": 2, "backoff": {"initialSeconds": 120}},
                      "runner": kwok_runner("1s", exit_code=3, message=infra)},
    }
    sluice.create("runs", specs.pop("runs"))
    sluice.wait_phase("runs", "Running")
    for name, spec in specs.items():
        sluice.create(name, spec)
    sluice.wait_phase("cancelled", "Queued")
    sluice.patch("cancelled", {"cancel": True})
    expected = {"passes": ("Succeeded", "Current"), "fails": ("Failed", "Failed"),
                "times-out": ("TimedOut", "Failed"), "rejected": ("Rejected", "Failed"),
                "cancelled": ("Cancelled", "Failed"), "runs": ("Running", "InProgress"),
                "waits": ("Queued", "InProgress"), "backs-off": ("BackingOff", "InProgress")}
    for name, (phase, _) in expected.items():
        sluice.wait_phase(name, phase, timeout=60)
    objects = [sluice.get(name) for name in expected]
    assert verdicts(kstatus, objects) == {name: v for name, (_, v) in expected.items()}

    # A late spec.cancel bumps the generation of a finished execution: it must be acknowledged.
    sluice.patch("passes", {"cancel": True})
    done = sluice.wait("passes", lambda o: o["status"].get("observedGeneration") == o["metadata"]["generation"] == 2,
                       what="generation 2 acknowledged")
    assert done["status"]["phase"] == "Succeeded"
    assert verdicts(kstatus, [done]) == {"passes": "Current"}
    wait = cluster.kubectl("wait", "--for=condition=Complete", "--timeout=20s", f"-n={sluice.ns}", "tx/passes",
                           check=False)
    assert wait.returncode == 0, wait.stderr
