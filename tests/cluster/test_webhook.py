"""The admission webhook against the real control plane: the test cluster's kube-apiserver calls
the operator's webhook at https://127.0.0.1:<port>, configured with the chart's own webhook entry
(rules, matchConditions, failurePolicy, sideEffects) and only this test's namespace selected.

Proves: `kubectl apply` into a full queue prints the 429 message and stores nothing; a priority
change records who made it (kubectl --as=alice), a dry run records nothing; with the webhook down
the create is accepted and the operator ends it Rejected/QueueFull. And the chart's own objects:
the API server accepts them, an upgrade keeps the generated certificate, uninstall removes them.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest

from tests.harness.chart import CHART, find, helm, template
from tests.harness.operator_proc import free_port
from tests.harness.pki import write_serving_cert
from tests.harness.sluice_api import SIMPLE_SOURCE, kwok_runner

pytestmark = pytest.mark.cluster


def _manifest(namespace: str, name: str) -> str:
    return json.dumps({"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": {"queue": "q", "runner": kwok_runner("1s"), "source": SIMPLE_SOURCE}})


def _webhook_configuration(cluster, name: str, namespace: str, port: int, ca_pem: bytes) -> dict:
    """The chart's ValidatingWebhookConfiguration, pointed at the local operator and this namespace."""
    (vwc,) = find(template(cluster.bin_dir, f"watchNamespaces={{{namespace}}}"), "ValidatingWebhookConfiguration")
    (hook,) = vwc["webhooks"]
    path = hook["clientConfig"]["service"]["path"]
    hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": base64.b64encode(ca_pem).decode()}
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [namespace]
    return {"apiVersion": vwc["apiVersion"], "kind": vwc["kind"], "metadata": {"name": name}, "webhooks": [hook]}


def _grant_alice(cluster, namespace: str) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "tx-editor", "namespace": namespace},
            "rules": [{"apiGroups": ["sluice.dev"], "resources": ["testexecutions"], "verbs": ["get", "patch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "alice-tx-editor", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tx-editor"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}))


def _priority_events(sluice, name: str) -> list[str]:
    return [e.message for e in sluice.events(name) if e.reason == "PriorityChanged"]


def test_queue_full_at_kubectl_apply_and_who_moved_a_priority(cluster, namespace, sluice, start_operator, tmp_path):
    port = free_port()
    ca_pem = write_serving_cert(Path(tmp_path) / "webhook")
    op = start_operator(running_capacity=5, webhook_port=port, webhook_cert_dir=str(Path(tmp_path) / "webhook"))
    name = f"sluice-test-{namespace}"  # cluster-scoped on a shared cluster: unique, deleted below
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_webhook_configuration(cluster, name, namespace, port, ca_pem)))
    try:
        sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 2, "paused": True})
        for n in ("tx-1", "tx-2"):
            sluice.create(n, {"queue": "q", "runner": kwok_runner("1s")})
        for n in ("tx-1", "tx-2"):
            sluice.wait_phase(n, "Queued")
        full = f"queue q in namespace {namespace} is full: 2/2 waiting (queuedCapacity 2); retry later"

        # The API server picks a new configuration up within a moment: a server-side dry run
        # (which the webhook answers too) says when it is in force.
        deadline = time.monotonic() + 20
        while True:
            dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=_manifest(namespace, "tx-3"),
                                  check=False)
            if dry.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert full in dry.stderr, dry.stderr

        started = time.monotonic()
        proc = cluster.kubectl("apply", "-f", "-", input=_manifest(namespace, "tx-3"), check=False)
        took = time.monotonic() - started
        assert proc.returncode != 0
        assert "(TooManyRequests)" in proc.stderr and full in proc.stderr, proc.stderr
        assert "tx-3" not in [i["metadata"]["name"] for i in sluice.list()]
        print(f"\nkubectl apply into a full queue ({took:.2f} s): {proc.stderr.strip()}")
        denied = [line for line in op.metrics().splitlines()
                  if line.startswith('sluice_webhook_reviews_total{operation="CREATE",verdict="denied"}')]
        assert denied and float(denied[0].split()[-1]) >= 2  # the dry run and the real create

        # A priority change: allowed, and the Event names the requesting user; a dry run posts nothing.
        _grant_alice(cluster, namespace)
        as_alice = ["--as=alice", "-n", namespace, "patch", "testexecution", "tx-1", "--type=merge"]
        cluster.kubectl(*as_alice, "--dry-run=server", "-p", '{"spec":{"priority":"high"}}')
        cluster.kubectl(*as_alice, "-p", '{"spec":{"priority":"critical"}}')
        assert sluice.get("tx-1")["spec"]["priority"] == "critical"
        deadline = time.monotonic() + 15
        while not any("by alice" in m for m in _priority_events(sluice, "tx-1")) and time.monotonic() < deadline:
            time.sleep(0.3)
        moved = [m for m in _priority_events(sluice, "tx-1") if "by alice" in m]
        assert moved == ["priority changed from normal to critical by alice"], _priority_events(sluice, "tx-1")
        assert not any("high" in m for m in _priority_events(sluice, "tx-1"))  # the dry run

        # The webhook down (operator stopped, nothing listens): failurePolicy Ignore lets the create
        # through at once, and the operator, back, rejects it: Rejected/QueueFull is the backstop.
        op.stop()
        started = time.monotonic()
        proc = cluster.kubectl("apply", "-f", "-", input=_manifest(namespace, "tx-4"), check=False)
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert took < 3, f"a create waited {took:.1f} s on a webhook that is down"
        start_operator(running_capacity=5)  # no certificate: serves no webhook
        st = sluice.wait_phase("tx-4", "Rejected")["status"]
        assert st["reason"] == "QueueFull" and "2 executions waiting, queuedCapacity is 2" in st["message"]
        assert {sluice.phase("tx-1"), sluice.phase("tx-2")} == {"Queued"}
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def test_chart_keeps_its_generated_certificate_across_upgrades(cluster, namespace, crds):
    release = f"wh-{uuid.uuid4().hex[:6]}"  # the configuration and ClusterRoles are cluster-scoped
    base = ["--namespace", namespace, "--set", "replicas=0", "--set", f"watchNamespaces={{{namespace}}}",
            f"--kubeconfig={cluster.kubeconfig}"]

    def cert_and_bundle() -> tuple[dict, str]:
        secret = json.loads(cluster.kubectl("get", "secret", f"{release}-sluice-webhook-cert", "-n", namespace,
                                            "-o", "json").stdout)["data"]
        vwc = json.loads(cluster.kubectl("get", "validatingwebhookconfiguration", f"{release}-sluice",
                                         "-o", "json").stdout)
        return secret, vwc["webhooks"][0]["clientConfig"]["caBundle"]

    helm(cluster.bin_dir, "install", release, str(CHART), "--wait=false", *base)
    try:
        before, bundle = cert_and_bundle()
        assert bundle == before["ca.crt"]
        helm(cluster.bin_dir, "upgrade", release, str(CHART), "--wait=false", *base, "--set", "capacity.queued=7")
        after, bundle = cert_and_bundle()
        assert after == before and bundle == before["ca.crt"]
        helm(cluster.bin_dir, "upgrade", release, str(CHART), "--wait=false", *base, "--set", "webhook.enabled=false")
        assert cluster.kubectl("get", "validatingwebhookconfiguration", f"{release}-sluice", check=False).returncode != 0
    finally:
        helm(cluster.bin_dir, "uninstall", release, "--namespace", namespace, "--wait",
             f"--kubeconfig={cluster.kubeconfig}", check=False)
    assert cluster.kubectl("get", "validatingwebhookconfiguration", f"{release}-sluice", check=False).returncode != 0
