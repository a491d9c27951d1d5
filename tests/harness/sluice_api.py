"""Small sync helpers for tests and benchmarks: TestExecutions, TestQueues, waiting on them."""
from __future__ import annotations

import threading
import time
from typing import Callable

from kubernetes import client

GROUP, VERSION = "sluice.dev", "v1alpha1"
TERMINAL = {"Succeeded", "Failed", "TimedOut", "Cancelled", "Rejected"}

KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
}
PROCESS_NODE_PLACEMENT = {
    "nodeSelector": {"sluice.dev/process-node": "true"},
    "tolerations": [{"key": "sluice.dev/process-node", "operator": "Exists", "effect": "NoSchedule"}],
}
SIMPLE_SOURCE = {"inline": {"files": {"test_ok.py": "def test_ok():\n    assert True\n"}}}


def kwok_runner(delay: str = "1s", exit_code: int | None = None, message: str | None = None,
                fail_attempts: tuple[int, ...] = (), reason: str = "Error", termination: str | None = None) -> dict:
    """spec.runner that places the pod on kwok nodes and scripts its outcome via kwok stages."""
    labels: dict[str, str] = {}
    annotations = {"pod-complete.stage.kwok.x-k8s.io/delay": delay}
    if termination is not None:
        annotations["test.sluice.dev/termination-message"] = termination
    if exit_code is not None:
        if not fail_attempts:
            labels["pod-container-running-failed.stage.kwok.x-k8s.io"] = "true"
        for n in fail_attempts:
            labels[f"test.sluice.dev/fail-attempt-{n}"] = "true"
        annotations["pod-container-running-failed.stage.kwok.x-k8s.io/exit-code"] = str(exit_code)
        annotations["pod-container-running-failed.stage.kwok.x-k8s.io/reason"] = reason
        annotations["pod-container-running-failed.stage.kwok.x-k8s.io/message"] = message or ""
        annotations["pod-container-running-failed.stage.kwok.x-k8s.io/delay"] = delay
    return dict(KWOK_PLACEMENT, image="sluice-runner:test", podLabels=labels, podAnnotations=annotations)


class Sluice:
    def __init__(self, api_client: client.ApiClient, namespace: str):
        self.api = client.CustomObjectsApi(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ns = namespace

    def create(self, name: str, spec: dict) -> dict:
        spec = dict(spec)
        spec.setdefault("source", SIMPLE_SOURCE)
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestExecution", "metadata": {"name": name}, "spec": spec}
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "testexecutions", body)

    def create_queue(self, name: str, spec: dict) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestQueue", "metadata": {"name": name}, "spec": spec}
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "testqueues", body)

    def patch_queue(self, name: str, spec: dict) -> dict:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "testqueues", name, {"spec": spec})

    def get_queue(self, name: str) -> dict:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "testqueues", name)

    def get(self, name: str) -> dict:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "testexecutions", name)

    def patch(self, name: str, spec: dict) -> dict:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "testexecutions", name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.ns, "testexecutions", name)

    def list(self) -> list[dict]:
        return self.api.list_namespaced_custom_object(GROUP, VERSION, self.ns, "testexecutions")["items"]

    def jobs(self) -> list:
        return self.batch.list_namespaced_job(self.ns, label_selector="sluice.dev/execution").items

    def unfinished_job_slots(self) -> int:
        """Slots held by Jobs without a terminal condition: what the capacity must bound."""
        held = 0
        for job in self.jobs():
            conds = job.status.conditions or []
            if not any(c.type in ("Complete", "Failed") and c.status == "True" for c in conds):
                held += job.spec.parallelism or 1
        return held

    def phase(self, name: str) -> str | None:
        return (self.get(name).get("status") or {}).get("phase")

    def wait(self, name: str, predicate: Callable[[dict], bool], timeout: float = 60, what: str = "") -> dict:
        deadline = time.time() + timeout
        obj = {}
        while time.time() < deadline:
            obj = self.get(name)
            if predicate(obj):
                return obj
            time.sleep(0.25)
        raise TimeoutError(f"{name}: not {what or 'as expected'} within {timeout}s; status: {obj.get('status')}")

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict:
        return self.wait(name, lambda o: (o.get("status") or {}).get("phase") in phases, timeout, f"in {phases}")

    def wait_all_terminal(self, timeout: float = 300) -> list[dict]:
        deadline = time.time() + timeout
        items: list[dict] = []
        while time.time() < deadline:
            items = self.list()
            if items and all((i.get("status") or {}).get("phase") in TERMINAL for i in items):
                return items
            time.sleep(0.5)
        waiting = [(i["metadata"]["name"], (i.get("status") or {}).get("phase")) for i in items
                   if (i.get("status") or {}).get("phase") not in TERMINAL]
        raise TimeoutError(f"not all terminal within {timeout}s: {waiting[:10]} ({len(waiting)} left)")

    def events(self, name: str) -> list:
        return self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items


class CapacityWatcher(threading.Thread):
    """Samples the API (not the operator) for unfinished Jobs, as often as it can."""

    def __init__(self, sluice):
        super().__init__(daemon=True)
        self.sluice, self.peak, self.samples, self.stop_flag = sluice, 0, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, self.sluice.unfinished_job_slots())
            self.samples += 1
            time.sleep(0.05)

    def stop(self):
        self.stop_flag.set()
        self.join()
