"""Process-group bookkeeping shared by the cluster and the process node.

Everything the harness starts runs in its own session (process group == pid), so one signal ends
a component or a pod with all its children. Pids are recorded with the kernel's start time of the
process, and a recorded pid is signalled only while it still is that process: a stale state dir
(after a reboot, say) must never make `hack/cluster down` kill an unrelated process.
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path


def start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); "" when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int) -> bool:
    """True while any thread of `pid` runs (a zombie child is reaped and counts as gone).

    Every thread counts, not only the leader: after SIGKILL a Go program's leader turns zombie
    while its other threads still exit, and until the last one is gone the process keeps its
    file descriptors, so a listening port is not yet free for the restarted component.
    """
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def same_process(pid: int, start: str) -> bool:
    return bool(start) and start_time(pid) == start and alive(pid)


def kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def record(pid_file: Path, pid: int) -> None:
    """Write "<pid> <start time>" so that kill_recorded can later verify it."""
    pid_file.write_text(f"{pid} {start_time(pid)}\n")


def kill_recorded(pid_file: Path, sig: int = 9) -> None:
    """SIGKILL (or `sig`) the group of a pid written by `record`, if it still is that process."""
    try:
        pid, start = pid_file.read_text().split()
    except (OSError, ValueError):
        return
    if same_process(int(pid), start):
        kill_group(int(pid), sig)


def wait_http_ok(url: str, proc, what: str, log_tail, timeout: float) -> None:
    """Polls `url` until it answers 200; fails early, with the log's tail, if `proc` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log: {log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready in {timeout}s; log: {log_tail()}")
