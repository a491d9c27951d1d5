"""The Helm chart against the real control plane: the API server accepts what it renders, install
and uninstall are clean, its RBAC is enough for the operator and no more, and the GitOps health
checks read real execution status right.

The operator pods the chart creates never run here (no image, no kubelet that pulls); the RBAC
proof runs the real operator process instead, logged in with a token of the chart's own
ServiceAccount, so every API call it makes is authorized exactly as it would be in the pod.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.harness.chart import CHART, KUBE_VERSION, helm, lua_binary, lua_health, service_account_kubeconfig
from tests.harness.operator_proc import OperatorProcess
from tests.harness.sluice_api import CapacityWatcher, kwok_runner

pytestmark = pytest.mark.cluster
HEALTH_LUA = CHART / "argocd" / "health.lua"
GITOPS_DOC = CHART.parents[1] / "docs" / "gitops.md"


def _release() -> str:
    return f"sl-{uuid.uuid4().hex[:6]}"  # ClusterRoles are cluster-scoped: one name per test


def _install(cluster, release: str, namespace: str, *sets: str) -> None:
    args = ["install", release, str(CHART), "--namespace", namespace, "--wait=false"]
    for s in sets:
        args += ["--set", s]
    helm(cluster.bin_dir, *args, kubeconfig=cluster.kubeconfig)


def _uninstall(cluster, release: str, namespace: str) -> None:
    helm(cluster.bin_dir, "uninstall", release, "--namespace", namespace, "--wait", kubeconfig=cluster.kubeconfig,
         check=False)


def _can_i(cluster, who: str, verb: str, resource: str, *where: str) -> bool:
    """`resource` is TYPE, TYPE/NAME, or TYPE:SUBRESOURCE."""
    resource, _, sub = resource.partition(":")
    extra = [f"--subresource={sub}"] if sub else []
    proc = cluster.kubectl("auth", "can-i", verb, resource, *extra, f"--as={who}", *where, check=False)
    return proc.stdout.strip() == "yes"


@pytest.mark.parametrize("sets", [
    [],
    ["replicas=2", "capacity.running=20", "artifacts.bucket=reports", "artifacts.secretName=s3"],
    ["rbac.create=false", "serviceAccount.create=false", "metrics.service.enabled=false"],
], ids=["defaults", "ha-artifacts", "bring-your-own-rbac"])
def test_rendered_manifests_are_accepted_by_the_api_server(cluster, namespace, crds, sets):
    for mode in ([f"watchNamespaces={{{namespace}}}"], []):
        args = ["template", "sl", str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
        for s in sets + mode:
            args += ["--set", s]
        rendered = helm(cluster.bin_dir, *args).stdout
        kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
        assert "Deployment" in kinds
        proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
        assert proc.stdout.count("(server dry run)") == len(kinds), proc.stdout


def test_install_creates_everything_and_uninstall_leaves_nothing(cluster, namespace, crds):
    release = _release()
    _install(cluster, release, namespace, "replicas=2")
    try:
        selector = f"app.kubernetes.io/instance={release}"
        got = cluster.kubectl("get", "deployment,serviceaccount,service,role,rolebinding", "-n", namespace,
                              "-l", selector, "-o", "name").stdout.split()
        assert sorted(got) == sorted([
            f"deployment.apps/{release}-sluice", f"serviceaccount/{release}-sluice", "serviceaccount/sluice-runner",
            f"service/{release}-sluice-metrics",
            f"deployment.apps/{release}-sluice-redis", f"service/{release}-sluice-redis",  # the live channel
            f"service/{release}-sluice-webhook",  # the admission webhook (QueueFull at kubectl apply)
            f"role.rbac.authorization.k8s.io/{release}-sluice-leader",
            f"rolebinding.rbac.authorization.k8s.io/{release}-sluice-leader",
        ])
        cluster.kubectl("get", f"clusterrole/{release}-sluice", f"clusterrolebinding/{release}-sluice",
                        f"validatingwebhookconfiguration/{release}-sluice", f"secret/{release}-sluice-webhook-cert",
                        "-n", namespace)
        deploy = json.loads(cluster.kubectl("get", f"deployment/{release}-sluice", "-n", namespace, "-o", "json").stdout)
        assert deploy["spec"]["replicas"] == 2
        status = helm(cluster.bin_dir, "status", release, "-n", namespace, kubeconfig=cluster.kubeconfig).stdout
        assert "STATUS: deployed" in status and "kubectl wait --for=condition=Complete" in status
    finally:
        _uninstall(cluster, release, namespace)
    left = cluster.kubectl("get", "all,serviceaccount,role,rolebinding,configmap,secret", "-n", namespace,
                           "-l", f"app.kubernetes.io/instance={release}", "-o", "name").stdout.split()
    assert left == []
    gone = cluster.kubectl("get", f"clusterrole/{release}-sluice", f"clusterrolebinding/{release}-sluice",
                           f"validatingwebhookconfiguration/{release}-sluice", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert helm(cluster.bin_dir, "list", "-n", namespace, "-q", kubeconfig=cluster.kubeconfig).stdout.strip() == ""


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide"])
def test_chart_rbac_allows_what_the_operator_needs_and_no_more(cluster, namespace, crds, mode):
    release = _release()
    sets = ["replicas=0"] + ([f"watchNamespaces={{{namespace}}}"] if mode == "namespaced" else [])
    _install(cluster, release, namespace, *sets)
    operator_sa = f"system:serviceaccount:{namespace}:{release}-sluice"
    runner_sa = f"system:serviceaccount:{namespace}:sluice-runner"
    try:
        ns = ["-n", namespace]
        # What the operator calls (operator/sluice/kube, dispatch.py, leader.py): allowed.
        for verb, resource in [("watch", "testexecutions.sluice.dev"), ("patch", "testexecutions.sluice.dev:status"),
                               ("patch", "testqueues.sluice.dev:status"), ("create", "jobs.batch"),
                               ("delete", "jobs.batch"), ("create", "configmaps"), ("list", "pods"),
                               ("create", "events"), ("create", "leases.coordination.k8s.io"),
                               ("update", "leases.coordination.k8s.io/sluice-operator"),
                               # watch: unstarted runner pods; get secrets: a queue's notification URL;
                               # create/patch/delete executions: schedules' runs, Replace, history limits
                               ("watch", "pods"), ("get", "secrets"), ("create", "testexecutions.sluice.dev"),
                               ("delete", "testexecutions.sluice.dev"), ("watch", "testschedules.sluice.dev"),
                               ("patch", "testschedules.sluice.dev:status")]:
            assert _can_i(cluster, operator_sa, verb, resource, *ns), f"operator cannot {verb} {resource}"
        # Cluster-scoped, in both modes: environments and namespace labels (their selectors).
        for verb, resource in [("watch", "testenvironments.sluice.dev"), ("patch", "testenvironments.sluice.dev:status"),
                               ("list", "namespaces")]:
            assert _can_i(cluster, operator_sa, verb, resource), f"operator cannot {verb} {resource}"
        # And nothing else: no listing Secrets, no pods of its own, no queue or schedule writes, no
        # namespace changes, no other Leases.
        for verb, resource in [("list", "secrets"), ("watch", "secrets"), ("create", "pods"), ("delete", "pods"),
                               ("update", "testexecutions.sluice.dev"), ("patch", "testqueues.sluice.dev"),
                               ("delete", "testqueues.sluice.dev"), ("patch", "testschedules.sluice.dev"),
                               ("patch", "testenvironments.sluice.dev"),
                               ("patch", "jobs.batch"), ("update", "configmaps"), ("delete", "configmaps"),
                               ("delete", "namespaces"), ("create", "namespaces"), ("get", "pods:log"),
                               ("create", "pods:exec"), ("update", "leases.coordination.k8s.io/kube-scheduler"),
                               ("list", "customresourcedefinitions.apiextensions.k8s.io"),
                               ("create", "rolebindings.rbac.authorization.k8s.io")]:
            assert not _can_i(cluster, operator_sa, verb, resource, *ns), f"operator may {verb} {resource}"
        assert not _can_i(cluster, operator_sa, "delete", "namespaces", "-A")
        can_list_all = _can_i(cluster, operator_sa, "list", "testexecutions.sluice.dev", "-A")
        assert can_list_all == (mode == "cluster-wide")
        if mode == "namespaced":
            assert not _can_i(cluster, operator_sa, "create", "jobs.batch", "-n", "default")
        # The runner ServiceAccount: nothing at all.
        for verb, resource in [("get", "pods"), ("get", "secrets"), ("get", "configmaps"), ("create", "jobs.batch"),
                               ("get", "testexecutions.sluice.dev"), ("list", "events"),
                               ("get", "leases.coordination.k8s.io")]:
            assert not _can_i(cluster, runner_sa, verb, resource, *ns), f"runner may {verb} {resource}"
        sa = json.loads(cluster.kubectl("get", "serviceaccount/sluice-runner", *ns, "-o", "json").stdout)
        assert sa["automountServiceAccountToken"] is False

        # The real operator with only the chart's ServiceAccount token: capacity, a retry, cancel.
        kubeconfig = service_account_kubeconfig(cluster, namespace, f"{release}-sluice",
                                                Path(cluster.state_dir) / f"kubeconfig-{release}")
        # Two replicas, as `replicas: 2` runs them: one leads through the Lease, one stands by.
        ops = [OperatorProcess(str(kubeconfig), namespace, Path(cluster.state_dir) / "logs", running_capacity=2)
               for _ in range(2)]
        try:
            for op in ops:
                op.start()
            _operator_scenario(cluster, namespace)
        finally:
            for op in ops:
                op.stop()
        for op in ops:
            log = op.log_path.read_text(errors="replace")
            assert "forbidden" not in log.lower(), op.log_tail(60)  # no API call was refused
        assert sum("became the leader" in op.log_path.read_text() for op in ops) >= 1
    finally:
        _uninstall(cluster, release, namespace)


def _operator_scenario(cluster, namespace: str) -> None:
    from tests.harness.sluice_api import Sluice

    with cluster.api_client() as api:
        sluice = Sluice(api, namespace)
        sluice.create_queue("q", {"runningCapacity": 5})
        retry = {"limit": 2, "backoff": {"initialSeconds": 1, "factor": 2, "maxSeconds": 5}}
        infra = json.dumps({"v": 1, "outcome": "error", "errorClass": "InfrastructureError", "message": "upload failed"})
        watcher = CapacityWatcher(sluice)
        watcher.start()
        sluice.create("flaky", {"queue": "q", "retries": retry,
                                "runner": kwok_runner("1s", exit_code=3, fail_attempts=(1,), message=infra)})
        for i in range(4):
            sluice.create(f"ok-{i}", {"queue": "q", "runner": kwok_runner("1s")})
        sluice.create("long", {"queue": "q", "runner": kwok_runner("300s")})
        sluice.wait_phase("long", "Running", timeout=60)
        sluice.patch("long", {"cancel": True})
        assert sluice.wait_phase("long", "Cancelled", timeout=30)["status"]["reason"] == "Cancelled"
        st = sluice.wait_phase("flaky", "Succeeded", "Failed", timeout=90)["status"]
        assert (st["phase"], st["attempt"]) == ("Succeeded", 2), st
        assert st["attempts"][0]["reason"] == "InfrastructureError"
        for i in range(4):
            sluice.wait_phase(f"ok-{i}", "Succeeded", timeout=90)
        watcher.stop()
        assert watcher.peak <= 2, f"saw {watcher.peak} unfinished Jobs at capacity 2"
        assert watcher.peak == 2
        # The operator's other writes went through too: the inline-source ConfigMaps, Events,
        # TestQueue.status and the Lease.
        assert cluster.kubectl("get", "configmaps", "-n", namespace, "-l", "sluice.dev/execution=flaky",
                               "-o", "name").stdout.strip()
        assert sluice.events("flaky"), "no Events posted"
        deadline = time.time() + 15
        while time.time() < deadline and (sluice.get_queue("q").get("status") or {}).get("succeededTotal") != 5:
            time.sleep(0.5)
        assert sluice.get_queue("q")["status"]["succeededTotal"] == 5
        lease = json.loads(cluster.kubectl("get", "lease/sluice-operator", "-n", namespace, "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"]


def test_argocd_health_and_kubectl_wait_on_real_executions(cluster, sluice, start_operator):
    lua = lua_binary()
    if lua is None:
        pytest.skip("no Lua interpreter: apt-get install lua5.4 (hack/install-deps does)")
    start_operator(running_capacity=1)
    sluice.create("passes", {"runner": kwok_runner("1s")})
    sluice.create("fails", {"runner": kwok_runner("1s", exit_code=1, message="1 failed")})
    sluice.create("runs", {"runner": kwok_runner("300s")})
    sluice.create("waits", {"runner": kwok_runner("1s")})
    ns = sluice.ns
    # `kubectl wait` on the contract's conditions: Complete for any end, Succeeded for success.
    cluster.kubectl("wait", "--for=condition=Complete", "--timeout=60s", "tx/passes", "tx/fails", "-n", ns)
    cluster.kubectl("wait", "--for=condition=Succeeded", "--timeout=10s", "tx/passes", "-n", ns)
    cluster.kubectl("wait", "--for=condition=Succeeded=False", "--timeout=10s", "tx/fails", "-n", ns)
    running = sluice.wait_phase("runs", "Running", timeout=60)
    queued = sluice.wait_phase("waits", "Queued", timeout=30)
    quick = cluster.kubectl("wait", "--for=condition=Complete", "--timeout=2s", "tx/runs", "-n", ns, check=False)
    assert quick.returncode != 0, "Complete must not be True while running"
    cases = [
        (sluice.get("passes"), "Healthy", "Succeeded"),
        (sluice.get("fails"), "Degraded", "Failed (TestsFailed)"),
        (running, "Progressing", "Running"),
        (queued, "Progressing", "Queued"),
        ({"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution", "metadata": {"name": "new"}}, "Progressing", ""),
    ]
    sluice.patch("runs", {"cancel": True})
    cancelled = sluice.wait_phase("runs", "Cancelled", timeout=30)
    cases.append((cancelled, "Degraded", "Cancelled"))
    for obj, want, message in cases:
        got = lua_health(HEALTH_LUA, obj, lua)
        assert got["status"] == want, (obj.get("status"), got)
        assert got["message"].startswith(message), got
    # Flux: the healthCheckExprs of docs/gitops.md, evaluated by the API server's CEL.
    # ("waits" may have run by now: a paused queue holds "later" Queued for sure.)
    flux = {"passes": {"current"}, "fails": {"failed"}, "runs": {"failed"}}
    sluice.create_queue("paused", {"paused": True})
    sluice.create("later", {"runner": kwok_runner("1s"), "queue": "paused"})
    sluice.wait_phase("later", "Queued", timeout=30)
    flux["later"] = {"inProgress"}
    with _flux_cel_probe(cluster, ns) as probe:
        for name, want in flux.items():
            assert probe(name) == want, (name, sluice.get(name).get("status"))


def _flux_expressions() -> dict[str, str]:
    text = GITOPS_DOC.read_text()
    block = text[text.index("healthCheckExprs:"):].split("```", 1)[0]
    (expr,) = yaml.safe_load(block)["healthCheckExprs"]
    assert (expr["apiVersion"], expr["kind"]) == ("sluice.dev/v1alpha1", "TestExecution")
    return {k: expr[k] for k in ("inProgress", "failed", "current")}


class _flux_cel_probe:
    """One ValidatingAdmissionPolicy per Flux expression, matching only dry-run status updates in
    this namespace, that denies when its expression is true: a dry-run patch of an execution's
    status then reports which expressions hold for it, as Kubernetes' CEL evaluates them."""

    def __init__(self, cluster, namespace: str):
        self.cluster, self.ns = cluster, namespace
        self.names = {key: f"flux-{key.lower()}-{namespace}"[:63] for key in ("inProgress", "failed", "current")}

    def __enter__(self):
        docs = []
        for key, expr in _flux_expressions().items():
            assert expr.startswith("!status.") or expr.startswith("status."), expr
            k8s_expr = expr.replace("status.", "object.status.", 1)  # Flux binds the object's fields
            name = self.names[key]
            docs.append({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": [{
                        "apiGroups": ["sluice.dev"], "apiVersions": ["v1alpha1"], "operations": ["UPDATE"],
                        "resources": ["testexecutions/status"]}]},
                    "matchConditions": [{"name": "probe-only", "expression":
                                         f"request.dryRun == true && object.metadata.namespace == '{self.ns}'"}],
                    "validations": [{"expression": f"!({k8s_expr})", "message": f"flux:{key}"}],
                },
            })
            docs.append({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            })
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        deadline = time.time() + 30  # policies take effect after their type check
        while time.time() < deadline and self._denials("passes") != {"current"}:
            time.sleep(0.5)
        return self._denials

    def _denials(self, name: str) -> set[str]:
        proc = self.cluster.kubectl("patch", f"tx/{name}", "-n", self.ns, "--subresource=status", "--type=merge",
                                    "-p", "{}", "--dry-run=server", check=False)
        return {key for key in self.names if f"flux:{key}" in proc.stderr}

    def __exit__(self, *exc):
        for name in self.names.values():
            self.cluster.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found", check=False)
            self.cluster.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found", check=False)
