"""Decides a run's outcome, failure class and exit code from what was observed.

The exit code is what the operator's retry policy acts on (0 passed, 1 tests failed, 2 invalid
source/configuration and never retried, 3 infrastructure and retried), so the rules live in one
pure function, read top to bottom, first match wins:

  1. interrupted (SIGTERM/SIGINT)                  -> error  InfrastructureError  3
  2. the framework wrote no results                 -> usage/config error: InvalidSpec 2,
                                                       otherwise InfrastructureError 3
  3. the browser could not start or crashed         -> error  BrowserCrash        3
  4. nothing ran and the suite had load errors       -> error  InvalidSpec         2
  5. nothing ran: an empty shard of a non-empty suite -> passed                    0
                  no tests in the suite at all       -> error  InvalidSpec         2
  6. a test failed (or the suite had load errors)   -> failed TestFailure         1
  7. the command failed although no test did        -> error  InfrastructureError 3
  8. otherwise                                      -> passed                     0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sluice_runner.errors import ErrorClass, ExitCode
from sluice_runner.process import ProcessResult
from sluice_runner.results import RunResults

PYTEST_USAGE_ERROR = 4
PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["passed", "failed", "error"]
    error_class: ErrorClass | None
    exit_code: ExitCode
    message: str


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def summarize(results: RunResults) -> str:
    parts = [f"{results.passed} passed", f"{results.failed} failed"]
    parts += [f"{n} {label}" for n, label in ((results.flaky, "flaky"), (results.skipped, "skipped")) if n]
    shard = f" (shard {results.shard + 1}/{results.shardTotal})" if results.shardTotal > 1 else ""
    return ", ".join(parts) + f" in {results.durationSeconds:.1f}s{shard}"


def _failed_names(results: RunResults, limit: int = 5) -> str:
    names = [t.id for t in results.tests if t.outcome == "failed"]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def decide(framework: str, results: RunResults | None, proc: ProcessResult) -> Verdict:
    if proc.interrupted:
        done = f" ({summarize(results)} before the stop)" if results else ""
        return Verdict(
            "error",
            ErrorClass.INFRASTRUCTURE,
            ExitCode.INFRASTRUCTURE,
            f"run interrupted after {proc.seconds:.0f}s{done}; partial results are saved",
        )
    if results is None:
        detail = _last_line(proc.tail)
        config_fault = (framework == "playwright-python" and proc.returncode == PYTEST_USAGE_ERROR) or (
            framework == "playwright-node" and proc.returncode == 1
        )
        if config_fault:
            return Verdict(
                "error",
                ErrorClass.INVALID_SPEC,
                ExitCode.INVALID,
                f"test command rejected its configuration (exit {proc.returncode}): {detail}",
            )
        return Verdict(
            "error",
            ErrorClass.INFRASTRUCTURE,
            ExitCode.INFRASTRUCTURE,
            f"test command exited {proc.returncode} without writing results: {detail}",
        )
    if results.browserError:
        return Verdict(
            "error",
            ErrorClass.BROWSER_CRASH,
            ExitCode.INFRASTRUCTURE,
            f"browser could not start or crashed: {results.browserError}",
        )
    first_error = results.suiteErrors[0].splitlines()[0][:300] if results.suiteErrors else ""
    if results.total == 0:
        if results.suiteErrors and "no tests found" not in first_error.lower():
            return Verdict(
                "error",
                ErrorClass.INVALID_SPEC,
                ExitCode.INVALID,
                f"the suite could not be loaded: {first_error}",
            )
        suite_has_tests = (results.collectedTotal or 0) > 0 or (
            framework == "playwright-node" and results.shardTotal > 1 and not results.suiteErrors
        )
        if suite_has_tests and results.shardTotal > 1:
            return Verdict(
                "passed", None, ExitCode.PASSED, f"no tests fell into this shard; {summarize(results)}"
            )
        return Verdict("error", ErrorClass.INVALID_SPEC, ExitCode.INVALID, "no tests found in the source")
    if results.failed or results.suiteErrors:
        why = f"failed: {_failed_names(results)}" if results.failed else f"suite error: {first_error}"
        return Verdict(
            "failed", ErrorClass.TEST_FAILURE, ExitCode.TESTS_FAILED, f"{summarize(results)}; {why}"
        )
    if proc.returncode not in (0, PYTEST_NO_TESTS):
        return Verdict(
            "error",
            ErrorClass.INFRASTRUCTURE,
            ExitCode.INFRASTRUCTURE,
            f"test command exited {proc.returncode} although no test failed: {_last_line(proc.tail)}",
        )
    return Verdict("passed", None, ExitCode.PASSED, summarize(results))
