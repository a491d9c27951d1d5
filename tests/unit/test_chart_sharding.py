"""Two releases of the chart side by side (sharding, docs/sharding.md), rendered by the real
`helm`: installed into one namespace with disjoint watchNamespaces and their own Lease names, they
own no object in common (cluster-scoped ClusterRoles, webhook configurations and user roles
included), so Helm installs both. The guard against a shared Lease or a shared watched namespace
uses `lookup` and acts only against a cluster: tests/cluster/test_sharding.py."""
from __future__ import annotations

from tests.harness.chart import template

RELEASES = {
    "sluice-a": ["watchNamespaces={team-a1,team-a2}", "leaderElection.leaseName=sluice-a", "capacity.running=3"],
    "sluice-b": ["watchNamespaces={team-b1,team-b2}", "leaderElection.leaseName=sluice-b", "capacity.running=2"],
}


def _key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_two_releases_in_one_namespace_own_no_object_in_common(bin_dir):
    owned = {release: {_key(o) for o in template(bin_dir, *sets, release=release, namespace="sluice-system")}
             for release, sets in RELEASES.items()}
    assert owned["sluice-a"] and owned["sluice-b"]
    assert owned["sluice-a"] & owned["sluice-b"] == set()
    cluster_scoped = {k for k in owned["sluice-a"] if k[1] == ""}
    assert {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"} <= {k[0] for k in cluster_scoped}


def test_each_release_has_rights_only_in_its_namespaces_and_its_own_lease(bin_dir):
    for release, sets in RELEASES.items():
        objs = template(bin_dir, *sets, release=release, namespace="sluice-system")
        mine = {"sluice-a": {"team-a1", "team-a2"}, "sluice-b": {"team-b1", "team-b2"}}[release]
        operator_roles = {o["metadata"]["namespace"] for o in objs if o["kind"] == "Role"
                          and any("jobs" in r.get("resources", []) for r in o["rules"])}
        assert operator_roles == mine
        runner_sas = {o["metadata"]["namespace"] for o in objs if o["kind"] == "ServiceAccount"
                      and o["metadata"]["name"] == "sluice-runner"}
        assert runner_sas == mine  # not the shared release namespace: both releases would own it
        (leader,) = [o for o in objs if o["kind"] == "Role" and o["metadata"]["name"].endswith("-leader")]
        assert [r.get("resourceNames") for r in leader["rules"] if "resourceNames" in r] == [[release]]
        webhook = [o for o in objs if o["kind"] == "ValidatingWebhookConfiguration"][0]
        (expr,) = webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        assert set(expr["values"]) == mine  # the webhook judges only this release's namespaces
