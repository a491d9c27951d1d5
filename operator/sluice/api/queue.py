"""TestQueue spec and status."""
from __future__ import annotations

from pydantic import Field

from .common import WireModel
from .execution import Artifacts, Condition, Retries, RunnerOverrides


class QueueDefaults(WireModel):
    timeout_seconds: int | None = None
    retries: Retries | None = None
    runner: RunnerOverrides | None = None
    artifacts: Artifacts | None = None


class TestQueueSpec(WireModel):
    running_capacity: int = 5
    queued_capacity: int = 50
    paused: bool = False
    aging_seconds: int = 0
    defaults: QueueDefaults = Field(default_factory=QueueDefaults)


class Percentiles(WireModel):
    p50: float | None = None
    p95: float | None = None


class TestQueueStatus(WireModel):
    running: int = 0
    queued: int = 0
    admitted_total: int = 0
    succeeded_total: int = 0
    failed_total: int = 0
    wait_seconds: Percentiles = Field(default_factory=Percentiles)
    run_seconds: Percentiles = Field(default_factory=Percentiles)
    head: list[str] = Field(default_factory=list)
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
