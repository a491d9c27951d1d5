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
    (parsed by `sluice_runner.results.parse_pytest_raw`);
  * point pytest-html's report at the uploaded artifacts: the runner asks pytest-html for one
    self-contained page (`--html=... --self-contained-html`, uploaded as `report/index.html`), and
    each test's kept screenshots, videos and traces become its extras, linked at the keys
    collect.py will give them (`../screenshots/<test>-test-failed-1.png`, `../videos/<test>.webm`,
    `../traces/<test>.zip`, see layout.py) instead of the `test-results/` paths pytest-playwright
    links, which are not uploaded as such. Screenshots are also embedded (data URIs, up to
    EMBED_BUDGET_BYTES per report), so they show even when the page is opened alone, e.g. through
    a presigned URL. Videos are linked, never embedded (they would make the page huge) nor put in
    pytest-html's media viewer, whose player never loads a video that is not its first item.
It also turns SIGTERM into KeyboardInterrupt, so an interrupted session still writes junit.xml,
the HTML report and our results before the runner's grace period runs out. It never decides an
outcome.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from sluice_runner.layout import artifact_key, report_href

EMBED_BUDGET_BYTES = 4 * 1024 * 1024
# The names pytest-playwright gives the pytest-html extras it adds itself (one per artifact).
_PLAYWRIGHT_EXTRA_NAMES = {"trace": "Trace", "screenshot": "Screenshot", "video": "Video"}
_ARTIFACT_PROPERTIES = {f"playwright_{kind}": kind for kind in _PLAYWRIGHT_EXTRA_NAMES}


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

    # A wrapper, so the results are written after every other finisher, even one that raised
    # (pytest-playwright's fixture teardown, when the runner's group SIGTERM closed the browser).
    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, exitstatus: int) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self.write(int(exitstatus))

    def write(self, exitstatus: int) -> None:
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


class _HtmlExtras:
    """Each test's kept artifacts as pytest-html extras, linked where they will be uploaded."""

    def __init__(self, config: pytest.Config, html_plugin: Any) -> None:
        self.config = config
        self.extras = html_plugin.extras
        output = config.getoption("--output", default=None) or "test-results"
        self.test_results = (config.invocation_params.dir / str(output)).resolve()
        self.budget = EMBED_BUDGET_BYTES
        self.interrupted = False

    @pytest.hookimpl(tryfirst=True, wrapper=True)  # outermost: after pytest-playwright's wrapper
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, Any]:
        report = yield
        if report.when == "teardown":
            # pytest-playwright adds its artifacts to the teardown report's copy of the item's
            # user_properties (and, with pytest-html, one extra each).
            new = report.user_properties[len(item.user_properties) :]
            found = [(_ARTIFACT_PROPERTIES[n], str(v)) for n, v in new if n in _ARTIFACT_PROPERTIES]
            if found:
                self.attach(report, found)
        return report

    def attach(self, report: pytest.TestReport, found: list[tuple[str, str]]) -> None:
        base = self.config.invocation_params.dir
        keyed = []
        for kind, value in found:
            key = artifact_key(self.test_results, (base / value).resolve())
            if key is None:
                return  # not under the output folder, so not uploaded: keep pytest-playwright's extras
            keyed.append((kind, base / value, report_href(key)))
        extras = list(getattr(report, "extras", []))
        tail = extras[len(extras) - len(found) :]
        if len(tail) == len(found) and all(
            extra.get("name") == _PLAYWRIGHT_EXTRA_NAMES[kind]
            for extra, (kind, _) in zip(tail, found, strict=True)
        ):
            del extras[len(extras) - len(found) :]  # its links point into test-results/: replaced
        media, links = [], []
        kinds = [kind for kind, _, _ in keyed]
        for i, (kind, path, href) in enumerate(keyed):
            several = kinds.count(kind) > 1
            name = _PLAYWRIGHT_EXTRA_NAMES[kind] + (f" {kinds[: i + 1].count(kind)}" if several else "")
            embedded = self._embedded(path) if kind == "screenshot" else None
            if embedded is not None:
                media.append(self.extras.png(embedded, name=name))
            links.append(self.extras.url(href, name=name))
        report.extras = extras + media + links

    def _embedded(self, path: Path) -> str | None:
        """The file as base64 while the report's embedding budget lasts, else None."""
        try:
            size = path.stat().st_size
            if size > self.budget:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        self.budget -= size
        return base64.b64encode(data).decode()

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        try:
            return (yield)
        except BaseException:
            # A finisher before pytest-html's raised (as the recorder's comment says), so its
            # report was not written: write it now, with what it has.
            from pytest_html.basereport import BaseReport

            for plugin in self.config.pluginmanager.get_plugins():
                if isinstance(plugin, BaseReport):
                    try:
                        plugin.pytest_sessionfinish(session)
                    except Exception:  # noqa: BLE001 - the original error is the one to show
                        pass
            raise

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        execution, attempt = os.environ.get("SLUICE_EXECUTION"), os.environ.get("SLUICE_ATTEMPT")
        shard, total = _shard_option(self.config)
        title = "Sluice test report"
        if execution:
            title += f": {execution}" + (f", attempt {attempt}" if attempt else "")
        if total > 1:
            title += f", shard {shard + 1}/{total}"
        report.title = title

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        if self.interrupted:
            prefix.append(
                "<p><strong>The run was interrupted: these results are partial.</strong></p>"
            )
        prefix.append(
            "<p>Each failed test links its screenshot, video and trace (Links column); open a trace "
            "with <code>playwright show-trace trace.zip</code> or drop it on trace.playwright.dev.</p>"
        )


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
    # Once only: the runner's second SIGTERM (to the whole group, when pytest is still finishing
    # after half the grace period) is for the browsers and drivers; raised here again, it would
    # cut short the session finish that writes junit.xml, the HTML report and our results.
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--sluice-results")
    if path:
        config.pluginmanager.register(_Recorder(config, Path(path)), "sluice-recorder")
    html_plugin = config.pluginmanager.getplugin("html")
    if html_plugin is not None and getattr(config.option, "htmlpath", None):
        config.pluginmanager.register(_HtmlExtras(config, html_plugin), "sluice-html-extras")
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
