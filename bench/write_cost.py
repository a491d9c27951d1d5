#!/usr/bin/env python3
"""What one status write costs kube-apiserver in CPU, by kind of object (prints figures, asserts nothing).

Why: bench/dispatch.py shows that on 2 cores Sluice's throughput is bound by the machine's CPU,
most of it kube-apiserver's, and that Sluice writes a TestExecution status about 6.7 times per
execution where the bare script writes it twice. This measures the price of one such write, so
the figure per execution can be read as writes x price:

  testexecution  a merge patch of a TestExecution's whole status (as the operator writes it:
                 every field, absent ones null) through /status, on an object like the bench's
  conditions_map the same on a copy of the TestExecution CRD whose status.conditions is a list
                 map keyed by type (as it was until the sixth round) instead of atomic: the
                 price of per-condition managed fields
  schemaless     the same object and patch on a CRD without a schema (preserve unknown fields):
                 the share of the TestExecution schema (OpenAPI validation, CEL rules, typed
                 managed fields) in the price
  configmap      a merge patch of a ConfigMap of the same size: a built-in kind's price

The kinds alternate in rounds (drifting load lands on all), each round a few hundred writes from
16 threads; kube-apiserver's CPU comes from /proc (the process listening on the kubeconfig's
port, so it must run on this machine).

    python bench/write_cost.py [--kubeconfig K] [--objects 200] [--rounds 3] [--json]
Without --kubeconfig it starts its own local control plane (hack/build-tools binaries).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from kubernetes import client, config  # noqa: E402

from bench.dispatch import control_plane, cpu_seconds, kubectl, subprocess_crds  # noqa: E402
from sluice.api.execution import TestExecutionStatus  # noqa: E402
from sluice.dispatch import status_patch  # noqa: E402
from tests.harness.sluice_api import SIMPLE_SOURCE, kwok_runner  # noqa: E402

SCHEMALESS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "writecosts.bench.sluice.dev"},
    "spec": {"group": "bench.sluice.dev", "scope": "Namespaced",
             "names": {"kind": "WriteCost", "plural": "writecosts", "singular": "writecost"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}
KINDS = {"testexecution": ("sluice.dev", "v1alpha1", "testexecutions", "TestExecution"),
         "conditions_map": ("conditionsmap.bench.sluice.dev", "v1alpha1", "testexecutions", "TestExecution"),
         "schemaless": ("bench.sluice.dev", "v1", "writecosts", "WriteCost")}


def conditions_map_crd() -> dict:
    """crds/testexecution.yaml in another group, status.conditions a list map keyed by type."""
    crd = yaml.safe_load((ROOT / "crds" / "testexecution.yaml").read_text())
    group = KINDS["conditions_map"][0]
    crd["metadata"] = {"name": f"testexecutions.{group}"}
    crd["spec"]["group"] = group
    crd["spec"]["names"] = {k: v for k, v in crd["spec"]["names"].items() if k not in ("shortNames", "categories")}
    for version in crd["spec"]["versions"]:
        conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
        conditions |= {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    return crd


def status(k: int) -> dict:
    """A queued execution's status as the operator writes it, moved on by `k` (a new position)."""
    at = "2026-11-24T13:12:18.578246Z"
    conditions = [{"type": t, "status": s, "reason": "Queued", "message": f"position {k + 1}", "observedGeneration": 1,
                   "lastTransitionTime": at}
                  for t, s in (("Admitted", "False"), ("Running", "False"), ("Complete", "False"),
                               ("Succeeded", "False"), ("Ready", "False"), ("Reconciling", "True"),
                               ("Stalled", "False"))]
    body = {"phase": "Queued", "reason": "Queued", "message": f"position {k + 1} in queue default",
            "queuePosition": k + 1, "queuedAt": at, "estimatedStartAt": at, "observedGeneration": 1,
            "attempts": [], "notifications": [], "conditions": conditions}
    return status_patch(TestExecutionStatus.model_validate(body))  # the operator's own patch


def apiserver_pid(host: str) -> int:
    """The kube-apiserver process serving `host`'s port on this machine."""
    port = urlparse(host).port
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"kube-apiserver") and f"--secure-port={port}".encode() in argv:
                return int(entry)
    raise SystemExit(f"write_cost: no kube-apiserver with --secure-port={port} runs on this machine")


class Kinds:
    def __init__(self, api_client: client.ApiClient, namespace: str, objects: int):
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ns, self.names = namespace, [f"w-{i:04d}" for i in range(objects)]

    def create(self) -> None:
        spec = {"source": SIMPLE_SOURCE, "runner": kwok_runner("1s")}
        size = len(json.dumps(spec)) + len(json.dumps(status(0)))

        def one(name: str) -> None:
            for group, version, plural, kind in KINDS.values():
                self.custom.create_namespaced_custom_object(group, version, self.ns, plural, {
                    "apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": name}, "spec": spec})
            self.core.create_namespaced_config_map(self.ns, {"metadata": {"name": name}, "data": {"filler": "x" * size}})
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, self.names))

    def write(self, kind: str, name: str, k: int) -> None:
        if kind == "configmap":
            self.core.patch_namespaced_config_map(name, self.ns, {"data": {"message": f"position {k + 1}"}})
            return
        group, version, plural, _ = KINDS[kind]
        self.custom.patch_namespaced_custom_object_status(group, version, self.ns, plural, name, status(k))


def measure(kinds: Kinds, kind: str, pid: int, writes_each: int) -> float:
    """kube-apiserver CPU milliseconds per write, `writes_each` writes to every object."""
    before = cpu_seconds(pid, digits=3)

    def one(name: str) -> None:
        for k in range(writes_each):
            kinds.write(kind, name, k)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, kinds.names))
    return (cpu_seconds(pid, digits=3) - before) * 1000 / (len(kinds.names) * writes_each)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--writes", type=int, default=3, help="writes to each object per kind and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cluster, kubeconfig = control_plane(args.kubeconfig)
    try:
        config.load_kube_config(kubeconfig)
        pid = apiserver_pid(client.Configuration.get_default_copy().host)
        subprocess_crds(kubeconfig)
        for crd in (SCHEMALESS_CRD, conditions_map_crd()):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump(crd, f)
                f.flush()
                kubectl(kubeconfig, "apply", "-f", f.name)
            kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}")
        cfg = client.Configuration.get_default_copy()
        cfg.connection_pool_maxsize = 32
        api_client = client.ApiClient(cfg)
        ns = f"bench-writes-{uuid.uuid4().hex[:5]}"
        client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
        kinds = Kinds(api_client, ns, args.objects)
        kinds.create()
        measure(kinds, "testexecution", pid, 1)  # warm-up: caches, connections
        rounds: dict[str, list[float]] = {k: [] for k in (*KINDS, "configmap")}
        for r in range(args.rounds):
            for kind in (list(rounds) if r % 2 == 0 else list(rounds)[::-1]):  # neither kind always first
                rounds[kind].append(measure(kinds, kind, pid, args.writes))
                if not args.json:
                    print(f"round {r + 1} {kind:14s} {rounds[kind][-1]:6.2f} ms of kube-apiserver CPU per write",
                          flush=True)
        client.CoreV1Api(api_client).delete_namespace(ns)
        result = {f"{k}_ms_per_write": round(statistics.median(v), 2) for k, v in rounds.items()}
        result |= {f"{k}_ms_per_write_spread": [round(min(v), 2), round(max(v), 2)] for k, v in rounds.items()}
        result["testexecution_over_configmap"] = round(
            result["testexecution_ms_per_write"] / result["configmap_ms_per_write"], 1)
        result["writes"] = args.objects * args.writes * args.rounds
        print(json.dumps(result, indent=None if args.json else 2), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
