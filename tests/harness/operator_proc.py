"""Runs the real operator (`sluice operator`) as a subprocess for cluster tests and benchmarks.

Each test gets its own operator watching only its namespace (and holding its Lease there), so
tests with different capacities never see each other's executions.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .procs import wait_http_ok


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    def __init__(self, kubeconfig: str, namespace: str | None, log_dir: Path, **settings):
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.log_path = Path(log_dir) / f"operator-{namespace or 'all'}-{int(time.time() * 1000)}.log"
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def env(self) -> dict:
        env = dict(os.environ)
        env.update({
            "SLUICE_HEALTH_PORT": str(self.health_port), "SLUICE_METRICS_PORT": str(self.metrics_port),
            "SLUICE_RESYNC_SECONDS": "30", "SLUICE_LEASE_DURATION_SECONDS": "6", "SLUICE_LEASE_RENEW_SECONDS": "2",
            # Every image (kwok_runner's, the image-pull tests' chosen names): only the allow-list
            # tests restrict images, with start_operator(allowed_images=...).
            "SLUICE_ALLOWED_IMAGES": "*",
        })
        if self.namespace:
            env["SLUICE_NAMESPACES"] = self.namespace
            env["SLUICE_LEASE_NAMESPACE"] = self.namespace
        for k, v in self.settings.items():
            env[f"SLUICE_{k.upper()}"] = str(v)
        return env

    def start(self, wait: bool = True) -> "OperatorProcess":
        self.starts += 1
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "operator", "--kubeconfig", self.kubeconfig],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        wait_http_ok(f"http://127.0.0.1:{self.health_port}/readyz", self.proc, "operator", self.log_tail, timeout)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def status_writes_max(self) -> int | None:
        """`sluice_status_writes_max` of a running operator (None if it is not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            text = self.metrics()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("sluice_status_writes_max "):
                return int(float(line.split()[1]))
        return None

    def kill(self) -> None:
        """SIGKILL: the crash the operator must survive."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
