"""The compact form of a finished execution in the operator's memory.

Why: a team keeps thousands of finished executions per queue (`spec.history`), each with its
inline suite (often tens of KB) and a status of a dozen nested models; held whole, 50,000 of
them took gigabytes. Once an execution is terminal the operator needs only what its aggregate
readers use (queue totals and percentiles, retention, metrics) and, rarely, the whole status
for a write that keeps the rest of it (acknowledging a generation, recording a notification).

So a finished execution keeps: its spec's summary (`summary_spec`: queue, priority, shards,
framework, environments, cancel; no source, args, runner or artifacts, one shared object per
distinct summary), its status packed (zlib-compressed, unpacked on demand by
`unpack_status`), and the few status fields aggregate readers use, read straight from the
API's JSON (`StatusSummary`). Nothing here is validated eagerly: the CRD's schema already
bounds what the API stores, and a restart with 50,000 finished executions must not pay for
50,000 model validations. It never calls the API and never decides anything.
"""
from __future__ import annotations

import marshal
import sys
import zlib
from datetime import datetime
from typing import NamedTuple

from pydantic import ValidationError

from ..api.execution import Phase, Priority, TestExecutionSpec, TestExecutionStatus

_SPECS: dict[tuple, TestExecutionSpec] = {}  # one summary object per distinct summary
_MAX_SPECS = 4096  # bounded: past it summaries are still made, just no longer shared


class ResultsSummary(NamedTuple):
    """`status.results` without `failures`."""

    total: int
    passed: int
    failed: int
    skipped: int
    flaky: int
    duration_seconds: float | None


class StatusSummary(NamedTuple):
    """The status fields walks over every execution read (queue stats, retention, metrics)."""

    phase: Phase | None
    reason: str | None
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    attempt: int | None
    observed_generation: int | None
    results: ResultsSummary | None


def _time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return sys.intern(value) if isinstance(value, str) else None


def raw_phase(raw_status: dict | None) -> Phase | None:
    try:
        return Phase((raw_status or {}).get("phase"))
    except ValueError:
        return None


def summarize(raw: dict) -> StatusSummary:
    """The summary of a status in its wire form (camelCase JSON)."""
    results = raw.get("results")
    summary = None
    if isinstance(results, dict):
        duration = results.get("durationSeconds")
        summary = ResultsSummary(*(_int(results.get(k)) or 0 for k in ("total", "passed", "failed", "skipped", "flaky")),
                                 float(duration) if isinstance(duration, (int, float)) else None)
    return StatusSummary(raw_phase(raw), _text(raw.get("reason")), _time(raw.get("queuedAt")),
                         _time(raw.get("startedAt")), _time(raw.get("completedAt")), _int(raw.get("attempt")),
                         _int(raw.get("observedGeneration")), summary)


def pack_status(raw: dict) -> bytes:
    """A status in wire form, compressed (about 500 bytes for a typical finished one). marshal,
    not JSON: it never leaves the process, and it is several times faster to write."""
    return zlib.compress(marshal.dumps(raw), 1)


def unpack_status(packed: bytes) -> TestExecutionStatus:
    """The whole status back (a fresh object on every call: about 0.1 ms)."""
    try:
        return TestExecutionStatus.model_validate(marshal.loads(zlib.decompress(packed)))
    except (ValidationError, ValueError, EOFError, TypeError, zlib.error):
        return TestExecutionStatus()


def summary_spec(raw: dict) -> TestExecutionSpec:
    """What of a finished execution's spec is kept: queue, priority, shards, framework,
    environments, cancel. `source` is None; args, runner and artifacts are their defaults."""
    try:
        priority = Priority(raw.get("priority") or Priority.normal.value)
    except ValueError:
        priority = Priority.normal
    framework = raw.get("framework") if raw.get("framework") in ("playwright-python", "playwright-node") \
        else "playwright-python"
    shards = _int(raw.get("shards")) or 1
    envs = raw.get("environments")
    environments = tuple(e for e in envs if isinstance(e, str)) if isinstance(envs, list) else ()
    queue = raw.get("queue") if isinstance(raw.get("queue"), str) and raw.get("queue") else "default"
    key = (queue, priority, framework, shards, environments, bool(raw.get("cancel")))
    spec = _SPECS.get(key)
    if spec is None:
        spec = TestExecutionSpec.model_construct(queue=sys.intern(queue), priority=priority, framework=framework,
                                                 source=None, shards=shards, environments=list(environments),
                                                 cancel=key[-1])
        if len(_SPECS) < _MAX_SPECS:
            _SPECS[key] = spec
    return spec
