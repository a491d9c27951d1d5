"""Parsing both frameworks' results into one shape, and the verdict (outcome, class, exit code)."""

from __future__ import annotations

import pytest
from sluice_runner.errors import ErrorClass, ExitCode
from sluice_runner.process import ProcessResult
from sluice_runner.results import (
    RunResults,
    TestCase,
    parse_playwright_json,
    parse_pytest_raw,
)
from sluice_runner.verdict import decide


def rep(nodeid: str, when: str, outcome: str, longrepr: str | None = None, artifacts=None) -> dict:  # type: ignore[no-untyped-def]
    return {"nodeid": nodeid, "when": when, "outcome": outcome, "duration": 0.5, "longrepr": longrepr,
            "artifacts": artifacts or []}  # fmt: skip


def test_pytest_phases_fold_into_one_outcome_per_test() -> None:
    raw = {
        "collected": 7, "shard": 1, "shardTotal": 2, "collectErrors": [], "interrupted": False,
        "reports": [
            rep("t.py::ok", "setup", "passed"), rep("t.py::ok", "call", "passed"), rep("t.py::ok", "teardown", "passed"),
            rep("t.py::bad", "setup", "passed"), rep("t.py::bad", "call", "failed", "AssertionError: boom"),
            rep("t.py::bad", "teardown", "passed", artifacts=[["trace", "/o/bad/trace.zip"], ["video", "/o/bad/video.webm"]]),
            rep("t.py::skip", "setup", "skipped", "not today"), rep("t.py::skip", "teardown", "passed"),
            rep("t.py::fixture", "setup", "failed", "fixture error"), rep("t.py::fixture", "teardown", "passed"),
            rep("t.py::teardown", "setup", "passed"), rep("t.py::teardown", "call", "passed"),
            rep("t.py::teardown", "teardown", "failed", "teardown error"),
            rep("t.py::flaky", "setup", "passed"), rep("t.py::flaky", "call", "rerun", "first try failed"),
            rep("t.py::flaky", "teardown", "passed"),
            rep("t.py::flaky", "setup", "passed"), rep("t.py::flaky", "call", "passed"), rep("t.py::flaky", "teardown", "passed"),
            rep("t.py::cut", "setup", "passed"),  # interrupted during its call: no outcome
        ],
    }  # fmt: skip
    r = parse_pytest_raw(raw)
    outcomes = {t.id: t.outcome for t in r.tests}
    assert outcomes == {"t.py::ok": "passed", "t.py::bad": "failed", "t.py::skip": "skipped", "t.py::fixture": "failed",
                        "t.py::teardown": "failed", "t.py::flaky": "flaky"}  # fmt: skip
    assert (r.total, r.passed, r.failed, r.skipped, r.flaky) == (6, 1, 3, 1, 1)
    assert (r.shard, r.shardTotal, r.collectedTotal, r.browserError) == (1, 2, 7, None)
    bad = next(t for t in r.tests if t.id == "t.py::bad")
    assert bad.error == "AssertionError: boom" and [a.kind for a in bad.artifacts] == ["trace", "video"]
    assert next(t for t in r.tests if t.id == "t.py::flaky").error == "first try failed"  # why it was flaky


def test_pytest_browser_launch_failure_is_detected() -> None:
    launch = "playwright._impl._errors.TargetClosedError: BrowserType.launch: Target page, context or browser has been closed\nBrowser logs: ..."
    raw = {"reports": [rep("t.py::a", "setup", "failed", launch), rep("t.py::b", "setup", "failed", launch)]}
    r = parse_pytest_raw(raw)
    assert r.browserError and r.browserError.startswith(
        "playwright._impl._errors.TargetClosedError: BrowserType.launch"
    )


def pw_test(status: str, results: list[dict], project: str = "chromium") -> dict:  # type: ignore[no-untyped-def]
    return {"projectName": project, "status": status, "results": results}


def pw_result(status: str, error: str | None = None, attachments=None) -> dict:  # type: ignore[no-untyped-def]
    out = {"status": status, "duration": 1500, "attachments": attachments or []}
    if error:
        out["error"] = {"message": f"\x1b[31m{error}\x1b[39m"}
    return out


def test_playwright_json_report() -> None:
    report = {
        "suites": [{
            "title": "home.spec.ts", "file": "home.spec.ts",
            "specs": [
                {"title": "ok", "file": "home.spec.ts", "tests": [pw_test("expected", [pw_result("passed")])]},
                {"title": "skip", "file": "home.spec.ts", "tests": [pw_test("skipped", [pw_result("skipped")])]},
                {"title": "not run", "file": "home.spec.ts", "tests": [pw_test("skipped", [])]},
                {"title": "cut", "file": "home.spec.ts", "tests": [pw_test("unexpected", [pw_result("interrupted")])]},
            ],
            "suites": [{
                "title": "checkout",
                "specs": [
                    {"title": "pays", "file": "home.spec.ts", "tests": [pw_test("unexpected", [pw_result("failed", "Error: expect failed", [
                        {"name": "screenshot", "contentType": "image/png", "path": "/o/x/test-failed-1.png"},
                        {"name": "video", "contentType": "video/webm", "path": "/o/x/video.webm"},
                        {"name": "trace", "contentType": "application/zip", "path": "/o/x/trace.zip"},
                        {"name": "error-context", "contentType": "text/markdown", "path": "/o/x/error-context.md"},
                    ])])]},
                    {"title": "retries", "file": "home.spec.ts", "tests": [pw_test("flaky", [pw_result("failed", "Error: first"), pw_result("passed")])]},
                ],
            }],
        }],
        "errors": [],
    }  # fmt: skip
    r = parse_playwright_json(report, shard=0, shard_total=1)
    assert {t.id: t.outcome for t in r.tests} == {
        "home.spec.ts › ok [chromium]": "passed", "home.spec.ts › skip [chromium]": "skipped",
        "home.spec.ts › checkout › pays [chromium]": "failed", "home.spec.ts › checkout › retries [chromium]": "flaky",
    }  # fmt: skip
    assert (r.total, r.passed, r.failed, r.skipped, r.flaky) == (4, 1, 1, 1, 1)
    pays = next(t for t in r.tests if "pays" in t.id)
    assert pays.error == "Error: expect failed"  # colours stripped
    assert [a.kind for a in pays.artifacts] == ["screenshot", "video", "trace"]
    assert pays.seconds == 1.5 and r.browserError is None


def test_playwright_launch_failure_and_load_errors() -> None:
    launch = {"suites": [{"title": "a.spec.ts", "specs": [{"title": "x", "file": "a.spec.ts", "tests": [
        pw_test("unexpected", [pw_result("failed", "Error: browserType.launch: Target page, context or browser has been closed")])]}]}],
        "errors": []}  # fmt: skip
    assert parse_playwright_json(launch).browserError
    broken = {"suites": [], "errors": [{"message": "SyntaxError: bad.spec.ts: Unexpected token (3:0)"}]}
    r = parse_playwright_json(broken)
    assert r.total == 0 and r.suiteErrors == ["SyntaxError: bad.spec.ts: Unexpected token (3:0)"]


def proc(code: int = 0, interrupted: bool = False, tail: str = "") -> ProcessResult:
    return ProcessResult(returncode=code, seconds=12.0, tail=tail, interrupted=interrupted)


def results(**counts) -> RunResults:  # type: ignore[no-untyped-def]
    tests = [
        TestCase(id=f"{o}{i}", outcome=o) for o, n in counts.pop("outcomes", {}).items() for i in range(n)
    ]
    return RunResults(framework="playwright-python", tests=tests, **counts).count()


@pytest.mark.parametrize(
    ("name", "framework", "res", "p", "expected"),
    [
        ("all passed", "playwright-python", results(outcomes={"passed": 3}), proc(0), ("passed", None, 0)),
        (
            "flaky passes",
            "playwright-node",
            results(outcomes={"passed": 2, "flaky": 1}),
            proc(0),
            ("passed", None, 0),
        ),
        (
            "a failure",
            "playwright-python",
            results(outcomes={"passed": 2, "failed": 1}),
            proc(1),
            ("failed", "TestFailure", 1),
        ),
        (
            "interrupted",
            "playwright-python",
            results(outcomes={"failed": 1}),
            proc(2, interrupted=True),
            ("error", "InfrastructureError", 3),
        ),
        (
            "interrupted, no results",
            "playwright-node",
            None,
            proc(-9, interrupted=True),
            ("error", "InfrastructureError", 3),
        ),
        (
            "browser crash",
            "playwright-python",
            results(outcomes={"failed": 2}, browserError="BrowserType.launch: x"),
            proc(1),
            ("error", "BrowserCrash", 3),
        ),
        (
            "pytest usage error",
            "playwright-python",
            None,
            proc(4, tail="error: unrecognized arguments: --bogus"),
            ("error", "InvalidSpec", 2),
        ),
        ("pytest crashed", "playwright-python", None, proc(-11), ("error", "InfrastructureError", 3)),
        (
            "node config error",
            "playwright-node",
            None,
            proc(1, tail="Error: Cannot find module"),
            ("error", "InvalidSpec", 2),
        ),
        (
            "collection error",
            "playwright-python",
            results(suiteErrors=["t.py: SyntaxError"], collectedTotal=0),
            proc(2),
            ("error", "InvalidSpec", 2),
        ),
        ("no tests", "playwright-python", results(collectedTotal=0), proc(5), ("error", "InvalidSpec", 2)),
        (
            "node no tests",
            "playwright-node",
            results(suiteErrors=["Error: No tests found"]),
            proc(1),
            ("error", "InvalidSpec", 2),
        ),
        (
            "empty shard",
            "playwright-python",
            results(collectedTotal=1, shard=1, shardTotal=2),
            proc(5),
            ("passed", None, 0),
        ),
        ("empty node shard", "playwright-node", results(shard=3, shardTotal=4), proc(0), ("passed", None, 0)),
        (
            "suite error after tests",
            "playwright-node",
            results(outcomes={"passed": 2}, suiteErrors=["Error in globalTeardown"]),
            proc(1),
            ("failed", "TestFailure", 1),
        ),
        (
            "exit 1 without failures",
            "playwright-python",
            results(outcomes={"passed": 2}),
            proc(3, tail="INTERNALERROR"),
            ("error", "InfrastructureError", 3),
        ),
    ],
)
def test_verdict(
    name: str, framework: str, res: RunResults | None, p: ProcessResult, expected: tuple
) -> None:  # type: ignore[type-arg]
    v = decide(framework, res, p)
    assert (v.outcome, v.error_class.value if v.error_class else None, int(v.exit_code)) == expected, (
        name,
        v.message,
    )
    assert v.message


def test_failure_message_names_the_failed_tests() -> None:
    v = decide("playwright-python", results(outcomes={"failed": 7}), proc(1))
    assert v.exit_code == ExitCode.TESTS_FAILED and v.error_class == ErrorClass.TEST_FAILURE
    assert "failed0" in v.message and "and 2 more" in v.message
