"""A test-only node agent: runs the pods bound to one Node as local processes.

Why: end-to-end tests need the real runner (a Python process driving real browsers) to run as the
pod of a real Job, and this machine has no container runtime. So this agent plays kubelet for one
node, just enough for Jobs: it registers the Node, keeps it alive (Lease + Ready heartbeat), runs
the FIRST container of each pod bound to it as a process, reports pod status through pods/status,
and honours graceful deletion. It never runs images: `command` + `args` run directly (no shell),
with the agent's own environment (PATH, the same Python) plus the container's env.

What a process cannot see, and how it is mapped (details in tests/harness/pod_spec.py):
- volumes (configMap, secret with `items`, emptyDir, downwardAPI, projected without tokens) are
  materialized under `<work-dir>/pods/<ns>_<name>_<uid>/volumes/<volume>`. A process cannot see
  container mount paths, so any env value, arg, command word or workingDir that equals or starts
  with a volumeMount's mountPath is rewritten to the materialized directory.
- termination message: env SLUICE_TERMINATION_LOG=<pod dir>/termination-log, and any value equal
  to the container's terminationMessagePath (default /dev/termination-log) is rewritten to it.
  It is reported trimmed to 4096 bytes; if empty, on failure, with FallbackToLogsOnError, the log's
  last 80 lines / 2048 bytes are.
- TMPDIR and HOME point into the pod dir; stdout+stderr go to `<pod dir>/log`. Nothing serves
  `kubectl logs` (the node has no kubelet endpoint): read the log file instead.
- only restartPolicy Never is supported; any other fails the pod with a clear message.
- images are never pulled, except that an image whose name contains `does-not-exist`
  (IMAGE_PULL_FAILS) cannot be: its container waits in ErrImagePull / ImagePullBackOff with the
  kubelet's words and the pod stays Pending until deleted (proves PodPendingTooLong).
- graceful deletion: SIGTERM to the process group, SIGKILL after deletionGracePeriodSeconds, the
  terminated state is reported, then the pod is deleted with grace period 0 (as a kubelet does).
On start, pods already bound to the node were run by a previous agent: they are failed with reason
NodeAgentRestarted (their processes, if any survived, are killed).

Run: python -m tests.harness.process_node --kubeconfig K --node-name sluice-local --work-dir DIR
(`--taint KEY=VALUE:EFFECT`, repeatable, adds taints: a test's private node no other pod lands on).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from . import pod_spec, procs
from .pod_spec import ConfigError

log = logging.getLogger("process-node")
SMP = "application/strategic-merge-patch+json"
LEASE_SECONDS = 40
MESSAGE_LIMIT, FALLBACK_BYTES, FALLBACK_LINES = 4096, 2048, 80
IMAGE_PULL_FAILS = "does-not-exist"  # an image whose name contains this "cannot be pulled"
PULL_BACKOFF_SECONDS, PULL_BACKOFF_MAX = 5.0, 300.0


def now(micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.now(timezone.utc).strftime(fmt)


def condition(kind: str, ok: bool, reason: str = "") -> dict:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now(),
            **({"reason": reason} if reason else {})}


def terminated_status(container: dict, code: int, reason: str, message: str, started: str) -> dict:
    phase = "Succeeded" if code == 0 else "Failed"
    why = "PodCompleted" if code == 0 else "PodFailed"
    state = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}
    if message:
        state["message"] = message
    return {"status": {
        "phase": phase,
        "conditions": [condition("Ready", False, why), condition("ContainersReady", False, why)],
        "containerStatuses": [{"name": container["name"], "image": container.get("image", ""),
                               "imageID": "", "ready": False, "started": False,
                               "restartCount": 0, "state": {"terminated": state}}]}}


class Pod:
    """One pod's process and its status reports; runs in its own thread."""

    def __init__(self, agent: "Agent", pod: dict):
        self.agent, self.pod = agent, pod
        meta = pod["metadata"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.container = pod["spec"]["containers"][0]
        self.dir = agent.work_dir / "pods" / f"{self.ns}_{self.name}_{self.uid}"
        self.stop_requested = threading.Event()
        self.grace = 30.0
        self.gone = False  # force-deleted: nothing left to report to

    def request_stop(self, grace: float | None, gone: bool = False) -> None:
        self.grace = 0.0 if grace is None else float(grace)
        self.gone = self.gone or gone
        self.stop_requested.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - one pod's bug must not kill the agent
            log.error("pod %s/%s: %s", self.ns, self.name, traceback.format_exc())
            self.finish(128, "AgentError", traceback.format_exc(limit=3)[-MESSAGE_LIMIT:], now())
        finally:
            self.agent.forget(self.uid)
            if self.stop_requested.is_set() and not self.gone:
                self.agent.delete_pod(self.pod)

    def _run(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if policy != "Never":
            return self.finish(1, "UnsupportedRestartPolicy", f"the process node runs only "
                               f"restartPolicy Never pods, not {policy}", now())
        if IMAGE_PULL_FAILS in self.container.get("image", ""):
            return self.fail_pulls()
        while True:
            try:
                argv, env, cwd = pod_spec.build(self.pod, self.dir, self.source)
                break
            except ConfigError as exc:
                self.waiting("CreateContainerConfigError", str(exc))
                if self.stop_requested.wait(2):
                    return self.finish(137, "Error", f"deleted before start: {exc}", now())
        started = now()
        try:
            with open(self.dir / "log", "ab") as out:
                proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        except OSError as exc:
            return self.finish(128, "StartError", f"cannot start {argv[0]!r}: {exc}", started)
        procs.record(self.dir / "pid", proc.pid)
        self.patch(self.running_status(proc.pid, started))
        while proc.poll() is None:
            if self.stop_requested.wait(0.1):
                procs.kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.grace)
                except subprocess.TimeoutExpired:
                    pass
                break
        procs.kill_group(proc.pid, signal.SIGKILL)  # the container's leftovers go with it
        code = proc.wait()
        code = code if code >= 0 else 128 - code
        self.finish(code, "Completed" if code == 0 else "Error", self.message(code), started)

    def fail_pulls(self) -> None:
        """What a kubelet does with an image it cannot pull: ErrImagePull, then ImagePullBackOff
        (naming the pull error) for a doubling back-off, again, until the pod is deleted."""
        image = self.container.get("image", "")
        pull = (f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack '
                f'image "{image}": failed to resolve reference "{image}": {image}: not found')
        backoff = PULL_BACKOFF_SECONDS
        while True:
            self.waiting("ErrImagePull", pull)
            if self.stop_requested.wait(1):
                break
            self.waiting("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: {pull}')
            if self.stop_requested.wait(backoff):
                break
            backoff = min(PULL_BACKOFF_MAX, backoff * 2)
        self.finish(137, "Error", f"deleted before start: ErrImagePull: {pull}", now())

    def waiting(self, reason: str, message: str) -> None:
        """The container has not started: the pod stays Pending, saying why."""
        self.patch({"status": {"containerStatuses": [{
            "name": self.container["name"], "image": self.container.get("image", ""),
            "imageID": "", "ready": False, "started": False, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}]}})

    def finish(self, code: int, reason: str, message: str, started: str) -> None:
        """Report the terminated state (unless the pod is gone already)."""
        if not self.gone:
            self.patch(terminated_status(self.container, code, reason, message, started))

    def patch(self, body: dict) -> None:
        try:
            self.agent.core.patch_namespaced_pod_status(self.name, self.ns, body, _content_type=SMP)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def running_status(self, pid: int, started: str) -> dict:
        ok = [condition(k, True) for k in
              ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")]
        return {"status": {
            "phase": "Running", "startTime": started, "conditions": ok,
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "containerStatuses": [{
                "name": self.container["name"], "image": self.container.get("image", ""),
                "imageID": "", "containerID": f"process://{pid}", "ready": True,
                "started": True, "restartCount": 0, "state": {"running": {"startedAt": started}}}]}}

    def message(self, code: int) -> str:
        data = b""
        try:
            data = (self.dir / "termination-log").read_bytes()[:MESSAGE_LIMIT]
        except OSError:
            pass
        policy = self.container.get("terminationMessagePolicy", "File")
        if not data.strip() and code != 0 and policy == "FallbackToLogsOnError":
            try:
                lines = (self.dir / "log").read_bytes().splitlines(keepends=True)
            except OSError:
                lines = []
            data = b"".join(lines[-FALLBACK_LINES:])[-FALLBACK_BYTES:]
        return data.decode(errors="replace")

    def source(self, kind: str, name: str, optional: bool | None) -> dict | None:
        """The decoded data of a Secret or ConfigMap in the pod's namespace (see pod_spec)."""
        read = (self.agent.core.read_namespaced_secret if kind == "secret"
                else self.agent.core.read_namespaced_config_map)
        try:
            obj = json.loads(read(name, self.ns, _preload_content=False).read())
        except ApiException as exc:
            if exc.status == 404 and optional:
                return None
            raise ConfigError(f"{kind} {name!r} not found") from exc
        data = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
        if kind == "secret":
            data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        else:
            data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        return {k: v.decode(errors="replace") for k, v in data.items()}


class Agent:
    """Registers the node, keeps it alive, and maps pod events to Pod threads."""

    def __init__(self, api: client.ApiClient, node: str, work_dir: Path, taints: list[dict] | None = None):
        self.taints = list(taints or [])
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.node, self.work_dir = node, work_dir
        self.running: dict[str, Pod] = {}
        self.seen: set[str] = set()  # uids handled once (started or failed)
        self.deleted: set[str] = set()  # uids this agent deleted (grace 0)
        self.lock = threading.Lock()

    def register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": self.node, "labels": {"sluice.dev/process-node": "true",
                                          "kubernetes.io/hostname": self.node,
                                          "kubernetes.io/os": "linux"}},
            "spec": {"taints": [{"key": "sluice.dev/process-node", "value": "true",
                                 "effect": "NoSchedule"}, *self.taints]}}
        try:
            self.core.create_node(client.V1Node.from_dict(body))
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_node(self.node, {"metadata": body["metadata"], "spec": body["spec"]},
                                 _content_type="application/merge-patch+json")
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "110"}
        self.core.patch_node_status(self.node, {"status": {
            "capacity": capacity, "allocatable": capacity, "phase": "Running",
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node}],
            "nodeInfo": {"kubeletVersion": "sluice-process-node", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "process://"},
        }}, _content_type=SMP)
        self.heartbeat_status()

    def heartbeat_status(self) -> None:
        t = now()
        conditions = [{"type": kind, "status": status, "reason": reason, "message": reason,
                       "lastHeartbeatTime": t, "lastTransitionTime": t}
                      for kind, status, reason in (
                          ("Ready", "True", "KubeletReady"),
                          ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                          ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                          ("PIDPressure", "False", "KubeletHasSufficientPID"))]
        self.core.patch_node_status(self.node, {"status": {"conditions": conditions}},
                                    _content_type=SMP)

    def renew_lease(self) -> None:
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": now(micro=True)}
        try:
            self.leases.patch_namespaced_lease(self.node, "kube-node-lease", {"spec": spec},
                                               _content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:
                raise
            uid = json.loads(self.core.read_node(self.node, _preload_content=False).read())
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.node,
                     "uid": uid["metadata"]["uid"]}
            self.leases.create_namespaced_lease("kube-node-lease", client.V1Lease.from_dict({
                "metadata": {"name": self.node, "ownerReferences": [owner]}, "spec": spec}))

    def keep_alive(self) -> None:
        last_status = time.monotonic()
        while True:
            time.sleep(5)
            try:
                self.renew_lease()
                if time.monotonic() - last_status > 20:
                    self.heartbeat_status()
                    last_status = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - keep trying; the API may be restarting
                log.warning("heartbeat failed: %s", exc)

    def list_pods(self) -> tuple[list[dict], str]:
        data = json.loads(self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}", _preload_content=False).read())
        return data["items"], data["metadata"]["resourceVersion"]

    def run(self) -> None:
        self.register()
        self.renew_lease()
        threading.Thread(target=self.keep_alive, daemon=True).start()
        pods, rv = self.list_pods()
        for pod in pods:
            self.adopt(pod)
        log.info("node %s registered; watching its pods", self.node)
        while True:
            try:
                resp = self.core.list_pod_for_all_namespaces(
                    field_selector=f"spec.nodeName={self.node}", resource_version=rv,
                    watch=True, allow_watch_bookmarks=True, timeout_seconds=300,
                    _preload_content=False)
                for line in iter_resp_lines(resp):
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.handle(obj, deleted=event["type"] == "DELETED")
            except Exception as exc:  # noqa: BLE001 - expired or broken watch: relist
                log.info("watch ended (%s); relisting", str(exc).splitlines()[0] if str(exc) else exc)
                time.sleep(0.5)
                try:
                    pods, rv = self.list_pods()
                except Exception as exc2:  # noqa: BLE001
                    log.warning("relist failed: %s", exc2)
                    continue
                live = {p["metadata"]["uid"] for p in pods}
                for uid, pod in list(self.running.items()):
                    if uid not in live:
                        pod.request_stop(0, gone=True)
                for pod in pods:
                    self.handle(pod)

    def adopt(self, pod: dict) -> None:
        """A pod bound here before this agent started: its process is not ours; fail it."""
        ghost = Pod(self, pod)
        self.seen.add(ghost.uid)
        procs.kill_recorded(ghost.dir / "pid")
        if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            body = terminated_status(ghost.container, 137, "NodeAgentRestarted",
                                     "the process node agent restarted", now())
            body["status"].update(reason="NodeAgentRestarted",
                                  message="the process node agent restarted while the pod ran")
            ghost.patch(body)
        if pod["metadata"].get("deletionTimestamp"):
            self.delete_pod(pod)

    def handle(self, pod: dict, deleted: bool = False) -> None:
        meta = pod["metadata"]
        uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
        with self.lock:
            runner = self.running.get(uid)
            if runner is not None:
                if deleted or deleting:
                    runner.request_stop(meta.get("deletionGracePeriodSeconds"), gone=deleted)
                return
            if deleted:
                return
            first = uid not in self.seen
            self.seen.add(uid)
            terminal = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            if not terminal and first and not deleting:
                runner = self.running[uid] = Pod(self, pod)
                threading.Thread(target=runner.run, daemon=True, name=meta["name"]).start()
                return
        if deleting:
            if first and not terminal:  # never started: report it, or its Job waits forever
                Pod(self, pod).finish(137, "Error", "pod deleted before it started", now())
            self.delete_pod(pod)

    def forget(self, uid: str) -> None:
        with self.lock:
            self.running.pop(uid, None)

    def delete_pod(self, pod: dict) -> None:
        """What a kubelet does once the containers are gone: delete with grace period 0."""
        meta = pod["metadata"]
        with self.lock:
            if meta["uid"] in self.deleted:
                return
            self.deleted.add(meta["uid"])
        opts = client.V1DeleteOptions(grace_period_seconds=0,
                                      preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"],
                                            grace_period_seconds=0, body=opts)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def shutdown(self) -> None:
        """Agent stops: end every pod process (their status is left as is)."""
        for pod in list(self.running.values()):
            pod.gone = True
            procs.kill_recorded(pod.dir / "pid", signal.SIGTERM)
        time.sleep(0.5 if self.running else 0)
        for pod in list(self.running.values()):
            procs.kill_recorded(pod.dir / "pid", signal.SIGKILL)


def parse_taint(text: str) -> dict:
    """KEY=VALUE:EFFECT, as `kubectl taint` writes it."""
    pair, _, effect = text.rpartition(":")
    key, _, value = pair.partition("=")
    if not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise argparse.ArgumentTypeError(f"taint {text!r} is not KEY=VALUE:EFFECT")
    return {"key": key, "value": value, "effect": effect}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node-name", default="sluice-local")
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--taint", action="append", default=[], type=parse_taint,
                        help="an extra node taint KEY=VALUE:EFFECT (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    configuration = client.Configuration()
    config.load_kube_config(args.kubeconfig, client_configuration=configuration,
                            persist_config=False)
    configuration.connection_pool_maxsize = 64
    agent = Agent(client.ApiClient(configuration), args.node_name, args.work_dir.resolve(), args.taint)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        agent.run()
    finally:
        agent.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
