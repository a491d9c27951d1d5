"""One shape for "what happened" in a run, parsed from either framework's own output.

pytest (through our plugin's raw event log) and Playwright Test (through its JSON reporter) say
the same things differently. Everything after the test command (the verdict, the HTML report,
results.json, the termination message) reads only `RunResults`, so the two frameworks differ in
exactly two parse functions here. Pure: dicts in, models out; no file or process access.

Counts are disjoint: total = passed + failed + skipped + flaky, where flaky means "failed, then
passed on a retry" (Playwright retries, or pytest-rerunfailures when the suite uses it).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["passed", "failed", "skipped", "flaky"]
ArtifactKind = Literal["trace", "video", "screenshot"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Errors that mean the browser itself failed, not the test: launch failures and renderer crashes.
_BROWSER_ERRORS = re.compile(r"browserType\.launch|Target crashed|Page crashed", re.IGNORECASE)
ERROR_CHARS = 4000


class Artifact(BaseModel):
    kind: ArtifactKind
    path: str  # local path while running; a key relative to the artifacts root in results.json


class TestCase(BaseModel):
    __test__ = False  # not a pytest test class
    id: str
    outcome: Outcome
    seconds: float = 0.0
    error: str | None = None
    artifacts: list[Artifact] = Field(default_factory=list)


class RunResults(BaseModel):
    v: Literal[1] = 1
    framework: str
    shard: int = 0
    shardTotal: int = 1
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    flaky: int = 0
    durationSeconds: float = 0.0
    collectedTotal: int | None = None  # whole suite before sharding, when the framework tells
    suiteErrors: list[str] = Field(default_factory=list)  # collection/load errors, "no tests"
    browserError: str | None = None  # first launch failure or crash seen
    interrupted: bool = False
    tests: list[TestCase] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)  # phase -> seconds (runner overhead)

    def count(self) -> RunResults:
        """Recompute the counters from `tests`."""
        by = {
            o: sum(1 for t in self.tests if t.outcome == o) for o in ("passed", "failed", "skipped", "flaky")
        }
        return self.model_copy(update={**by, "total": len(self.tests)})


def clean(text: str | None, limit: int = ERROR_CHARS) -> str | None:
    """Strip terminal colours and cap length."""
    if text is None:
        return None
    text = _ANSI.sub("", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def browser_error(messages: list[str | None]) -> str | None:
    """The first message that says the browser could not start or crashed."""
    for message in messages:
        if message and _BROWSER_ERRORS.search(message):
            return message.splitlines()[0][:500]
    return None


def parse_pytest_raw(raw: dict[str, Any], framework: str = "playwright-python") -> RunResults:
    """Fold our pytest plugin's per-phase report log into one outcome per test."""
    tests: dict[str, TestCase] = {}
    reruns: dict[str, int] = {}
    finished: set[str] = set()  # reached a verdict: a call report, or failed/skipped earlier
    for rep in raw.get("reports", []):
        nodeid, when, outcome = rep["nodeid"], rep["when"], rep["outcome"]
        if when == "call" or outcome != "passed":
            finished.add(nodeid)
        case = tests.setdefault(nodeid, TestCase(id=nodeid, outcome="passed"))
        case.seconds += float(rep.get("duration", 0.0))
        case.artifacts += [Artifact(kind=k, path=p) for k, p in rep.get("artifacts", [])]
        if outcome == "rerun":  # pytest-rerunfailures: this attempt failed, another follows
            reruns[nodeid] = reruns.get(nodeid, 0) + 1
            case.error = clean(rep.get("longrepr")) or case.error
            case.outcome = "passed"
            continue
        if outcome == "failed":
            case.outcome = "failed"
            case.error = clean(rep.get("longrepr"))
        elif outcome == "skipped" and case.outcome != "failed":
            case.outcome = "skipped"
    # A test with only a passed setup was cut off by an interruption: it has no outcome.
    tests = {nodeid: case for nodeid, case in tests.items() if nodeid in finished}
    for nodeid, case in tests.items():
        if case.outcome == "passed" and reruns.get(nodeid):
            case.outcome = "flaky"
        elif case.outcome == "passed":
            case.error = None
    results = RunResults(
        framework=framework,
        shard=int(raw.get("shard", 0)),
        shardTotal=int(raw.get("shardTotal", 1)),
        collectedTotal=raw.get("collected"),
        suiteErrors=[clean(e) or "" for e in raw.get("collectErrors", [])],
        interrupted=bool(raw.get("interrupted", False)),
        tests=list(tests.values()),
    ).count()
    failures = [t.error for t in results.tests if t.outcome == "failed"]
    return results.model_copy(update={"browserError": browser_error(failures)})


_PW_OUTCOME: dict[str, Outcome] = {
    "expected": "passed",
    "unexpected": "failed",
    "flaky": "flaky",
    "skipped": "skipped",
}


def _pw_artifacts(results: list[dict[str, Any]]) -> list[Artifact]:
    found = []
    for result in results:
        for att in result.get("attachments", []):
            path, name, ctype = att.get("path"), att.get("name", ""), att.get("contentType", "")
            if not path:
                continue
            if name == "trace" or ctype == "application/zip":
                found.append(Artifact(kind="trace", path=path))
            elif name == "video" or ctype.startswith("video/"):
                found.append(Artifact(kind="video", path=path))
            elif ctype == "image/png":
                found.append(Artifact(kind="screenshot", path=path))
    return found


def _pw_error(results: list[dict[str, Any]]) -> str | None:
    for result in reversed(results):
        errors = result.get("errors") or ([result["error"]] if result.get("error") else [])
        for err in errors:
            text = err.get("message") or err.get("value") or err.get("stack")
            if text:
                return clean(text)
    return None


def _pw_specs(suite: dict[str, Any], titles: list[str]):  # type: ignore[no-untyped-def]
    for spec in suite.get("specs", []):
        yield spec, titles
    for child in suite.get("suites", []):
        yield from _pw_specs(child, titles + [child.get("title", "")])


def parse_playwright_json(report: dict[str, Any], shard: int = 0, shard_total: int = 1) -> RunResults:
    """Read Playwright Test's JSON reporter output."""
    tests = []
    for root in report.get("suites", []):
        # The root suite's title is the file name; nested suites are describe() blocks.
        for spec, titles in _pw_specs(root, []):
            for test in spec.get("tests", []):
                status = test.get("status") or "skipped"
                runs = test.get("results", [])
                if not runs or runs[-1].get("status") == "interrupted":
                    continue  # did not run, or cut off by an interruption: no outcome
                project = test.get("projectName") or ""
                name = " › ".join([spec.get("file", root.get("file", "")), *titles, spec.get("title", "")])
                tests.append(
                    TestCase(
                        id=f"{name} [{project}]" if project else name,
                        outcome=_PW_OUTCOME.get(status, "failed"),
                        seconds=sum(r.get("duration", 0) for r in runs) / 1000.0,
                        error=_pw_error(runs) if status != "expected" else None,
                        artifacts=_pw_artifacts(runs),
                    )
                )
    suite_errors = [
        clean(e.get("message") or e.get("stack") or str(e)) or "" for e in report.get("errors", [])
    ]
    results = RunResults(
        framework="playwright-node",
        shard=shard,
        shardTotal=shard_total,
        suiteErrors=suite_errors,
        tests=tests,
    ).count()
    failures = [t.error for t in results.tests if t.outcome == "failed"] + suite_errors
    return results.model_copy(update={"browserError": browser_error(failures)})
