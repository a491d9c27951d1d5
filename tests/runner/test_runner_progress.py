"""The live channel end to end: the real runner, real Chromium, a real redis-server with ACL users.

A reader (the `reader` ACL user, as the operator and the CLI) follows the stream while the runner
runs, so these tests see what arrives live and when, not only what is there at the end. Also:
the runner's credential can only append; Redis killed mid-run changes nothing in the final result
and publishing resumes after a restart; no SLUICE_REDIS_URL or an unreachable Redis is harmless.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sluice_runner import progress

from tests.harness.redis import RedisServer, free_port
from tests.runner.conftest import RunnerRun, run_runner, write_suite

pytestmark = pytest.mark.runner

SLEEP = 0.3
# Ten tests in real Chromium: 7 pass, 2 fail, 1 skipped; each prints and sleeps a little.
SUITE = {
    "test_live.py": '''
import os, time
import pytest

SLEEP = float(os.environ.get("LIVE_SLEEP", "0.3"))

def visit(page):
    page.goto("/index.html")
    time.sleep(SLEEP)

@pytest.mark.parametrize("n", range(1, 7))
def test_page(page, n):
    visit(page)
    print(f"visited {n}", flush=True)
    assert page.title() == "Sluice"

def test_wrong_title(page):
    visit(page)
    assert page.title() == "Shop", "title differs"

def test_click(page):
    visit(page)
    page.click("button")
    assert page.inner_text("h1") == "Clicked"

@pytest.mark.skip(reason="not today")
def test_later(page):
    pass

def test_no_redis_secret_in_the_test_environment(page):
    visit(page)
    assert "SLUICE_REDIS_PASSWORD" not in os.environ and "SLUICE_REDIS_URL" not in os.environ
    assert False, "the last test fails on purpose"
''',
}
TITLES = [f"test_live.py::test_page[chromium-{n}]" for n in range(1, 7)] + [
    "test_live.py::test_wrong_title[chromium]",
    "test_live.py::test_click[chromium]",
    "test_live.py::test_later[chromium]",
    "test_live.py::test_no_redis_secret_in_the_test_environment[chromium]",
]
OUTCOMES = ["passed"] * 6 + ["failed", "passed", "skipped", "failed"]


class StreamWatcher:
    """Follows one stream as the `reader` user, surviving Redis restarts; records arrival times."""

    def __init__(self, server: RedisServer, key: str) -> None:
        self.server, self.key = server, key
        self.events: list[tuple[float, str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StreamWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last = "0-0"
        client: Any = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self.server.client("reader", socket_timeout=2, socket_connect_timeout=1)
                reply = client.xread({self.key: last}, block=100, count=500) or []
                for _, entries in reply:
                    for entry_id, fields in entries:
                        self.events.append((time.monotonic(), entry_id, fields))
                        last = entry_id
            except redis.RedisError:
                client = None
                last = "0-0"  # a restarted Redis starts empty: read the new stream from its start
                time.sleep(0.1)

    def of(self, kind: str) -> list[dict[str, str]]:
        return [f for _, _, f in self.events if f["type"] == kind]

    def wait_for(self, kind: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} {kind} events not seen in {timeout}s: {self.events}")
            time.sleep(0.02)


def _env(suite: Path, web_server: str, execution: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "SLUICE_SOURCE_KIND": "inline",
        "SLUICE_SOURCE_DIR": str(suite),
        "BASE_URL": web_server,
        "SLUICE_EXECUTION": execution,
        **extra,
    }


def _overhead(tmp: Path) -> dict[str, Any]:
    """The pytest plugin's own measurement of its cost per event on the test's thread."""
    lines = (tmp / "work" / "out" / "progress-events.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def _check_final(run: RunnerRun, end: dict[str, str]) -> None:
    msg = run.message
    assert (msg["outcome"], msg["total"], msg["passed"], msg["failed"], msg["skipped"]) == ("failed", 10, 7, 2, 1)
    assert end == {
        "type": "end", "outcome": msg["outcome"], "total": str(msg["total"]), "passed": str(msg["passed"]),
        "failed": str(msg["failed"]), "skipped": str(msg["skipped"]), "flaky": str(msg["flaky"]),
    }  # fmt: skip


def test_python_suite_publishes_live(tmp_path: Path, web_server: str, redis_server: RedisServer) -> None:
    suite = write_suite(tmp_path / "suite", SUITE)
    key = "sluice:progress:team-a:live-python:1"
    with StreamWatcher(redis_server, key) as watch:
        run = run_runner(tmp_path / "run", _env(suite, web_server, "team-a/live-python", redis_server.runner_env()))
        watch.wait_for("end", 1, 10)
    assert run.returncode == 1, run.output
    kinds = [f["type"] for _, _, f in watch.events if f["type"] != "console"]
    assert kinds == ["start"] + ["test"] * 10 + ["end"]
    assert watch.of("start") == [{"type": "start", "total": "10"}]
    tests = watch.of("test")
    assert [t["title"] for t in tests] == TITLES
    assert [t["outcome"] for t in tests] == OUTCOMES
    assert tests[6]["error"] == "AssertionError: title differs"
    assert tests[9]["error"] == "AssertionError: the last test fails on purpose"  # and no secret in its env
    assert all(t["error"] == "" for t in tests if t["outcome"] != "failed")
    assert all(float(t["duration"]) >= SLEEP for t in tests if t["outcome"] != "skipped")
    _check_final(run, watch.of("end")[0])

    console = [f["line"] for f in watch.of("console")]
    assert "collected 10 items" in console
    assert any("2 failed, 7 passed, 1 skipped" in line for line in console), console
    
    # Live: test events arrive while the suite runs, not all at the end.
    arrivals = {f.get("title", f["type"]): at for at, _, f in watch.events if f["type"] in ("test", "end")}
    assert arrivals["end"] - arrivals[TITLES[0]] > 8 * SLEEP, watch.events
    ttl = redis_server.client("reader").ttl(key)
    assert 86000 < ttl <= 86400
    # The password is nowhere in what the runner printed; the log names only host:port.
    assert redis_server.runner_password not in run.output
    assert "live progress: publishing to sluice:progress:team-a:live-python:1 on 127.0.0.1:" in run.output
    stats = _overhead(tmp_path / "run")
    median = statistics.median(stats["samplesMs"])
    print(f"\npytest plugin cost per progress event on the test's thread: median {median} ms, "
          f"mean {stats['meanMs']} ms, max {stats['maxMs']} ms over {stats['events']} events")  # fmt: skip
    # Wall time: on a busy machine one sample may include being descheduled; the median may not.
    assert stats["events"] == 11 and median < 1.0


def test_sharded_stream_key(tmp_path: Path, web_server: str, redis_server: RedisServer) -> None:
    suite = write_suite(tmp_path / "suite", SUITE)
    env = {**redis_server.runner_env(), "SLUICE_ATTEMPT": "2", "SLUICE_SHARD_TOTAL": "2", "SLUICE_SHARD_INDEX": "1",
           "LIVE_SLEEP": "0"}  # fmt: skip
    run = run_runner(tmp_path / "run", _env(suite, web_server, "team-a/live-sharded", env))
    reader = redis_server.client("reader")
    entries = [f for _, f in reader.xrange("sluice:progress:team-a:live-sharded:2:1")]
    assert entries and not reader.exists("sluice:progress:team-a:live-sharded:2")
    assert entries[0] == {"type": "start", "total": "5"} or any(e == {"type": "start", "total": "5"} for e in entries)
    end = [e for e in entries if e["type"] == "end"]
    assert len([e for e in entries if e["type"] == "test"]) == 5 == run.message["total"]
    assert end and end[0]["total"] == "5"


def test_runner_credential_only_appends(redis_server: RedisServer) -> None:
    runner = redis_server.client("runner")
    key = "sluice:progress:team-a:acl:1"
    assert runner.xadd(key, {"type": "start", "total": "1"}) and runner.expire(key, 60)
    denied = [
        lambda: runner.xread({key: "0-0"}),
        lambda: runner.xrange(key),
        lambda: runner.xrevrange(key),
        lambda: runner.xlen(key),
        lambda: runner.xadd("sluice:other", {"a": "b"}),
        lambda: runner.xadd("team-a:progress", {"a": "b"}),
        lambda: runner.expire("sluice:other", 60),
        lambda: runner.set(key + ":x", "1"),
        lambda: runner.delete(key),
        lambda: runner.xtrim(key, maxlen=0),
        lambda: runner.keys("*"),
        lambda: runner.scan(0),
        lambda: runner.flushall(),
        lambda: runner.acl_whoami(),
    ]
    for attempt in denied:
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            attempt()
    reader = redis_server.client("reader")
    assert reader.ping() and reader.xrange(key)[0][1] == {"type": "start", "total": "1"}
    assert reader.xlen(key) == 1 and reader.type(key) == "stream"
    for attempt in [lambda: reader.xadd(key, {"a": "b"}), lambda: reader.delete(key), lambda: reader.get("x")]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    with pytest.raises(redis.RedisError):  # the default user is off: no anonymous access at all
        redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=2).xrange(key)


def test_redis_killed_mid_run(tmp_path: Path, web_server: str, fresh_redis: RedisServer) -> None:
    suite = write_suite(tmp_path / "suite", SUITE)
    key = "sluice:progress:team-a:live-outage:1"
    env = {**fresh_redis.runner_env(), "LIVE_SLEEP": "0.8"}
    result: list[RunnerRun] = []
    runner = threading.Thread(
        target=lambda: result.append(run_runner(tmp_path / "run", _env(suite, web_server, "team-a/live-outage", env)))
    )
    with StreamWatcher(fresh_redis, key) as watch:
        runner.start()
        watch.wait_for("test", 2, 120)
        before = len(watch.of("test"))
        fresh_redis.kill()
        killed_at = time.monotonic()
        time.sleep(3.5)  # longer than a test: at least one event meets the outage
        fresh_redis.start()  # same port, empty: no persistence
        restarted_at = time.monotonic()
        runner.join(180)
        watch.wait_for("end", 1, 10)
    assert result, "the runner did not finish"
    run = result[0]
    assert run.returncode == 1, run.output
    _check_final(run, watch.of("end")[0])  # exact, whatever Redis did
    assert run.output.count("live progress: Redis at") == 1, run.output  # one line per outage
    assert "unavailable" in run.output and fresh_redis.runner_password not in run.output

    after = [f for at, _, f in watch.events if at > restarted_at]
    after_tests = [f["title"] for f in after if f["type"] == "test"]
    assert after_tests and after_tests[-1] == TITLES[-1], watch.events  # publishing resumed
    stream = [f for _, f in fresh_redis.client("reader").xrange(key)]
    assert stream[-1]["type"] == "end" and any(f["type"] == "console" for f in stream)
    lost = [t for t in TITLES if t not in {f["title"] for f in watch.of("test")}]
    print(f"\nRedis killed after {before} test events for {restarted_at - killed_at:.1f}s; "
          f"{len(after_tests)} test events after the restart; not seen live: {len(lost)} tests")  # fmt: skip


@pytest.mark.parametrize("redis_env", ["unset", "unreachable"])
def test_without_redis_the_run_is_unchanged(tmp_path: Path, web_server: str, redis_env: str) -> None:
    suite = write_suite(tmp_path / "suite", SUITE)
    env: dict[str, str] = {"LIVE_SLEEP": "0"}
    if redis_env == "unreachable":
        env |= {"SLUICE_REDIS_URL": f"redis://runner@127.0.0.1:{free_port()}/0", "SLUICE_REDIS_PASSWORD": "pw-xyz"}
    t0 = time.monotonic()
    run = run_runner(tmp_path / "run", _env(suite, web_server, "team-a/live-none", env))
    elapsed = time.monotonic() - t0
    assert run.returncode == 1, run.output
    msg = run.message
    assert (msg["outcome"], msg["total"], msg["passed"], msg["failed"], msg["skipped"]) == ("failed", 10, 7, 2, 1)
    assert "Traceback" not in run.output
    if redis_env == "unset":
        assert run.output.count("live progress: off (SLUICE_REDIS_URL is not set)") == 1
        assert not (tmp_path / "run" / "work" / "out" / "progress-events.jsonl").exists()
    else:
        assert run.output.count("live progress: Redis at 127.0.0.1:") == 1, run.output
        assert "pw-xyz" not in run.output
    print(f"\nrun without a reachable Redis ({redis_env}): {elapsed:.1f}s")


NODE_CONFIG = """
import { defineConfig } from '@playwright/test';
export default defineConfig({ testDir: './tests', retries: 1, projects: [{ name: 'chromium' }] });
"""
NODE_SPEC = """
import { test, expect } from '@playwright/test';
test('title', async ({ page }) => {
  await page.goto('/index.html');
  await expect(page).toHaveTitle('Sluice');
});
test.describe('checkout', () => {
  test('wrong heading', async ({ page }) => {
    await page.goto('/index.html');
    await expect(page.locator('h1')).toHaveText('Something else', { timeout: 300 });
  });
});
test('flaky', async ({}, info) => { expect(info.retry, 'fails on the first try').toBe(1); });
test('skipped', async () => { test.skip(true, 'not today'); });
"""


def test_node_suite_publishes_live(tmp_path: Path, web_server: str, redis_server: RedisServer) -> None:
    suite = write_suite(tmp_path / "suite", {"playwright.config.ts": NODE_CONFIG, "tests/home.spec.ts": NODE_SPEC})
    key = "sluice:progress:team-b:live-node:1"
    env = {"SLUICE_FRAMEWORK": "playwright-node", **redis_server.runner_env()}
    with StreamWatcher(redis_server, key) as watch:
        run = run_runner(tmp_path / "run", _env(suite, web_server, "team-b/live-node", env))
        watch.wait_for("end", 1, 10)
    assert run.returncode == 1, run.output
    kinds = [f["type"] for _, _, f in watch.events if f["type"] != "console"]
    assert kinds == ["start"] + ["test"] * 4 + ["end"]
    assert watch.of("start") == [{"type": "start", "total": "4"}]
    tests = {t["title"]: t for t in watch.of("test")}
    assert {k: v["outcome"] for k, v in tests.items()} == {
        "home.spec.ts › title [chromium]": "passed",
        "home.spec.ts › checkout › wrong heading [chromium]": "failed",
        "home.spec.ts › flaky [chromium]": "flaky",
        "home.spec.ts › skipped [chromium]": "skipped",
    }
    assert tests["home.spec.ts › checkout › wrong heading [chromium]"]["error"].startswith("Error: expect(locator)")
    assert "\n" not in tests["home.spec.ts › flaky [chromium]"]["error"]
    msg = run.message
    assert watch.of("end")[0] == progress.end_event(msg["outcome"], _Counts(msg))
    assert any(f["line"].strip() for f in watch.of("console"))  # the list reporter's lines
    assert redis_server.runner_password not in run.output


class _Counts:
    def __init__(self, msg: dict[str, Any]) -> None:
        self.__dict__.update({k: msg[k] for k in ("passed", "failed", "skipped", "flaky", "total")})


def test_publisher_overhead_per_event(redis_server: RedisServer) -> None:
    """The cost of `publish` on the caller's thread while the sender thread talks to Redis."""
    key = "sluice:progress:team-a:overhead:1"
    redis_server.client("admin").acl_log_reset()
    publisher = progress.RedisPublisher(
        progress.make_client(redis_server.url("runner"), redis_server.runner_password), key, "local"
    )
    samples = []
    for i in range(3000):
        event = progress.test_event(f"test_{i}", "passed", 0.01)
        t0 = time.perf_counter()
        publisher.publish(event)
        samples.append(time.perf_counter() - t0)
        if i % 10 == 0:
            time.sleep(0.001)  # tests take time; a suite never emits thousands of events at once
    publisher.close()
    samples.sort()
    mean, p99, worst = statistics.mean(samples), samples[int(len(samples) * 0.99)], samples[-1]
    print(f"\npublish() on the caller's thread: mean {mean * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us, "
          f"max {worst * 1e3:.2f} ms; sent {publisher.sent}, dropped {publisher.dropped}")  # fmt: skip
    assert publisher.sent == 3000 and publisher.dropped == 0
    assert mean < 0.001 and p99 < 0.001
    assert redis_server.client("reader").xlen(key) <= 3000
    refused = [e for e in redis_server.client("admin").acl_log() if e["username"] == "runner"]
    assert refused == []  # the runner's client tried nothing its ACL user may not do
