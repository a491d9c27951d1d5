"""Runs the suite's test command, one per framework, and reads back what it reported.

playwright-python: `python -m pytest` with pytest-playwright (chromium, retain-on-failure traces
and videos, screenshots on failure, junit XML), pytest-html (one self-contained report page) and
our plugin (sharding, launch options, raw results, the report's artifact links). playwright-node:
Playwright Test's CLI (what `npx playwright test` runs, but from the node_modules we chose, so npx
can never fetch another version) with a generated config that wraps the suite's own (see node.py)
and `--shard=i+1/N`.

Both write into one `Outputs` tree that collect.py turns into the artifact layout. The user's
SLUICE_ARGS are appended as argv items: no shell ever sees them. This module decides nothing
about outcomes; it returns the parsed results (or None when the framework wrote none) and the
process result, and verdict.py judges.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from sluice_runner import node, progress
from sluice_runner.browser import ensure_ffmpeg_link
from sluice_runner.config import Settings
from sluice_runner.errors import InfrastructureError
from sluice_runner.process import ProcessResult, StopPolicy, Supervisor
from sluice_runner.results import RunResults, parse_playwright_json, parse_pytest_raw

log = logging.getLogger("sluice_runner")

# Chromium as root in a container: no sandbox, small /dev/shm, and no network but the tests'.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# How each test command stops cleanly, still writing its reports (measured, not guessed):
# pytest: SIGTERM to pytest alone, which our plugin turns into KeyboardInterrupt while the
#   Playwright driver and browser stay up to save the running test's trace and video;
# Playwright Test: SIGINT to the whole group, as a terminal's Ctrl-C (on SIGTERM it dies at once
#   without writing any report).
STOP_POLICIES = {
    "playwright-python": StopPolicy(signal.SIGTERM, "leader"),
    "playwright-node": StopPolicy(signal.SIGINT, "group"),
}


@dataclass(frozen=True)
class Outputs:
    """Where the test command writes (inside the run's work directory)."""

    root: Path

    @property
    def test_results(self) -> Path:
        return self.root / "test-results"

    @property
    def junit(self) -> Path:
        return self.root / "junit.xml"

    @property
    def raw_results(self) -> Path:
        return self.root / "raw-results.json"

    @property
    def progress(self) -> Path:
        """Live progress events (JSON lines) the test command writes and the runner publishes."""
        return self.root / "progress-events.jsonl"

    @property
    def html(self) -> Path:
        return self.root / "html-report"


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def drop_html_args(args: list[str]) -> list[str]:
    """The suite's args without those that would move or disable the report the runner uploads:
    `--html PATH`, `--html=PATH` and `-p no:html` (pytest-html's own flags stay)."""
    out: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--html":
            next(it, None)
        elif arg == "-p":
            value = next(it, None)
            if value != "no:html":
                out += [arg] if value is None else [arg, value]
        elif not arg.startswith("--html=") and arg not in ("-pno:html", "-p=no:html"):
            out.append(arg)
    return out


def pytest_command(
    settings: Settings, suite: Path, outputs: Outputs, chromium: Path | None, python: str = sys.executable
) -> list[str]:
    # Every option with a path value uses the `--opt=value` form: pytest guesses its rootdir
    # from argv items that look like paths, and must pick the suite.
    argv = [
        python, "-m", "pytest",
        f"--rootdir={suite}",
        "-p", "sluice_runner.pytest_plugin",
        "-p", "no:cacheprovider",
        "--browser", "chromium",
        f"--output={outputs.test_results}",
        "--tracing", "retain-on-failure",
        "--video", "retain-on-failure",
        "--screenshot", "only-on-failure",
        f"--junitxml={outputs.junit}",
        f"--sluice-results={outputs.raw_results}",
        "-rfE",
    ]  # fmt: skip
    if importlib.util.find_spec("pytest_html") is not None:
        argv += [f"--html={outputs.html / 'index.html'}", "--self-contained-html"]
    else:
        log.warning("pytest-html is not installed: this run has no HTML report (pip install 'sluice[runner]')")
    if settings.redis_url:  # the live channel (progress.py)
        argv += ["-p", "sluice_runner.pytest_progress", f"--sluice-progress={outputs.progress}"]
    if settings.sharded:
        argv.append(f"--sluice-shard={settings.shard}/{settings.shard_total}")
    if chromium is not None:
        argv.append(f"--sluice-executable={chromium}")
    argv += [f"--sluice-launch-arg={arg}" for arg in LAUNCH_ARGS]
    if settings.base_url and not _has_flag(settings.args, "--base-url"):
        argv.append(f"--base-url={settings.base_url}")
    return argv + drop_html_args(list(settings.args))


def wrapper_settings(settings: Settings, outputs: Outputs, chromium: Path | None) -> dict[str, object]:
    return {
        "outputDir": str(outputs.test_results),
        "reporter": [
            ["list"],
            ["junit", {"outputFile": str(outputs.junit)}],
            ["json", {"outputFile": str(outputs.raw_results)}],
            ["html", {"outputFolder": str(outputs.html), "open": "never"}],
        ],
        "use": {"trace": "retain-on-failure", "video": "retain-on-failure", "screenshot": "only-on-failure"},
        "executablePath": str(chromium) if chromium else None,
        "args": LAUNCH_ARGS,
        "baseURL": settings.base_url,
    }


def node_command(modules: Path, wrapper: Path, settings: Settings, args: list[str]) -> list[str]:
    node_bin = shutil.which("node")
    if node_bin is None:
        raise InfrastructureError("node is not installed in the runner image")
    argv = [node_bin, str(modules / "@playwright" / "test" / "cli.js"), "test", "--config", str(wrapper)]
    if settings.sharded:
        argv.append(f"--shard={settings.shard + 1}/{settings.shard_total}")
    return argv + node.drop_reporter_args(args)


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name in progress.SECRET_ENV:  # the live channel's credential stays in the runner
        env.pop(name, None)
    env["SLUICE_RUNNER_CHILD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env["PLAYWRIGHT_HTML_OPEN"] = "never"
    if settings.base_url:
        env["BASE_URL"] = settings.base_url
    return env


def with_progress_reporter(settings: Settings, outputs: Outputs, config: dict[str, object]) -> dict[str, object]:
    """With the live channel on, add the progress reporter (node.py) writing to outputs.progress."""
    if not settings.redis_url:
        return config
    outputs.root.mkdir(parents=True, exist_ok=True)
    reporter = node.write_progress_reporter(outputs.root)
    reporters = list(config["reporter"])  # type: ignore[call-overload]
    return {**config, "reporter": [*reporters, [str(reporter), {"outputFile": str(outputs.progress)}]]}


def prepare_node(settings: Settings, suite: Path, outputs: Outputs, chromium: Path | None) -> list[str]:
    """Find @playwright/test, link it into the suite, write the wrapper config; return argv."""
    modules = node.find_node_modules(suite, settings.node_modules)
    node.link_node_modules(suite, modules)
    ensure_ffmpeg_link(modules)
    explicit, args = node.split_config_arg(list(settings.args))
    user_config = node.find_user_config(suite, explicit)
    config = with_progress_reporter(settings, outputs, wrapper_settings(settings, outputs, chromium))
    wrapper = node.write_wrapper(suite, user_config, config)
    return node_command(modules, wrapper, settings, args)


def prepare_command(settings: Settings, suite: Path, outputs: Outputs, chromium: Path | None) -> list[str]:
    outputs.root.mkdir(parents=True, exist_ok=True)
    if settings.framework == "playwright-node":
        return prepare_node(settings, suite, outputs, chromium)
    ensure_ffmpeg_link(None)
    return pytest_command(settings, suite, outputs, chromium)


def run_tests(
    settings: Settings, argv: list[str], suite: Path, outputs: Outputs, supervisor: Supervisor
) -> tuple[RunResults | None, ProcessResult]:
    """Run the command; parse what the framework wrote (None if it wrote nothing usable)."""
    proc = supervisor.run(argv, cwd=suite, env=child_env(settings), stop=STOP_POLICIES[settings.framework])
    return read_results(settings, outputs), proc


def read_results(settings: Settings, outputs: Outputs) -> RunResults | None:
    try:
        raw = json.loads(outputs.raw_results.read_text())
    except (OSError, ValueError):
        return None
    if settings.framework == "playwright-node":
        return parse_playwright_json(raw, settings.shard, settings.shard_total)
    return parse_pytest_raw(raw)
