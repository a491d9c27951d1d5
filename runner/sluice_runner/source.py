"""Puts the test suite into a writable work directory, whatever it came from.

Sources arrive four ways (API.md `source`): inline files and ConfigMaps are mounted read-only at
SLUICE_SOURCE_DIR (with kubelet's `..data` symlink farm inside), image sources are a path baked
into the runner image, git sources are cloned here. Test tools write next to the suite (caches,
Playwright's generated config), so mounted and image sources are copied into the work directory;
a clone is already writable and is used in place.

Every way a source can be wrong (missing, empty, unreadable, a ref that does not exist) becomes a
SourceError (exit 2, never retried) whose message says what was wrong; a network failure while
cloning is an InfrastructureError (exit 3, retried).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

from sluice_runner.config import Settings
from sluice_runner.errors import InfrastructureError, RunnerError, SourceError
from sluice_runner.process import Supervisor
from sluice_runner.redact import redact_text, redact_url

# Never copied: kubelet's ConfigMap internals ("..data", "..2024_..."), VCS data, caches.
_SKIP = {".git", "__pycache__", ".pytest_cache", "node_modules"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_NETWORK_HINTS = (
    "could not resolve host",
    "failed to connect",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "early eof",
    "the remote end hung up unexpectedly",
    "gnutls",
    "ssl",
    "http/2 stream",
    "rpc failed",
)


def prepare_source(settings: Settings, work: Path, supervisor: Supervisor) -> Path:
    """Return a writable directory holding the suite (inside `work`)."""
    if settings.source_kind == "git":
        repo = clone_git(settings, work / "git", supervisor)
        suite = repo / settings.git_path if settings.git_path else repo
        where = f"path {settings.git_path!r} of {redact_url(settings.git_url or '')}@{settings.git_ref or 'HEAD'}"
        check_suite_dir(suite, where)
        return suite
    assert settings.source_dir is not None  # enforced by Settings
    where = f"{settings.source_kind} source at {settings.source_dir}"
    check_suite_dir(settings.source_dir, where)
    return copy_suite(settings.source_dir, work / "src", where)


def check_suite_dir(path: Path, where: str) -> None:
    """Raise SourceError unless `path` is a readable directory holding at least one file."""
    if not path.exists():
        raise SourceError(f"{where}: directory does not exist")
    if not path.is_dir():
        raise SourceError(f"{where}: not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise SourceError(f"{where}: directory is not readable")
    if not any(_suite_files(path)):
        raise SourceError(f"{where}: directory is empty (no test files)")


def _suite_files(root: Path):  # type: ignore[no-untyped-def]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _skipped(d)]
        for name in filenames:
            if not _skipped(name):
                yield Path(dirpath, name)


def _skipped(name: str) -> bool:
    return name.startswith("..") or name in _SKIP


def copy_suite(src: Path, dest: Path, where: str) -> Path:
    """Copy `src` to `dest`, following symlinks (ConfigMap files are links into ..data)."""
    try:
        shutil.copytree(src, dest, ignore=lambda _d, names: [n for n in names if _skipped(n)])
    except shutil.Error as exc:
        first = exc.args[0][0] if exc.args and exc.args[0] else exc
        raise SourceError(f"{where}: could not read {first}") from None
    except OSError as exc:
        raise SourceError(f"{where}: could not copy: {exc}") from None
    own_modules = src / "node_modules"
    if own_modules.is_dir():  # a suite baked into an image with its own dependencies: reuse them
        (dest / "node_modules").symlink_to(own_modules.resolve(), target_is_directory=True)
    return dest


def git_commands(url: str, ref: str | None, dest: Path) -> list[list[str]]:
    """The argv lists that fetch `ref` (branch, tag or full commit SHA; None = default branch)."""
    quiet = ["-c", "advice.detachedHead=false"]
    if ref and _SHA.match(ref):
        return [
            ["git", "init", "--quiet", str(dest)],
            ["git", *quiet, "-C", str(dest), "fetch", "--depth", "1", "--quiet", url, ref],
            ["git", *quiet, "-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"],
        ]
    branch = ["--branch", ref] if ref else []
    return [["git", *quiet, "clone", "--depth", "1", "--quiet", *branch, "--", url, str(dest)]]


def git_env(username: str | None, token: str | None) -> dict[str, str]:
    """Environment for git: no prompts; credentials as an HTTP header, never in argv or the URL."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    if token:
        basic = base64.b64encode(f"{username or 'git'}:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


def classify_git_failure(output: str, where: str) -> RunnerError:
    """Network trouble is retryable; anything else (bad URL, ref, credentials) is the spec's fault."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    detail = (fatal or lines or ["git failed"])[0]
    if any(hint in output.lower() for hint in _NETWORK_HINTS):
        return InfrastructureError(f"{where}: network error while cloning: {detail}")
    return SourceError(f"{where}: {detail}")


def clone_git(settings: Settings, dest: Path, supervisor: Supervisor) -> Path:
    assert settings.git_url is not None
    where = f"git source {redact_url(settings.git_url)}@{settings.git_ref or 'HEAD'}"
    if shutil.which("git") is None:
        raise InfrastructureError("git is not installed in the runner image")
    token = settings.git_token.get_secret_value() if settings.git_token else None
    env = git_env(settings.git_username, token)
    for argv in git_commands(settings.git_url, settings.git_ref, dest):
        result = supervisor.run(argv, cwd=dest.parent, env=env)
        if result.interrupted:
            raise InfrastructureError(f"{where}: interrupted while cloning")
        if result.returncode != 0:
            # git echoes the URL (with any user:token@ in it) in its errors: never pass that on.
            output = redact_text(result.tail, token)
            raise classify_git_failure(output, where)
    return dest
