"""Fixtures for the runner tests: pages on localhost, suites on disk, the runner as a process.

These tests run the real runner (`python -m sluice_runner`) in a subprocess, which runs real
pytest/Playwright Test suites in real Chromium against a tiny http.server on 127.0.0.1 and
uploads to a real MinIO (tests/harness/s3.py). Nothing is mocked.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = {
    "index.html": "<!doctype html><title>Sluice</title><h1>Sluice</h1>"
    "<button onclick=\"document.querySelector('h1').textContent='Clicked'\">go</button>",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runner: runs the real runner against real Chromium and MinIO")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a static site on 127.0.0.1 (see PAGES)."""
    root = tmp_path_factory.mktemp("site")
    for name, body in PAGES.items():
        (root / name).write_text(body)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_suite(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return root


@dataclass
class RunnerRun:
    returncode: int
    output: str
    message: dict[str, Any]
    artifacts: Path  # the local artifact tree (SLUICE_OUTPUT_DIR)

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.artifacts / "results.json").read_text())


def runner_env(tmp: Path, env: dict[str, str]) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLUICE_", "AWS_", "JOB_COMPLETION", "BASE_URL"))
    }
    return {
        **base,
        "SLUICE_TERMINATION_LOG": str(tmp / "termination-log"),
        "SLUICE_OUTPUT_DIR": str(tmp / "artifacts"),
        "SLUICE_WORK_DIR": str(tmp / "work"),
        "SLUICE_EXECUTION": "team-a/checkout",
        "SLUICE_ATTEMPT": "1",
        **env,
    }


def run_runner(
    tmp: Path, env: dict[str, str], args: list[str] | None = None, timeout: float = 180
) -> RunnerRun:
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "sluice_runner", *(args or [])],
        env=runner_env(tmp, env), cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    log = tmp / "termination-log"
    message = json.loads(log.read_text()) if log.exists() else {}
    return RunnerRun(proc.returncode, output, message, tmp / "artifacts")
