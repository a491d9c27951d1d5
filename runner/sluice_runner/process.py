"""Runs the one child process the runner has at a time (git, pytest, node) and stops it on demand.

Why a module of its own: SIGTERM from the kubelet (Job deadline, cancel, eviction) reaches only
the runner (PID 1 in the container, or a plain process on the test node). The runner must pass it
on to whatever it is running, in the form that child stops cleanly on (see StopPolicy), give it a
few seconds to write its reports, then SIGKILL the whole process group, and still have time
inside the 30 s grace period to upload what exists. Keeping the child and the interruption state
in one object lets the signal handler do that without knowing which step is running.

The child runs in its own session (so its process group can be signalled as a whole); its output
is echoed to ours line by line (pod logs) and the last lines are kept for error messages.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TAIL_LINES = 40
Forward = Literal["leader", "group"]


@dataclass(frozen=True)
class StopPolicy:
    """How to ask a child to stop: which signal, to the leader only or to its whole group."""

    signum: int = signal.SIGTERM
    forward: Forward = "group"


CONSOLE_MAX_BYTES = 20 * 1024 * 1024  # the console artifact keeps the first 20 MiB


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    seconds: float
    tail: str
    interrupted: bool


class Supervisor:
    """Holds the running child and whether the run was interrupted."""

    def __init__(self, kill_grace_seconds: float = 5.0) -> None:
        self.kill_grace_seconds = kill_grace_seconds
        self.interrupted_at: float | None = None
        self.signal_name = ""
        self._child: subprocess.Popen[bytes] | None = None
        self._stop = StopPolicy()
        self._lock = threading.Lock()
        # Also given every output line of the child (the live channel's console events); must not block.
        self.on_line: Callable[[str], None] | None = None
        # Where every output line of the child is also kept (uploaded as the console artifact).
        self.console_path: Path | None = None

    @property
    def interrupted(self) -> bool:
        return self.interrupted_at is not None

    def interrupt(self, signum: int = signal.SIGTERM) -> None:
        """Record the interruption and ask the child to stop (safe from a signal handler)."""
        if self.interrupted_at is None:
            self.interrupted_at = time.monotonic()
            self.signal_name = signal.Signals(signum).name
        child = self._child
        if child is not None and child.poll() is None:
            self._signal(child, self._stop)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        stop: StopPolicy = StopPolicy(),
        echo: bool = True,
    ) -> ProcessResult:
        """Run argv (never through a shell) to completion, or until interrupted and stopped."""
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        start = time.monotonic()
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with self._lock:
            self._child, self._stop = child, stop
        reader = threading.Thread(target=_pump, args=(child, tail, echo, self.on_line, self.console_path),
                                  daemon=True)
        reader.start()
        if self.interrupted:  # a signal arrived between the last step and this spawn
            self._signal(child, stop)
        try:
            returncode = self._wait(child)
        finally:
            with self._lock:
                self._child = None
            # Leftovers of the group (drivers, servers a test started) must not outlive the step.
            _killpg(child.pid, signal.SIGKILL)
            reader.join(timeout=2)
        return ProcessResult(returncode, time.monotonic() - start, "".join(tail), self.interrupted)

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                return child.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            if self.interrupted_at is not None:
                waited = time.monotonic() - self.interrupted_at
                if waited > self.kill_grace_seconds:
                    _killpg(child.pid, signal.SIGKILL)
                elif waited > self.kill_grace_seconds / 2 and self._stop.forward == "leader":
                    # The leader had its chance to stop cleanly; now the rest of the group.
                    _killpg(child.pid, signal.SIGTERM)

    @staticmethod
    def _signal(child: subprocess.Popen[bytes], stop: StopPolicy) -> None:
        if stop.forward == "leader":
            try:
                child.send_signal(stop.signum)
            except ProcessLookupError:
                pass
        else:
            _killpg(child.pid, stop.signum)


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(
    child: subprocess.Popen[bytes],
    tail: collections.deque[str],
    echo: bool,
    on_line: Callable[[str], None] | None = None,
    console_path: Path | None = None,
) -> None:
    assert child.stdout is not None
    out = sys.stdout.buffer
    console = _open_console(console_path)
    kept = 0
    for line in iter(child.stdout.readline, b""):
        if console is not None and kept < CONSOLE_MAX_BYTES:
            try:
                console.write(line)
                kept += len(line)
            except OSError:
                console = None
        if echo:
            try:
                out.write(line)
                out.flush()
            except (OSError, ValueError):
                echo = False
        text = line.decode("utf-8", "replace")
        tail.append(text)
        if on_line is not None:
            try:
                on_line(text)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the pump
                on_line = None
    child.stdout.close()
    if console is not None:
        console.close()


def _open_console(path: Path | None):
    if path is None:
        return None
    try:
        return open(path, "ab")  # noqa: SIM115 - closed when the child's output ends
    except OSError:
        return None
