"""`sluice dashboard` for real: the command as a subprocess with a kubeconfig, the page driven in
Debian's Chromium with Playwright, against the real control plane and the operator.

- kwok (cheap, no browser runner): waiting executions show their exact ranks in admission order
  (the operator's own ordering), a new one appears without reload, the execution page lists its
  Events, and a port in use is one line with exit 2;
- e2e (real runner on the process node, real redis-server and MinIO): a running execution's
  progress bar moves without reload; the finished execution's report opens through the
  dashboard's artifact route.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sluice.cli.queue import queue_blocks
from tests.e2e.test_end_to_end import e2e_queue  # noqa: F401 - the fixture
from tests.e2e.test_live_progress import N_TESTS, _operator, _runner_secret
from tests.harness.sluice_api import kwok_runner

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent / "screenshots"  # test outputs (git-ignored): the main views
SLOW_SUITE = {"test_slow.py": (  # test_live_progress's suite at 1 s a test: ~30 s, many relayed steps
    "import time, pytest\n"
    f"@pytest.mark.parametrize('i', range({N_TESTS}))\n"
    "def test_step(i):\n"
    "    time.sleep(1.0)\n"
)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    def __init__(self, kubeconfig, namespace: str | None, env: dict | None = None, port: int | None = None,
                 extra: tuple[str, ...] = ()):
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig), **(env or {}))
        scope = ["-A"] if namespace is None else ["-n", namespace]
        self.cmd = [sys.executable, "-m", "sluice.cli.main", "dashboard", *scope, "--port", str(self.port), *extra]

    def start(self) -> "Dashboard":
        self.log = open(f"/tmp/sluice-dashboard-{self.port}.log", "w")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith(f"sluice dashboard: {self.url}/"), (line, open(self.log.name).read())
        return self

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def chromium():
    pw = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _waiting(page, queue: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in page.eval_on_selector_all(
        f'[data-testid=waiting] tbody tr[data-queue="{queue}"]',
        "rows => rows.map(r => [r.querySelector('.rank').textContent, r.dataset.name])")]


def _until(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not {what} within {timeout}s: {value!r}")


@pytest.mark.cluster
def test_waiting_queue_shows_exact_ranks_live(cluster, namespace, sluice, start_operator, chromium):
    start_operator(running_capacity=5, events="all")  # the detail page's Events table is checked below
    sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20, "paused": True})
    plan = [("tx-a", "low"), ("tx-b", "normal"), ("tx-c", "critical"), ("tx-d", "high"), ("tx-e", "normal")]
    for name, priority in plan:
        sluice.create(name, {"queue": "q", "priority": priority, "runner": kwok_runner("1s")})
        time.sleep(1.05)  # distinct creationTimestamps: FIFO within a class is observable
    for name, _ in plan:
        sluice.wait_phase(name, "Queued")
    expected = [("1", "tx-c"), ("2", "tx-d"), ("3", "tx-b"), ("4", "tx-e"), ("5", "tx-a")]
    blocks = queue_blocks(sluice.list(), [sluice.get_queue("q")], datetime.now(timezone.utc))
    assert [n for b in blocks if b.queue == "q" for n in b.order] == [n for _, n in expected]

    dash = Dashboard(cluster.kubeconfig, namespace).start()
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.goto(dash.url + "/")
        page.evaluate("window.__loaded = 1")
        _until(lambda: _waiting(page, "q") == expected, 10, "in admission order")
        card = page.locator('[data-testid=queue][data-queue="q"]')
        assert card.locator("[data-testid=paused]").inner_text() == "paused"
        assert "0/1" in card.locator("[data-testid=running-bar]").inner_text()
        assert "5/20" in card.locator("[data-testid=queued-bar]").inner_text()

        t0 = time.monotonic()
        sluice.create("tx-z", {"queue": "q", "priority": "critical", "runner": kwok_runner("1s")})
        _until(lambda: ("2", "tx-z") in _waiting(page, "q"), 10, "tx-z shown second")
        appeared = time.monotonic() - t0
        assert appeared < 2.0, appeared  # pushed, not reloaded: the page kept its state
        assert page.evaluate("window.__loaded") == 1
        assert [n for _, n in _waiting(page, "q")] == ["tx-c", "tx-z", "tx-d", "tx-b", "tx-e", "tx-a"]

        sluice.patch_queue("q", {"paused": False})  # admission order is what the page said
        _until(lambda: page.locator('[data-testid=finished] tr[data-name="tx-c"]').count() == 1, 30, "tx-c finished")
        detail = chromium.new_page()
        detail.goto(f"{dash.url}/x/{namespace}/tx-c")
        _until(lambda: detail.locator("[data-testid=events] tbody tr").count() >= 2, 15, "events listed")
        reasons = detail.eval_on_selector_all("[data-testid=events] tbody tr", "rs => rs.map(r => r.dataset.reason)")
        assert reasons, reasons
        assert detail.locator("[data-testid=attempts] tbody tr").count() == 1

        busy = subprocess.run(Dashboard(cluster.kubeconfig, namespace, port=dash.port).cmd, env=dash.env,
                              capture_output=True, text=True, timeout=30)
        assert busy.returncode == 2, busy
        assert busy.stderr.strip().splitlines() == [
            f"sluice dashboard: port {dash.port} on 127.0.0.1 is in use: pass --port"], busy.stderr
    finally:
        dash.stop()


@pytest.mark.cluster
@pytest.mark.e2e
def test_progress_moves_and_report_opens_through_the_dashboard(cluster, sluice, start_operator, e2e_queue,
                                                               namespace, redis_server, s3_server, chromium):
    _runner_secret(sluice, namespace, redis_server)
    _operator(start_operator, redis_server, namespace)
    aws = {k: v for k, v in s3_server.env().items() if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    dash = Dashboard(cluster.kubeconfig, namespace, env=aws).start()  # endpoint: from the queue's defaults
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.goto(dash.url + "/")
        page.evaluate("window.__loaded = 1")
        sluice.create("slow", {"framework": "playwright-python", "timeoutSeconds": 240, "retries": {"limit": 0},
                               "source": {"inline": {"files": SLOW_SUITE}}})
        bar = page.locator('[data-testid=running] tr[data-name="slow"] progress')
        bar.wait_for(timeout=120_000)
        seen: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and page.locator('[data-testid=finished] tr[data-name="slow"]').count() == 0:
            # One read of both attributes: the row may move to "finished" between two locator calls.
            got = page.evaluate("""() => { const b = document.querySelector('[data-testid=running] tr[data-name="slow"] progress');
                                          return b ? [b.dataset.total, b.dataset.done] : null; }""")
            if got and int(got[0] or 0):
                seen.append(int(got[1]))
                assert int(got[0]) == N_TESTS
            time.sleep(0.2)
        assert page.evaluate("window.__loaded") == 1  # no reload happened
        moved = sorted(set(seen))
        assert len(moved) >= 3 and seen == sorted(seen), seen  # it moved, only forward, in the same page

        row = page.locator('[data-testid=finished] tr[data-name="slow"]')
        try:
            row.wait_for(timeout=60_000)
        except Exception:
            raise AssertionError((sluice.get("slow").get("status"), open(dash.log.name).read()[-3000:],
                                  page.inner_text("body")[-2000:]))
        assert "Succeeded" in row.inner_text() and str(N_TESTS) in row.inner_text()
        href = row.locator('a[data-label="report"]').get_attribute("href")
        assert href.startswith("/artifacts/" + s3_server.bucket + "/"), href
        with page.context.expect_page() as popup:
            row.locator('a[data-label="report"]').click()
        report = popup.value
        resp = report.goto(dash.url + href)
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/html"), resp.headers
        assert "test_step[0]" in report.content() and f"test_step[{N_TESTS - 1}]" in report.content()
        junit = page.request.get(dash.url + row.locator('a[data-label="junit"]').get_attribute("href"))
        assert junit.status == 200 and b"test_step" in junit.body()
        assert page.request.get(dash.url + "/artifacts/nosuchbucket/x").status == 404

        detail = chromium.new_page()
        detail.goto(f"{dash.url}/x/{namespace}/slow")  # a pass posts no Event (SLUICE_EVENTS=notable)
        _until(lambda: "Succeeded" in detail.locator("[data-testid=detail]").inner_text(), 15, "detail shown")
    finally:
        dash.stop()


def test_artifact_links_go_through_the_dashboard_and_types_are_right():
    from sluice.dashboard.artifacts import content_type
    from sluice.dashboard.model import links
    st = {"artifacts": {"url": "s3://b/e2e/ns/x/attempt-1/", "report": "report/index.html", "junit": "junit.xml",
                        "traces": ["traces/t a.zip"], "videos": ["s3://b/v.webm"]}}
    got = [(l["label"], l["href"]) for l in links(st)]
    assert got == [("report", "/artifacts/b/e2e/ns/x/attempt-1/report/index.html"),
                   ("junit", "/artifacts/b/e2e/ns/x/attempt-1/junit.xml"),
                   ("trace", "/artifacts/b/e2e/ns/x/attempt-1/traces/t%20a.zip"),
                   ("open trace", "/trace/index.html?trace=%2Fartifacts%2Fb%2Fe2e%2Fns%2Fx%2Fattempt-1%2Ftraces%2Ft%2520a.zip"),
                   ("video", "/artifacts/b/v.webm")]
    assert content_type("r/index.html", "binary/octet-stream") == "text/html; charset=utf-8"
    assert content_type("v.webm", None) == "video/webm"
    assert content_type("x.png", "image/png") == "image/png"
