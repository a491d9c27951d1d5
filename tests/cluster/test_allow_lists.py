"""Allow-lists and user roles against the real control plane.

Each allow-list rejection (image, ServiceAccount, priority, also a priority raised while queued)
ends `Rejected`/`NotAllowed` with a message naming what is allowed and no Job; the runner pod of
an allowed execution mounts no API token unless the queue names its ServiceAccount; the chart's
user ClusterRoles (rendered by helm, applied under a release name unique to the test, since
ClusterRoles are cluster-wide) give exactly what docs/API.md says, checked with `kubectl auth
can-i --as`, directly and through the built-in view/edit/admin roles they aggregate into.
"""
from __future__ import annotations

import time
import uuid

import pytest
import yaml

from tests.harness.chart import template
from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster
OPERATOR_IMAGE = "ghcr.io/sluice-dev/sluice-runner:0.1.0"  # Settings' default runner_image


def _rejected(sluice, name: str) -> str:
    st = sluice.wait_phase(name, "Rejected", timeout=30)["status"]
    assert st["reason"] == "NotAllowed", st
    return st["message"]


def _pod_template(sluice, name: str) -> dict:
    sluice.wait_phase(name, "Running", timeout=30)
    (job,) = [j for j in sluice.jobs() if j.metadata.labels["sluice.dev/execution"] == name]
    return sluice.batch.api_client.sanitize_for_serialization(job.spec.template.spec)


def test_allow_lists_reject_with_reason_and_allowed_pods_get_no_token(sluice, start_operator):
    start_operator(running_capacity=10, allowed_images="sluice-runner:*")
    sluice.core.create_namespaced_service_account(sluice.ns, {"metadata": {"name": "deployer"}})
    sluice.create_queue("locked", {"maxPriority": "high"})
    sluice.create_queue("tokens", {"allowedServiceAccounts": ["", "deployer"]})
    sluice.create_queue("held", {"paused": True, "maxPriority": "normal"})
    runner = kwok_runner("300s")
    sluice.create("evil-image", {"queue": "locked", "runner": dict(runner, image="evil/x:1")})
    sluice.create("evil-default", {"runner": dict(runner, image="evil/x:1")})  # queue default: no object
    sluice.create("evil-account", {"queue": "locked", "runner": dict(runner, serviceAccountName="deployer")})
    sluice.create("evil-priority", {"queue": "locked", "priority": "critical", "runner": runner})
    sluice.create("plain", {"queue": "locked", "priority": "high", "runner": runner})
    sluice.create("with-token", {"queue": "tokens", "runner": dict(runner, serviceAccountName="deployer")})
    sluice.create("waiting", {"queue": "held", "runner": runner})

    assert _rejected(sluice, "evil-image") == (
        f"image evil/x:1 is not allowed by queue locked: allowed are {OPERATOR_IMAGE}, sluice-runner:* "
        "(the queue's spec.allowedImages)")
    assert _rejected(sluice, "evil-default").startswith("image evil/x:1 is not allowed by queue default: allowed are")
    assert _rejected(sluice, "evil-account") == (
        'serviceAccountName deployer is not allowed by queue locked: allowed are "" (the default runner account, '
        "no token) (the queue's spec.allowedServiceAccounts)")
    assert _rejected(sluice, "evil-priority") == (
        "priority critical is above queue locked's maxPriority high: allowed are high, normal, low")
    event = [e for e in sluice.events("evil-image") if e.reason == "NotAllowed"]
    assert event and event[0].type == "Warning"

    plain = _pod_template(sluice, "plain")
    assert plain["automountServiceAccountToken"] is False and "serviceAccountName" not in plain
    token = _pod_template(sluice, "with-token")
    assert token["automountServiceAccountToken"] is True and token["serviceAccountName"] == "deployer"

    # spec.priority may change while an execution waits: raising it above maxPriority rejects it.
    sluice.wait_phase("waiting", "Queued", timeout=30)
    sluice.patch("waiting", {"priority": "high"})
    assert _rejected(sluice, "waiting").startswith("priority high is above queue held's maxPriority normal")
    names = {j.metadata.labels["sluice.dev/execution"] for j in sluice.jobs()}
    assert names == {"plain", "with-token"}, names


def test_a_queue_created_or_widened_later_decides_for_waiting_executions(sluice, start_operator):
    start_operator(running_capacity=10, allowed_images="")  # the operator's runner image only
    runner = dict(kwok_runner("300s"), image="team/suite:1")
    sluice.create("early", {"queue": "later", "runner": runner})  # its queue does not exist yet
    sluice.wait(name="early", predicate=lambda o: (o.get("status") or {}).get("reason") == "QueueNotFound",
                timeout=30, what="waiting for its queue")
    sluice.create_queue("narrow", {})
    sluice.create("too-early", {"queue": "narrow", "runner": runner})
    assert "team/suite:1 is not allowed by queue narrow" in _rejected(sluice, "too-early")
    sluice.patch_queue("narrow", {"allowedImages": ["team/*"]})
    sluice.create_queue("later", {"allowedImages": ["team/*"]})
    sluice.wait_phase("early", "Running", timeout=30)
    time.sleep(2)  # a widened queue never revives a rejected execution: Rejected is terminal
    assert sluice.phase("too-early") == "Rejected"


def _can(cluster, user: str, verb: str, resource: str, namespace: str | None) -> bool:
    """`kubectl auth can-i`; namespace None asks cluster-wide (-A), as for cluster-scoped kinds."""
    ns = ["-n", namespace] if namespace else ["-A"]
    proc = cluster.kubectl("auth", "can-i", verb, f"{resource}.sluice.dev", *ns, f"--as={user}", check=False)
    return proc.stdout.strip() == "yes"


KINDS = ("testexecutions", "testqueues", "testschedules", "testenvironments")
WRITES = {"viewer": (), "editor": ("testexecutions", "testschedules"), "admin": KINDS}


def _expected(level: str, verb: str, kind: str, cluster_wide: bool) -> bool:
    if kind == "testenvironments" and not cluster_wide:
        return False  # cluster-scoped: a RoleBinding never reaches it
    return verb in ("get", "list", "watch") or kind in WRITES[level]


def _wait_can(cluster, user: str, verb: str, resource: str, namespace: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _can(cluster, user, verb, resource, namespace):
            return True
        time.sleep(0.5)
    return False


def test_user_roles_grant_what_the_docs_say(cluster, namespace, crds):
    release = f"ar{uuid.uuid4().hex[:6]}"  # ClusterRoles are cluster-scoped: one name set per test
    roles = [o for o in template(cluster.bin_dir, namespace=namespace, release=release)
             if o["kind"] == "ClusterRole" and o["metadata"]["labels"].get("app.kubernetes.io/component") == "user-role"]
    assert sorted(r["metadata"]["name"] for r in roles) == sorted(
        f"{release}-sluice-{level}" for level in ("admin", "editor", "viewer"))
    users = {level: f"{level}-{release}" for level in WRITES}
    bindings = []
    for level, user in users.items():
        bindings.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": f"sluice-{level}", "namespace": namespace},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": f"{release}-sluice-{level}"},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    cluster_admin = f"cluster-admin-{release}"
    bindings.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": f"{release}-sluice-admin"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": f"{release}-sluice-admin"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": cluster_admin}]})
    # A namespace user with only the built-in `edit` gets sluice-editor through aggregation.
    builtin_editor = f"edit-{release}"
    bindings.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": "builtin-edit", "namespace": namespace},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": builtin_editor}]})
    manifest = yaml.safe_dump_all(roles + bindings)
    cluster.kubectl("apply", "-f", "-", input=manifest)
    try:
        # The aggregation controller fills the built-in roles asynchronously.
        assert _wait_can(cluster, builtin_editor, "create", "testexecutions", namespace)
        for level, user in users.items():
            for kind in KINDS:
                for verb in ("get", "list", "watch", "create", "patch", "delete"):
                    got = _can(cluster, user, verb, kind, None if kind == "testenvironments" else namespace)
                    assert got == _expected(level, verb, kind, False), (level, verb, kind, got)
        for verb in ("list", "create", "delete"):
            assert _can(cluster, cluster_admin, verb, "testenvironments", None)
        assert not _can(cluster, builtin_editor, "create", "testqueues", namespace)
        assert _can(cluster, builtin_editor, "delete", "testschedules", namespace)
        assert not _can(cluster, users["admin"], "create", "testexecutions", "default")  # only where bound
    finally:
        cluster.kubectl("delete", "--ignore-not-found", "-f", "-", input=manifest, check=False)
