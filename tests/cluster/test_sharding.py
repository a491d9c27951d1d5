"""Two Sluice releases side by side on one control plane (issue 17, "beyond one machine";
docs/sharding.md): the chart installed twice into one namespace, release A watching namespaces
a1,a2 with running capacity 3 and release B watching b1,b2 with capacity 2, each with its own Lease.

Each operator runs as its own release's ServiceAccount (a TokenRequest token; the chart's RBAC
gives it Roles in its own namespaces only), so the API server itself refuses any write of one
release to the other's objects: the proof that neither touched the other's is authorization, not
the operators' good behaviour, and the test shows the refusal. Both drain; an outside watcher,
one Job list per sample across all four namespaces, sees neither release above its own cap; a
SIGKILL of A leaves B draining while nothing starts in A's namespaces until A is back. The chart's
guards refuse a third install that would share A's Lease or watch one of A's namespaces. Also:
`sluice queue` finds each namespace's own release's caps, and a TestEnvironment given to B keeps
B's holder in its status while A runs beside it (A never writes its zeros over it).
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from sluice.cli.connect import Connection
from tests.harness.chart import CHART, helm, service_account_kubeconfig
from tests.harness.operator_proc import OperatorProcess
from tests.harness.sluice_api import TERMINAL, Sluice, kwok_runner
from tests.harness.sluice_fixtures import MAX_STATUS_WRITES_PER_EXECUTION

pytestmark = pytest.mark.cluster
PER_NAMESPACE = 10  # 40 executions: 20 per release, and B's one environment holder
B_TOTAL = 2 * PER_NAMESPACE + 1
TENV = ("sluice.dev", "v1alpha1", "testenvironments")


class Release:
    """One Helm release of the chart and the operator process that stands for its pod."""

    def __init__(self, name: str, namespaces: list[str], capacity: int):
        self.name, self.namespaces, self.capacity = name, namespaces, capacity
        self.lease = f"{name}-lease"
        self.service_account = f"{name}-sluice"  # the chart's fullname
        self.op: OperatorProcess | None = None

    def sets(self, lease: str | None = None, namespaces: list[str] | None = None) -> list[str]:
        watched = ",".join(namespaces or self.namespaces)
        return [f"watchNamespaces={{{watched}}}", f"leaderElection.leaseName={lease or self.lease}",
                f"capacity.running={self.capacity}",
                # The pods never run here (no image, no kubelet that pulls): the operator process
                # below stands for the pod. No Redis pod and no webhook whose Service has no endpoints.
                "replicas=0", "redis.enabled=false", "webhook.enabled=false"]

    def operator(self, kubeconfig: Path, lease_namespace: str, log_dir: Path) -> OperatorProcess:
        op = OperatorProcess(str(kubeconfig), None, log_dir, namespaces=",".join(self.namespaces),
                             lease_namespace=lease_namespace, lease_name=self.lease,
                             running_capacity=self.capacity, queued_capacity=100)
        op.log_path = Path(log_dir) / f"operator-{self.name}.log"  # one log per release
        return op


def _helm_install(cluster, release: str, namespace: str, sets: list[str], check: bool = True):
    args = ["install", release, str(CHART), "--namespace", namespace, "--wait=false"]
    for s in sets:
        args += ["--set", s]
    return helm(cluster.bin_dir, *args, kubeconfig=cluster.kubeconfig, check=check)


def _can_i(cluster, sa: str, namespace_of_sa: str, verb: str, resource: str, namespace: str) -> bool:
    resource, _, sub = resource.partition(":")
    extra = [f"--subresource={sub}"] if sub else []
    proc = cluster.kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace,
                           f"--as=system:serviceaccount:{namespace_of_sa}:{sa}", check=False)
    return proc.stdout.strip() == "yes"


class PeakWatcher(threading.Thread):
    """Samples the API (not the operators): unfinished runner Jobs per release, all four namespaces
    in one list, so a Job finishing in a1 and the next starting in a2 are never counted together."""

    def __init__(self, api: client.ApiClient, releases: list[Release]):
        super().__init__(daemon=True)
        self.batch = client.BatchV1Api(api)
        self.owner = {ns: r.name for r in releases for ns in r.namespaces}
        self.peak = {r.name: 0 for r in releases}
        self.samples = 0
        self.stop_flag = threading.Event()

    def running(self) -> dict[str, int]:
        held = dict.fromkeys(self.peak, 0)
        for job in self.batch.list_job_for_all_namespaces(label_selector="sluice.dev/execution").items:
            release = self.owner.get(job.metadata.namespace)
            done = any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or [])
            if release and not done:
                held[release] += job.spec.parallelism or 1
        return held

    def run(self) -> None:
        while not self.stop_flag.is_set():
            for release, n in self.running().items():
                self.peak[release] = max(self.peak[release], n)
            self.samples += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join()


def _metric_by_namespace(text: str, metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in re.finditer(rf'^{metric}\{{[^}}]*namespace="([^"]+)"[^}}]*\}} (\S+)$', text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def _phases(clients: dict[str, Sluice]) -> dict[str, str]:
    return {f"{ns}/{i['metadata']['name']}": (i.get("status") or {}).get("phase", "")
            for ns, s in clients.items() for i in s.list()}


def _wait_terminal(clients: dict[str, Sluice], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        phases = _phases(clients)
        if all(p in TERMINAL for p in phases.values()):
            return phases
        if time.monotonic() > deadline:
            left = {k: v for k, v in phases.items() if v not in TERMINAL}
            raise TimeoutError(f"{len(left)} not terminal within {timeout}s: {sorted(left.items())[:8]}")
        time.sleep(0.5)


def test_two_releases_side_by_side_drain_within_their_own_caps_and_touch_nothing_of_the_other(
        cluster, namespace, crds):
    began = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    a = Release(f"sh{tag}-a", [f"sh{tag}-a1", f"sh{tag}-a2"], capacity=3)
    b = Release(f"sh{tag}-b", [f"sh{tag}-b1", f"sh{tag}-b2"], capacity=2)
    system = namespace  # both releases live here (one namespace for every release, as docs/sharding.md shows)
    log_dir = Path(cluster.state_dir) / "logs"
    admin = cluster.api_client()
    core = client.CoreV1Api(admin)
    installed: list[str] = []
    custom = client.CustomObjectsApi(admin)
    environment = f"sh{tag}-db"
    try:
        for ns in a.namespaces + b.namespaces:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name=ns, labels={"test.sluice.dev/namespace": "true"})))
        custom.create_cluster_custom_object(*TENV, {
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TestEnvironment", "metadata": {"name": environment},
            "spec": {"concurrency": 1, "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": b.namespaces}]}}})
        _helm_install(cluster, a.name, system, a.sets())
        installed.append(a.name)
        # The guards: a release that would share A's Lease or watch one of A's namespaces is refused.
        shared_lease = _helm_install(cluster, b.name, system, b.sets(lease=a.lease), check=False)
        assert shared_lease.returncode != 0
        assert f"leaderElection.leaseName {a.lease} in namespace {system} is already the Lease of Sluice release " \
               f"{system}/{a.name}" in shared_lease.stderr, shared_lease.stderr
        overlap = _helm_install(cluster, b.name, system, b.sets(namespaces=[b.namespaces[0], a.namespaces[1]]),
                                check=False)
        assert overlap.returncode != 0
        assert f"Sluice release {system}/{a.name} already watches namespace {a.namespaces[1]}" in overlap.stderr, \
            overlap.stderr
        _helm_install(cluster, b.name, system, b.sets())
        installed.append(b.name)

        # Authorization, before anything runs: each release's account may do its work in its own
        # namespaces and its own Lease, and nothing of the other's.
        for me, other in ((a, b), (b, a)):
            for verb, resource in [("patch", "testexecutions.sluice.dev:status"), ("create", "jobs.batch"),
                                   ("delete", "jobs.batch"), ("create", "configmaps"), ("create", "events")]:
                for ns in me.namespaces:
                    assert _can_i(cluster, me.service_account, system, verb, resource, ns), (me.name, verb, ns)
                for ns in other.namespaces:
                    assert not _can_i(cluster, me.service_account, system, verb, resource, ns), (me.name, verb, ns)
            assert _can_i(cluster, me.service_account, system, "update", f"leases.coordination.k8s.io/{me.lease}", system)
            assert not _can_i(cluster, me.service_account, system, "update",
                              f"leases.coordination.k8s.io/{other.lease}", system)

        kubeconfigs = {r.name: service_account_kubeconfig(cluster, system, r.service_account,
                                                          Path(cluster.state_dir) / f"kubeconfig-{r.name}")
                       for r in (a, b)}
        for r in (a, b):
            r.op = r.operator(kubeconfigs[r.name], system, log_dir)
            r.op.start(wait=False)
        for r in (a, b):
            r.op.wait_ready()

        clients = {ns: Sluice(admin, ns) for ns in a.namespaces + b.namespaces}
        a_clients = {ns: clients[ns] for ns in a.namespaces}
        b_clients = {ns: clients[ns] for ns in b.namespaces}
        watcher = PeakWatcher(admin, [a, b])
        watcher.start()

        # `sluice queue` shows each namespace's own release's caps (each leader's Lease says
        # which namespaces it watches).
        conn = Connection(admin, system, "")
        deadline = time.monotonic() + 20
        while (conn.operator_caps(a.namespaces[1]), conn.operator_caps(b.namespaces[0])) != ((3, 100), (2, 100)):
            assert time.monotonic() < deadline, (conn.operator_caps(a.namespaces[1]), conn.operator_caps(b.namespaces[0]))
            time.sleep(0.5)

        # An environment given to B (its namespaceSelector admits B's namespaces only): while B
        # holds it, A (idle for it) never writes its zeros over B's holder.
        clients[b.namespaces[0]].create("holder", {"environments": [environment], "runner": kwok_runner("12s")})
        deadline = time.monotonic() + 30
        while (custom.get_cluster_custom_object(*TENV, environment).get("status") or {}).get("inUse") != 1:
            assert time.monotonic() < deadline, "B did not write the environment's holder"
            time.sleep(0.3)
        held_since = time.monotonic()
        while time.monotonic() - held_since < 6:  # longer than a status writer's interval (5 s)
            st = custom.get_cluster_custom_object(*TENV, environment)["status"]
            assert (st["inUse"], st["holders"]) == (1, [f"{b.namespaces[0]}/holder"]), st
            time.sleep(0.3)
        for i in range(PER_NAMESPACE):
            for ns, s in clients.items():
                s.create(f"tx-{i:02d}", {"runner": kwok_runner("1s")})
        submitted = time.monotonic()

        # Kill A (SIGKILL) once it is under way; B must drain everything meanwhile, and nothing
        # may start in A's namespaces (B cannot, and would not, start them).
        deadline = time.monotonic() + 60
        while sum(p == "Succeeded" for p in _phases(a_clients).values()) < 2:
            assert time.monotonic() < deadline, f"release A did not get going: {_phases(a_clients)}"
            time.sleep(0.2)
        b_done_at_kill = sum(p == "Succeeded" for p in _phases(b_clients).values())
        a.op.kill()
        killed = time.monotonic()
        time.sleep(1)  # a Job create A sent just before the kill may still land
        a_jobs_after_kill = {(j.metadata.namespace, j.metadata.name) for ns in a.namespaces
                             for j in clients[ns].jobs()}
        b_phases = _wait_terminal(b_clients, timeout=90)
        b_drained = time.monotonic()
        assert set(b_phases.values()) == {"Succeeded"}, b_phases
        assert b_done_at_kill < B_TOTAL, "B had finished before A was killed: nothing was shown"
        a_jobs_while_dead = {(j.metadata.namespace, j.metadata.name) for ns in a.namespaces
                             for j in clients[ns].jobs()}
        assert a_jobs_while_dead == a_jobs_after_kill, "a Job started in A's namespaces while A was down"
        a_waiting = sum(p not in TERMINAL for p in _phases(a_clients).values())
        assert a_waiting > 0, "A had nothing left when it was killed"
        # What A left without a Job: exactly what A must admit once it is back.
        with_jobs = {f"{ns}/{j.metadata.labels['sluice.dev/execution']}" for ns in a.namespaces
                     for j in clients[ns].jobs()}
        a_unstarted = sum(1 for k, p in _phases(a_clients).items() if p not in TERMINAL and k not in with_jobs)

        a.op.start(wait=True)  # A is back: it takes its own Lease once the dead holder's expires (6 s)
        a_phases = _wait_terminal(a_clients, timeout=90)
        drained = time.monotonic()
        watcher.stop()
        assert set(a_phases.values()) == {"Succeeded"}, a_phases

        # Each release within its own cap, and each saturated it (the caps are really per release).
        assert watcher.peak == {a.name: 3, b.name: 2}, watcher.peak
        assert watcher.samples > 50

        # Each operator's own account of its work names only its namespaces (B ran throughout;
        # A's counters restarted with it), and none of its API calls was refused.
        b_admitted = _metric_by_namespace(b.op.metrics(), "sluice_admissions_total")
        assert set(b_admitted) == set(b.namespaces) and sum(b_admitted.values()) == B_TOTAL, b_admitted
        a_admitted = _metric_by_namespace(a.op.metrics(), "sluice_admissions_total")
        assert set(a_admitted) <= set(a.namespaces) and sum(a_admitted.values()) == a_unstarted, (a_admitted, a_unstarted)
        for r in (a, b):
            assert 'code="403"' not in r.op.metrics()
            log = r.op.log_path.read_text(errors="replace")
            assert "forbidden" not in log.lower(), r.op.log_tail(60)
            writes = r.op.status_writes_max()
            assert writes is not None and writes <= MAX_STATUS_WRITES_PER_EXECUTION, writes

        # And the refusal itself: B's credentials cannot write A's executions or take A's Lease.
        with_b = Sluice(_api_client(kubeconfigs[b.name]), a.namespaces[0])
        with pytest.raises(client.ApiException) as refused:
            with_b.api.patch_namespaced_custom_object_status(
                "sluice.dev", "v1alpha1", a.namespaces[0], "testexecutions", "tx-00", {"status": {"message": "B"}})
        assert refused.value.status == 403
        with pytest.raises(client.ApiException) as refused:
            client.CoordinationV1Api(with_b.api.api_client).patch_namespaced_lease(
                a.lease, system, {"spec": {"holderIdentity": "B"}})
        assert refused.value.status == 403
        leases = {r.name: client.CoordinationV1Api(admin).read_namespaced_lease(r.lease, system).spec.holder_identity
                  for r in (a, b)}
        assert all(leases.values()) and leases[a.name] != leases[b.name], leases

        elapsed = time.monotonic() - began
        print(f"\n{4 * PER_NAMESPACE + 1} executions Succeeded; peak running A {watcher.peak[a.name]}/3, "
              f"B {watcher.peak[b.name]}/2 over {watcher.samples} samples; A killed after "
              f"{killed - submitted:.1f}s with {a_waiting} left, B drained its last "
              f"{B_TOTAL - b_done_at_kill} in {b_drained - killed:.1f}s meanwhile; all drained "
              f"{drained - submitted:.1f}s after submission; test {elapsed:.0f}s")
    finally:
        for r in (a, b):
            if r.op is not None:
                r.op.stop()
        for release in installed:
            helm(cluster.bin_dir, "uninstall", release, "--namespace", system, kubeconfig=cluster.kubeconfig,
                 check=False)
        for ns in a.namespaces + b.namespaces:
            try:
                core.delete_namespace(ns, propagation_policy="Background")
            except client.ApiException:
                pass
        try:
            custom.delete_cluster_custom_object(*TENV, environment)
        except client.ApiException:
            pass
        admin.close()


def _api_client(kubeconfig: Path) -> client.ApiClient:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))
