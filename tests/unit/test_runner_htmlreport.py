"""The Python suites' HTML report: pytest-html's self-contained page, with each test's artifacts
linked at the keys the artifact tree gives them (the real thing, with Chromium and MinIO, is in
tests/runner/test_runner_python.py)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_html.extras
from sluice_runner import pytest_plugin
from sluice_runner.config import load_settings
from sluice_runner.execute import Outputs, drop_html_args, pytest_command
from sluice_runner.layout import artifact_key, report_href

REPO = Path(__file__).resolve().parents[2]


def test_artifact_keys_and_links(tmp_path: Path) -> None:
    base = tmp_path / "test-results"
    assert artifact_key(base, base / "t-a" / "trace.zip") == "traces/t-a.zip"
    assert artifact_key(base, base / "t-a" / "video.webm") == "videos/t-a.webm"
    assert artifact_key(base, base / "t-a" / "test-failed-1.png") == "screenshots/t-a-test-failed-1.png"
    assert artifact_key(base, base / ".playwright-artifacts-0" / "x.webm") is None  # scratch space
    assert artifact_key(base, base / "t-a" / "notes.txt") is None
    assert artifact_key(base, tmp_path / "elsewhere" / "trace.zip") is None
    assert report_href("traces/t-a.zip") == "../traces/t-a.zip"
    assert report_href("videos/a b#c?.webm") == "../videos/a%20b%23c%3F.webm"


def test_suite_args_cannot_move_or_disable_the_report() -> None:
    args = ["-k", "smoke", "--html", "x.html", "--html=y.html", "-p", "no:html", "-pno:html", "-p", "xdist",
            "--self-contained-html", "--css=extra.css", "-p"]  # fmt: skip
    assert drop_html_args(args) == ["-k", "smoke", "-p", "xdist", "--self-contained-html", "--css=extra.css", "-p"]


def test_pytest_command_asks_for_one_self_contained_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith(("SLUICE_", "AWS_", "JOB_COMPLETION", "BASE_URL"))]:
        monkeypatch.delenv(key)
    settings = load_settings(source_dir=tmp_path / "suite", args=["--html=mine.html", "-x"])
    outputs = Outputs(tmp_path / "out")
    argv = pytest_command(settings, tmp_path / "suite", outputs, None)
    assert f"--html={outputs.html / 'index.html'}" in argv and "--self-contained-html" in argv
    assert "--html=mine.html" not in argv and argv[-1] == "-x"


class _Config:
    def __init__(self, root: Path) -> None:
        self.invocation_params = SimpleNamespace(dir=root)

    def getoption(self, name: str, default: object = None) -> object:
        return {"--output": "test-results", "--sluice-shard": None}.get(name, default)


def _html_extras(root: Path) -> pytest_plugin._HtmlExtras:
    html_plugin = SimpleNamespace(extras=pytest_html.extras)
    return pytest_plugin._HtmlExtras(_Config(root), html_plugin)  # type: ignore[arg-type]


def _playwright_extras(found: list[tuple[str, str]]) -> list[dict[str, str | None]]:
    """What pytest-playwright adds by itself: one extra per artifact, linking test-results/."""
    names = {"trace": "Trace", "screenshot": "Screenshot", "video": "Video"}
    return [pytest_html.extras.url("../test-results/" + path, name=names[kind]) for kind, path in found]


def test_extras_replace_playwrights_and_respect_the_embedding_budget(tmp_path: Path) -> None:
    folder = tmp_path / "test-results" / "test-a-py-test-x-chromium"
    folder.mkdir(parents=True)
    sizes = {"test-failed-1.png": 300, "test-failed-2.png": 300, "trace.zip": 10, "video.webm": 10}
    for name, size in sizes.items():
        (folder / name).write_bytes(b"\x89PNG" + bytes(size - 4))
    found = [
        ("screenshot", "test-results/test-a-py-test-x-chromium/test-failed-1.png"),
        ("screenshot", "test-results/test-a-py-test-x-chromium/test-failed-2.png"),
        ("trace", "test-results/test-a-py-test-x-chromium/trace.zip"),
        ("video", "test-results/test-a-py-test-x-chromium/video.webm"),
    ]
    own = pytest_html.extras.text("kept", name="the suite's own")
    report = SimpleNamespace(extras=[own, *_playwright_extras(found)])
    extras = _html_extras(tmp_path)
    extras.budget = 500  # room for one screenshot only
    extras.attach(report, found)  # type: ignore[arg-type]

    assert report.extras[0] is own
    media = [e for e in report.extras if e["format_type"] == "image"]
    assert [m["name"] for m in media] == ["Screenshot 1"]
    assert base64.b64decode(media[0]["content"]) == (folder / "test-failed-1.png").read_bytes()
    links = {e["name"]: e["content"] for e in report.extras if e["format_type"] == "url"}
    assert links == {
        "Screenshot 1": "../screenshots/test-a-py-test-x-chromium-test-failed-1.png",
        "Screenshot 2": "../screenshots/test-a-py-test-x-chromium-test-failed-2.png",
        "Trace": "../traces/test-a-py-test-x-chromium.zip",
        "Video": "../videos/test-a-py-test-x-chromium.webm",
    }
    assert extras.budget == 200


def test_artifacts_outside_the_output_folder_keep_playwrights_extras(tmp_path: Path) -> None:
    found = [("trace", "elsewhere/trace.zip")]
    report = SimpleNamespace(extras=_playwright_extras(found))
    before = list(report.extras)
    extras = _html_extras(tmp_path)
    extras.attach(report, found)  # type: ignore[arg-type]
    assert report.extras == before


INTERRUPTED = {
    "conftest.py": """
import pytest

@pytest.fixture(scope="session")
def browser_like():
    yield
    raise RuntimeError("Target page, context or browser has been closed")
""",
    "test_cut.py": """
def test_first_fails(browser_like):
    assert 1 == 2

def test_interrupted(browser_like):
    raise KeyboardInterrupt("signal 15")

def test_never_runs():
    pass
""",
}


def test_an_interrupted_session_whose_teardown_fails_still_writes_report_and_results(tmp_path: Path) -> None:
    """As when the runner's group SIGTERM closed the browser under pytest-playwright's teardown."""
    for name, body in INTERRUPTED.items():
        (tmp_path / name).write_text(body)
    page, raw = tmp_path / "report" / "index.html", tmp_path / "raw.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"--rootdir={tmp_path}", "-p", "sluice_runner.pytest_plugin",
         "-p", "no:cacheprovider", f"--html={page}", "--self-contained-html", f"--sluice-results={raw}",
         str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "runner")},
    )  # fmt: skip
    assert proc.returncode != 0 and "has been closed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    results = json.loads(raw.read_text())
    assert results["interrupted"] is True
    assert any(r["nodeid"].endswith("test_first_fails") and r["outcome"] == "failed" for r in results["reports"])
    text = page.read_text()
    assert "The run was interrupted" in text
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob and "test_cut.py::test_first_fails" in json.loads(html.unescape(blob[1]))["tests"]
