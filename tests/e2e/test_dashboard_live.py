"""The dashboard's live channel and artifacts for a real run (real runner on the process node,
real redis-server and MinIO), in Chromium:

- a failing test shows on the running row while the rest of the suite still runs (from the Redis
  stream, not the final status), and the execution's page follows the console line by line;
- after it ends, "open trace" opens the failing test's trace in Playwright's trace viewer served
  by the dashboard, which lists the trace's actions; the video plays (it reports a duration).
"""
from __future__ import annotations

import time

import pytest

from tests.e2e.test_dashboard import Dashboard, SHOTS, _until, chromium  # noqa: F401 - the fixture
from tests.e2e.test_end_to_end import e2e_queue  # noqa: F401 - the fixture
from tests.e2e.test_live_progress import _operator, _runner_secret

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

STEPS = 12
SUITE = {"test_live.py": (
    "import time, pytest\n"
    "def test_total(page):\n"
    "    page.set_content('<p id=total>41</p>')\n"
    "    page.click('#total')\n"
    "    assert page.locator('#total').inner_text() == '42'\n"
    f"@pytest.mark.parametrize('i', range({STEPS}))\n"
    "def test_step(i):\n"
    "    print(f'step {i} says hello', flush=True)\n"
    "    time.sleep(1.0)\n"
)}


def test_failures_arrive_console_follows_trace_opens(cluster, sluice, start_operator, e2e_queue, namespace,
                                                       redis_server, s3_server, chromium):
    _runner_secret(sluice, namespace, redis_server)
    _operator(start_operator, redis_server, namespace)
    env = {k: v for k, v in s3_server.env().items() if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(SLUICE_REDIS_URL=redis_server.url("reader"), SLUICE_REDIS_PASSWORD=redis_server.reader_password)
    dash = Dashboard(cluster.kubeconfig, namespace, env=env).start()
    try:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.goto(dash.url + "/")
        sluice.create("live", {"framework": "playwright-python", "timeoutSeconds": 240, "retries": {"limit": 0},
                               "args": ["-s"], "source": {"inline": {"files": SUITE}}})
        running = page.locator('[data-testid=running] tr[data-name="live"]')
        running.wait_for(timeout=120_000)
        detail = chromium.new_page(viewport={"width": 1280, "height": 800})
        detail.goto(f"{dash.url}/x/{namespace}/live")

        failure = running.locator("[data-testid=failures] li")
        failure.first.wait_for(timeout=60_000)
        assert "test_total" in failure.first.inner_text(), failure.first.inner_text()
        assert sluice.get("live")["status"]["phase"] == "Running"  # arrived while it ran, not from the end
        assert "1 failed" in running.inner_text(), running.inner_text()

        console = detail.locator("[data-testid=console]")
        _until(lambda: "step 1 says hello" in console.inner_text(), 30, "console lines")
        first = console.inner_text().count("says hello")
        _until(lambda: console.inner_text().count("says hello") > first, 10, "console grows without reload")
        assert "test_total" in detail.locator("#live-failures").inner_text()
        SHOTS.mkdir(exist_ok=True)
        detail.screenshot(path=str(SHOTS / "execution-live-console.png"), full_page=True)
        page.screenshot(path=str(SHOTS / "overview-running.png"), full_page=True)

        row = page.locator('[data-testid=finished] tr[data-name="live"]')
        row.wait_for(timeout=90_000)
        assert "Failed" in row.inner_text()
        trace = row.locator('a[data-label="open trace"]').first
        href = trace.get_attribute("href")
        assert href.startswith("/trace/index.html?trace=%2Fartifacts%2F"), href
        viewer = chromium.new_page(viewport={"width": 1280, "height": 800})
        viewer.goto(dash.url + href)
        actions = viewer.locator(".action-title")
        _until(lambda: actions.count() >= 2, 30, "trace actions listed")
        titles = " ".join(actions.all_inner_texts())
        assert "Set content" in titles or "set_content" in titles.lower().replace(" ", "_"), titles
        assert "Click" in titles or "click" in titles, titles
        viewer.screenshot(path=str(SHOTS / "trace-viewer.png"))

        video = row.locator('a[data-label="video"]').first.get_attribute("href")
        player = chromium.new_page()
        player.set_content(f'<video id=v src="{dash.url}{video}" muted preload=metadata></video>')
        duration = _until(lambda: player.evaluate("() => { const d = document.getElementById('v').duration;"
                                                  " return isFinite(d) && d > 0 ? d : 0; }"), 20, "video duration")
        assert duration > 0
    finally:
        dash.stop()


SHARDED = {f"test_part{i}.py": f"def test_part{i}_a():\n    assert True\n\ndef test_part{i}_b():\n    assert True\n"
           for i in range(4)}


def test_a_sharded_run_has_one_page_listing_every_shards_report(cluster, sluice, start_operator, e2e_queue,
                                                                  namespace, s3_server, chromium):
    start_operator()
    aws = {k: v for k, v in s3_server.env().items() if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    dash = Dashboard(cluster.kubeconfig, namespace, env=aws).start()
    try:
        sluice.create("wide", {"framework": "playwright-python", "shards": 2, "timeoutSeconds": 180,
                               "retries": {"limit": 0}, "source": {"inline": {"files": SHARDED}}})
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.goto(dash.url + "/")
        row = page.locator('[data-testid=finished] tr[data-name="wide"]')
        row.wait_for(timeout=150_000)
        assert "Succeeded" in row.inner_text(), row.inner_text()
        assert row.locator('a[data-label="reports"]').get_attribute("href") == f"/x/{namespace}/wide#shards"
        page.goto(f"{dash.url}/x/{namespace}/wide#shards")
        shards = page.locator("[data-testid=shards] tbody tr")
        _until(lambda: shards.count() == 2, 15, "both shards listed")
        seen = set()
        for i in range(2):
            href = shards.nth(i).locator('a[data-label="report"]').get_attribute("href")
            assert f"/shard-{i}/report/index.html" in href, href
            report = page.request.get(dash.url + href)
            assert report.status == 200, (href, report.status)
            seen |= {t for t in (f"test_part{j}_a" for j in range(4)) if t in report.text()}
        assert len(seen) == 4, seen  # the two shards' reports together hold every test
        page.screenshot(path=str(SHOTS / "sharded-reports.png"), full_page=True)
    finally:
        dash.stop()
