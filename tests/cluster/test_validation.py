"""Bad input: the schema rejects what it can, the operator rejects the rest with a reason."""
from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness.sluice_api import kwok_runner

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("spec,needle", [
    ({"source": {}}, "exactly one of inline, configMap, git, image"),
    ({"source": {"inline": {"files": {"a.py": "x"}}, "image": {"path": "/t"}}}, "exactly one"),
    ({"priority": "urgent"}, "Unsupported value"),
    ({"shards": 65}, "shards"),
    ({"timeoutSeconds": 0}, "timeoutSeconds"),
    ({"retries": {"limit": 11}}, "limit"),
    ({"retries": {"retryOn": ["Timeout"]}}, "retryOn"),
    ({"source": {"inline": {"files": {"../evil.py": "x"}}}}, "inline file names"),
    ({"runner": {"env": [{"name": "SLUICE_ATTEMPT", "value": "9"}]}}, "reserved"),
    ({"runner": {"podLabels": {"sluice.dev/execution": "other"}}}, "podLabels may not set"),
])
def test_schema_rejects(sluice, spec, needle):
    with pytest.raises(ApiException) as err:
        sluice.create("bad", spec)
    assert err.value.status == 422 and needle in err.value.body


def test_name_longer_than_a_label_value_is_rejected(sluice):
    with pytest.raises(ApiException) as err:
        sluice.create("x" * 64, {})
    assert "at most 63 characters" in err.value.body


def test_spec_is_immutable_except_cancel_and_a_waiting_priority(sluice, start_operator):
    sluice.create("fixed", {"runner": kwok_runner("300s")})
    with pytest.raises(ApiException) as err:
        sluice.patch("fixed", {"shards": 2})
    assert "immutable" in err.value.body
    sluice.patch("fixed", {"priority": "high"})  # no status yet: it waits, so its priority may change
    start_operator(running_capacity=5)
    sluice.wait_phase("fixed", "Running", timeout=60)
    with pytest.raises(ApiException) as err:
        sluice.patch("fixed", {"priority": "critical"})
    assert "spec.priority may change only while the execution waits" in err.value.body
    sluice.patch("fixed", {"cancel": True})


@pytest.mark.parametrize("spec,needle", [
    ({"runner": dict(kwok_runner(), image="UPPER CASE/no good")}, "not a valid image reference"),
    ({"source": {"configMap": {"name": "does-not-exist"}}}, "does not exist in this namespace"),
    ({"source": {"git": {"url": "definitely not a url"}}}, "not a git URL"),
    ({"source": {"inline": {"files": {"big.py": "x" * 1_040_000}}}}, "more than a ConfigMap can store"),
    ({"shards": 9}, "exceed the queue's runningCapacity"),
    ({"baseURL": "localhost:3000"}, "not an http(s) URL"),
])
def test_operator_rejects_invalid_spec_with_a_message(sluice, start_operator, spec, needle):
    start_operator(running_capacity=5)
    sluice.create("invalid", spec)
    st = sluice.wait_phase("invalid", "Rejected", timeout=30)["status"]
    assert st["reason"] == "InvalidSpec" and needle in st["message"]
    assert sluice.jobs() == []
