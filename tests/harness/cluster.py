"""A real, local, throw-away Kubernetes control plane for tests: `LocalCluster`.

Why: the operator's promises (capacity never overshoots, timeouts, garbage collection, retries)
are made together with the real Job controller, garbage collector and scheduler, so the tests run
against the real thing rather than a mock: etcd, kube-apiserver, kube-controller-manager (every
default controller), kube-scheduler, kwok (fake nodes whose pods follow tests/harness/kwok/
stages.yaml) and the process node agent (tests/harness/process_node.py, runs pods as processes).

Each cluster lives in its own state dir (certs, etcd data, kubeconfigs, `logs/<component>.log`,
`cluster.json` with ports and pids) on free 127.0.0.1 ports, so several run side by side. All
components run in their own process groups and survive the process that started them (that is
how `hack/cluster up` detaches); `stop()` kills them by the pids recorded in cluster.json, after
checking each pid still is the process it started, and is safe to call twice.

It must never touch anything outside its state dir, and is for tests only: no security to speak of.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from . import pki as pkilib
from .procs import alive as _alive, kill_group as _kill_group, kill_recorded
from .procs import same_process as _same_process, start_time as _start_time
from .tools import REPO, HarnessError, ensure_bin_dir

STAGES = Path(__file__).resolve().parent / "kwok" / "stages.yaml"
PROCESS_NODE = "sluice-local"
KWOK_NODE_CAPACITY = {"cpu": "1000", "memory": "4Ti", "pods": "5000"}
# Stopped in this order: the process node first, so it can end the processes it runs.
COMPONENTS = ("process-node", "kwok", "kube-scheduler", "kube-controller-manager",
              "kube-apiserver", "etcd")


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\n{(self.stderr or '').strip()}"


class ClusterAccess:
    """How tests reach a cluster, whether this process started it or not."""

    def __init__(self, kubeconfig: Path, bin_dir: Path, state_dir: Path):
        self.kubeconfig = Path(kubeconfig)
        self.bin_dir = Path(bin_dir)
        self.state_dir = Path(state_dir)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the built kubectl against this cluster; output is captured as text."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def apiserver_metric(self, name: str, **labels: str) -> float:
        """The sum of kube-apiserver's `/metrics` samples of `name` whose labels include `labels`
        (exact values), e.g. `apiserver_request_total`, resource="pods", verb="LIST"."""
        total = 0.0
        for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$",
                             self.kubectl("get", "--raw", "/metrics").stdout, re.M):
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def api_client(self):
        """A fresh `kubernetes.client.ApiClient` for this cluster (the caller closes it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig), persist_config=False)


class LocalCluster(ClusterAccess):
    def __init__(self, state_dir: Path | str, bin_dir: Path | str | None = None, *,
                 kwok_nodes: int = 2, process_node: bool = True):
        state_dir = Path(state_dir).resolve()
        super().__init__(state_dir / "kubeconfig", Path(bin_dir or "."), state_dir)
        self._bin_dir_given = bin_dir is not None
        self.kwok_nodes = [f"kwok-node-{i}" for i in range(kwok_nodes)]
        self.process_node = process_node
        self.logs = state_dir / "logs"
        self.state_file = state_dir / "cluster.json"
        self.startup_seconds: float | None = None
        self._children: dict[str, subprocess.Popen] = {}
        self._state: dict = {}

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 90) -> "LocalCluster":
        """Start every component and return once the cluster is usable."""
        self.bin_dir = ensure_bin_dir(self.bin_dir if self._bin_dir_given else None)
        if self.is_running():
            raise HarnessError(f"a cluster already runs in {self.state_dir} (stop it first)")
        self._reset_state_dir()
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._start_all(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - began, 2)
        self._state["startup_seconds"] = self.startup_seconds
        self._save()
        return self

    def stop(self) -> None:
        """Kill every component (process groups), then any pod process the node agent left."""
        self._state = {}  # re-read cluster.json: another handle may have restarted a component
        self._state = self._load()
        processes = self._state.get("processes", {})
        self._terminate([n for n in COMPONENTS[:1] if n in processes], processes, grace=8)
        self._terminate([n for n in COMPONENTS[1:] if n in processes], processes, grace=10)
        for pid_file in (self.state_dir / "process-node" / "pods").glob("*/pid"):
            kill_recorded(pid_file)
        if self._state:
            self._state["processes"] = {}
            self._save()
        self._children.clear()

    def restart(self, name: str, down_seconds: float = 0.0, timeout: float = 60) -> None:
        """Kill one component (SIGKILL: no goodbye to its clients) and start it again, the same
        way, after `down_seconds`. For chaos tests: API server restarts drop every watch."""
        self._state = {}
        self._state = self._load()
        if not self._bin_dir_given:
            self.bin_dir = Path(self._state["bin_dir"])
        old = self._state["processes"][name]
        if _same_process(old["pid"], old["start"]):
            _kill_group(old["pid"], signal.SIGKILL)
            while _alive(old["pid"]):
                time.sleep(0.02)
        for key in _PORTS_OF.get(name, ()):
            _wait_port_free(self._state["ports"][key], time.monotonic() + 10)
        time.sleep(down_seconds)
        argv = old["argv"]
        self._children.pop(name, None)
        self._spawn(name, argv[1:], argv0=argv[:1])
        deadline = time.monotonic() + timeout
        if name == "kube-apiserver":
            self._wait("kube-apiserver after restart", deadline, self._answers)

    def _answers(self) -> bool:
        """/readyz says ok (every post-start hook done), as when the cluster first started."""
        return self.kubectl("get", "--raw", "/readyz", check=False, timeout=5).stdout == "ok"

    def is_running(self) -> bool:
        processes = self._load().get("processes", {})
        return any(_same_process(p["pid"], p["start"]) for p in processes.values())

    def status(self) -> dict:
        """What runs, on which ports, and (when the API answers) node readiness."""
        state = self._load()
        out = {"state_dir": str(self.state_dir), "kubeconfig": state.get("kubeconfig"),
               "ports": state.get("ports", {}), "startup_seconds": state.get("startup_seconds"),
               "processes": {}, "nodes": {}}
        for name, p in state.get("processes", {}).items():
            out["processes"][name] = {"pid": p["pid"], "running": _same_process(p["pid"], p["start"])}
        if out["processes"].get("kube-apiserver", {}).get("running"):
            try:
                out["nodes"] = self._node_readiness()
            except Exception as exc:  # noqa: BLE001 - status must not fail on a sick cluster
                out["nodes"] = {"error": str(exc).splitlines()[0]}
        return out

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- bring-up ------------------------------------------------------------------------
    def _start_all(self, deadline: float) -> None:
        ports = dict(zip(("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler"),
                         _free_ports(5)))
        server = f"https://127.0.0.1:{ports['apiserver']}"
        self._state = {"ports": ports, "server": server, "bin_dir": str(self.bin_dir),
                       "kubeconfig": str(self.kubeconfig), "processes": {}}
        self._save()
        pki = pkilib.write_pki(self.state_dir / "pki")
        pkilib.write_kubeconfig(self.kubeconfig, pki, server, "sluice-admin")
        kcm_kc = pkilib.write_component_kubeconfig(
            pki.dir / "controller-manager.kubeconfig", pki, server, "system:kube-controller-manager")
        sched_kc = pkilib.write_component_kubeconfig(
            pki.dir / "scheduler.kubeconfig", pki, server, "system:kube-scheduler")
        sched_conf = self.state_dir / "kube-scheduler.yaml"
        sched_conf.write_text(yaml.safe_dump({
            "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(sched_kc), "qps": 500, "burst": 1000},
            "leaderElection": {"leaderElect": False},
        }))

        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
        self._spawn("etcd", [
            "--name=sluice", f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=sluice={peer_url}", "--unsafe-no-fsync",
            "--quota-backend-bytes=8589934592", "--log-level=warn",
        ])
        self._wait("etcd health", deadline, lambda: b'"true"' in _http_get(f"{etcd_url}/health"))

        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
            f"--cert-dir={pki.dir}", f"--tls-cert-file={pki.apiserver_cert}",
            f"--tls-private-key-file={pki.apiserver_key}", f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={pkilib.SERVICE_CIDR}",
            # The only address is loopback, which Endpoints may not hold: no `kubernetes` endpoints.
            "--endpoint-reconciler-type=none",
            "--max-requests-inflight=3000", "--max-mutating-requests-inflight=1500",
            # /debug/pprof for `go tool pprof` (bench/README.md, "Profiling kube-apiserver")
            f"--profiling={'true' if os.environ.get('SLUICE_APISERVER_PROFILING') == '1' else 'false'}",
        ])
        admin_tls = ssl.create_default_context(cafile=str(pki.ca_cert))
        admin_tls.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        self._wait("kube-apiserver /readyz", deadline,
                   lambda: _http_get(f"{server}/readyz", admin_tls) == b"ok")

        self._spawn("kube-controller-manager", [
            f"--kubeconfig={kcm_kc}", "--leader-elect=false", "--use-service-account-credentials",
            "--bind-address=127.0.0.1", f"--secure-port={ports['controller_manager']}",
            f"--root-ca-file={pki.ca_cert}", f"--service-account-private-key-file={pki.sa_key}",
            f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={pkilib.SERVICE_CIDR}",
            "--kube-api-qps=500", "--kube-api-burst=1000", "--concurrent-job-syncs=20",
            "--concurrent-ttl-after-finished-syncs=20",
        ])
        self._spawn("kube-scheduler", [
            f"--config={sched_conf}", "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
        ])
        if self.kwok_nodes:
            self._spawn("kwok", [
                f"--kubeconfig={self.kubeconfig}", f"--config={STAGES}",
                "--manage-all-nodes=false", "--manage-nodes-with-label-selector=type=kwok",
                "--node-lease-duration-seconds=40", "--node-ip=127.0.0.1", "--cidr=10.0.0.1/16",
            ])
        if self.process_node:
            self._spawn("process-node", [
                "--kubeconfig", str(self.kubeconfig), "--node-name", PROCESS_NODE,
                "--work-dir", str(self.state_dir / "process-node"),
            ], argv0=[sys.executable, "-m", "tests.harness.process_node"])

        with self.api_client() as api:
            _create_kwok_nodes(api, self.kwok_nodes)
            want = set(self.kwok_nodes) | ({PROCESS_NODE} if self.process_node else set())
            self._wait("nodes Ready", deadline,
                       lambda: want <= {n for n, ok in _readiness(api).items() if ok})
            self._wait("ServiceAccount default/default", deadline,
                       lambda: _exists(api, "default", "default"))
        insecure = ssl._create_unverified_context()  # self-signed serving certs, health only
        for name, port in (("kube-controller-manager", ports["controller_manager"]),
                           ("kube-scheduler", ports["scheduler"])):
            self._wait(f"{name} /healthz", deadline,
                       lambda: _http_get(f"https://127.0.0.1:{port}/healthz", insecure) == b"ok")

    def _spawn(self, name: str, args: list[str], argv0: list[str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        argv = (argv0 or [str(self.bin_dir / name)]) + args
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                    start_new_session=True)
        self._children[name] = proc
        self._state["processes"][name] = {"pid": proc.pid, "start": _start_time(proc.pid), "argv": argv}
        self._save()

    def _wait(self, what: str, deadline: float, ready) -> None:
        while True:
            for name, proc in self._children.items():
                if proc.poll() is not None:
                    raise HarnessError(f"{name} exited with code {proc.returncode} while waiting "
                                       f"for {what}: {_last_line(self.logs / f'{name}.log')} "
                                       f"(log: {self.logs / f'{name}.log'})")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"timed out waiting for {what}; logs in {self.logs}")
            time.sleep(0.1)

    def _node_readiness(self) -> dict:
        with self.api_client() as api:
            return _readiness(api)

    # ---- state ---------------------------------------------------------------------------
    def _reset_state_dir(self) -> None:
        if self.state_dir.exists() and any(self.state_dir.iterdir()):
            if not self.state_file.exists():
                raise HarnessError(f"{self.state_dir} is not empty and not a harness state dir")
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.state_dir)], check=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def _load(self) -> dict:
        if self._state:
            return self._state
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_file)

    def _terminate(self, names: list[str], processes: dict, grace: float) -> None:
        live = [p["pid"] for n in names if _same_process((p := processes[n])["pid"], p["start"])]
        for pid in live:
            _kill_group(pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end and any(_alive(pid) for pid in live):
            time.sleep(0.05)
        for pid in live:
            _kill_group(pid, signal.SIGKILL)
        for name in names:
            if name in self._children:
                self._children[name].wait()


# ---- helpers ----------------------------------------------------------------------------------
_PORTS_OF = {"etcd": ("etcd", "etcd_peer"), "kube-apiserver": ("apiserver",),
             "kube-controller-manager": ("controller_manager",), "kube-scheduler": ("scheduler",)}


def _wait_port_free(port: int, deadline: float) -> None:
    """Until `port` can be listened on again (as Go listens: SO_REUSEADDR), or the deadline."""
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.05)


def _free_ports(count: int) -> list[int]:
    """Distinct free ports below the ephemeral range, so outgoing connections never take them."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def _http_get(url: str, context: ssl.SSLContext | None = None) -> bytes:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return resp.read()


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


def _create_kwok_nodes(api, names: list[str]) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    for name in names:
        core.create_node(client.V1Node.from_dict({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake",
                                                       "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake",
                                 "effect": "NoSchedule"}]},
        }))
        core.patch_node_status(name, {"status": {"capacity": KWOK_NODE_CAPACITY,
                                                 "allocatable": KWOK_NODE_CAPACITY}},
                               _content_type="application/merge-patch+json")


def _readiness(api) -> dict[str, bool]:
    from kubernetes import client

    nodes = json.loads(client.CoreV1Api(api).list_node(_preload_content=False).read())
    return {
        n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in n.get("status", {}).get("conditions") or [])
        for n in nodes["items"]
    }


def _exists(api, namespace: str, service_account: str) -> bool:
    from kubernetes import client

    client.CoreV1Api(api).read_namespaced_service_account(service_account, namespace)
    return True
