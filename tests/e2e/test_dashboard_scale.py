"""The dashboard under many pages and on a phone, in Chromium against the control plane (kwok):

- 20 pages open at once (one browser context each, as 20 people): the dashboard still makes the
  same watch requests as with one page, its CPU for the same stream of changes stays flat, the
  API server's count of Sluice watches does not grow with pages, and a page makes no request after
  it loaded (no polling: the one EventSource is all); figures are printed (`-s`);
- 390 px wide: no horizontal scroll of the page, the actions are reachable with the keyboard (Tab
  to the button, Enter opens the confirm, Escape closes it), and outcomes carry text, not colour only.
"""
from __future__ import annotations

import os
import time

import pytest

from tests.e2e.test_dashboard import SHOTS, Dashboard, _until, chromium  # noqa: F401 - the fixture
from tests.harness.sluice_api import kwok_runner

PAGES = 20
BURST = 8
CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def _sluice_watches(cluster) -> int:
    """apiserver_longrunning_requests of verb WATCH on sluice.dev resources (the whole cluster)."""
    return int(cluster.apiserver_metric("apiserver_longrunning_requests", group="sluice.dev", verb="WATCH"))


def _burst(sluice, prefix: str) -> None:
    """BURST executions, one every 0.5 s, each finishing after 1 s: a steady stream of changes."""
    for i in range(BURST):
        sluice.create(f"{prefix}-{i}", {"queue": "q", "runner": kwok_runner("1s")})
        time.sleep(0.5)
    for i in range(BURST):
        sluice.wait_phase(f"{prefix}-{i}", "Succeeded", timeout=60)


@pytest.mark.cluster
def test_twenty_pages_cost_one_watch_each_kind_and_flat_cpu(cluster, namespace, sluice, start_operator, chromium):
    start_operator(running_capacity=10)
    sluice.create_queue("q", {"runningCapacity": 4, "queuedCapacity": 50})
    dash = Dashboard(cluster.kubeconfig, namespace).start()
    pid = dash.proc.pid
    try:
        first = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
        first.goto(dash.url + "/")
        _until(lambda: first.locator("[data-testid=live]").inner_text() == "live", 10, "first page live")
        # every kind's watch is up (TestExecutions, TestQueues, TestEnvironments) before counting
        stats0 = _until(lambda: (lambda st: st if st["watchStarts"] >= 3 else None)(
            first.request.get(dash.url + "/api/stats").json()), 15, "three watches")
        watches1 = _sluice_watches(cluster)
        cpu = _cpu_seconds(pid)
        _burst(sluice, "one")
        time.sleep(1)
        cpu_one = _cpu_seconds(pid) - cpu

        pages = [first]
        for _ in range(PAGES - 1):
            p = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
            p.goto(dash.url + "/")
            pages.append(p)
        for p in pages:
            _until(lambda: p.locator("[data-testid=live]").inner_text() == "live", 15, "every page live")
        _until(lambda: first.request.get(dash.url + "/api/stats").json()["pages"] == PAGES, 10, "20 pages connected")
        requests: list[str] = []
        last = pages[-1]
        last.on("request", lambda r: requests.append(r.url))
        watches20 = _sluice_watches(cluster)
        cpu = _cpu_seconds(pid)
        _burst(sluice, "twenty")
        _until(lambda: all(p.locator('[data-testid=finished] tr[data-name="twenty-7"]').count() == 1 for p in pages),
               15, "every page shows the last one finished")
        cpu_twenty = _cpu_seconds(pid) - cpu
        stats1 = first.request.get(dash.url + "/api/stats").json()
        print(f"\ndashboard CPU for {BURST} executions: {cpu_one:.2f}s with 1 page, {cpu_twenty:.2f}s with {PAGES} pages; "
              f"dashboard watch requests {stats0['watchStarts']} -> {stats1['watchStarts']}; snapshots "
              f"{stats0['snapshots']} -> {stats1['snapshots']}; API server sluice.dev WATCH (whole shared cluster) "
              f"{watches1} with 1 page, {watches20} with {PAGES} pages")
        assert stats1["pages"] == PAGES
        assert stats1["watchStarts"] == stats0["watchStarts"]  # no page made the dashboard watch again
        assert requests == [], requests  # no polling: the page's one EventSource was opened before
        assert watches20 - watches1 < PAGES - 1, (watches1, watches20)  # shared cluster: other tests watch too
        assert cpu_twenty < 2 * cpu_one + 1.0, (cpu_one, cpu_twenty)
    finally:
        dash.stop()


@pytest.mark.cluster
def test_phone_layout_keyboard_and_text_signals(cluster, namespace, sluice, start_operator, chromium):
    start_operator(running_capacity=5)
    sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20, "paused": True})
    sluice.create("waits", {"queue": "q", "runner": kwok_runner("1s")})
    sluice.create("passes", {"runner": kwok_runner("1s")})
    sluice.create("fails", {"runner": kwok_runner("1s", exit_code=1), "retries": {"limit": 0}})
    sluice.wait_phase("waits", "Queued")
    sluice.wait_phase("passes", "Succeeded")
    sluice.wait_phase("fails", "Failed", timeout=60)
    dash = Dashboard(cluster.kubeconfig, namespace).start()
    try:
        page = chromium.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(dash.url + "/")
        cancel = page.locator('[data-testid=waiting] tr[data-name="waits"] button[data-action="cancel"]')
        _until(lambda: cancel.count() == 1 and page.locator('[data-testid=finished] tr[data-name="fails"]').count(),
               15, "rows and buttons")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "phone-390.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = cancel.bounding_box()
        assert box and box["x"] + box["width"] <= 390, box  # the action is on screen, not behind a scroll
        # colour is never the only signal: the outcome and the paused state are words
        assert "Failed" in page.locator('[data-testid=finished] tr[data-name="fails"]').inner_text()
        assert "Succeeded" in page.locator('[data-testid=finished] tr[data-name="passes"]').inner_text()
        assert page.locator('[data-testid=queue][data-queue="q"] [data-testid=paused]').inner_text() == "paused"
        # keyboard: Tab reaches the cancel button, Enter opens the confirm, Escape leaves all as it was
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.dataset.action === 'cancel' && "
                             "document.activeElement.closest('tr').dataset.name === 'waits'"):
                break
        else:
            raise AssertionError("the cancel button is not reachable with Tab")
        page.keyboard.press("Enter")
        page.locator("[data-testid=confirm]").wait_for(state="visible", timeout=5000)
        page.keyboard.press("Escape")
        page.locator("[data-testid=confirm]").wait_for(state="hidden", timeout=5000)
        assert not sluice.get("waits")["spec"].get("cancel")
    finally:
        dash.stop()
