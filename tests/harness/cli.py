"""Runs the `sluice` CLI as a subprocess (real exit codes) and normalizes its output for snapshots."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

_AGE = re.compile(r"(?<![\w.])\d+(\.\d+)?(d|h|m|s)(\d+(h|m|s))?(?![\w])")


def sluice_cli(kubeconfig, namespace: str | None, *args: str, timeout: float = 120, env: dict | None = None,
               popen: bool = False):
    """`python -m sluice.cli.main ARGS --kubeconfig K [-n NS]`: a CompletedProcess (text), or a Popen."""
    argv = [sys.executable, "-m", "sluice.cli.main", *args, "--kubeconfig", str(kubeconfig)]
    if namespace:
        argv += ["-n", namespace]
    full_env = dict(os.environ, **(env or {}))
    if popen:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env)


def write_executions(path: Path, *docs: dict) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs)))
    return path


def execution_doc(name: str | None = None, generate_name: str | None = None, **spec) -> dict:
    meta = {"name": name} if name else {"generateName": generate_name}
    spec.setdefault("source", {"inline": {"files": {"test_ok.py": "def test_ok():\n    assert True\n"}}})
    return {"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution", "metadata": meta, "spec": spec}


def normalize(text: str) -> list[str]:
    """Lines with ages/durations replaced by AGE and runs of spaces collapsed (stable snapshots)."""
    return [re.sub(r" +", " ", _AGE.sub("AGE", line)).rstrip() for line in text.splitlines()]
