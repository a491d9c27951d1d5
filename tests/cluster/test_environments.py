"""Shared environments on the real control plane: a lock (concurrency 1) shared by two queues in
two namespaces never has two holders, not even across SIGKILLs of the operator, and hands over
in priority then FIFO order; BestEffortFIFO lets small executions pass a wide one without
starving it; a missing environment or a namespace it does not admit is Rejected."""
from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import datetime

import pytest
from kubernetes import client

from tests.harness.sluice_api import Sluice, kwok_runner

pytestmark = pytest.mark.cluster
RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}
ENV_ANNOTATION = "sluice.dev/environments"


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Environments:
    """Cluster-scoped TestEnvironments with names unique to the test (the cluster is shared)."""

    def __init__(self, api: client.ApiClient):
        self.custom = client.CustomObjectsApi(api)
        self.made: list[str] = []

    def create(self, base: str, spec: dict) -> str:
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        self.custom.create_cluster_custom_object("sluice.dev", "v1alpha1", "testenvironments", {
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TestEnvironment", "metadata": {"name": name}, "spec": spec})
        self.made.append(name)
        return name

    def get(self, name: str) -> dict:
        return self.custom.get_cluster_custom_object("sluice.dev", "v1alpha1", "testenvironments", name)

    def cleanup(self) -> None:
        for name in self.made:
            try:
                self.custom.delete_cluster_custom_object("sluice.dev", "v1alpha1", "testenvironments", name)
            except client.ApiException:
                pass


@pytest.fixture
def environments(cluster):
    with cluster.api_client() as api:
        envs = Environments(api)
        yield envs
        envs.cleanup()


@pytest.fixture
def second_namespace(cluster, namespace):
    name = f"{namespace[:50]}-b"
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        yield name
        core.delete_namespace(name)


class HolderWatcher(threading.Thread):
    """Samples the API (not the operator) for unfinished Jobs that hold `env` in any of `namespaces`;
    records the most seen at once and the order in which holders appeared."""

    def __init__(self, api: client.ApiClient, namespaces: list[str], env: str):
        super().__init__(daemon=True)
        self.batch = client.BatchV1Api(api)
        self.namespaces, self.env = namespaces, env
        self.peak, self.samples, self.order = 0, 0, []
        self.stop_flag = threading.Event()

    def holders(self) -> list[str]:
        # One list across namespaces: a consistent snapshot (two lists, one per namespace, would
        # see a finished holder in one and its successor in the other).
        out = []
        for job in self.batch.list_job_for_all_namespaces(label_selector="sluice.dev/execution").items:
            if job.metadata.namespace not in self.namespaces:
                continue
            envs = ((job.metadata.annotations or {}).get(ENV_ANNOTATION) or "").split(",")
            done = any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or [])
            if self.env in envs and not done:
                out.append(f"{job.metadata.namespace}/{job.metadata.labels['sluice.dev/execution']}")
        return out

    def run(self) -> None:
        while not self.stop_flag.is_set():
            now = self.holders()
            self.peak = max(self.peak, len(now))
            self.samples += 1
            for h in now:
                if h not in self.order:
                    self.order.append(h)
            time.sleep(0.03)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join()


def test_a_lock_shared_by_two_queues_in_two_namespaces_never_has_two_holders(
        cluster, sluice, namespace, second_namespace, start_operator, environments):
    env = environments.create("db", {"concurrency": 1})
    other = Sluice(cluster.api_client(), second_namespace)
    op = start_operator(namespaces=f"{namespace},{second_namespace}", lease_namespace=namespace,
                        running_capacity=20, queued_capacity=200)
    sluice.create_queue("qa", {"runningCapacity": 10, "queuedCapacity": 100})
    other.create_queue("qb", {"runningCapacity": 10, "queuedCapacity": 100})
    # A first holder keeps the lock while the 40 are created, so their order is the rule's, not
    # the order of creation.
    sluice.create("blocker", {"queue": "qa", "environments": [env], "runner": kwok_runner("8s")})
    sluice.wait_phase("blocker", "Running", timeout=60)
    prios = ["low", "normal", "high", "critical", "normal"]
    for i in range(40):
        target, queue = (sluice, "qa") if i % 2 == 0 else (other, "qb")
        target.create(f"tx-{i:02d}", {"queue": queue, "priority": prios[i % 5], "environments": [env],
                                      "runner": kwok_runner("1s")})
    with cluster.api_client() as api:
        watcher = HolderWatcher(api, [namespace, second_namespace], env)
        watcher.start()
        busy = sluice.wait(f"tx-00", lambda o: (o.get("status") or {}).get("reason") == "EnvironmentBusy",
                           what="reason EnvironmentBusy")
        assert env in busy["status"]["message"] and f"{namespace}/blocker" in busy["status"]["message"], \
            busy["status"]["message"]
        kills = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            items = sluice.list() + other.list()
            if all((i.get("status") or {}).get("phase") == "Succeeded" for i in items):
                break
            if kills < 4 and random.random() < 0.3:
                time.sleep(random.uniform(0, 2))
                op.kill()
                kills += 1
                op.start(wait=True)
            time.sleep(1)
        watcher.stop()
    items = [i for i in sluice.list() + other.list() if i["metadata"]["name"].startswith("tx-")]
    assert [i["status"]["phase"] for i in items] == ["Succeeded"] * 40, [i["status"] for i in items]
    assert watcher.peak == 1, f"saw {watcher.peak} holders of {env} at once"
    assert watcher.samples > 100
    rule = {f"{i['metadata']['namespace']}/{i['metadata']['name']}": (
        RANK[i["spec"]["priority"]], i["metadata"]["creationTimestamp"], _t(i["status"]["queuedAt"]),
        i["metadata"]["name"], i["metadata"]["namespace"]) for i in items}
    started = [h for h in watcher.order if h in rule]
    assert len(started) == 40, watcher.order
    assert started == sorted(rule, key=rule.get)
    print(f"\n{kills} SIGKILLs, 40 holders one at a time over {watcher.samples} samples")
    deadline = time.monotonic() + 20  # the status is written at a bounded rate (5 s)
    while time.monotonic() < deadline:
        st = environments.get(env).get("status") or {}
        if st.get("inUse", 0) == 0 and st.get("waiting", 0) == 0 and not st.get("holders"):
            break
        time.sleep(0.5)
    assert (st.get("inUse", 0), st.get("waiting", 0), st.get("holders", [])) == (0, 0, []), st


def test_best_effort_lets_small_ones_pass_a_wide_one_which_then_holds(sluice, start_operator):
    start_operator(running_capacity=20, best_effort_reserve_seconds=6)
    sluice.create_queue("be", {"runningCapacity": 4, "queuedCapacity": 50})
    sluice.create("long", {"queue": "be", "runner": kwok_runner("12s")})
    sluice.wait_phase("long", "Running", timeout=60)
    created = time.monotonic()
    sluice.create("wide", {"queue": "be", "shards": 4, "runner": kwok_runner("1s")})
    sluice.wait("wide", lambda o: (o.get("status") or {}).get("reason") == "WaitingForSlots", what="WaitingForSlots")
    for i in range(3):
        sluice.create(f"small-{i}", {"queue": "be", "runner": kwok_runner("1s")})
    for i in range(3):  # they pass the wide one: 3 slots were free
        sluice.wait_phase(f"small-{i}", "Running", "Succeeded", timeout=30)
    assert sluice.phase("wide") == "Queued"
    # Once "wide" has waited 6 s it holds: smaller ones created now wait behind it.
    while time.monotonic() - created < 7:
        time.sleep(0.5)
    for i in range(3):
        sluice.create(f"late-{i}", {"queue": "be", "runner": kwok_runner("1s")})
    wide = sluice.wait_phase("wide", "Running", "Succeeded", timeout=60)
    started_wide = _t(wide["status"]["startedAt"])
    for i in range(3):
        late = sluice.wait_phase(f"late-{i}", "Running", "Succeeded", timeout=60)
        assert _t(late["status"]["startedAt"]) >= started_wide, "a small one passed the wide one after it held"
    long = sluice.get("long")
    # The bound: it started within reserve (6 s) + the longest remaining run of the holders (12 s).
    waited = (started_wide - _t(wide["status"]["queuedAt"])).total_seconds()
    assert waited <= 6 + 12 + 5, waited
    assert long["status"]["phase"] in ("Running", "Succeeded")


def test_strict_fifo_head_blocks_those_behind(sluice, start_operator):
    start_operator(running_capacity=20)
    sluice.create_queue("st", {"runningCapacity": 4, "queuedCapacity": 50, "admission": "StrictFIFO"})
    sluice.create("long", {"queue": "st", "runner": kwok_runner("6s")})
    sluice.wait_phase("long", "Running", timeout=60)
    sluice.create("wide", {"queue": "st", "shards": 4, "runner": kwok_runner("1s")})
    sluice.wait("wide", lambda o: (o.get("status") or {}).get("reason") == "WaitingForSlots", what="WaitingForSlots")
    sluice.create("small", {"queue": "st", "runner": kwok_runner("1s")})
    sluice.wait_phase("small", "Queued", timeout=30)
    time.sleep(2)
    assert sluice.phase("small") == "Queued"
    wide = sluice.wait_phase("wide", "Succeeded", timeout=60)
    small = sluice.wait_phase("small", "Succeeded", timeout=60)
    assert _t(small["status"]["startedAt"]) >= _t(wide["status"]["startedAt"])


def test_missing_environment_and_excluded_namespace_are_rejected(sluice, start_operator, environments):
    start_operator(environment_missing_grace_seconds=3)
    only_prod = environments.create("prod-db", {"namespaceSelector": {"matchLabels": {"team": "prod"}}})
    sluice.create("ghost", {"environments": ["does-not-exist-" + uuid.uuid4().hex[:6]], "runner": kwok_runner("1s")})
    sluice.create("outsider", {"environments": [only_prod], "runner": kwok_runner("1s")})
    ghost = sluice.wait_phase("ghost", "Rejected", timeout=30)["status"]
    assert ghost["reason"] == "InvalidSpec" and "does not exist" in ghost["message"], ghost
    out = sluice.wait_phase("outsider", "Rejected", timeout=30)["status"]
    assert out["reason"] == "InvalidSpec" and "namespaceSelector" in out["message"], out


def test_environment_applied_with_the_execution_is_waited_for(sluice, start_operator, environments):
    start_operator(environment_missing_grace_seconds=20)
    name = f"late-{uuid.uuid4().hex[:6]}"
    sluice.create("early", {"environments": [name], "runner": kwok_runner("1s")})
    time.sleep(2)
    environments.custom.create_cluster_custom_object("sluice.dev", "v1alpha1", "testenvironments", {
        "apiVersion": "sluice.dev/v1alpha1", "kind": "TestEnvironment", "metadata": {"name": name}, "spec": {}})
    environments.made.append(name)
    assert sluice.wait_phase("early", "Succeeded", "Rejected", timeout=60)["status"]["phase"] == "Succeeded"
