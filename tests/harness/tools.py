"""Where the control-plane binaries are, and a one-line error when they are not.

hack/build-tools owns the versions and the cache layout; this module only reads them back (the
`*_VERSION=` lines of the script) so that tests can tell "not built yet" from "built" without
starting a 30-minute build. `ensure_bin_dir(build=True)` runs the script, which is instant once
everything is cached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = REPO / "hack" / "build-tools"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")


class HarnessError(RuntimeError):
    """A problem the user can fix; its message is one line, meant to be printed without traceback."""


def expected_bin_dir() -> Path:
    """The directory hack/build-tools builds into, computed the way the script does."""
    override = os.environ.get("SLUICE_TOOLS_BIN")
    if override:
        return Path(override)
    versions = dict(re.findall(r"^([A-Z0-9_]+_VERSION)=(\S+)$", BUILD_TOOLS.read_text(), re.M))
    cache = os.environ.get("SLUICE_TOOLS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice", "tools")
    v = versions
    name = (f"k8s-{v['K8S_VERSION']}-etcd-{v['ETCD_VERSION']}-kwok-{v['KWOK_VERSION']}"
            f"-helm-{v['HELM_VERSION']}-minio-{v['MINIO_VERSION'].rsplit('-', 1)[-1]}")
    return Path(cache) / name


def missing_binaries(bin_dir: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def missing_message(bin_dir: Path) -> str:
    missing = ", ".join(missing_binaries(bin_dir))
    hint = "run hack/build-tools (a cold build takes 15-30 min)"
    if shutil.which("go") is None:
        hint += "; it needs Go >= 1.25 and `go` is not on PATH"
    return f"control-plane binaries missing in {bin_dir} ({missing}): {hint}"


def ensure_bin_dir(bin_dir: Path | None = None, build: bool = False) -> Path:
    """Return a directory holding every binary; build them first if `build`, else fail clearly."""
    bin_dir = Path(bin_dir) if bin_dir else expected_bin_dir()
    if not missing_binaries(bin_dir):
        return bin_dir
    if not build:
        raise HarnessError(missing_message(bin_dir))
    if shutil.which("go") is None:
        raise HarnessError(missing_message(bin_dir))
    proc = subprocess.run([str(BUILD_TOOLS)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"hack/build-tools failed (exit {proc.returncode}); see its output above")
    built = Path(proc.stdout.strip().splitlines()[-1])
    if missing_binaries(built):
        raise HarnessError(missing_message(built))
    return built
