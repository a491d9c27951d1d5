"""TestEnvironment (cluster-scoped) and TestSchedule specs and statuses, as the CRDs define them."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .common import WireModel
from .execution import Condition, TestExecutionSpec


class LabelSelectorRequirement(WireModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(WireModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        """Kubernetes label-selector semantics; the empty selector matches everything."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            has = req.key in labels
            if req.operator == "In" and (not has or labels[req.key] not in req.values):
                return False
            if req.operator == "NotIn" and has and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not has:
                return False
            if req.operator == "DoesNotExist" and has:
                return False
        return True


class TestEnvironmentSpec(WireModel):
    concurrency: int = 1
    namespace_selector: LabelSelector | None = None


class TestEnvironmentStatus(WireModel):
    in_use: int = 0
    holders: list[str] = Field(default_factory=list)
    waiting: int = 0
    observed_generation: int | None = None


class TemplateMetadata(WireModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ExecutionTemplate(WireModel):
    metadata: TemplateMetadata = Field(default_factory=TemplateMetadata)
    spec: TestExecutionSpec


class TestScheduleSpec(WireModel):
    schedule: str
    time_zone: str | None = None
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: int | None = None
    suspend: bool = False
    successful_history_limit: int = 3
    failed_history_limit: int = 1
    template: ExecutionTemplate


class TestScheduleStatus(WireModel):
    last_schedule_time: datetime | None = None
    last_execution: str | None = None
    last_result: str | None = None
    last_successful_time: datetime | None = None
    active: list[str] = Field(default_factory=list)
    active_count: int = 0
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
