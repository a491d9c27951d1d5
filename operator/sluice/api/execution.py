"""TestExecution spec and status, as in the API contract (shared/API.md)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import Field
from sluice_runner.errors import RETRYABLE

from .common import WireModel


class Priority(str, Enum):
    critical = "critical"
    high = "high"
    normal = "normal"
    low = "low"

    @property
    def rank(self) -> int:
        """0 is the most urgent class."""
        return PRIORITY_ORDER.index(self)


PRIORITY_ORDER = [Priority.critical, Priority.high, Priority.normal, Priority.low]


class Phase(str, Enum):
    Pending = "Pending"
    Queued = "Queued"
    Running = "Running"
    BackingOff = "BackingOff"
    Succeeded = "Succeeded"
    Failed = "Failed"
    TimedOut = "TimedOut"
    Cancelled = "Cancelled"
    Rejected = "Rejected"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.Succeeded, Phase.Failed, Phase.TimedOut, Phase.Cancelled, Phase.Rejected})

# The failure classes `retries.retryOn` may name; built from the runner contract's one definition.
FailureClass = Literal[tuple(c.value for c in RETRYABLE)]  # type: ignore[valid-type]


class InlineSource(WireModel):
    files: dict[str, str]


class NameRef(WireModel):
    name: str
    optional: bool | None = None


class GitSource(WireModel):
    url: str
    ref: str | None = None
    path: str | None = None
    secret_ref: NameRef | None = None


class ImageSource(WireModel):
    path: str


class Source(WireModel):
    inline: InlineSource | None = None
    config_map: NameRef | None = None
    git: GitSource | None = None
    image: ImageSource | None = None

    @property
    def kind(self) -> str:
        for name in ("inline", "config_map", "git", "image"):
            if getattr(self, name) is not None:
                return "configMap" if name == "config_map" else name
        return "none"


class Backoff(WireModel):
    initial_seconds: int | None = None
    factor: float | None = None
    max_seconds: int | None = None


class Retries(WireModel):
    limit: int | None = None
    backoff: Backoff | None = None
    retry_on: list[FailureClass] | None = None


class KeyRef(WireModel):
    name: str
    key: str
    optional: bool | None = None


class EnvValueFrom(WireModel):
    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None


class EnvVar(WireModel):
    name: str
    value: str | None = None
    value_from: EnvValueFrom | None = None


class EnvFrom(WireModel):
    prefix: str | None = None
    secret_ref: NameRef | None = None
    config_map_ref: NameRef | None = None


class Toleration(WireModel):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class Resources(WireModel):
    requests: dict[str, int | str] | None = None
    limits: dict[str, int | str] | None = None


class RunnerOverrides(WireModel):
    image: str | None = None
    image_pull_policy: str | None = None
    service_account_name: str | None = None
    resources: Resources | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFrom] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    pod_labels: dict[str, str] | None = None
    pod_annotations: dict[str, str] | None = None


class S3Target(WireModel):
    bucket: str
    prefix: str | None = None
    endpoint: str | None = None
    region: str | None = None
    secret_ref: NameRef | None = None


class Artifacts(WireModel):
    s3: S3Target | None = None


class TestExecutionSpec(WireModel):
    queue: str = "default"
    priority: Priority = Priority.normal
    framework: Literal["playwright-python", "playwright-node"] = "playwright-python"
    source: Source
    args: list[str] = Field(default_factory=list)
    base_url: str | None = Field(default=None, alias="baseURL")
    shards: int = 1
    environments: list[str] = Field(default_factory=list)  # TestEnvironment names held while the Job runs
    timeout_seconds: int | None = None
    queue_timeout_seconds: int = 0
    retries: Retries | None = None
    runner: RunnerOverrides | None = None
    artifacts: Artifacts | None = None
    cancel: bool = False


class Condition(WireModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class AttemptRecord(WireModel):
    attempt: int
    job_name: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None


class FailedTest(WireModel):
    test: str
    error: str = ""


class Results(WireModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float | None = None
    failures: list[FailedTest] = Field(default_factory=list)  # up to 5 of the last attempt


class ArtifactLinks(WireModel):
    url: str | None = None
    report: str | None = None
    junit: str | None = None
    traces: list[str] = Field(default_factory=list)
    videos: list[str] = Field(default_factory=list)
    screenshots: list[str] = Field(default_factory=list)
    console: str | None = None  # the test command's output, uploaded


class Progress(WireModel):
    """Live progress of the running attempt, relayed from the runner's Redis stream."""

    total: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    flaky: int = 0
    percent: int = 0
    summary: str | None = None  # "done/total", for kubectl's PROGRESS column
    current_test: str | None = None
    updated_at: datetime | None = None


class NotificationRecord(WireModel):
    """One notification's delivery for the execution's outcome: sent at most once per outcome."""

    name: str
    outcome: str | None = None
    state: Literal["Pending", "Delivered", "GivenUp"] = "Pending"
    attempts: int = 0
    key: str | None = None
    last_attempt_at: datetime | None = None
    message: str | None = None


class TestExecutionStatus(WireModel):
    phase: Phase | None = None
    reason: str | None = None
    message: str | None = None
    queue_position: int | None = None
    estimated_start_at: datetime | None = None  # while Queued: when it is expected to start
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    next_attempt_at: datetime | None = None
    attempt: int | None = None
    job_name: str | None = None
    observed_generation: int | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    results: Results | None = None
    artifacts: ArtifactLinks | None = None
    progress: Progress | None = None  # while Running (kept after): relayed from Redis
    notifications: list[NotificationRecord] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)

    def working_copy(self) -> "TestExecutionStatus":
        """A copy a transition may change without touching this one, at a fraction of a deep
        copy's cost (a position rewrite copies a status per waiter): the lists are new and the
        attempt records copied (`close_attempt` changes one in place); conditions, notification
        records, results, artifacts and progress are only ever replaced whole, so they are
        shared. `tests/unit/test_status_copy.py` holds every transition to that."""
        out = self.model_copy()
        out.attempts = [a.model_copy() for a in self.attempts]
        out.notifications = list(self.notifications)
        out.conditions = list(self.conditions)
        return out
