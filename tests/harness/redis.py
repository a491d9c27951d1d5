"""A real `redis-server` (Debian's binary) for the live channel's tests, with the ACL users Sluice uses.

`RedisServer(root).start()` runs redis-server on a free 127.0.0.1 port, in its own session, with
its config, log and (unused: no persistence) data in `root`. Its ACL users:

    runner   may only XADD and EXPIRE, only on keys sluice:progress:*   (the runner pods' credential)
    reader   may only read: PING XREAD XRANGE XREVRANGE XLEN XINFO TYPE SCAN EXISTS TTL PTTL,
             only on keys sluice:progress:*                             (the operator, CLI, dashboard)
    admin    everything                                                 (the harness itself)
    default  off (a client that does not authenticate can do nothing)

Passwords are random per server and never in a URL: `url(user)` is `redis://<user>@127.0.0.1:<port>/0`
and `password(user)` the password (the runner gets it as SLUICE_REDIS_PASSWORD, as from a Secret);
`runner_env()` is both as the runner's environment. `client(user)` is a redis-py client.
`kill()` (SIGKILL, as a crash) or `stop()` (SIGTERM) and then `start()` again reuse the same port;
`restart()` is kill + start. Nothing survives a restart (no persistence), as in the chart's Redis.

Fixtures: `redis_server` (session-scoped, shared: do not stop it) and `fresh_redis` (one per test,
for tests that kill or restart it). redis-server comes from SLUICE_REDIS_SERVER or PATH
(`apt-get install redis-server`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .procs import alive, kill_group

KEYS = "sluice:progress:*"
RUNNER_COMMANDS = ["xadd", "expire"]
READER_COMMANDS = ["ping", "xread", "xrange", "xrevrange", "xlen", "xinfo", "type", "scan", "exists", "ttl", "pttl"]
USERS = ("runner", "reader", "admin")


def find_redis_server() -> Path | None:
    explicit = os.environ.get("SLUICE_REDIS_SERVER")
    if explicit:
        return Path(explicit)
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)), None
    )
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def acl_lines(passwords: dict[str, str]) -> list[str]:
    """The `user ...` config lines (the same rules hack/ and the chart should apply)."""
    return [
        "user default off resetkeys resetchannels -@all",
        f"user runner on >{passwords['runner']} resetkeys ~{KEYS} resetchannels -@all "
        + " ".join(f"+{c}" for c in RUNNER_COMMANDS),
        f"user reader on >{passwords['reader']} resetkeys ~{KEYS} resetchannels -@all "
        + " ".join(f"+{c}" for c in READER_COMMANDS),
        f"user admin on >{passwords['admin']} ~* &* +@all",
    ]


class RedisServer:
    host = "127.0.0.1"

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.passwords = {user: secrets.token_hex(16) for user in USERS}
        self.proc: subprocess.Popen[bytes] | None = None

    # ---- credentials -------------------------------------------------------------------------
    def url(self, user: str = "runner", scheme: str = "redis") -> str:
        """`redis://<user>@127.0.0.1:<port>/0`; the password is separate (`password(user)`)."""
        return f"{scheme}://{user}@{self.host}:{self.port}/0"

    def password(self, user: str = "runner") -> str:
        return self.passwords[user]

    @property
    def runner_password(self) -> str:
        return self.passwords["runner"]

    @property
    def reader_password(self) -> str:
        return self.passwords["reader"]

    def runner_env(self) -> dict[str, str]:
        """What the operator gives a runner pod: the URL, and the password as from a Secret."""
        return {"SLUICE_REDIS_URL": self.url("runner"), "SLUICE_REDIS_PASSWORD": self.password("runner")}

    def client(self, user: str = "reader", **kwargs: Any) -> Any:
        import redis

        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, "decode_responses": True}
        return redis.Redis(
            host=self.host, port=self.port, username=user, password=self.passwords[user], **(options | kwargs)
        )

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    def start(self, timeout: float = 15) -> RedisServer:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server (or set SLUICE_REDIS_SERVER)")
        if self.running:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "redis.conf"
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f"dir {self.root}",
            'save ""',
            "appendonly no",
            "daemonize no",
            "protected-mode yes",
            f"logfile {self.log_path}",
            *acl_lines(self.passwords),
        ]
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        self.proc = subprocess.Popen(
            [str(binary), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}): {self._log_tail()}")
            try:
                if self.client("admin", socket_timeout=1, socket_connect_timeout=1).ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server not ready on port {self.port}: {self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash; the port is free again when this returns."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after 10 s."""
        self._end(signal.SIGTERM)

    def restart(self, timeout: float = 15) -> RedisServer:
        self.kill()
        return self.start(timeout)

    def _end(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        kill_group(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 5
        while alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(root: Path, port: int | None = None) -> RedisServer:
    """Start a redis-server in `root` (see the module docstring); stop it with `.stop()`."""
    return RedisServer(root, port).start()


def _require_redis() -> None:
    if find_redis_server() is None:
        pytest.fail("redis-server not found: apt-get install redis-server (or set SLUICE_REDIS_SERVER)")


def _serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    _require_redis()
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (shared: tests must not stop it; use fresh_redis for that)."""
    yield from _serve(tmp_path_factory)


@pytest.fixture
def fresh_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test's own, free to kill and restart (same port)."""
    yield from _serve(tmp_path_factory)
