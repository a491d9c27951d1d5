"""pytest plugin for the live channel, loaded with `-p sluice_runner.pytest_progress` when it is on.

It writes the `start` and `test` events of progress.py as JSON lines into the file named by
`--sluice-progress` (the runner tails it and publishes to Redis; this process never talks to
Redis and has no credential for it):
  * start: when collection finished (after -k/-m deselection and sharding), `total` = the tests
    this session will run;
  * test: once per test when its teardown is reported, with the outcome folded over its phases
    as results.parse_pytest_raw folds them (a failed setup, call or teardown fails the test; a
    skip skips it; a test that needed reruns (pytest-rerunfailures) and passed is flaky), the
    summed duration and the first line of the failure.
The `end` event is the runner's, from the verdict, so it always matches the termination message.
Each hook costs one small dict and one line-buffered write on the test's thread; the measured
cost per event is written as the file's last line (`_stats`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sluice_runner.progress import EventWriter, first_line


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sluice", "Sluice runner")
    group.addoption("--sluice-progress", default=None, help="append live progress events (JSON lines) here")


@dataclass
class _Test:
    outcome: str = "passed"
    duration: float = 0.0
    error: str | None = None
    reruns: int = 0
    rerun_pending: bool = False


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return first_line(message)
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return first_line(str(report.longrepr[2]))
    return first_line(report.longreprtext)


class _Progress:
    def __init__(self, path: Path) -> None:
        self.writer = EventWriter(path)
        self.tests: dict[str, _Test] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.writer.write({"type": "start", "total": len(session.items)})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        started = time.perf_counter()
        test = self.tests.setdefault(report.nodeid, _Test())
        test.duration += report.duration
        if report.outcome == "rerun":  # pytest-rerunfailures: this attempt failed, another follows
            test.reruns += 1
            test.rerun_pending = True
            test.error = _failure_line(report)
            return
        if report.failed:
            test.outcome = "failed"
            test.error = _failure_line(report)
        elif report.skipped and test.outcome != "failed":
            test.outcome = "skipped"
        if report.when != "teardown":
            return
        if test.rerun_pending:  # the teardown of an attempt that will be rerun
            test.rerun_pending = False
            return
        del self.tests[report.nodeid]
        outcome = "flaky" if test.outcome == "passed" and test.reruns else test.outcome
        event: dict[str, Any] = {
            "type": "test",
            "title": report.nodeid,
            "outcome": outcome,
            "duration": round(test.duration, 3),
            "error": test.error if outcome in ("failed", "flaky") else "",
        }
        self.writer.write(event, started)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self.writer.close()


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--sluice-progress")
    if path:
        config.pluginmanager.register(_Progress(Path(path)), "sluice-progress")
