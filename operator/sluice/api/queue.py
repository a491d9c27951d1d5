"""TestQueue spec and status."""
from __future__ import annotations

from pydantic import Field

from typing import Literal

from .common import WireModel
from .execution import Artifacts, Condition, Priority, Retries, RunnerOverrides


class QueueDefaults(WireModel):
    timeout_seconds: int | None = None
    retries: Retries | None = None
    runner: RunnerOverrides | None = None
    artifacts: Artifacts | None = None


class History(WireModel):
    succeeded: int = 100
    failed: int = 200


class SecretKeyRef(WireModel):
    name: str
    key: str


class Webhook(WireModel):
    url_secret_ref: SecretKeyRef


class Notification(WireModel):
    name: str | None = None
    outcomes: list[str]  # API.md's draft `on:` is read as `true:` by YAML 1.1 parsers
    format: Literal["json", "slack"] = "json"
    webhook: Webhook


class TestQueueSpec(WireModel):
    running_capacity: int = 5
    queued_capacity: int = 50
    paused: bool = False
    aging_seconds: int = 0
    admission: Literal["BestEffortFIFO", "StrictFIFO"] = "BestEffortFIFO"
    pod_pending_grace_seconds: int = 300
    allowed_images: list[str] | None = None  # None: the operator's default allow-list
    allowed_service_accounts: list[str] | None = None  # None: [""] (namespace default, no token)
    max_priority: Priority = Priority.critical
    history: History = Field(default_factory=History)
    ttl_seconds_after_finished: int | None = None
    notifications: list[Notification] = Field(default_factory=list)
    defaults: QueueDefaults = Field(default_factory=QueueDefaults)


class Percentiles(WireModel):
    p50: float | None = None
    p95: float | None = None


class Retired(WireModel):
    """What executions deleted by retention contributed to the queue's totals and percentiles."""

    admitted: int = 0
    succeeded: int = 0
    failed: int = 0
    wait_buckets: list[int] = Field(default_factory=list)
    run_buckets: list[int] = Field(default_factory=list)
    deleting: list[str] = Field(default_factory=list)


class TestQueueStatus(WireModel):
    running: int = 0
    queued: int = 0
    admitted_total: int = 0
    succeeded_total: int = 0
    failed_total: int = 0
    wait_seconds: Percentiles = Field(default_factory=Percentiles)
    run_seconds: Percentiles = Field(default_factory=Percentiles)
    head: list[str] = Field(default_factory=list)
    retired: Retired = Field(default_factory=Retired)
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
