"""The chart's guard for cluster-wide mode: a ValidatingAdmissionPolicy refusing executions in
system namespaces, only when the operator has cluster-wide rights. Rendered by the real `helm`;
the server-side proof is in tests/cluster/test_hostile_inputs.py."""
from __future__ import annotations

from tests.harness.chart import CHART, find, helm, template


def test_cluster_wide_mode_denies_system_namespaces(bin_dir):
    objs = template(bin_dir)
    (policy,) = find(objs, "ValidatingAdmissionPolicy")
    (binding,) = find(objs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    expr = policy["spec"]["validations"][0]["expression"]
    for ns in ("kube-system", "kube-public", "kube-node-lease"):
        assert f'"{ns}"' in expr
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["testexecutions", "testqueues"]


def test_the_list_is_a_value_and_namespaced_mode_needs_no_policy(bin_dir):
    (policy,) = find(template(bin_dir, "deniedNamespaces={kube-system,prod}"), "ValidatingAdmissionPolicy")
    assert '"prod"' in policy["spec"]["validations"][0]["expression"]
    assert not find(template(bin_dir, "deniedNamespaces=null"), "ValidatingAdmissionPolicy")
    assert not find(template(bin_dir, "watchNamespaces={team-a}"), "ValidatingAdmissionPolicy")


def test_values_schema_checks_denied_namespaces(bin_dir):
    proc = helm(bin_dir, "template", "x", str(CHART), "--kube-version", "1.35.4",
                "--set", "deniedNamespaces={Bad_NS}", check=False)
    assert proc.returncode != 0 and "/deniedNamespaces/0" in proc.stderr
    helm(bin_dir, "lint", str(CHART), "--strict", "--kube-version", "1.35.4")
