"""The live channel's pure parts and its degradation without a server (progress.py, pytest_progress.py).

The runner tests (tests/runner/test_runner_progress.py) prove the same against a real redis-server;
here: key and event shapes, what the runner accepts from the events file, that a Redis nobody
answers costs the caller nothing and logs once, and that the pytest plugin's per-test outcome is
the one results.parse_pytest_raw gives the termination message.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest
from sluice_runner import progress
from sluice_runner.config import Settings
from sluice_runner.results import parse_pytest_raw

pytest_plugins = ["pytester"]


def test_stream_key() -> None:
    assert progress.stream_key("team-a/checkout", 3) == "sluice:progress:team-a:checkout:3"
    assert progress.stream_key("team-a/checkout", 1, 0, 1) == "sluice:progress:team-a:checkout:1"
    assert progress.stream_key("team-a/checkout", 2, 4, 6) == "sluice:progress:team-a:checkout:2:4"


def test_event_shapes() -> None:
    assert progress.start_event(10) == {"type": "start", "total": "10"}
    err = "\x1b[31mAssertionError: " + "x" * 300 + "\x1b[0m\nmore"
    event = progress.test_event("a.py::t", "failed", 1.23456, err)
    assert event["type"] == "test" and event["duration"] == "1.235" and event["outcome"] == "failed"
    assert event["error"].startswith("AssertionError: x") and len(event["error"]) == 200
    assert progress.test_event("a.py::t", "passed", 0.1)["error"] == ""
    assert progress.console_event("hello\r\n") == {"type": "console", "line": "hello"}
    assert len(progress.console_event("y" * 10_000)["line"]) == progress.LINE_CHARS
    assert progress.end_event("error", None) == {
        "type": "end", "outcome": "error", "passed": "0", "failed": "0", "skipped": "0", "flaky": "0", "total": "0",
    }  # fmt: skip
    assert all(isinstance(v, str) for v in progress.test_event("t", "flaky", 2, "e").values())


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"type":"start","total":4}', {"type": "start", "total": "4"}),
        ('{"type":"test","title":"t","outcome":"flaky","duration":0.5,"error":"E: x\\ny"}',
         {"type": "test", "title": "t", "outcome": "flaky", "duration": "0.500", "error": "E: x"}),
        ('{"type":"end","outcome":"passed"}', None),  # the end event is the runner's own
        ('{"type":"console","line":"x"}', None),
        ('{"type":"test","title":"t","outcome":"weird"}', None),
        ('{"type":"start","total":-1}', None),
        ('{"type":"_stats","events":3}', None),
        ("not json", None),
        ("[1,2]", None),
    ],
)  # fmt: skip
def test_child_event_accepts_only_start_and_test(line: str, expected: dict[str, str] | None) -> None:
    assert progress.child_event(line) == expected


def _settings(**env: str) -> Settings:
    return Settings(SLUICE_SOURCE_DIR="/tmp", SLUICE_EXECUTION="team-a/x", **env)  # type: ignore[arg-type]


def test_no_url_is_a_noop_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sluice_runner")
    live = progress.open_live(_settings())
    assert not live.enabled
    live.console("x")
    live.end("passed", None)
    live.close()
    assert [r.getMessage() for r in caplog.records] == ["live progress: off (SLUICE_REDIS_URL is not set)"]


def test_bad_url_turns_progress_off(caplog: pytest.LogCaptureFixture) -> None:
    live = progress.open_live(_settings(SLUICE_REDIS_URL="http://user:hunter2@example/"))
    assert not live.enabled
    assert "hunter2" not in caplog.text and "must be redis:// or rediss://" in caplog.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_costs_nothing_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "sluice_runner")
    url = f"redis://runner:s3cret-in-url@127.0.0.1:{_closed_port()}/0"
    publisher = progress.open_publisher(_settings(SLUICE_REDIS_URL=url, SLUICE_REDIS_PASSWORD="s3cret"))
    assert isinstance(publisher, progress.RedisPublisher)
    worst = 0.0
    for i in range(20_000):
        t0 = time.perf_counter()
        publisher.publish(progress.test_event(f"t{i}", "passed", 0.1))
        worst = max(worst, time.perf_counter() - t0)
        assert len(publisher._pending) <= progress.QUEUE_LIMIT  # bounded while Redis is away
    t0 = time.perf_counter()
    publisher.close(timeout=5)
    assert time.perf_counter() - t0 < 5
    assert publisher.sent == 0 and publisher.dropped == 20_000 and publisher.outages == 1
    warnings = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "s3cret" not in caplog.text
    print(f"\nworst publish() while Redis is unreachable: {worst * 1000:.3f} ms")


def test_event_writer_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    seen: list[dict[str, str]] = []
    tail = progress.EventTail(path, seen.append).start()
    writer = progress.EventWriter(path)
    writer.write({"type": "start", "total": 2})
    writer.write({"type": "test", "title": "a", "outcome": "passed", "duration": 0.1, "error": ""})
    with path.open("a") as f:
        f.write('{"type":"test","title":"b","outcome":"failed","dur')  # a line being written...
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with path.open("a") as f:
        f.write('ation":0.2,"error":"E"}\n')  # ...completed later
    writer.close()
    tail.stop()
    assert [e.get("title", e["type"]) for e in seen] == ["start", "a", "b"]
    assert seen[2]["outcome"] == "failed"
    stats = json.loads(path.read_text().splitlines()[-1])
    assert stats["type"] == "_stats" and stats["events"] == 2 and stats["meanMs"] < 1


SUITE = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_pass(): pass
def test_fail(): assert 1 == 2, "numbers differ"
def test_setup_error(broken_setup): pass
def test_teardown_error(broken_teardown): pass
@pytest.mark.skip(reason="later")
def test_skip(): pass
@pytest.mark.xfail(reason="known")
def test_xfail(): assert False
@pytest.mark.parametrize("n", [1, 2])
def test_param(n): assert n == 1
"""


def test_plugin_outcomes_match_the_termination_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    events, raw = pytester.path / "events.jsonl", pytester.path / "raw.json"
    pytester.runpytest_subprocess(
        "-p", "sluice_runner.pytest_plugin", "-p", "sluice_runner.pytest_progress",
        f"--sluice-progress={events}", f"--sluice-results={raw}",
    )  # fmt: skip
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0] == {"type": "start", "total": 8}
    tests = [e for e in lines if e["type"] == "test"]
    expected = {t.id: t for t in parse_pytest_raw(json.loads(raw.read_text())).tests}
    assert [e["title"] for e in tests] == list(expected)  # one event per test, in run order
    for event in tests:
        assert event["outcome"] == expected[event["title"]].outcome, event
    by = {e["title"].split("::")[1]: e for e in tests}
    assert by["test_fail"]["error"] == "AssertionError: numbers differ"
    assert by["test_setup_error"]["error"] == "RuntimeError: setup broke"
    assert by["test_teardown_error"]["outcome"] == "failed"
    assert by["test_pass"]["error"] == by["test_skip"]["error"] == ""
    assert lines[-1]["type"] == "_stats" and lines[-1]["events"] == 9
