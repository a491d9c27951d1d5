"""End to end: TestExecution -> operator -> runner Job on the process node -> real runner with
Debian's Chromium -> real MinIO -> termination message -> status.results and status.artifacts.

Nothing is simulated here but the node: the pod's command (`python -m sluice_runner`) really runs
as a local process with the env, ConfigMap mount and Secret-sourced credentials of the Job the
operator rendered.
"""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.harness.sluice_api import PROCESS_NODE_PLACEMENT

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

PASSING = {
    "test_shop.py": (
        "def test_heading(page):\n"
        "    page.set_content('<title>Shop</title><h1>Welcome</h1>')\n"
        "    assert page.title() == 'Shop'\n"
        "\n"
        "def test_button(page):\n"
        "    page.set_content(\"<button onclick=\\\"this.textContent='Done'\\\">Buy</button>\")\n"
        "    page.get_by_role('button').click()\n"
        "    assert page.get_by_role('button').inner_text() == 'Done'\n"
    ),
}
FAILING = {
    "test_cart.py": (
        "def test_ok(page):\n"
        "    page.set_content('<p>ok</p>')\n"
        "\n"
        "def test_total(page):\n"
        "    page.set_content('<p id=total>41</p>')\n"
        "    assert page.locator('#total').inner_text() == '42'\n"
    ),
}
NODE_PASSING = {
    "smoke.spec.ts": (
        "import { test, expect } from '@playwright/test';\n"
        "test('title', async ({ page }) => {\n"
        "  await page.setContent('<title>Shop</title>');\n"
        "  await expect(page).toHaveTitle('Shop');\n"
        "});\n"
    ),
}


@pytest.fixture
def e2e_queue(sluice, s3_server, namespace):
    """Queue `default` of this namespace: runners on the process node, artifacts to the MinIO."""
    sluice.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "artifacts"},
        "stringData": {"AWS_ACCESS_KEY_ID": s3_server.access_key,
                       "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}})
    sluice.create_queue("default", {"runningCapacity": 2, "defaults": {
        "runner": dict(PROCESS_NODE_PLACEMENT),
        "artifacts": {"s3": {"bucket": s3_server.bucket, "endpoint": s3_server.endpoint,
                             "region": s3_server.region, "prefix": "e2e",
                             "secretRef": {"name": "artifacts"}}}}})
    return "default"


def _object_exists(s3_server, url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
    else:  # http(s)://endpoint/bucket/key
        bucket, _, key = parsed.path.lstrip("/").partition("/")
    s3_server.client().head_object(Bucket=bucket, Key=key)
    return True


def test_passing_and_failing_suites_end_with_results_and_artifacts(
        sluice, start_operator, e2e_queue, s3_server):
    start_operator()
    sluice.create("passing", {"framework": "playwright-python", "timeoutSeconds": 180,
                              "retries": {"limit": 0}, "source": {"inline": {"files": PASSING}}})
    sluice.create("failing", {"framework": "playwright-python", "timeoutSeconds": 180,
                              "retries": {"limit": 0}, "source": {"inline": {"files": FAILING}}})

    ok = sluice.wait_phase("passing", "Succeeded", "Failed", "TimedOut", timeout=240)["status"]
    assert ok["phase"] == "Succeeded", ok
    assert ok["results"]["passed"] == 2 and ok["results"]["failed"] == 0, ok["results"]
    artifacts = ok["artifacts"]
    assert artifacts["url"].startswith("s3://") and "/e2e/" in artifacts["url"], artifacts
    assert _object_exists(s3_server, artifacts["report"])
    assert _object_exists(s3_server, artifacts["junit"])

    bad = sluice.wait_phase("failing", "Succeeded", "Failed", "TimedOut", timeout=240)["status"]
    assert bad["phase"] == "Failed" and bad["reason"] == "TestsFailed", bad
    assert bad["results"]["passed"] == 1 and bad["results"]["failed"] == 1, bad["results"]
    assert bad["attempt"] == 1
    screenshots = bad["artifacts"].get("screenshots") or []
    assert screenshots, bad["artifacts"]
    assert all(_object_exists(s3_server, url) for url in screenshots)
    assert any("total" in url for url in screenshots), screenshots  # the failing test's screenshot
    [failure] = bad["results"]["failures"]  # kubectl describe says which test failed, and why
    assert "test_total" in failure["test"] and "AssertionError" in failure["error"], failure
    assert _object_exists(s3_server, bad["artifacts"]["console"])  # the console outlives the Job
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=urlparse(bad["artifacts"]["console"]).path.lstrip("/"))
    assert b"test_total" in body["Body"].read()


def test_node_suite_runs_end_to_end(sluice, start_operator, e2e_queue, s3_server):
    start_operator()
    sluice.create("node", {"framework": "playwright-node", "timeoutSeconds": 180, "retries": {"limit": 0},
                           "source": {"inline": {"files": NODE_PASSING}}})
    st = sluice.wait_phase("node", "Succeeded", "Failed", "TimedOut", timeout=240)["status"]
    assert st["phase"] == "Succeeded", st
    assert st["results"]["passed"] == 1, st["results"]
    assert _object_exists(s3_server, st["artifacts"]["report"])
