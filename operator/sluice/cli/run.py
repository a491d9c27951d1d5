"""`sluice run -f FILE [--wait] [--timeout S]`: create executions, follow them, exit with their verdict.

Exit codes (the highest that applies over all executions): 0 every execution Succeeded;
1 tests failed; 2 rejected or invalid (by the operator, the runner or the API server's schema);
3 infrastructure error, timeout (of the execution, its queue wait, or this command's --timeout),
cancellation, or an execution deleted under us.
"""
from __future__ import annotations

import sys
import textwrap
import time
from dataclasses import dataclass

import yaml
from sluice_runner.errors import ExitCode

from ..api.common import API_GROUP, API_VERSION, GROUP_VERSION
from ..api.execution import TERMINAL_PHASES
from .artifacts import links_for
from .connect import CliError, NotFound, api_errors
from .text import WIDTH, parse_time, seconds_text, shorten, table

# the same verdicts, and numbers, as the runner's own exit codes
EXIT_OK, EXIT_TESTS, EXIT_INVALID, EXIT_INFRA = (int(code) for code in ExitCode)
TERMINAL = {p.value for p in TERMINAL_PHASES}
POLL_SECONDS = 1.0


def load_documents(text: str) -> list[dict]:
    """The TestExecutions of a multi-document YAML (pure); CliError(code 2) for anything else."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"the file is not valid YAML: {exc}", EXIT_INVALID) from None
    out = []
    for i, doc in enumerate(docs, start=1):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            items = doc.get("items") or []
        else:
            items = [doc]
        for item in items:
            if not isinstance(item, dict):
                raise CliError(f"document {i} is not a mapping", EXIT_INVALID)
            if item.get("kind") != "TestExecution" or item.get("apiVersion") != GROUP_VERSION:
                raise CliError(f"document {i} is {item.get('apiVersion')}/{item.get('kind')}: "
                               f"`sluice run` creates {GROUP_VERSION} TestExecutions only", EXIT_INVALID)
            meta = item.get("metadata") or {}
            if not meta.get("name") and not meta.get("generateName"):
                raise CliError(f"document {i} has neither metadata.name nor metadata.generateName", EXIT_INVALID)
            out.append(item)
    if not out:
        raise CliError("the file holds no TestExecution", EXIT_INVALID)
    return out


def exit_code_for(phase: str | None, reason: str | None) -> int:
    """The exit code one execution's final state asks for (pure)."""
    if phase == "Succeeded":
        return EXIT_OK
    if phase == "Rejected" or reason == "InvalidSpec":
        return EXIT_INVALID
    if phase == "Failed" and reason == "TestsFailed":
        return EXIT_TESTS
    return EXIT_INFRA  # TimedOut, QueueTimeout, infrastructure, Cancelled, unknown


def overall_exit_code(codes: list[int]) -> int:
    """The highest code wins: 3 (infrastructure/timeouts) > 2 (rejected) > 1 (tests failed) > 0."""
    return max(codes) if codes else EXIT_INFRA


@dataclass
class Tracked:
    namespace: str
    name: str
    obj: dict | None = None
    gone: bool = False
    create_error: str | None = None
    create_code: int = 0

    @property
    def status(self) -> dict:
        return (self.obj or {}).get("status") or {}

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    @property
    def done(self) -> bool:
        return self.create_error is not None or self.gone or self.phase in TERMINAL

    def code(self) -> int:
        if self.create_error is not None:
            return self.create_code
        if self.gone:
            return EXIT_INFRA
        return exit_code_for(self.phase, self.status.get("reason"))


def progress_text(t: Tracked, now: float | None = None) -> str:
    """One line of progress for an execution (pure): phase, position, attempt, results."""
    if t.create_error is not None:
        return f"{t.name}: not created"
    if t.gone:
        return f"{t.name}: deleted"
    st = t.status
    phase = st.get("phase") or "Pending"
    parts = [phase]
    if phase == "Queued":
        if st.get("queuePosition"):
            parts.append(f"position {st['queuePosition']}")
        if st.get("reason") == "QueuePaused":
            parts.append("queue paused")
    if st.get("attempt"):
        parts.append(f"attempt {st['attempt']}")
    progress = st.get("progress") or {}
    if phase == "Running" and progress.get("total"):
        parts.append(f"{progress.get('done', 0)}/{progress['total']} tests"
                     + (f", {progress['failed']} failed" if progress.get("failed") else ""))
    if phase == "BackingOff" and st.get("nextAttemptAt"):
        parts.append(f"next attempt at {st['nextAttemptAt']}")
    results = st.get("results") or {}
    if phase in TERMINAL:
        if results.get("total"):
            parts.append(f"{results.get('passed', 0)}/{results['total']} passed")
        if st.get("reason"):
            parts.append(st["reason"])
    return f"{t.name}: " + ", ".join(parts)


def summary_lines(tracked: list[Tracked]) -> list[str]:
    """The final table (pure): one row per execution, then the message of each that did not pass."""
    rows = []
    for t in tracked:
        st, results = t.status, t.status.get("results") or {}
        started, done = parse_time(st.get("startedAt")), parse_time(st.get("completedAt"))
        duration = (done - started).total_seconds() if started and done else None
        phase = "NotCreated" if t.create_error is not None else ("Deleted" if t.gone else (t.phase or "Pending"))
        rows.append([t.name, phase, st.get("reason") or "-", str(results.get("passed", "-")),
                     str(results.get("failed", "-")), str(results.get("skipped", "-")),
                     str(st.get("attempt") or "-"), seconds_text(duration)])
    lines = table(["NAME", "PHASE", "REASON", "PASSED", "FAILED", "SKIPPED", "ATTEMPT", "DURATION"], rows, flexible=0)
    for t in tracked:
        if t.code() != EXIT_OK:
            message = t.create_error or t.status.get("message") or ("deleted while waiting" if t.gone else "")
            if message:
                lines.extend(textwrap.wrap(shorten(f"{t.name}: {message}", 400), WIDTH, subsequent_indent="  "))
    return lines


class Progress:
    """Live progress: bars redrawn in place on a terminal (rich), one plain line per change
    otherwise (what CI logs want)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last: dict[str, str] = {}
        self.live = None

    def _view(self, tracked: list[Tracked], elapsed: float):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        for t in tracked:
            p = t.status.get("progress") or {}
            total, done = int(p.get("total") or 0), int(p.get("done") or 0)
            if t.phase in TERMINAL and (t.status.get("results") or {}).get("total"):
                total = done = int(t.status["results"]["total"])
            grid.add_row(ProgressBar(total=max(total, 1), completed=done, width=24), shorten(progress_text(t), 60))
        grid.add_row("", f"waiting {int(elapsed)}s")
        return grid

    def update(self, tracked: list[Tracked], elapsed: float) -> None:
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            if self.live is None:
                self.live = Live(self._view(tracked, elapsed), console=Console(file=self.stream), auto_refresh=False)
                self.live.start()
            self.live.update(self._view(tracked, elapsed), refresh=True)
            return
        for t in tracked:
            line = progress_text(t)
            if self.last.get(t.name) != line:
                self.last[t.name] = line
                self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def create_all(conn, docs: list[dict]) -> list[Tracked]:
    tracked = []
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        ns = meta.get("namespace") or conn.namespace
        label = meta.get("name") or f"{meta.get('generateName')}*"
        try:
            with api_errors("create testexecution", ns, label):
                obj = conn.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, ns, "testexecutions", doc)
        except CliError as exc:
            if exc.code == EXIT_INFRA and "is Sluice installed" in str(exc):
                raise
            if "forbidden" in str(exc) or "unauthorized" in str(exc) or "cannot reach" in str(exc):
                raise
            tracked.append(Tracked(ns, label, create_error=str(exc), create_code=exc.code))
            print("\n".join(textwrap.wrap(f"testexecution/{label} not created: {exc}", WIDTH, subsequent_indent="  ")))
            continue
        name = obj["metadata"]["name"]
        print(f"testexecution/{name} created" + (f" in namespace {ns}" if ns != conn.namespace else ""))
        tracked.append(Tracked(ns, name, obj=obj))
    return tracked


def follow(conn, tracked: list[Tracked], timeout: float | None) -> bool:
    """Polls until every execution is terminal; False when `timeout` ran out first."""
    progress = Progress()
    try:
        return _poll(conn, tracked, timeout, progress)
    finally:
        progress.close()


def _poll(conn, tracked: list[Tracked], timeout: float | None, progress: Progress) -> bool:
    began = time.monotonic()
    while True:
        for t in tracked:
            if t.done or t.create_error is not None:
                continue
            try:
                t.obj = conn.get_execution(t.namespace, t.name)
            except NotFound:
                t.gone = True
        elapsed = time.monotonic() - began
        progress.update(tracked, elapsed)
        if all(t.done for t in tracked):
            return True
        if timeout is not None and elapsed >= timeout:
            return False
        time.sleep(POLL_SECONDS if timeout is None else max(0.05, min(POLL_SECONDS, timeout - elapsed)))


def run(conn, args) -> int:
    try:
        text = sys.stdin.read() if args.filename == "-" else open(args.filename).read()
    except OSError as exc:
        raise CliError(f"cannot read {args.filename}: {exc.strerror}", EXIT_INVALID) from None
    docs = load_documents(text)
    tracked = create_all(conn, docs)
    if not args.wait:
        return overall_exit_code([t.create_code for t in tracked])
    finished = follow(conn, tracked, args.timeout)
    print()
    print("\n".join(summary_lines(tracked)))
    for t in tracked:
        if t.obj is None or t.gone:
            continue
        links, presigned = links_for(conn, t.obj)
        if links:
            print(f"\nartifacts of {t.name}" + ("" if presigned else " (s3:// URLs: no S3 credentials to presign)") + ":")
            for label, url in links:
                print(f"  {label:<11} {url}")
    code = overall_exit_code([t.code() for t in tracked if t.done])
    if not finished:
        left = [t.name for t in tracked if not t.done]
        print()
        print("\n".join(textwrap.wrap(f"timed out after {args.timeout:g}s waiting for {', '.join(left)}", WIDTH,
                                      subsequent_indent="  ")))
        print("(they keep running: `sluice cancel NAME` stops one)")
        return EXIT_INFRA
    return code
