"""`python -m sluice_runner`: one attempt of a TestExecution, or a suite run by hand.

The flow is the API's runner protocol, one step per module:
    config (settings) -> source (writable suite) -> execute (test command) -> verdict
    -> collect (artifact tree) -> upload (S3) -> report (termination message) -> exit code.
Every step runs even when an earlier one failed or the run was interrupted, as far as it can:
whatever exists is collected and uploaded, and a termination message is always written, because
the operator can only explain what the runner told it. Phase timings go into results.json
(`timings`), which is how bench/runner_overhead.py measures the runner's own cost.

By hand:  python -m sluice_runner --source DIR [--framework playwright-node] [--shard 1/2]
              [--artifacts-url s3://bucket/prefix/] [--output-dir DIR] [-- extra test args]
Flags override the environment; --shard is 1-based like Playwright's (the env's index is 0-based).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sluice_runner.browser import resolve_chromium
from sluice_runner.collect import ArtifactTree, collect
from sluice_runner.config import Settings, load_settings
from sluice_runner.errors import ConfigError, ErrorClass, ExitCode, RunnerError
from sluice_runner.execute import Outputs, prepare_command, run_tests
from sluice_runner.process import Supervisor
from sluice_runner.progress import LiveChannel, NullPublisher, first_line, open_live
from sluice_runner.report import MAX_FAILURES, ArtifactRefs, Failure, RunnerResult, write_termination_message
from sluice_runner.results import RunResults
from sluice_runner.source import prepare_source
from sluice_runner.upload import (
    make_client,
    parse_s3_url,
    plan_uploads,
    shard_dir,
    upload_tree,
)
from sluice_runner.verdict import Verdict, decide

log = logging.getLogger("sluice_runner")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """CLI flags as Settings overrides (field names); everything after `--` is test args."""
    extra: list[str] | None = None
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    p = argparse.ArgumentParser(prog="python -m sluice_runner", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", dest="source_dir", type=Path, help="suite directory (SLUICE_SOURCE_DIR)")
    p.add_argument("--framework", choices=["playwright-python", "playwright-node"])
    p.add_argument("--shard", help="I/N, 1-based (SLUICE_SHARD_INDEX is 0-based)")
    p.add_argument("--artifacts-url", help="s3://bucket/prefix/ to upload to; empty keeps them local")
    p.add_argument("--base-url", help="BASE_URL for the tests")
    p.add_argument("--output-dir", type=Path, help="local artifact tree (default: in the work dir)")
    p.add_argument("--work-dir", type=Path, help="scratch directory (default: a new temp dir)")
    p.add_argument("--termination-log", type=Path, help="also write the termination message here")
    p.add_argument("--chromium", type=Path, help="browser executable (SLUICE_CHROMIUM)")
    ns = vars(p.parse_args(argv))
    overrides: dict[str, Any] = {k: v for k, v in ns.items() if k != "shard" and v is not None}
    if ns["source_dir"] is not None:
        overrides["source_kind"] = "dir"
    if ns["shard"]:
        try:
            index, total = (int(x) for x in ns["shard"].split("/"))
        except ValueError:
            p.error("--shard must be I/N, e.g. 1/2")
        overrides.update(shard_index=index - 1, shard_total=total)
    if extra is not None:
        overrides["args"] = extra
    return overrides


class _Phases:
    """Wall time per phase, in seconds."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.timings: dict[str, float] = {}

    def record(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = round(now - since, 4)
        return now


def _error(exc: RunnerError) -> Verdict:
    return Verdict("error", exc.error_class, exc.exit_code, exc.message)


def _interrupted(supervisor: Supervisor, detail: str) -> Verdict:
    return Verdict(
        "error",
        ErrorClass.INFRASTRUCTURE,
        ExitCode.INFRASTRUCTURE,
        f"run interrupted by {supervisor.signal_name or 'a signal'} {detail}; partial results are saved",
    )


def execute_run(
    settings: Settings, supervisor: Supervisor, phases: _Phases, live: LiveChannel | None = None
) -> tuple[Verdict, RunResults | None, Outputs, Path]:
    """source -> command -> tests -> verdict; never raises a RunnerError."""
    work = settings.work_dir or Path(tempfile.mkdtemp(prefix="sluice-run-"))
    outputs = Outputs(work / "out")
    results: RunResults | None = None
    t = time.monotonic()
    try:
        work.mkdir(parents=True, exist_ok=True)
        suite = prepare_source(settings, work, supervisor)
        t = phases.record("source", t)
        log.info("source ready: %s (%s)", suite, settings.source_kind)
        if supervisor.interrupted:
            return _interrupted(supervisor, "before the tests started"), None, outputs, work
        argv = prepare_command(settings, suite, outputs, resolve_chromium(settings))
        t = phases.record("prepare", t)
        log.info("running: %s", " ".join(argv))
        with (live or LiveChannel(NullPublisher())).during_tests(outputs.progress, supervisor):
            results, proc = run_tests(settings, argv, suite, outputs, supervisor)
        phases.timings["tests"] = round(proc.seconds, 4)
        if results is not None:
            results = results.model_copy(
                update={"durationSeconds": round(proc.seconds, 3), "interrupted": proc.interrupted}
            )
        return decide(settings.framework, results, proc), results, outputs, work
    except RunnerError as exc:
        if supervisor.interrupted:
            return _interrupted(supervisor, "before the tests finished"), results, outputs, work
        return _error(exc), results, outputs, work
    except Exception as exc:  # a bug or an unwritable disk: still report, as retryable
        log.exception("runner failed")
        verdict = Verdict(
            "error", ErrorClass.INFRASTRUCTURE, ExitCode.INFRASTRUCTURE, f"runner error: {exc!r}"
        )
        return verdict, results, outputs, work


def upload_artifacts(settings: Settings, tree: ArtifactTree, supervisor: Supervisor) -> str:
    """Upload the tree; return the key prefix used for this shard. Raises UploadError."""
    bucket, prefix = parse_s3_url(settings.artifacts_url)
    sub = shard_dir(settings.shard, settings.shard_total)
    planned = plan_uploads(tree.root, prefix + sub)
    end = time.monotonic() + settings.upload_timeout_seconds

    def deadline() -> float:
        if supervisor.interrupted_at is not None:
            return min(end, supervisor.interrupted_at + settings.stop_budget_seconds)
        return end

    sent = upload_tree(make_client(settings, 8), bucket, planned, deadline)
    log.info("uploaded %d objects (%d bytes) to s3://%s/%s", len(planned), sent, bucket, prefix + sub)
    return sub


def refs(settings: Settings, tree: ArtifactTree | None, sub: str) -> ArtifactRefs:
    """Termination-message entries: keys relative to the attempt's URL (so `shard-<i>/...`)."""
    if tree is None:
        return ArtifactRefs(url=settings.artifacts_url or None)
    url = settings.artifacts_url or tree.root.resolve().as_uri() + "/"
    return ArtifactRefs(
        url=url,
        report=sub + tree.report if tree.report else None,
        junit=sub + tree.junit if tree.junit else None,
        traces=[sub + k for k in tree.traces],
        videos=[sub + k for k in tree.videos],
        screenshots=[sub + k for k in tree.screenshots],
        console=sub + tree.console if tree.console else None,
    )


def failures_of(results: RunResults) -> list[Failure]:
    """The first failed tests, each with the first line of its error, for `status.results.failures`."""
    failed = [t for t in results.tests if t.outcome == "failed"]
    return [Failure(test=t.id[:200], error=error_line(t.error)) for t in failed[:MAX_FAILURES]]


def error_line(text: str | None) -> str:
    """The line that says what went wrong: pytest's first `E ` line (the exception), else the first."""
    for line in (text or "").splitlines():
        if line.startswith("E "):
            return first_line(line[1:])
    return first_line(text)


def write_results_file(
    path: Path, settings: Settings, verdict: Verdict, results: RunResults | None, timings: dict[str, float]
) -> None:
    body = results or RunResults(
        framework=settings.framework, shard=settings.shard, shardTotal=settings.shard_total
    )
    data = {
        "execution": settings.execution,
        "attempt": settings.attempt,
        "outcome": verdict.outcome,
        "errorClass": verdict.error_class,
        "exitCode": int(verdict.exit_code),
        "message": verdict.message,
        "artifactsUrl": settings.artifacts_url or None,
        **body.model_copy(update={"timings": timings}).model_dump(mode="json"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def run(settings: Settings, supervisor: Supervisor) -> int:
    phases = _Phases()
    live = open_live(settings)  # live progress to Redis, best effort (progress.py)
    fd, console = tempfile.mkstemp(prefix="sluice-console-", suffix=".txt")
    os.close(fd)
    supervisor.console_path = Path(console)
    try:
        return _run(settings, supervisor, phases, live)
    finally:
        live.close()
        Path(console).unlink(missing_ok=True)


def _run(settings: Settings, supervisor: Supervisor, phases: _Phases, live: LiveChannel) -> int:
    verdict, results, outputs, work = execute_run(settings, supervisor, phases, live)
    live.end(verdict.outcome, results)  # the same outcome and counts as the termination message
    t = time.monotonic()
    tree: ArtifactTree | None = None
    dest = settings.output_dir or work / "artifacts"
    try:
        tree, results = collect(results, outputs, dest, supervisor.console_path)
    except Exception as exc:  # keep going: the termination message matters more
        log.exception("collecting artifacts failed: %s", exc)
    t = phases.record("collect", t)
    try:
        write_results_file(dest / "results.json", settings, verdict, results, dict(phases.timings))
    except OSError as exc:
        log.error("cannot write results.json: %s", exc)
    sub = shard_dir(settings.shard, settings.shard_total)
    if settings.artifacts_url and tree is not None:
        try:
            upload_artifacts(settings, tree, supervisor)
        except RunnerError as exc:
            log.error("%s", exc.message)
            if verdict.outcome == "error":
                verdict = Verdict(
                    verdict.outcome,
                    verdict.error_class,
                    verdict.exit_code,
                    f"{verdict.message}; also {exc.message}",
                )
            else:
                verdict = Verdict(
                    "error", exc.error_class, exc.exit_code, f"{exc.message} (tests: {verdict.message})"
                )
        t = phases.record("upload", t)
    phases.timings["total"] = round(time.monotonic() - phases.start, 4)
    if (dest / "results.json").is_file():  # the local copy also gets the upload time
        write_results_file(dest / "results.json", settings, verdict, results, phases.timings)

    counts = results or RunResults(framework=settings.framework)
    message = RunnerResult(
        outcome=verdict.outcome,
        errorClass=verdict.error_class.value if verdict.error_class else None,
        total=counts.total,
        passed=counts.passed,
        failed=counts.failed,
        skipped=counts.skipped,
        flaky=counts.flaky,
        durationSeconds=counts.durationSeconds,
        artifacts=refs(settings, tree, sub),
        failures=failures_of(counts),
        message=verdict.message,
    )
    try:
        text = write_termination_message(message, settings.termination_log_path())
    except OSError as exc:
        log.error("cannot write the termination message to %s: %s", settings.termination_log_path(), exc)
        text = message.fitted().to_json()
    print_summary(message, verdict, text, settings, dest)
    if settings.work_dir is None and (settings.artifacts_url or settings.output_dir):
        shutil.rmtree(work, ignore_errors=True)
    return int(verdict.exit_code)


def print_summary(result: RunnerResult, verdict: Verdict, text: str, settings: Settings, dest: Path) -> None:
    where = result.artifacts.url or str(dest)
    lines = [
        f"sluice-runner: {result.outcome.upper()} (exit {int(verdict.exit_code)}"
        + (f", {result.errorClass})" if result.errorClass else ")")
        + f": {verdict.message}",
        f"  artifacts: {where}",
    ]
    if result.artifacts.report:
        lines.append(f"  report:    {where}{result.artifacts.report}")
    if settings.artifacts_url:
        lines.append(f"  local copy: {dest}")
    lines.append(f"  termination message: {text}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="sluice-runner: %(message)s", stream=sys.stderr)
    supervisor = Supervisor()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: supervisor.interrupt(s))
    try:
        settings = load_settings(**parse_args(sys.argv[1:] if argv is None else argv))
    except ConfigError as exc:
        return config_failure(exc)
    supervisor.kill_grace_seconds = settings.kill_grace_seconds
    return run(settings, supervisor)


def config_failure(exc: ConfigError) -> int:
    """Settings are unreadable: still tell the operator why (exit 2)."""
    path = os.environ.get("SLUICE_TERMINATION_LOG")
    target = (
        Path(path)
        if path
        else (Path("/dev/termination-log") if Path("/dev/termination-log").exists() else None)
    )
    result = RunnerResult(outcome="error", errorClass=ErrorClass.INVALID_SPEC.value, message=exc.message)
    try:
        write_termination_message(result, target)
    except OSError as err:
        log.error("cannot write the termination message to %s: %s", target, err)
    print(f"sluice-runner: ERROR (exit 2, InvalidSpec): {exc.message}", file=sys.stderr, flush=True)
    return int(ExitCode.INVALID)
