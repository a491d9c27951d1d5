"""Which releases write a TestEnvironment's status (status/environment_scope.py): one row per case.

Two releases side by side (docs/sharding.md): A watches a1,a2 (labelled team=a), B watches b1.
A release writing an environment it neither uses nor was given would write its zeros over the
other release's holders."""
from __future__ import annotations

import pytest

from sluice.api.environment import TestEnvironmentStatus
from sluice.cache.records import EnvironmentRecord
from sluice.status.environment_scope import writes_environment_status

LABELS = {"a1": {"team": "a", "kubernetes.io/metadata.name": "a1"},
          "a2": {"team": "a", "kubernetes.io/metadata.name": "a2"},
          "b1": {"team": "b", "kubernetes.io/metadata.name": "b1"}}
A, B = ["a1", "a2"], ["b1"]
IDLE = TestEnvironmentStatus()
HOLDING = TestEnvironmentStatus(in_use=1, holders=["a1/tx"])
WAITING = TestEnvironmentStatus(waiting=2)


def env(selector: dict | None = None, status: dict | None = None) -> EnvironmentRecord:
    spec = {"concurrency": 1} | ({"namespaceSelector": selector} if selector is not None else {})
    return EnvironmentRecord.from_object({"metadata": {"name": "db"}, "spec": spec, "status": status or {}})


@pytest.mark.parametrize("environment, computed, watched, last_written, writes", [
    # One release for the whole cluster writes everything, as before sharding.
    (env(), IDLE, [], None, True),
    (env({"matchLabels": {"team": "b"}}), IDLE, [], None, True),
    # Given to a release by its selector: that release writes it, the other does not.
    (env({"matchLabels": {"team": "a"}}), IDLE, A, None, True),
    (env({"matchLabels": {"team": "a"}}), IDLE, B, None, False),
    (env({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["b1"]}]}),
     IDLE, B, None, True),
    # Open to every namespace: only a release that uses it speaks.
    (env(), HOLDING, A, None, True),
    (env(), WAITING, A, None, True),
    (env(), IDLE, B, None, False),
    (env({}), IDLE, B, None, False),
    # B holds it (B's status in the cluster): A, idle, must not write its zeros over it.
    (env(status={"inUse": 1, "holders": ["b1/tx"]}), IDLE, A, None, False),
    # Its own words to clear: A wrote a holder before, or the cluster names A's namespace.
    (env(status={"inUse": 1, "holders": ["b1/tx"]}), IDLE, A, {"inUse": 1, "holders": ["a1/tx"], "waiting": 0}, True),
    (env(status={"inUse": 1, "holders": ["a2/tx"]}), IDLE, A, None, True),
    (env(), IDLE, A, {"inUse": 0, "holders": [], "waiting": 0}, False),  # already cleared
], ids=["cluster-wide", "cluster-wide-selector", "given-to-a", "given-to-a-seen-by-b", "given-to-b-by-name",
        "open-held", "open-waited", "open-idle", "open-empty-selector", "other-holds",
        "clear-own-write", "clear-own-stale-holder", "cleared"])
def test_who_writes(environment, computed, watched, last_written, writes):
    assert writes_environment_status(environment, computed, watched, LABELS, last_written) is writes


def test_an_unknown_namespace_is_matched_by_its_name():
    by_name = env({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["new"]}]})
    assert writes_environment_status(by_name, IDLE, ["new"], {}, None)
