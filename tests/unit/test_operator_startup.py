"""`sluice operator` that cannot start says why in one line (no traceback) and exits 2."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def _run(tmp_path, **env) -> subprocess.CompletedProcess:
    kc = tmp_path / "kubeconfig"
    kc.write_text(KUBECONFIG)
    full = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "sluice.cli.main", "operator", "--kubeconfig", str(kc)],
                          env=full, capture_output=True, text=True, timeout=60)


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run(tmp_path, SLUICE_METRICS_PORT=str(port), SLUICE_HEALTH_PORT="0")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("sluice operator:")]
    assert f"port {port}" in line and "SLUICE_METRICS_PORT" in line


def test_a_bad_setting_is_one_line(tmp_path):
    out = _run(tmp_path, SLUICE_RUNNING_CAPACITY="many")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "SLUICE_RUNNING_CAPACITY" in out.stderr
