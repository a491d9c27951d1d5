"""The runner on real playwright-python suites: real Chromium, pages on localhost, real MinIO."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.s3 import S3Server
from tests.runner.conftest import REPO, run_runner, runner_env, write_suite

pytestmark = pytest.mark.runner

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


def test_failing_suite_uploads_screenshot_trace_video(
    tmp_path: Path, web_server: str, s3_server: S3Server
) -> None:
    suite = write_suite(tmp_path / "suite", FAILING)
    url = s3_server.url("runs/team-a/checkout/attempt-1/")
    run = run_runner(tmp_path / "run", {
        "SLUICE_SOURCE_KIND": "configMap", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server,
        "SLUICE_ARTIFACTS_URL": url, **s3_server.env(),
    })  # fmt: skip
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

    prefix = "runs/team-a/checkout/attempt-1/"
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
    html, _ = s3_server.get(prefix + "report/index.html")
    assert b"test_wrong_heading" in html and b"data:image/png;base64," in html


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
    assert msg["failed"] == 1 and msg["total"] < 21
    keys = set(s3_server.keys(prefix))
    assert {prefix + "results.json", prefix + "junit.xml", prefix + "report/index.html"} <= keys
    assert {prefix + k for k in msg["artifacts"]["screenshots"]} <= keys
    assert any("test-a-fails-first" in k for k in msg["artifacts"]["screenshots"])
    assert json.loads(s3_server.get(prefix + "results.json")[0])["interrupted"] is True
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
