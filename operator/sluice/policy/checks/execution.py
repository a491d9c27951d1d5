"""Checks of the execution's own fields: its name, queue, args, baseURL, shards, retries, artifacts.

Why: these depend on what the schema cannot see (the queue's and the operator's capacity, the
retry limit merged from the queue's defaults, the artifacts target merged from the operator's
settings) or guard executions stored before a schema change. It never reads the queue object or
the settings itself: the capacities and the merged spec are passed in.
"""
from __future__ import annotations

from urllib.parse import urlparse

from sluice_runner.redact import redact_url

from ...api.effective import EffectiveSpec
from ...api.execution import S3Target, TestExecutionSpec
from ...kube.names import MAX_NAME, shard_hostname
from .grammar import CONTROL_RE, DNS_LABEL_RE, control_problem, has_space_or_control, object_name_problem


def name_problems(name: str, eff: EffectiveSpec) -> list[str]:
    """With shards > 1 every shard's pod hostname, derived from the name, must be a DNS label."""
    shards = eff.spec.shards
    if shards <= 1:
        return []
    if "." in name:
        return [f"metadata.name {name!r} may not contain '.' when shards > 1: each shard's pod "
                "hostname is derived from it and must be a DNS label"]
    last = shard_hostname(name, eff.retry.limit + 1, shards - 1)
    if len(last) > MAX_NAME or not DNS_LABEL_RE.match(last):
        return [f"metadata.name {name!r} is too long for {shards} shards: shorten it"]
    return []


def queue_problems(spec: TestExecutionSpec) -> list[str]:
    if not DNS_LABEL_RE.match(spec.queue) or len(spec.queue) > MAX_NAME:
        return [f"queue {spec.queue!r} is not a TestQueue name (a DNS label)"]
    return []


def args_problems(spec: TestExecutionSpec) -> list[str]:
    problems = [control_problem(f"args[{i}]", arg) for i, arg in enumerate(spec.args)]
    return [p for p in problems if p]


def base_url_problems(spec: TestExecutionSpec) -> list[str]:
    if not spec.base_url:
        return []
    parsed = urlparse(spec.base_url)
    if has_space_or_control(spec.base_url):
        return ["baseURL contains white space or control characters"]
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [f"baseURL {redact_url(spec.base_url)!r} is not an http(s) URL"]
    return []


def capacity_problems(spec: TestExecutionSpec, queue_capacity: int, global_capacity: int) -> list[str]:
    """An execution wider than a capacity could never start: say so now instead of queueing it forever."""
    if spec.shards > queue_capacity:
        return [f"shards ({spec.shards}) exceed the queue's runningCapacity ({queue_capacity}): it could never start"]
    if spec.shards > global_capacity:
        return [f"shards ({spec.shards}) exceed the operator's running capacity ({global_capacity}): "
                "it could never start"]
    return []


def retry_problems(eff: EffectiveSpec) -> list[str]:
    r = eff.retry
    if r.max_seconds < r.initial_seconds:
        return [f"retries.backoff.maxSeconds ({r.max_seconds}) is less than initialSeconds ({r.initial_seconds})"]
    return []


def artifacts_problems(s3: S3Target | None) -> list[str]:
    """The merged S3 target: an http(s) endpoint, a prefix that stays inside it, a Secret name."""
    if s3 is None:
        return []
    problems: list[str | None] = []
    if s3.endpoint:
        parsed = urlparse(s3.endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or CONTROL_RE.search(s3.endpoint):
            problems.append(f"artifacts.s3.endpoint {redact_url(s3.endpoint)!r} is not an http(s) URL")
    if s3.prefix and (any(seg in (".", "..") for seg in s3.prefix.split("/")) or CONTROL_RE.search(s3.prefix)):
        problems.append(f"artifacts.s3.prefix {s3.prefix!r} may not contain '.' or '..' segments "
                        "or control characters")
    if s3.secret_ref is not None:
        problems.append(object_name_problem("artifacts.s3.secretRef.name", s3.secret_ref.name))
    return [p for p in problems if p]
