"""Runs a hack/ Python script inside the checkout's virtual environment (.venv).

Debian's own python3 is externally managed (PEP 668): it refuses `pip install` outside a
virtual environment, so hack/install-deps installs Sluice into `.venv` and every hack/ script
re-executes itself with `.venv/bin/python` (with `.venv/bin` first on PATH, so the `sluice` and
`python` that subprocesses and the process node start are the checkout's own).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"


def activate_env() -> dict[str, str]:
    """os.environ with the venv first on PATH, as `source .venv/bin/activate` would set it."""
    env = dict(os.environ, VIRTUAL_ENV=str(VENV))
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    return env


def reexec_in_venv() -> None:
    """Re-executes the calling script under .venv/bin/python unless it already runs there."""
    python = VENV / "bin" / "python"
    if not python.exists() or Path(sys.prefix).resolve() == VENV.resolve():
        return
    os.execve(str(python), [str(python), *sys.argv], activate_env())
