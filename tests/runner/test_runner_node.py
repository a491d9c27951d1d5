"""The runner on real playwright-node suites (Playwright Test from runner/node or SLUICE_NODE_MODULES)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.s3 import S3Server
from tests.runner.conftest import run_runner, write_suite

pytestmark = pytest.mark.runner

CONFIG = """
import { defineConfig, devices } from '@playwright/test';
export default defineConfig({
  testDir: './tests',
  retries: 0,
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'], channel: 'chrome' } }],
});
"""

SPEC = """
import { test, expect } from '@playwright/test';

test('title', async ({ page }) => {
  await page.goto('/index.html');
  await expect(page).toHaveTitle('Sluice');
});

test('click', async ({ page }) => {
  await page.goto('/index.html');
  await page.click('button');
  await expect(page.locator('h1')).toHaveText('Clicked');
});

test.describe('checkout', () => {
  test('wrong heading', async ({ page }) => {
    await page.goto('/index.html');
    await expect(page.locator('h1')).toHaveText('Something else', { timeout: 500 });
  });
});

test('skipped', async () => {
  test.skip(true, 'not today');
});
"""


def test_node_suite_pass_and_fail(tmp_path: Path, web_server: str, s3_server: S3Server) -> None:
    # channel: 'chrome' in the suite's project must not stop the runner from using its chromium.
    suite = write_suite(tmp_path / "suite", {"playwright.config.ts": CONFIG, "tests/home.spec.ts": SPEC})
    prefix = "runs/team-b/node/attempt-1/"
    run = run_runner(tmp_path / "run", {
        "SLUICE_FRAMEWORK": "playwright-node", "SLUICE_SOURCE_KIND": "inline", "SLUICE_SOURCE_DIR": str(suite),
        "BASE_URL": web_server, "SLUICE_ARTIFACTS_URL": s3_server.url(prefix), **s3_server.env(),
    })  # fmt: skip
    assert run.returncode == 1, run.output
    msg = run.message
    assert (msg["outcome"], msg["errorClass"]) == ("failed", "TestFailure")
    assert (msg["total"], msg["passed"], msg["failed"], msg["skipped"]) == (4, 2, 1, 1)
    assert "checkout › wrong heading" in msg["message"]
    arts = msg["artifacts"]
    assert len(arts["traces"]) == len(arts["videos"]) == len(arts["screenshots"]) == 1
    keys = set(s3_server.keys(prefix))
    for key in [
        arts["report"],
        arts["junit"],
        "results.json",
        *arts["traces"],
        *arts["videos"],
        *arts["screenshots"],
    ]:
        assert prefix + key in keys, key
    assert s3_server.get(prefix + "report/index.html")[1].startswith("text/html")
    assert s3_server.get(prefix + arts["videos"][0])[1] == "video/webm"
    junit = s3_server.get(prefix + "junit.xml")[0].decode()
    assert 'tests="4"' in junit and 'failures="1"' in junit
    results = json.loads(s3_server.get(prefix + "results.json")[0])
    failed = next(t for t in results["tests"] if t["outcome"] == "failed")
    assert "Something else" in failed["error"] and {a["kind"] for a in failed["artifacts"]} == {
        "trace",
        "video",
        "screenshot",
    }


def test_node_suite_passing_and_sharded(tmp_path: Path, web_server: str) -> None:
    spec = "\n".join(
        ["import { test, expect } from '@playwright/test';"]
        + [
            f"test('t{i}', async ({{ page }}) => {{ await page.goto('/index.html'); await expect(page).toHaveTitle('Sluice'); }});"
            for i in range(3)
        ]
    )
    suite = write_suite(
        tmp_path / "suite",
        {"tests/a.spec.mjs": spec, "playwright.config.mjs": "export default { testDir: './tests' };"},
    )
    ids = []
    for index in range(2):
        run = run_runner(tmp_path / f"run{index}", {
            "SLUICE_FRAMEWORK": "playwright-node", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server,
            "SLUICE_SHARD_TOTAL": "2", "SLUICE_SHARD_INDEX": str(index),
        })  # fmt: skip
        assert run.returncode == 0, run.output
        assert run.message["outcome"] == "passed" and run.message["failed"] == 0
        ids += [t["id"] for t in run.results["tests"]]
    assert sorted(ids) == [f"a.spec.mjs › t{i}" for i in range(3)]


def test_node_browser_that_cannot_start_is_browser_crash(tmp_path: Path, web_server: str) -> None:
    suite = write_suite(tmp_path / "suite", {"playwright.config.ts": CONFIG, "tests/home.spec.ts": SPEC})
    run = run_runner(tmp_path / "run", {
        "SLUICE_FRAMEWORK": "playwright-node", "SLUICE_SOURCE_DIR": str(suite), "BASE_URL": web_server,
        "SLUICE_CHROMIUM": "/bin/false", "SLUICE_ARGS": json.dumps(["--grep", "title"]),
    })  # fmt: skip
    assert run.returncode == 3, run.output
    assert (run.message["outcome"], run.message["errorClass"]) == ("error", "BrowserCrash")


def test_node_suite_that_does_not_load_is_invalid(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "suite",
        {"tests/bad.spec.ts": "import { test } from '@playwright/test';\ntest('x', async () => {\n"},
    )
    run = run_runner(
        tmp_path / "run", {"SLUICE_FRAMEWORK": "playwright-node", "SLUICE_SOURCE_DIR": str(suite)}
    )
    assert run.returncode == 2, run.output
    assert run.message["errorClass"] == "InvalidSpec"
