"""The runner's termination message (runner protocol, shared/API.md), as the operator reads it."""
from __future__ import annotations

import json

from pydantic import ValidationError

from .execution import ArtifactLinks, Results
from .common import WireModel


class RunnerMessage(WireModel):
    v: int = 1
    outcome: str | None = None  # passed | failed | error
    error_class: str | None = None
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float | None = None
    artifacts: ArtifactLinks | None = None
    message: str | None = None

    def results(self) -> Results:
        return Results(
            total=self.total, passed=self.passed, failed=self.failed, skipped=self.skipped,
            flaky=self.flaky, duration_seconds=self.duration_seconds,
        )


def parse_runner_message(text: str | None) -> RunnerMessage | None:
    """None when the text is not a runner message (e.g. the log tail of a crashed container)."""
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        return RunnerMessage.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return None
