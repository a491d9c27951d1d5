"""pytest plugin the runner loads into playwright-python suites with `-p sluice_runner.pytest_plugin`.

It does the three things plain pytest + pytest-playwright cannot be told on the command line:
  * shard deterministically: every test's nodeid is ranked in sorted order and shard i of N keeps
    the ranks with rank % N == i, so N pods that each see the same suite run every test exactly
    once, whatever order collection happened in;
  * point Playwright at our browser: the launch options the suite ends up with (from
    pytest-playwright or the suite's own `browser_type_launch_args` override) get our
    executable_path and flags added, rather than replaced;
  * record machine-readable results: one event per test phase, with the artifacts
    pytest-playwright kept, plus collection errors and interruption, written as JSON at session end
    (parsed by `sluice_runner.results.parse_pytest_raw`).
It also turns SIGTERM into KeyboardInterrupt, so an interrupted session still writes junit.xml
and our results before the runner's grace period runs out. It never decides an outcome.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest


def shard_select(nodeids: list[str], index: int, total: int) -> set[str]:
    """The nodeids shard `index` (0-based) of `total` runs."""
    return {nodeid for rank, nodeid in enumerate(sorted(nodeids)) if rank % total == index}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sluice", "Sluice runner")
    group.addoption("--sluice-results", default=None, help="write the raw results JSON here")
    group.addoption("--sluice-shard", default=None, help="INDEX/TOTAL, INDEX 0-based")
    group.addoption("--sluice-executable", default=None, help="browser executable for chromium")
    group.addoption("--sluice-launch-arg", action="append", default=[], help="extra browser flag")


class _Recorder:
    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.reports: list[dict[str, Any]] = []
        self.collect_errors: list[str] = []
        self.collected: int | None = None
        self.shard, self.shard_total = _shard_option(config)
        self.interrupted = False

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection, so shards split what will run
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        self.collected = len(items)
        if self.shard_total <= 1:
            return
        keep = shard_select([item.nodeid for item in items], self.shard, self.shard_total)
        deselected = [item for item in items if item.nodeid not in keep]
        items[:] = [item for item in items if item.nodeid in keep]
        if deselected:
            config.hook.pytest_deselected(items=deselected)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid or 'collection'}: {report.longreprtext}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        base = self.config.invocation_params.dir
        artifacts = [
            [name.removeprefix("playwright_"), str(base / str(value))]
            for name, value in report.user_properties
            if name in ("playwright_trace", "playwright_video", "playwright_screenshot")
        ]
        if report.skipped and isinstance(report.longrepr, tuple):
            text: str | None = str(report.longrepr[2])
        else:
            text = report.longreprtext if report.outcome in ("failed", "rerun") else None
        self.reports.append(
            {
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": report.outcome,
                "duration": report.duration,
                "longrepr": text,
                "wasxfail": hasattr(report, "wasxfail"),
                "artifacts": artifacts,
            }
        )

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        raw = {
            "collected": self.collected,
            "shard": self.shard,
            "shardTotal": self.shard_total,
            "collectErrors": self.collect_errors,
            "interrupted": self.interrupted,
            "exitstatus": int(exitstatus),
            "reports": self.reports,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, self.path)


def _shard_option(config: pytest.Config) -> tuple[int, int]:
    value = config.getoption("--sluice-shard")
    if not value:
        return 0, 1
    try:
        index, total = (int(part) for part in str(value).split("/"))
    except ValueError:
        raise pytest.UsageError(f"--sluice-shard must be INDEX/TOTAL, got {value!r}") from None
    if not 0 <= index < total:
        raise pytest.UsageError(f"--sluice-shard index must be in [0, {total}), got {index}")
    return index, total


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--sluice-results")
    if path:
        config.pluginmanager.register(_Recorder(config, Path(path)), "sluice-recorder")
    if os.environ.get("SLUICE_RUNNER_CHILD") == "1":
        signal.signal(signal.SIGTERM, _raise_interrupt)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    result = yield
    if fixturedef.argname != "browser_type_launch_args" or not isinstance(result, dict):
        return result
    config = request.config
    browsers = set(config.getoption("--browser", default=None) or ["chromium"])
    executable = config.getoption("--sluice-executable")
    if browsers != {"chromium"}:
        return result
    if executable and "executable_path" not in result:
        result["executable_path"] = executable
    extra = [a for a in config.getoption("--sluice-launch-arg") if a not in result.get("args", [])]
    if extra:
        result["args"] = [*result.get("args", []), *extra]
    return result
