"""The termination message: the one result summary the operator reads from the runner pod.

Kubernetes keeps at most 4096 bytes of a container's termination message, so the message is
built to fit: counts and the outcome always survive; artifact lists are trimmed from their tails
(longest list first), then the human message is shortened, and what was left out is said in the
message. The full lists are always in results.json next to the artifacts.

Artifact entries are object keys RELATIVE to `artifacts.url`: `url` is SLUICE_ARTIFACTS_URL as
given (the attempt's prefix, `s3://bucket/prefix/ns/name/attempt-N/`), and entries look like
`report/index.html`, `junit.xml`, `traces/<test>.zip`, or, for a sharded execution,
`shard-<i>/traces/<test>.zip`, so the lists of all shards of one attempt can be merged as they
are. The full URL of an entry is `url + entry`. With no SLUICE_ARTIFACTS_URL (a local run), `url`
is the `file://` URL of the local artifact directory.

This module is imported by the operator (`from sluice_runner.report import RunnerResult`), so it
depends on pydantic and the standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BYTES = 4096
MESSAGE_CHARS = 1024
_LISTS = ("traces", "videos", "screenshots")


class ArtifactRefs(BaseModel):
    """Where a run's artifacts are: `url` (a prefix) and keys relative to it."""

    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    report: str | None = None
    junit: str | None = None
    traces: list[str] = Field(default_factory=list)
    videos: list[str] = Field(default_factory=list)
    screenshots: list[str] = Field(default_factory=list)
    console: str | None = None  # the test command's output (stdout and stderr)


class Failure(BaseModel):
    """One failed test: its id and the first line of its error (both short)."""

    test: str
    error: str = ""


MAX_FAILURES = 5


class RunnerResult(BaseModel):
    """The termination message (API.md, runner protocol), `v` 1."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    outcome: Literal["passed", "failed", "error"]
    # TestFailure | InvalidSpec | InfrastructureError | BrowserCrash; None when passed.
    errorClass: str | None = None
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    flaky: int = 0
    durationSeconds: float = 0.0
    artifacts: ArtifactRefs = Field(default_factory=ArtifactRefs)
    failures: list[Failure] = Field(default_factory=list)  # up to MAX_FAILURES failed tests
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)

    def fitted(self, limit: int = MAX_BYTES) -> RunnerResult:
        """A copy whose JSON is at most `limit` bytes (see the module docstring for the order)."""
        result = self.model_copy(deep=True)
        result.message = _shorten(result.message, MESSAGE_CHARS)
        base_message = result.message
        dropped = 0
        while _size(result) > limit:
            lists = [getattr(result.artifacts, name) for name in _LISTS]
            longest = max(lists, key=len)
            if not longest and result.failures:
                result.failures.pop()
                continue
            if longest:
                longest.pop()
                dropped += 1
                result.message = f"{base_message} ({dropped} artifact entries not listed; see results.json)"
                continue
            over = _size(result) - limit
            if len(result.message) > 16:
                result.message = _shorten(result.message, max(16, len(result.message) - over - 8))
                continue
            result.artifacts.report = result.artifacts.junit = None
            if _size(result) > limit:
                result.artifacts.url = None
                result.message = ""
            break
        return result

    @classmethod
    def from_termination_message(cls, text: str) -> RunnerResult:
        """Parse what the runner wrote (raises pydantic.ValidationError on garbage)."""
        return cls.model_validate_json(text)


def _size(result: RunnerResult) -> int:
    return len(result.to_json().encode("utf-8"))


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - 1)] + "…"


def write_termination_message(result: RunnerResult, path: Path | None) -> str:
    """Write the fitted message to `path` (if any) and return it.

    Written in place, not renamed into place: kubelet bind-mounts the termination-log file.
    """
    text = result.fitted().to_json()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return text
