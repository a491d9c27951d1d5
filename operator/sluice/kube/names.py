"""Deterministic object names: the same execution and attempt always give the same Job name,
so a create retried after a crash finds the existing Job (409) instead of making a second.

Why the Job name is capped below 63: the Job controller labels pods with `job-name` (a label
value, at most 63 characters), and for an Indexed (sharded) Job the API refuses the Job unless
`<job name>-<completions - 1>` is a DNS label (the shard pods' hostname). Leaving room for the
largest index suffix in every Job name keeps one naming rule for sharded and unsharded runs.
"""
from __future__ import annotations

import hashlib

MAX_NAME = 63  # a DNS label / label value
MAX_SHARDS = 64  # spec.shards maximum in crds/testexecution.yaml
INDEX_SUFFIX_ROOM = len(f"-{MAX_SHARDS - 1}")
MAX_JOB_NAME = MAX_NAME - INDEX_SUFFIX_ROOM


def _fit(base: str, suffix: str, limit: int = MAX_NAME) -> str:
    if len(base) + len(suffix) <= limit:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    room = limit - len(suffix) - len(digest) - 1
    return f"{base[:room].rstrip('-.')}-{digest}{suffix}"


def job_name(execution: str, attempt: int) -> str:
    return _fit(execution, f"-a{attempt}", MAX_JOB_NAME)


def shard_hostname(execution: str, attempt: int, index: int) -> str:
    """The hostname the Job controller gives shard `index`'s pod (must be a DNS label)."""
    return f"{job_name(execution, attempt)}-{index}"


def source_config_map_name(execution: str) -> str:
    return _fit(execution, "-src")


def rerun_name(first_run: str, number: int) -> str:
    """The name of rerun `number` of an execution: `<first run>-r<number>` (shortened with a
    digest to stay a 63-character name). Reruns of a rerun count on from the first run's name."""
    return _fit(first_run, f"-r{number}")


def scheduled_execution_name(schedule: str, scheduled_minutes: int) -> str:
    """The execution a TestSchedule creates for one scheduled time: `<schedule>-<unix minutes>`
    (shortened with a digest to stay a 63-character name). One name per scheduled time is what
    makes a schedule's runs exactly-once: a second create of the same time is a 409."""
    return _fit(schedule, f"-{scheduled_minutes}")


def schedule_label_value(schedule: str) -> str:
    """The `sluice.dev/schedule` label value for a schedule name (a label value is at most 63
    characters; a longer name is shortened with a digest)."""
    return _fit(schedule, "")
