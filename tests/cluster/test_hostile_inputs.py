"""A corpus of hostile and malformed TestExecutions, run against the real control plane with the
operator running, plus the control-plane proofs of issue 11's input hardening.

The corpus is a table: one row per input, each expecting either a 422 from the API (the CRD schema
or its CEL rules) with a needle in the error, or `Rejected` from the operator with a reason and a
message needle. All rows are created at once in one namespace with one operator, then waited for
together (the whole corpus takes a few seconds). For every row the operator reached, its writes
must stay bounded: a watch counts the execution's MODIFIED events (status writes) and the test
counts its Events, also for a few seconds after it ended (a write storm cannot hide there).

Rows that need the dispatcher/planner refactor (issue 11's items 1, 2, 9, 10 land there) are
marked xfail(strict=False) with the reason.
"""
from __future__ import annotations

import asyncio
import copy
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.harness.operator_proc import OperatorProcess
from tests.harness.sluice_api import GROUP, PROCESS_NODE_PLACEMENT, TERMINAL, VERSION, Sluice, kwok_runner

pytestmark = pytest.mark.cluster

CAPACITY = 5
MAX_STATUS_WRITES = 4  # a rejection is one or two status writes; a loop would be dozens
MAX_EVENTS = 3
SETTLE_SECONDS = 3.0  # keep watching this long after the last row ended


@dataclass
class Row:
    id: str
    spec: dict
    expect: str  # "422" or "Rejected"
    needle: str
    name: str | None = None
    reason: str = "InvalidSpec"
    forbid: tuple[str, ...] = ()  # strings that must appear nowhere (message, Events)
    xfail: str | None = None

    @property
    def object_name(self) -> str:
        return self.name or f"h-{self.id}"


def r422(id, spec, needle, **kw):
    return Row(id, spec, "422", needle, **kw)


def rej(id, spec, needle, **kw):
    return Row(id, spec, "Rejected", needle, **kw)


def files(**kv):
    return {"inline": {"files": kv}}


def git(**kv):
    return {"git": dict({"url": "https://example.com/org/repo.git"}, **kv)}


def runner(**kv):
    return {"runner": kv}


ROWS: list[Row] = [
    # -- item 3: names that become object names or path segments
    r422("cm-dotdot", {"source": {"configMap": {"name": "../../kube-system/configmaps/x"}}}, "spec.source.configMap.name"),
    r422("cm-watch", {"source": {"configMap": {"name": "a?watch=true"}}}, "spec.source.configMap.name"),
    r422("cm-upper", {"source": {"configMap": {"name": "Upper"}}}, "spec.source.configMap.name"),
    r422("cm-too-long", {"source": {"configMap": {"name": "a" * 254}}}, "spec.source.configMap.name"),
    r422("cm-empty", {"source": {"configMap": {"name": ""}}}, "spec.source.configMap.name"),
    r422("git-secret-slash", {"source": git(secretRef={"name": "a/b"})}, "spec.source.git.secretRef.name"),
    r422("s3-secret-query", {"artifacts": {"s3": {"bucket": "bkt", "secretRef": {"name": "x?y"}}}},
         "spec.artifacts.s3.secretRef.name"),
    r422("sa-double-dot", runner(serviceAccountName="a..b"), "spec.runner.serviceAccountName"),
    r422("sa-upper", runner(serviceAccountName="Admin"), "spec.runner.serviceAccountName"),
    r422("env-secret-path", runner(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "../x", "key": "k"}}}]),
         "spec.runner.env[0].valueFrom.secretKeyRef.name"),
    r422("env-cm-key-slash", runner(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "a/b"}}}]),
         "spec.runner.env[0].valueFrom.configMapKeyRef.key"),
    r422("envfrom-space", runner(envFrom=[{"configMapRef": {"name": "a b"}}]), "spec.runner.envFrom[0].configMapRef.name"),
    r422("envfrom-secret-dots", runner(envFrom=[{"secretRef": {"name": ".."}}]), "spec.runner.envFrom[0].secretRef.name"),
    r422("queue-underscore", {"queue": "Bad_Q"}, "spec.queue"),
    r422("queue-path", {"queue": "../x"}, "spec.queue"),
    # -- items 4 and 6: control characters in what reaches the runner
    r422("args-nul", {"args": ["a\x00b"]}, "spec.args[0]"),
    r422("args-escape", {"args": ["\x1b[31mred"]}, "spec.args[0]"),
    r422("args-bell", {"args": ["-k", "x\x07"]}, "spec.args[1]"),
    r422("baseurl-nul", {"baseURL": "http://app\x00"}, "spec.baseURL"),
    r422("baseurl-space", {"baseURL": "http://a b"}, "spec.baseURL"),
    r422("baseurl-newline", {"baseURL": "http://a\nX-Injected: 1"}, "spec.baseURL"),
    r422("env-value-nul", runner(env=[{"name": "X", "value": "a\x00"}]), "spec.runner.env[0].value"),
    r422("git-url-nul", {"source": git(url="https://h/r\x00")}, "spec.source.git.url"),
    r422("git-ref-option", {"source": git(ref="--upload-pack=touch /tmp/pwned")}, "spec.source.git.ref"),
    r422("git-ref-space", {"source": git(ref="main; rm -rf /")}, "spec.source.git.ref"),
    r422("git-path-absolute", {"source": git(path="/etc")}, "relative path"),
    r422("git-path-dotdot", {"source": git(path="a/../../x")}, "relative path"),
    r422("image-path-nul", {"source": {"image": {"path": "/t\x00"}}}, "spec.source.image.path"),
    # -- item 5: SLUICE_ reserved in any case
    r422("env-lower-sluice", runner(env=[{"name": "sluice_artifacts_url", "value": "s3://x/"}]), "reserved"),
    r422("env-mixed-sluice", runner(env=[{"name": "Sluice_Attempt", "value": "9"}]), "reserved"),
    r422("env-upper-sluice", runner(env=[{"name": "SLUICE_ARTIFACTS_URL", "value": "s3://x/"}]), "reserved"),
    r422("envfrom-prefix", runner(envFrom=[{"prefix": "SLUICE_", "configMapRef": {"name": "c"}}]), "reserved"),
    r422("envfrom-prefix-lower", runner(envFrom=[{"prefix": "sluice_x", "secretRef": {"name": "s"}}]), "reserved"),
    # -- item 7: pod labels and annotations
    r422("label-key-dash", runner(podLabels={"-x": "y"}), "qualified names"),
    r422("label-value-space", runner(podLabels={"team": "bad value!"}), "spec.runner.podLabels"),
    r422("label-value-long", runner(podLabels={"team": "x" * 64}), "spec.runner.podLabels"),
    r422("label-kubernetes-io", runner(podLabels={"kubernetes.io/hostname": "n1"}), "podLabels may not set"),
    r422("label-batch", runner(podLabels={"batch.kubernetes.io/job-name": "other"}), "podLabels may not set"),
    r422("label-controller-uid", runner(podLabels={"controller-uid": "x"}), "podLabels may not set"),
    r422("label-job-name", runner(podLabels={"job-name": "victim-a1"}), "podLabels may not set"),
    r422("label-sluice", runner(podLabels={"sluice.dev/attempt": "9"}), "podLabels may not set"),
    r422("ann-apparmor", runner(podAnnotations={"container.apparmor.security.beta.kubernetes.io/runner": "unconfined"}),
         "podAnnotations may not set"),
    r422("ann-seccomp", runner(podAnnotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
         "podAnnotations may not set"),
    r422("ann-k8s-io", runner(podAnnotations={"k8s.io/anything": "y"}), "podAnnotations may not set"),
    r422("ann-autoscaler", runner(podAnnotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
         "podAnnotations may not set"),
    r422("ann-sluice", runner(podAnnotations={"sluice.dev/execution": "victim"}), "podAnnotations may not set"),
    r422("ann-key-space", runner(podAnnotations={"a b": "c"}), "qualified names"),
    r422("ann-value-too-long", runner(podAnnotations={"big": "x" * 65537}), "spec.runner.podAnnotations"),
    r422("nodeselector-value", runner(nodeSelector={"zone": "a b"}), "spec.runner.nodeSelector"),
    r422("nodeselector-key", runner(nodeSelector={"bad key": "v"}), "qualified names"),
    # -- item 10: tolerations, file names, resources, prefixes
    r422("tol-operator", runner(tolerations=[{"key": "k", "operator": "Sometimes"}]), "spec.runner.tolerations[0].operator"),
    r422("tol-effect", runner(tolerations=[{"key": "k", "effect": "Never"}]), "spec.runner.tolerations[0].effect"),
    r422("tol-key", runner(tolerations=[{"key": "bad key!", "operator": "Exists"}]), "spec.runner.tolerations[0].key"),
    r422("tol-no-key-equal", runner(tolerations=[{"operator": "Equal", "value": "v"}]), "must use operator Exists"),
    r422("tol-exists-value", runner(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]), "may not set a value"),
    r422("tol-seconds", runner(tolerations=[{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]),
         "requires effect NoExecute"),
    r422("file-dotdata", {"source": files(**{"..data": "x"})}, "inline file names"),
    r422("file-dotdot-prefix", {"source": files(**{"..x.py": "x"})}, "inline file names"),
    r422("res-quantity", runner(resources={"requests": {"cpu": "lots"}}), "spec.runner.resources.requests.cpu"),
    r422("res-name", runner(resources={"limits": {"bad name!": "1"}}), "resource names must be qualified"),
    r422("s3-prefix-dotdot", {"artifacts": {"s3": {"bucket": "bkt", "prefix": "a/../other-team"}}}, "'..'"),
    r422("s3-region", {"artifacts": {"s3": {"bucket": "bkt", "region": "us east"}}}, "spec.artifacts.s3.region"),
    r422("s3-endpoint-space", {"artifacts": {"s3": {"bucket": "bkt", "endpoint": "http://a b"}}},
         "spec.artifacts.s3.endpoint"),
    r422("sharded-dotted-name", {"shards": 2}, "may not contain '.'", name="h.sharded"),
    # -- item 8: git
    r422("git-file", {"source": git(url="file:///etc/passwd")}, "file:// and other schemes are refused"),
    r422("git-file-upper", {"source": git(url="FILE:///etc")}, "file:// and other schemes are refused"),
    r422("git-ext", {"source": git(url="ext::sh -c id")}, "file:// and other schemes are refused"),
    r422("git-local-path", {"source": git(url="/srv/repo")}, "local path"),
    r422("git-dash", {"source": git(url="-uhttps://x")}, "local path or start with '-'"),
    # -- rejected by the operator (what the schema cannot see)
    rej("git-not-a-url", {"source": git(url="definitely not a url")}, "not a git URL"),
    rej("git-relative", {"source": git(url="repo")}, "not a git URL"),
    rej("git-creds-no-host", {"source": git(url="https://bob:s3cret@/x")}, "has no host", forbid=("s3cret",)),
    rej("baseurl-not-http", {"baseURL": "localhost:3000"}, "not an http(s) URL"),
    rej("cm-missing", {"source": {"configMap": {"name": "does-not-exist"}}}, "does not exist in this namespace"),
    rej("shards-over-capacity", {"shards": CAPACITY + 1}, "exceed the queue's runningCapacity"),
    rej("image-bad", runner(image="UPPER CASE/no good"), "not a valid image reference"),
    rej("cpu-request-over-limit", runner(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "requests.cpu (2) is more than its limit (1)"),
    rej("annotations-300k", runner(podAnnotations={f"big-{i}": "x" * 60_000 for i in range(5)}), "more than 65536"),
    rej("memory-over-default-limit", runner(resources={"requests": {"memory": "4Gi"}}),
        "requests.memory (4Gi) is more than its limit (2Gi)"),
    rej("gpu-fraction", runner(resources={"requests": {"example.com/gpu": "500m"}, "limits": {"example.com/gpu": "500m"}}),
        "example.com/gpu"),
]


def _spec(row: Row) -> dict:
    """The row's fragment over a kwok placement whose pods never finish (a wrongly admitted row
    holds a slot but runs nothing)."""
    spec = copy.deepcopy(row.spec)
    base = kwok_runner("300s")
    own = spec.pop("runner", {})
    merged = dict(base, **own)
    for key in ("podLabels", "podAnnotations"):
        merged[key] = {**base.get(key, {}), **own.get(key, {})}
    spec["runner"] = merged
    spec.setdefault("retries", {"limit": 0})
    return spec


class WriteCounter(threading.Thread):
    """Counts MODIFIED events per execution name (each one is a write to the object)."""

    def __init__(self, api_client, namespace: str):
        super().__init__(daemon=True)
        self.api = client.CustomObjectsApi(api_client)
        self.ns, self.counts, self.stop_flag = namespace, Counter(), threading.Event()
        self.ready = threading.Event()

    def run(self):
        rv = None  # continue each watch where the last one ended, so no write falls in a gap
        while not self.stop_flag.is_set():
            w = watch.Watch()
            kwargs = {"timeout_seconds": 2, "allow_watch_bookmarks": True}
            if rv:
                kwargs["resource_version"] = rv
            self.ready.set()
            try:
                for event in w.stream(self.api.list_namespaced_custom_object, GROUP, VERSION, self.ns,
                                      "testexecutions", **kwargs):
                    meta = event["object"]["metadata"]
                    rv = meta.get("resourceVersion") or rv
                    if event["type"] == "MODIFIED":
                        self.counts[meta["name"]] += 1
            except ApiException as exc:  # 410 Gone: start over (counts already taken stay)
                if exc.status != 410:
                    raise
                rv = None

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=5)


@dataclass
class Outcome:
    status: int | None = None  # HTTP status of a refused create
    body: str = ""
    obj: dict = field(default_factory=dict)
    writes: int = 0
    events: list = field(default_factory=list)


def _make_namespace(core: client.CoreV1Api) -> str:
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture(scope="module")
def corpus(cluster, crds):
    """Creates every row at once, waits for all, returns {row id: Outcome}."""
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    ns = _make_namespace(core)
    op = OperatorProcess(cluster.kubeconfig, ns, Path(cluster.state_dir) / "logs", running_capacity=CAPACITY)
    counter = WriteCounter(api, ns)
    try:
        op.start()
        counter.start()
        counter.ready.wait(5)
        sluice = Sluice(api, ns)
        out: dict[str, Outcome] = {}
        for row in ROWS:
            try:
                sluice.create(row.object_name, _spec(row))
                out[row.id] = Outcome()
            except ApiException as exc:
                out[row.id] = Outcome(status=exc.status, body=exc.body or "")
        created = [r for r in ROWS if out[r.id].status is None]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            phases = {o["metadata"]["name"]: (o.get("status") or {}).get("phase") for o in sluice.list()}
            if all(phases.get(r.object_name) in TERMINAL for r in created if not r.xfail):
                break
            time.sleep(0.25)
        time.sleep(SETTLE_SECONDS)
        for row in created:
            o = out[row.id]
            o.obj = sluice.get(row.object_name)
            o.writes = counter.counts[row.object_name]
            o.events = sluice.events(row.object_name)
        yield out
    finally:
        counter.stop()
        op.stop()
        try:
            core.delete_namespace(ns, propagation_policy="Background")
        except ApiException:
            pass


def test_the_corpus_is_large_enough():
    assert len(ROWS) >= 60 and len({r.id for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=[pytest.mark.xfail(strict=False, reason=r.xfail)]
                                              if r.xfail else []) for r in ROWS])
def test_hostile_input(corpus, row):
    got = corpus[row.id]
    if row.expect == "422":
        assert got.status == 422, f"{row.id}: expected 422, got {got.status or 'created'}: {got.obj.get('status')}"
        assert row.needle in got.body, f"{row.id}: {row.needle!r} not in {got.body[:600]}"
        return
    assert got.status is None, f"{row.id}: refused by the API ({got.status}): {got.body[:400]}"
    st = got.obj.get("status") or {}
    assert st.get("phase") == "Rejected" and st.get("reason") == row.reason, f"{row.id}: {st}"
    assert row.needle in (st.get("message") or ""), f"{row.id}: {row.needle!r} not in {st.get('message')!r}"
    texts = [st.get("message") or ""] + [e.message or "" for e in got.events]
    for secret in row.forbid:
        assert not any(secret in t for t in texts), f"{row.id}: {secret!r} leaked: {texts}"
    # Bounded writes, also in the seconds after it ended: no loop rewrites it.
    assert got.writes <= MAX_STATUS_WRITES, f"{row.id}: {got.writes} status writes"
    assert len(got.events) <= MAX_EVENTS, f"{row.id}: {len(got.events)} Events: {[e.message for e in got.events]}"


# -- item 3 on the real API server: the client's paths cannot escape their segment ----------------------

def test_quoted_names_cannot_reach_other_namespaces_or_watch(cluster, namespace):
    from sluice.kube.client import Kube, core_path

    async def probe():
        kube = await Kube.connect(str(cluster.kubeconfig))
        try:
            results = {}
            for name in ("../../kube-system/configmaps/extension-apiserver-authentication",
                         "../configmaps?watch=true", "..", "%2e%2e"):
                started = time.monotonic()
                try:
                    body = await kube.get(core_path(namespace, "configmaps", name))
                    results[name] = (200, body.get("kind"), time.monotonic() - started)
                except Exception as exc:  # ApiError
                    results[name] = (getattr(exc, "status", None), None, time.monotonic() - started)
            # the same unquoted path reaches kube-system (what the old string joining did)
            raw = await kube.get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
            return results, raw.get("kind")
        finally:
            await kube.close()

    results, raw_kind = asyncio.run(probe())
    assert raw_kind == "ConfigMap"  # the object exists: a 404 below is the quoting, not its absence
    for name, (status, kind, seconds) in results.items():
        assert status in (400, 404), f"{name!r} answered {status} {kind}"
        assert seconds < 5, f"{name!r} held the request open {seconds:.1f}s"


# -- item 4 on the process node: kubelet-style $(VAR) expansion cannot touch user strings -----------------

EXACT = "$(SLUICE_EXECUTION) a$$b $(HOME)"
EXACT_SUITE = {
    "test_exact.py": (
        "import os\n"
        "EXACT = " + repr(EXACT) + "\n"
        "def test_env_and_base_url_arrive_exactly():\n"
        "    assert os.environ['MY_VAR'] == EXACT\n"
        "    assert os.environ['BASE_URL'] == 'http://app.invalid/' + EXACT.replace(' ', '')\n"
        "def test_args_arrive_exactly(pytestconfig):\n"
        "    assert EXACT in pytestconfig.getini('markers')\n"
    ),
}


def test_user_strings_reach_the_runner_exactly(sluice, start_operator):
    start_operator()
    sluice.create("exact", {
        "framework": "playwright-python", "timeoutSeconds": 120, "retries": {"limit": 0},
        "source": {"inline": {"files": EXACT_SUITE}},
        "args": ["-o", f"markers={EXACT}"],
        "baseURL": "http://app.invalid/" + EXACT.replace(" ", ""),
        "runner": dict(PROCESS_NODE_PLACEMENT, env=[{"name": "MY_VAR", "value": EXACT}]),
    })
    st = sluice.wait_phase("exact", *TERMINAL, timeout=150)["status"]
    assert st["phase"] == "Succeeded", st
    assert st["results"]["passed"] == 2, st["results"]


# -- item 11 (eviction): an eviction through the Eviction API is PodEvicted --------------------------------

SLEEPER = {"test_sleep.py": "import time\n\ndef test_sleep():\n    time.sleep(90)\n"}


def test_eviction_is_classed_pod_evicted(sluice, start_operator):
    start_operator(termination_grace_seconds=5)
    sluice.create("evicted", {
        "framework": "playwright-python", "timeoutSeconds": 150, "retries": {"limit": 0},
        "source": {"inline": {"files": SLEEPER}}, "runner": dict(PROCESS_NODE_PLACEMENT),
    })
    sluice.wait_phase("evicted", "Running", timeout=60)
    deadline = time.monotonic() + 60
    pod = None
    while time.monotonic() < deadline:
        pods = sluice.core.list_namespaced_pod(sluice.ns, label_selector="sluice.dev/execution=evicted").items
        running = [p for p in pods if p.status.phase == "Running"]
        if running:
            pod = running[0]
            break
        time.sleep(0.25)
    assert pod is not None, "the runner pod never ran"
    sluice.core.create_namespaced_pod_eviction(pod.metadata.name, sluice.ns, client.V1Eviction(
        metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=sluice.ns)))
    st = sluice.wait_phase("evicted", *TERMINAL, timeout=90)["status"]
    assert st["phase"] == "Failed" and st["reason"] == "PodEvicted", st
    assert st["attempts"][0]["reason"] == "PodEvicted", st["attempts"]


# -- chart, cluster-wide mode: system namespaces refused by a ValidatingAdmissionPolicy ---------------------

def test_admission_policy_refuses_executions_in_system_namespaces(cluster, crds, tmp_path):
    import yaml

    from tests.harness.chart import find, template

    release = f"hostile-{uuid.uuid4().hex[:5]}"
    objs = template(cluster.bin_dir, release=release)
    policy = find(objs, "ValidatingAdmissionPolicy") + find(objs, "ValidatingAdmissionPolicyBinding")
    assert len(policy) == 2
    manifest = tmp_path / "vap.yaml"
    manifest.write_text(yaml.safe_dump_all(policy))
    cluster.kubectl("apply", "-f", str(manifest))
    try:
        custom = client.CustomObjectsApi(cluster.api_client())
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TestExecution",
                "metadata": {"name": f"sneaky-{uuid.uuid4().hex[:5]}"},
                "spec": {"source": {"inline": {"files": {"t.py": "x"}}}}}
        deadline, err = time.monotonic() + 20, None
        while time.monotonic() < deadline:  # the policy takes a moment to be loaded
            try:
                custom.create_namespaced_custom_object(GROUP, VERSION, "kube-public", "testexecutions", body)
                custom.delete_namespaced_custom_object(GROUP, VERSION, "kube-public", "testexecutions",
                                                       body["metadata"]["name"])
                time.sleep(0.5)
            except ApiException as exc:
                err = exc
                break
        assert err is not None, "a TestExecution was admitted in kube-public"
        assert err.status in (403, 422) and "deniedNamespaces" in err.body, err.body
    finally:
        cluster.kubectl("delete", "--ignore-not-found", "-f", str(manifest))
