"""The runner on real playwright-python suites: real Chromium, pages on localhost, real MinIO."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from sluice_runner.execute import LAUNCH_ARGS

from tests.harness.s3 import S3Server
from tests.runner.conftest import REPO, RunnerRun, run_runner, runner_env, write_suite

pytestmark = pytest.mark.runner
CHROMIUM = os.environ.get("SLUICE_CHROMIUM") or "/usr/bin/chromium"

PASSING = {
    # The suite's own launch args must be extended by the runner's, not lose its executable.
    "conftest.py": """
import pytest

@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {"slow_mo": 1}
""",
    "test_home.py": """
def test_title(page):
    page.goto("/index.html")
    assert page.title() == "Sluice"

def test_click(page):
    page.goto("/index.html")
    page.click("button")
    assert page.inner_text("h1") == "Clicked"
""",
}

FAILING = {
    "test_checkout.py": """
def test_heading(page):
    page.goto("/index.html")
    assert page.inner_text("h1") == "Sluice"

def test_wrong_heading(page):
    page.goto("/index.html")
    assert page.inner_text("h1") == "Something else"
""",
}


def test_passing_suite(tmp_path: Path, web_server: str) -> None:
    suite = write_suite(tmp_path / "suite", PASSING)
    run = run_runner(
        tmp_path / "run",
        {"SLUICE_SOURCE_KIND": "inline", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server},
    )
    assert run.returncode == 0, run.output
    msg = run.message
    assert (msg["v"], msg["outcome"], msg["errorClass"]) == (1, "passed", None)
    assert (msg["total"], msg["passed"], msg["failed"], msg["skipped"], msg["flaky"]) == (2, 2, 0, 0, 0)
    assert msg["artifacts"]["traces"] == msg["artifacts"]["videos"] == msg["artifacts"]["screenshots"] == []
    assert (run.artifacts / "report" / "index.html").is_file() and (run.artifacts / "junit.xml").is_file()
    assert run.results["timings"]["tests"] > 0


@dataclass
class FailingRun:
    run: RunnerRun
    url: str
    prefix: str


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory, web_server: str, s3_server: S3Server) -> FailingRun:
    """FAILING run once through the runner into MinIO, for the tests that read what it uploaded."""
    tmp = tmp_path_factory.mktemp("failing")
    suite = write_suite(tmp / "suite", FAILING)
    prefix = "runs/team-a/checkout/attempt-1/"
    url = s3_server.url(prefix)
    run = run_runner(tmp / "run", {
        "SLUICE_SOURCE_KIND": "configMap", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server,
        "SLUICE_ARTIFACTS_URL": url, **s3_server.env(),
    })  # fmt: skip
    return FailingRun(run, url, prefix)


def test_failing_suite_uploads_screenshot_trace_video(failing_run: FailingRun, s3_server: S3Server) -> None:
    run, url, prefix = failing_run.run, failing_run.url, failing_run.prefix
    assert run.returncode == 1, run.output
    msg = run.message
    assert (msg["outcome"], msg["errorClass"], msg["total"], msg["passed"], msg["failed"]) == (
        "failed",
        "TestFailure",
        2,
        1,
        1,
    )
    assert "test_wrong_heading" in msg["message"]
    arts = msg["artifacts"]
    assert arts["url"] == url and arts["report"] == "report/index.html" and arts["junit"] == "junit.xml"
    assert len(arts["traces"]) == len(arts["videos"]) == len(arts["screenshots"]) == 1
    assert all("test-wrong-heading" in key for key in arts["traces"] + arts["videos"] + arts["screenshots"])

    keys = set(s3_server.keys(prefix))
    listed = {
        prefix + k
        for k in [arts["report"], arts["junit"], *arts["traces"], *arts["videos"], *arts["screenshots"]]
    }
    assert listed | {prefix + "results.json"} <= keys
    expect_types = {
        arts["report"]: "text/html", arts["junit"]: "application/xml", "results.json": "application/json",
        arts["traces"][0]: "application/zip", arts["videos"][0]: "video/webm", arts["screenshots"][0]: "image/png",
    }  # fmt: skip
    for key, ctype in expect_types.items():
        body, got = s3_server.get(prefix + key)
        assert got.startswith(ctype), (key, got)
        assert body, key
    png, _ = s3_server.get(prefix + arts["screenshots"][0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    zip_, _ = s3_server.get(prefix + arts["traces"][0])
    assert zip_[:2] == b"PK"
    webm, _ = s3_server.get(prefix + arts["videos"][0])
    assert webm[:4] == b"\x1a\x45\xdf\xa3"  # EBML header
    results = json.loads(s3_server.get(prefix + "results.json")[0])
    failed = [t for t in results["tests"] if t["outcome"] == "failed"]
    assert [a["path"] for a in failed[0]["artifacts"]] and "Something else" in failed[0]["error"]


def report_tests(page: str) -> dict[str, list[dict[str, Any]]]:
    """pytest-html's per-test data: the JSON it embeds in the page and renders with its script."""
    blob = re.search(r'<div id="data-container" data-jsonblob="([^"]*)"', page)
    assert blob, "no pytest-html data in the report"
    return json.loads(html.unescape(blob[1]))["tests"]


def assert_self_contained(page: str) -> None:
    """Nothing the page needs is fetched: styles and script inline, no external sources."""
    assert not re.search(r"<link\b", page, re.I), "external stylesheet"
    assert not re.search(r"<script\b[^>]*\bsrc=", page, re.I), "external script"
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page, re.I), "CSS fetches something"
    assert "<style" in page and "<script>" in page
    for src in re.findall(r"\bsrc=\"([^\"]*)\"", page):
        assert src == "" or src.startswith("data:"), src


def test_report_is_pytest_html_with_artifact_links(failing_run: FailingRun, s3_server: S3Server) -> None:
    prefix, arts = failing_run.prefix, failing_run.run.message["artifacts"]
    page = s3_server.get(prefix + arts["report"])[0].decode()
    assert "pytest-html" in page and "Sluice test report: team-a/checkout, attempt 1" in page
    assert_self_contained(page)
    tests = report_tests(page)
    failed_id = "test_checkout.py::test_wrong_heading[chromium]"
    assert set(tests) == {failed_id, "test_checkout.py::test_heading[chromium]"}
    [row] = tests[failed_id]
    assert '<td class="col-result">Failed</td>' in row["resultsTableRow"]
    assert "Something else" in row["log"] and "AssertionError" in row["log"]
    # The screenshot is embedded, byte for byte the one uploaded.
    [image] = [e for e in row["extras"] if e["format_type"] == "image"]
    data = image["content"].removeprefix("data:image/png;base64,")
    assert image["content"].startswith("data:image/png;base64,")
    assert base64.b64decode(data) == s3_server.get(prefix + arts["screenshots"][0])[0]
    # Links to the screenshot, trace and video, relative to the page, name objects in the bucket.
    links = {e["name"]: e["content"] for e in row["extras"] if e["format_type"] == "url"}
    assert set(links) == {"Screenshot", "Trace", "Video"}
    keys = set(s3_server.keys(prefix))
    base = f"http://bucket/{prefix}{arts['report']}"
    resolved = {name: urljoin(base, href).removeprefix("http://bucket/") for name, href in links.items()}
    assert resolved == {
        "Screenshot": prefix + arts["screenshots"][0],
        "Trace": prefix + arts["traces"][0],
        "Video": prefix + arts["videos"][0],
    }
    assert set(resolved.values()) <= keys
    # pytest-playwright's own extras (links into test-results/, an embedded video) are replaced.
    assert "test-results" not in page and "data:video" not in page
    assert tests["test_checkout.py::test_heading[chromium]"][0]["extras"] == []


def test_report_opens_in_chromium(failing_run: FailingRun, s3_server: S3Server) -> None:
    """The uploaded page in a real browser, served from the bucket as stored (path-style URLs)."""
    from playwright.sync_api import Route, expect, sync_playwright

    prefix, arts = failing_run.prefix, failing_run.run.message["artifacts"]
    origin = "http://artifacts.sluice.test/"
    report_url = f"{origin}{s3_server.bucket}/{prefix}{arts['report']}"

    def from_bucket(route: Route) -> None:
        path = unquote(urlsplit(route.request.url).path)
        bucket, _, key = path.lstrip("/").partition("/")
        try:
            body, ctype = s3_server.get(key)
        except Exception:  # NoSuchKey: what S3 would answer
            route.fulfill(status=404, body="no such key")
            return
        route.fulfill(status=200, body=body, headers={"Content-Type": ctype})

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            context = browser.new_context()
            requests: list[str] = []
            context.on("request", lambda request: requests.append(request.url))
            context.route(f"{origin}**", from_bucket)
            page = context.new_page()
            page.goto(report_url)
            row = page.locator("tbody.results-table-row").filter(has_text="test_wrong_heading")
            expect(row.locator("td.col-result")).to_have_text("Failed")
            expect(row.locator("td.col-testId")).to_be_visible()
            expect(row.locator(".log")).to_contain_text("Something else")  # failures open by default
            screenshot = row.locator(".media img")
            expect(screenshot).to_be_visible()
            assert screenshot.evaluate("img => img.complete && img.naturalWidth") > 0
            assert screenshot.get_attribute("src").startswith("data:image/png;base64,")
            links = row.locator("a.col-links__extra")
            expect(links).to_have_text(["Screenshot", "Trace", "Video"])
            passed = page.locator("tbody.results-table-row").filter(has_text="test_heading")
            expect(passed.locator("td.col-result")).to_have_text("Passed")
            page.wait_for_load_state("networkidle")
            loaded = [u for u in requests if not u.startswith("data:")]
            assert loaded == [report_url], loaded  # self-contained: nothing else fetched

            hrefs = links.evaluate_all("links => links.map(a => a.href)")
            kinds = ("screenshots", "traces", "videos")
            assert hrefs == [f"{origin}{s3_server.bucket}/{prefix}{arts[kind][0]}" for kind in kinds]
            fetch = "async u => { const r = await fetch(u); return [r.status, r.headers.get('content-type')]; }"
            got = [page.evaluate(fetch, href) for href in hrefs]
            assert got == [[200, "image/png"], [200, "application/zip"], [200, "video/webm"]], got
            # A click on the video link plays it straight from the bucket.
            with context.expect_page() as opened:
                links.filter(has_text="Video").click()
            video_page = opened.value
            video_page.wait_for_load_state()
            loaded_video = video_page.locator("video").evaluate(
                """v => new Promise(done => v.readyState >= 1 ? done(true)
                     : (v.onloadedmetadata = () => done(true), v.onerror = () => done(false)))"""
            )
            assert loaded_video
        finally:
            browser.close()


SHARDED = {
    "test_many.py": """
import pytest

@pytest.mark.parametrize("n", range(7))
def test_number(n):
    assert n >= 0

def test_page(page):
    page.goto("/index.html")
    assert page.title() == "Sluice"
""",
}


def test_sharded_suite_runs_every_test_once(tmp_path: Path, web_server: str, s3_server: S3Server) -> None:
    suite = write_suite(tmp_path / "suite", SHARDED)
    prefix = "runs/team-a/sharded/attempt-1/"
    ids: list[list[str]] = []
    for index in range(2):
        # Shard 0 via SLUICE_SHARD_INDEX, shard 1 via JOB_COMPLETION_INDEX (as an Indexed Job sets it).
        shard_env = {"SLUICE_SHARD_INDEX": "0"} if index == 0 else {"JOB_COMPLETION_INDEX": "1"}
        run = run_runner(tmp_path / f"run{index}", {
            "SLUICE_SOURCE_KIND": "image", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server,
            "SLUICE_SHARD_TOTAL": "2", "SLUICE_ARTIFACTS_URL": s3_server.url(prefix), **shard_env, **s3_server.env(),
        })  # fmt: skip
        assert run.returncode == 0, run.output
        assert run.message["artifacts"]["report"] == f"shard-{index}/report/index.html"
        results = json.loads(s3_server.get(f"{prefix}shard-{index}/results.json")[0])
        assert (results["shard"], results["shardTotal"]) == (index, 2)
        ids.append([t["id"] for t in results["tests"]])
        assert run.message["total"] == len(ids[-1]) > 0
    assert not set(ids[0]) & set(ids[1])
    assert len(ids[0]) + len(ids[1]) == 8
    assert {i.split("::")[1] for i in ids[0] + ids[1]} == {f"test_number[{n}]" for n in range(7)} | {
        "test_page[chromium]"
    }


def test_upload_that_fails_is_infrastructure_error(tmp_path: Path, s3_server: S3Server) -> None:
    suite = write_suite(tmp_path / "suite", {"test_plain.py": "def test_ok():\n    assert True\n"})
    run = run_runner(tmp_path / "run", {
        "SLUICE_SOURCE_DIR": str(suite), "SLUICE_ARTIFACTS_URL": "s3://no-such-bucket/runs/a/b/attempt-1/",
        **s3_server.env(),
    })  # fmt: skip
    assert run.returncode == 3, run.output
    msg = run.message
    assert (msg["outcome"], msg["errorClass"], msg["passed"]) == ("error", "InfrastructureError", 1)
    assert "not uploaded" in msg["message"] and "1 passed" in msg["message"]


def test_invalid_source_exits_2(tmp_path: Path) -> None:
    run = run_runner(
        tmp_path / "missing", {"SLUICE_SOURCE_KIND": "configMap", "SLUICE_SOURCE_DIR": str(tmp_path / "nope")}
    )
    assert run.returncode == 2, run.output
    assert (run.message["outcome"], run.message["errorClass"]) == ("error", "InvalidSpec")
    assert "does not exist" in run.message["message"]
    (tmp_path / "empty").mkdir()
    run = run_runner(
        tmp_path / "empty-run", {"SLUICE_SOURCE_KIND": "inline", "SLUICE_SOURCE_DIR": str(tmp_path / "empty")}
    )
    assert run.returncode == 2 and "empty" in run.message["message"], run.output


def test_invalid_settings_exit_2(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", PASSING)
    run = run_runner(
        tmp_path / "run",
        {"SLUICE_SOURCE_DIR": str(suite), "SLUICE_ARGS": "-k title", "SLUICE_FRAMEWORK": "cypress"},
    )
    assert run.returncode == 2, run.output
    assert "SLUICE_ARGS" in run.message["message"] and "SLUICE_FRAMEWORK" in run.message["message"]


def test_browser_that_cannot_start_is_browser_crash(tmp_path: Path, web_server: str) -> None:
    suite = write_suite(tmp_path / "suite", PASSING)
    run = run_runner(tmp_path / "run", {
        "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server, "SLUICE_CHROMIUM": "/bin/false",
    })  # fmt: skip
    assert run.returncode == 3, run.output
    assert (run.message["outcome"], run.message["errorClass"]) == ("error", "BrowserCrash")
    assert "browser could not start" in run.message["message"]


SLOW = {
    "test_slow.py": """
import os, pathlib, pytest

def test_a_fails_first(page):
    page.goto("/index.html")
    assert page.inner_text("h1") == "not this"

@pytest.mark.parametrize("n", range(20))
def test_slow(page, n):
    pathlib.Path(os.environ["SLOW_MARKER"]).touch()
    page.goto("/index.html")
    page.wait_for_timeout(2000)
""",
}


def test_sigterm_mid_run_saves_partial_results(tmp_path: Path, web_server: str, s3_server: S3Server) -> None:
    suite = write_suite(tmp_path / "suite", SLOW)
    marker = tmp_path / "slow-started"
    prefix = "runs/team-a/slow/attempt-2/"
    env = runner_env(tmp_path / "run", {
        "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server, "SLOW_MARKER": str(marker),
        "SLUICE_ARTIFACTS_URL": s3_server.url(prefix), **s3_server.env(),
    })  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice_runner"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[0]
    time.sleep(1)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    stopped_in = time.monotonic() - sent
    assert proc.returncode == 3, output
    assert stopped_in < 20, f"runner took {stopped_in:.1f}s after SIGTERM"
    msg = json.loads(Path(env["SLUICE_TERMINATION_LOG"]).read_text())
    assert (msg["outcome"], msg["errorClass"]) == ("error", "InfrastructureError")
    assert "interrupted" in msg["message"] and "partial results" in msg["message"]
    assert msg["failed"] == 1 and msg["total"] < 21, output
    keys = set(s3_server.keys(prefix))
    assert {prefix + "results.json", prefix + "junit.xml", prefix + "report/index.html"} <= keys
    assert {prefix + k for k in msg["artifacts"]["screenshots"]} <= keys
    assert any("test-a-fails-first" in k for k in msg["artifacts"]["screenshots"])
    assert json.loads(s3_server.get(prefix + "results.json")[0])["interrupted"] is True
    report = s3_server.get(prefix + "report/index.html")[0].decode()
    assert "The run was interrupted" in report and "test_a_fails_first" in report
    assert _no_leftovers(env["SLUICE_WORK_DIR"])


def _no_leftovers(work_dir: str) -> bool:
    """No process of this run (cwd inside its work dir) survives the runner."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "cwd").startswith(work_dir):
                return False
        except OSError:
            continue
    return True
