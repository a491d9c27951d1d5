"""The Helm chart, rendered by the real `helm` (no cluster): values -> SLUICE_* settings, RBAC shape,
security context, the values schema, and the CRD copies. Server-side checks are in
tests/cluster/test_chart.py."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sluice.api.settings import Settings
from tests.harness.chart import CHART, ROOT, find, helm, operator_deployments, operator_env, template

VALUE_SETS = {
    "defaults": [],
    "namespaced-ha": ["replicas=2", "watchNamespaces={team-a,team-b}", "capacity.running=20"],
    "artifacts-digest": ["artifacts.bucket=reports", "artifacts.endpoint=http://minio:9000",
                         "artifacts.secretName=s3-keys", "runner.image.digest=sha256:" + "a" * 64,
                         "metrics.service.enabled=false", "runner.serviceAccount.create=false"],
    "no-rbac": ["rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=ops"],
}




def _settings_from(env: dict[str, str], monkeypatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("SLUICE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("SLUICE_") and value is not None:
            monkeypatch.setenv(key, value)
    return Settings()


def test_chart_crds_are_byte_copies_of_crds_dir():
    """crds/ is the one source of truth; hack/gen-crds writes the chart's copies."""
    ours = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == ours
    for name in ours:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), name
    proc = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-crds"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_passes(bin_dir, name):
    args = ["lint", str(CHART), "--strict", "--kube-version", "1.35.4"]
    for s in VALUE_SETS[name]:
        args += ["--set", s]
    helm(bin_dir, *args)


def test_every_operator_setting_has_a_value_and_defaults_agree(bin_dir, monkeypatch):
    env = operator_env(template(bin_dir, namespace="sluice-system"))
    expected = {f"SLUICE_{name.upper()}" for name in Settings.model_fields}
    assert expected <= set(env), f"settings without a chart value: {sorted(expected - set(env))}"
    from_chart = _settings_from(env, monkeypatch).model_dump()
    defaults = _settings_from({}, monkeypatch).model_dump()
    assert from_chart.pop("lease_namespace") == "sluice-system"  # the release namespace, not ""
    defaults.pop("lease_namespace")
    # The chart deploys a Redis for the live channel by default; the operator alone has none.
    assert from_chart.pop("redis_url") == "redis://operator@sluice-redis.sluice-system.svc:6379"
    assert from_chart.pop("runner_redis_url") == "redis://runner@sluice-redis.sluice-system.svc:6379"
    assert from_chart.pop("runner_redis_secret") == "sluice-redis-runner"
    for name in ("redis_url", "runner_redis_url", "runner_redis_secret"):
        defaults.pop(name)
    assert from_chart == defaults


def test_values_reach_the_settings(bin_dir, monkeypatch, tmp_path):
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "capacity": {"running": 12, "queued": 3000},
        "defaults": {"timeoutSeconds": 900, "retries": 0, "backoff": {"initialSeconds": 5, "factor": 1.5, "maxSeconds": 60}},
        "runner": {"image": {"repository": "registry.example/runner", "tag": "v9"}, "imagePullPolicy": "Always",
                   "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
                   "jobTTLSeconds": 10000000, "terminationGraceSeconds": 45},
        "artifacts": {"bucket": "b", "prefix": "p/q", "endpoint": "http://minio:9000", "region": "eu-west-1",
                      "secretName": "s3"},
        "dispatch": {"positionHead": 7, "positionHeadLagSeconds": 3, "positionWritesPerSecond": 25,
                     "queueStatusIntervalSeconds": 2, "resyncSeconds": 30, "writeConcurrency": 8},
        "leaderElection": {"leaseName": "l", "leaseNamespace": "elsewhere", "leaseDurationSeconds": 20, "renewSeconds": 4},
        "metrics": {"port": 9090}, "health": {"port": 9091},
    }
    st = _settings_from(operator_env(template(bin_dir, values=values, tmp=tmp_path)), monkeypatch)
    assert st.watch_namespaces == ["team-a", "team-b"]
    assert (st.running_capacity, st.queued_capacity) == (12, 3000)
    assert (st.default_timeout_seconds, st.default_retries, st.default_backoff_initial_seconds,
            st.default_backoff_factor, st.default_backoff_max_seconds) == (900, 0, 5, 1.5, 60)
    assert (st.runner_image, st.runner_image_pull_policy) == ("registry.example/runner:v9", "Always")
    assert (st.runner_cpu_request, st.runner_memory_request, st.runner_cpu_limit, st.runner_memory_limit) == \
        ("1", "2Gi", "2", "4Gi")
    assert st.runner_service_account == "sluice-runner"  # created in every watched namespace
    assert (st.job_ttl_seconds, st.termination_grace_seconds) == (10000000, 45)
    assert (st.artifacts_bucket, st.artifacts_prefix, st.artifacts_endpoint, st.artifacts_region,
            st.artifacts_secret) == ("b", "p/q", "http://minio:9000", "eu-west-1", "s3")
    assert (st.position_head, st.position_head_lag_seconds, st.position_writes_per_second,
            st.queue_status_interval_seconds, st.resync_seconds, st.write_concurrency) == (7, 3, 25, 2, 30, 8)
    assert (st.lease_name, st.lease_namespace, st.lease_duration_seconds, st.lease_renew_seconds) == \
        ("l", "elsewhere", 20, 4)
    assert (st.metrics_port, st.health_port) == (9090, 9091)


CLUSTER_SCOPED_RULES = {
    ("sluice.dev", "testenvironments"): {"get", "list", "watch"},
    ("sluice.dev", "testenvironments/status"): {"patch"},
    ("", "namespaces"): {"get", "list", "watch"},
}


def _cluster_rules(objs) -> dict:
    (role,) = find(objs, "ClusterRole", "sluice-cluster")
    return _verbs(role)


def _verbs(role: dict) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> every verb the role's rules grant on it."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_cluster_wide_rbac_is_exactly_what_the_operator_calls(bin_dir):
    objs = template(bin_dir)
    (role,) = find(objs, "ClusterRole", "sluice")
    rules = _verbs(role)
    assert rules == {
        ("sluice.dev", "testexecutions"): {"get", "list", "watch", "create", "patch", "delete"},
        ("sluice.dev", "testqueues"): {"get", "list", "watch"},
        ("sluice.dev", "testschedules"): {"get", "list", "watch"},
        ("sluice.dev", "testexecutions/status"): {"patch"},
        ("sluice.dev", "testqueues/status"): {"patch"},
        ("sluice.dev", "testschedules/status"): {"patch"},
        ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
        ("", "configmaps"): {"get", "create"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "secrets"): {"get"},
        ("", "events"): {"create", "patch"},
    }
    assert _cluster_rules(objs) == CLUSTER_SCOPED_RULES
    (leader,) = find(objs, "Role", "sluice-leader", "sluice-system")
    assert leader["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["sluice-operator"],
         "verbs": ["get", "update"]},
    ]
    assert find(objs, "ClusterRoleBinding", "sluice")[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": "sluice", "namespace": "sluice-system"}]


def test_watch_namespaces_get_roles_and_no_cluster_rights(bin_dir):
    objs = template(bin_dir, "watchNamespaces={team-a,team-b}")
    # Cluster-wide only what is cluster-scoped: environments and namespace labels.
    assert [r["metadata"]["name"] for r in find(objs, "ClusterRole")
            if r["metadata"]["labels"].get("app.kubernetes.io/component") != "user-role"] == ["sluice-cluster"]
    assert _cluster_rules(objs) == CLUSTER_SCOPED_RULES
    for ns in ("team-a", "team-b"):
        assert find(objs, "Role", "sluice", ns) and find(objs, "RoleBinding", "sluice", ns)
    runner_sas = find(objs, "ServiceAccount", "sluice-runner")
    assert sorted(sa["metadata"]["namespace"] for sa in runner_sas) == ["team-a", "team-b"]
    assert all(sa["automountServiceAccountToken"] is False for sa in runner_sas)


def test_operator_pod_is_restricted_and_probed(bin_dir):
    objs = template(bin_dir, "replicas=2")
    (deploy,) = operator_deployments(objs)
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081, "webhook": 9443}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["image"] == "ghcr.io/sluice-dev/sluice-operator:0.1.0"
    (svc,) = find(objs, "Service", "sluice-metrics")
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"


@pytest.mark.parametrize("bad,message", [
    (["capacty.running=3"], "additional properties 'capacty' not allowed"),
    (["capacity.running=0"], "/capacity/running"),
    (["runner.imagePullPolicy=Sometimes"], "/runner/imagePullPolicy"),
    (["watchNamespaces={Team_A}"], "/watchNamespaces/0"),
    (["metrics.port=8081"], "metrics.port and health.port must differ"),
])
def test_bad_values_fail_with_a_clear_message(bin_dir, bad, message):
    args = ["template", "x", str(CHART), "--kube-version", "1.35.4"]
    for s in bad:
        args += ["--set", s]
    proc = helm(bin_dir, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_the_live_channel_is_deployed_by_default_or_taken_from_values_or_off(bin_dir, tmp_path):
    """Three ways: the chart's own Redis (ACL users, generated passwords), an existing one, none."""
    own = template(bin_dir, "watchNamespaces={team-a}")
    (redis,) = [d for d in find(own, "Deployment") if d["metadata"]["name"] == "sluice-redis"]
    assert "--aclfile" in redis["spec"]["template"]["spec"]["containers"][0]["args"]
    acl = next(s for s in find(own, "Secret") if s["metadata"]["name"] == "sluice-redis")["stringData"]["users.acl"]
    assert "user default off" in acl and "~sluice:progress:* -@all +xadd +expire" in acl
    (runner_secret,) = find(own, "Secret", name="sluice-redis-runner", namespace="team-a")
    assert runner_secret["stringData"]["password"] in acl
    env = operator_env(own)
    assert env["SLUICE_RUNNER_REDIS_URL"] == "redis://runner@sluice-redis.sluice-system.svc:6379"
    existing = template(bin_dir, "redis.url=rediss://operator@redis.example:6380", "redis.existingSecret=mine")
    assert not [d for d in find(existing, "Deployment") if d["metadata"]["name"].endswith("-redis")]
    assert operator_env(existing)["SLUICE_REDIS_URL"] == "rediss://operator@redis.example:6380"
    off = template(bin_dir, "redis.enabled=false")
    env = operator_env(off)
    assert (env["SLUICE_REDIS_URL"], env["SLUICE_RUNNER_REDIS_URL"], env["SLUICE_RUNNER_REDIS_SECRET"]) == ("", "", "")
    assert not find(off, "Secret", name="sluice-redis")


USER_READ = {"get", "list", "watch"}
USER_WRITE = {"create", "delete", "patch", "update"}
SLUICE_KINDS = ("testexecutions", "testqueues", "testschedules", "testenvironments")


def test_user_roles_read_write_and_aggregate_as_documented(bin_dir):
    """viewer reads all four kinds; editor also writes executions and schedules; admin also queues
    and environments; each aggregates into the built-in role of its level unless turned off."""
    objs = template(bin_dir, "watchNamespaces={team-a}")
    roles = {r["metadata"]["name"]: r for r in find(objs, "ClusterRole")
             if r["metadata"]["labels"].get("app.kubernetes.io/component") == "user-role"}
    assert sorted(roles) == ["sluice-admin", "sluice-editor", "sluice-viewer"]
    writes = {"viewer": (), "editor": ("testexecutions", "testschedules"), "admin": SLUICE_KINDS}
    for level, builtin in (("viewer", "view"), ("editor", "edit"), ("admin", "admin")):
        role = roles[f"sluice-{level}"]
        assert _verbs(role) == {("sluice.dev", kind): USER_READ | (USER_WRITE if kind in writes[level] else set())
                                for kind in SLUICE_KINDS}, level
        aggregate = {k for k in role["metadata"]["labels"] if k.startswith("rbac.authorization.k8s.io/aggregate-to-")}
        assert aggregate == {f"rbac.authorization.k8s.io/aggregate-to-{builtin}"}, level
    plain = template(bin_dir, "rbac.userRoles.aggregate=false")
    assert not any(k.startswith("rbac.authorization.k8s.io/aggregate-to-")
                   for r in find(plain, "ClusterRole") for k in r["metadata"]["labels"])
    assert not find(template(bin_dir, "rbac.userRoles.create=false"), "ClusterRole", "sluice-viewer")
    assert operator_env(template(bin_dir, "runner.allowedImages={reg.example/tests/*,reg.example/x:?}"))[
        "SLUICE_ALLOWED_IMAGES"] == "reg.example/tests/*,reg.example/x:?"


def test_the_admission_webhook_is_installed_with_its_own_certificate_or_off(bin_dir, monkeypatch):
    """Service, generated CA and serving cert (Secret mounted into the pod, CA in the caBundle),
    the configuration (Ignore, matchConditions, watched namespaces only); webhook.enabled=false
    leaves nothing and turns the operator's port off."""
    import base64

    from cryptography import x509

    objs = template(bin_dir, "watchNamespaces={team-a,team-b}")
    (secret,) = find(objs, "Secret", "sluice-webhook-cert", "sluice-system")
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert secret["type"] == "kubernetes.io/tls"
    ca, cert = x509.load_pem_x509_certificate(data["ca.crt"]), x509.load_pem_x509_certificate(data["tls.crt"])
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "sluice-webhook.sluice-system.svc" in sans
    (svc,) = find(objs, "Service", "sluice-webhook", "sluice-system")
    (deploy,) = operator_deployments(objs)
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    (vwc,) = find(objs, "ValidatingWebhookConfiguration", "sluice")
    (hook,) = vwc["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    assert hook["clientConfig"]["service"] == {"name": "sluice-webhook", "namespace": "sluice-system",
                                               "path": "/validate-testexecutions", "port": 443}
    assert (hook["failurePolicy"], hook["sideEffects"], hook["timeoutSeconds"], hook["matchPolicy"]) == \
        ("Ignore", "NoneOnDryRun", 3, "Equivalent")
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"] and hook["rules"][0]["resources"] == ["testexecutions"]
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}]
    assert "request.operation == 'CREATE'" in hook["matchConditions"][0]["expression"]
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "webhook-cert")
    assert next(v for v in pod["volumes"] if v["name"] == "webhook-cert")["secret"]["secretName"] == "sluice-webhook-cert"
    st = _settings_from(operator_env(objs), monkeypatch)
    assert (st.webhook_port, st.webhook_cert_dir) == (9443, mount["mountPath"])
    # Cluster-wide mode: every namespace but the denied ones.
    (hook,) = find(template(bin_dir), "ValidatingWebhookConfiguration", "sluice")[0]["webhooks"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["operator"] == "NotIn"
    off = template(bin_dir, "webhook.enabled=false")
    assert not find(off, "ValidatingWebhookConfiguration") and not find(off, "Service", "sluice-webhook")
    assert not find(off, "Secret", "sluice-webhook-cert")
    (deploy,) = operator_deployments(off)
    assert all(v["name"] != "webhook-cert" for v in deploy["spec"]["template"]["spec"]["volumes"])
    assert _settings_from(operator_env(off), monkeypatch).webhook_port == 0


def test_alerts_render_a_prometheusrule_whose_groups_are_the_promtool_tested_file(bin_dir, tmp_path):
    """alerts.enabled renders files/alerts.yaml as a PrometheusRule whose spec, with the default
    thresholds, is docs/prometheus-alerts.yaml: the file tests/alerts/ runs `promtool test rules`
    on (hack/gen-alerts writes it). Thresholds, labels and the runbook base come from values."""
    import yaml

    from tests.harness.chart import KUBE_VERSION
    assert not find(template(bin_dir), "PrometheusRule")  # the CRD may not exist: off by default
    (rule,) = find(template(bin_dir, "alerts.enabled=true"), "PrometheusRule", "sluice-alerts", "sluice-system")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    shipped = yaml.safe_load((ROOT / "docs" / "prometheus-alerts.yaml").read_text())
    assert rule["spec"] == shipped, "docs/prometheus-alerts.yaml is stale: run hack/gen-alerts"
    values = {"alerts": {"enabled": True, "labels": {"release": "kube-prometheus-stack"},
                         "runbookBaseURL": "https://wiki.example/sluice",
                         "queueBackingUp": {"ratio": 0.75, "for": "5m", "severity": "critical"},
                         "queueFailureRate": {"window": "6h", "minFinished": 20}}}
    (rule,) = find(template(bin_dir, values=values, tmp=tmp_path), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/name"] == "sluice"
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    backing = rules["SluiceQueueBackingUp"]
    assert backing["expr"].rstrip().endswith(">= 0.75") and backing["for"] == "5m"
    assert backing["labels"] == {"severity": "critical"}
    failing = rules["SluiceQueueFailureRate"]["expr"]
    assert failing.count("[6h]") == 3 and failing.rstrip().endswith(">= 20") and "> 0.5" in failing
    assert rules["SluiceNoLeader"]["annotations"]["runbook_url"] == "https://wiki.example/sluice#sluicenoleader"
    defaults = {r["alert"]: r for g in shipped["groups"] for r in g["rules"]}
    assert rules["SluiceNoLeader"]["expr"] == defaults["SluiceNoLeader"]["expr"]
    bad = helm(bin_dir, "template", "sluice", str(CHART), "--kube-version", KUBE_VERSION,
               "--set", "alerts.enabled=true", "--set", "alerts.executionOverdue.for=soon", check=False)
    assert bad.returncode != 0 and "for" in bad.stderr


def test_service_monitor_scrapes_the_metrics_service_with_honor_labels(bin_dir):
    """metrics.serviceMonitor.enabled: a ServiceMonitor that selects the metrics Service (port
    `metrics`) with honorLabels, so the queue series keep their own `namespace` (the alerts group by it)."""
    assert not find(template(bin_dir), "ServiceMonitor")
    objs = template(bin_dir, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps")
    (sm,) = find(objs, "ServiceMonitor", "sluice", "sluice-system")
    (svc,) = find(objs, "Service", "sluice-metrics", "sluice-system")
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["sluice-system"]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}]
    assert svc["spec"]["ports"][0]["name"] == "metrics"
    from tests.harness.chart import CHART, KUBE_VERSION
    bad = helm(bin_dir, "template", "sluice", str(CHART), "--kube-version", KUBE_VERSION,
               "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false", check=False)
    assert bad.returncode != 0 and "needs metrics.service.enabled" in bad.stderr


def test_dashboard_is_off_by_default_and_read_only_when_on(bin_dir):
    """dashboard.enabled: `sluice dashboard -A --read-only` on 0.0.0.0, a ServiceAccount that may only
    read Sluice objects, Events and Leases, and a ClusterIP Service selecting the dashboard pod only."""
    assert not [o for o in template(bin_dir) if o["metadata"]["name"].endswith("-dashboard")]
    objs = template(bin_dir, "dashboard.enabled=true", "dashboard.artifactsSecret=s3-read",
                    "artifacts.endpoint=http://minio:9000")
    (deploy,) = find(objs, "Deployment", name="sluice-dashboard")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["dashboard", "-A", "--read-only", "--host=0.0.0.0", "--port=8090"]
    assert pod["serviceAccountName"] == "sluice-dashboard"
    assert container["envFrom"] == [{"secretRef": {"name": "s3-read", "optional": True}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert env["SLUICE_REDIS_URL"] == "redis://operator@sluice-redis.sluice-system.svc:6379"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (role,) = find(objs, "ClusterRole", name="sluice-dashboard")
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}, role["rules"]
    (binding,) = find(objs, "ClusterRoleBinding", name="sluice-dashboard")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sluice-dashboard", "namespace": "sluice-system"}]
    (svc,) = find(objs, "Service", name="sluice-dashboard")
    assert svc["spec"]["type"] == "ClusterIP"
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert deploy["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    (operator,) = [d for d in operator_deployments(objs) if d["metadata"]["name"] == "sluice"]
    op_selector = operator["spec"]["selector"]["matchLabels"]
    assert not all(labels.get(k) == v for k, v in op_selector.items())  # the operator's Services never pick it
