"""The termination message: schema, and fitting into Kubernetes' 4096 bytes."""

from __future__ import annotations

import json

import pytest
from sluice_runner.report import (
    MAX_BYTES,
    ArtifactRefs,
    RunnerResult,
    write_termination_message,
)


def big_result(n: int, name_len: int = 90, message: str = "2 of 500 tests failed") -> RunnerResult:
    def keys(kind: str, ext: str) -> list[str]:
        return [f"shard-12/{kind}/{'x' * name_len}-{i}{ext}" for i in range(n)]

    return RunnerResult(
        outcome="failed", errorClass="TestFailure", total=500, passed=400, failed=90, skipped=5, flaky=5,
        durationSeconds=1234.5,
        artifacts=ArtifactRefs(url="s3://bucket/prefix/team-a/checkout/attempt-3/", report="shard-12/report/index.html",
                               junit="shard-12/junit.xml", traces=keys("traces", ".zip"), videos=keys("videos", ".webm"),
                               screenshots=keys("screenshots", ".png")),
        message=message,
    )  # fmt: skip


def test_small_message_is_unchanged() -> None:
    result = big_result(2)
    assert result.fitted() == result
    data = json.loads(result.to_json())
    assert list(data) == ["v", "outcome", "errorClass", "total", "passed", "failed", "skipped", "flaky",
                          "durationSeconds", "artifacts", "failures", "message"]  # fmt: skip
    assert data["v"] == 1


@pytest.mark.parametrize("n", [20, 30, 200])
def test_long_lists_are_trimmed_to_fit(n: int) -> None:
    fitted = big_result(n).fitted()
    size = len(fitted.to_json().encode())
    assert size <= MAX_BYTES
    assert (fitted.total, fitted.passed, fitted.failed, fitted.skipped, fitted.flaky) == (500, 400, 90, 5, 5)
    assert fitted.artifacts.url and fitted.artifacts.report and fitted.artifacts.junit
    lists = [fitted.artifacts.traces, fitted.artifacts.videos, fitted.artifacts.screenshots]
    assert max(map(len, lists)) - min(map(len, lists)) <= 1  # trimmed evenly, longest first
    assert "not listed; see results.json" in fitted.message
    assert size > MAX_BYTES - 200  # trimmed no more than needed


def test_kept_entries_are_the_first_ones() -> None:
    original = big_result(50)
    fitted = original.fitted()
    assert fitted.artifacts.screenshots == original.artifacts.screenshots[: len(fitted.artifacts.screenshots)]


def test_huge_multibyte_message_is_cut_in_bytes_not_chars() -> None:
    fitted = big_result(0, message="✗ " * 5000).fitted()
    assert len(fitted.to_json().encode()) <= MAX_BYTES
    assert fitted.message.startswith("✗ ✗")


def test_everything_huge_still_fits() -> None:
    fitted = big_result(100, name_len=3000, message="y" * 10000).fitted()
    assert len(fitted.to_json().encode()) <= MAX_BYTES
    assert fitted.outcome == "failed" and fitted.total == 500


def test_round_trip_and_tolerant_parsing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "termination-log"
    text = write_termination_message(big_result(300), path)
    assert path.read_text() == text and len(text.encode()) <= MAX_BYTES
    parsed = RunnerResult.from_termination_message(text)
    assert parsed.failed == 90
    newer = json.loads(text) | {"somethingNew": 1}
    assert RunnerResult.from_termination_message(json.dumps(newer)).total == 500


def test_failures_are_kept_and_trimmed_last() -> None:
    from sluice_runner.report import Failure

    result = big_result(200)
    result.failures = [Failure(test=f"tests/test_{i}.py::test_x", error="AssertionError: " + "x" * 180) for i in range(5)]
    fitted = result.fitted()
    assert len(fitted.to_json().encode()) <= 4096 and len(fitted.failures) == 5  # artifact lists go first
