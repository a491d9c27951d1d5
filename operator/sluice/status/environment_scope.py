"""Whose TestEnvironment.status it is to write, when several releases share one cluster.

TestEnvironments are cluster-scoped, but a release watching listed namespaces (sharding,
docs/sharding.md) sees only the Jobs and executions of its own namespaces: what it computes for an
environment is its share only. If every release wrote every environment's status, one would
write its holder and the next its zeros over it. So a release with a watch list writes an
environment's status only when it has something to say about it:
- the environment's namespaceSelector admits one of its namespaces (the environment was given to
  it), or
- it holds the environment or has executions waiting for it, or
- the status in the cluster names a holder in one of its namespaces, or this operator wrote a
  non-empty status before (its own words, to be cleared).
A release watching every namespace (the only one in the cluster) writes every environment.

Pure: decides, never writes; admission never reads this status (holders are counted from Jobs).
"""
from __future__ import annotations

from ..api.environment import TestEnvironmentStatus
from ..cache.records import EnvironmentRecord


def _says_something(status: TestEnvironmentStatus | dict | None) -> bool:
    if status is None:
        return False
    if isinstance(status, dict):
        return bool(status.get("inUse") or status.get("waiting") or status.get("holders"))
    return bool(status.in_use or status.waiting or status.holders)


def writes_environment_status(env: EnvironmentRecord, computed: TestEnvironmentStatus, watched: list[str],
                              namespace_labels: dict[str, dict[str, str]], last_written: dict | None) -> bool:
    """True when this operator (watching `watched`, [] = every namespace) writes `env`'s status."""
    if not watched or _says_something(computed) or _says_something(last_written):
        return True
    if any(h.split("/", 1)[0] in watched for h in env.status.holders):
        return True
    selector = env.spec.namespace_selector
    if selector is None or (not selector.match_labels and not selector.match_expressions):
        return False  # open to every namespace: nobody's alone; each release speaks only when it uses it
    return any(selector.matches(namespace_labels.get(ns) or {"kubernetes.io/metadata.name": ns}) for ns in watched)
