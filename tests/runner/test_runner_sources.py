"""Where suites come from: a kubelet-style ConfigMap mount and a git repository (file://, offline)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.runner.conftest import run_runner, write_suite

pytestmark = pytest.mark.runner

PLAIN = {"test_plain.py": "def test_one():\n    assert True\n\ndef test_two():\n    assert 1 + 1 == 2\n"}


def configmap_mount(root: Path, files: dict[str, str]) -> Path:
    """Lay files out as kubelet mounts a ConfigMap: ..<ts>/file, ..data -> ..<ts>, file -> ..data/file."""
    stamp = root / "..2026_11_23_09_00_00.000000001"
    write_suite(stamp, files)
    (root / "..data").symlink_to(stamp.name)
    for name in files:
        (root / name).symlink_to(f"..data/{name}")
    for path in [root, stamp, *stamp.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return root


def test_configmap_mount_is_copied_to_a_writable_dir(tmp_path: Path) -> None:
    mount = configmap_mount(tmp_path / "mount", PLAIN)
    run = run_runner(tmp_path / "run", {"SLUICE_SOURCE_KIND": "configMap", "SLUICE_SOURCE_DIR": str(mount)})
    assert run.returncode == 0, run.output
    assert (run.message["outcome"], run.message["total"], run.message["passed"]) == ("passed", 2, 2)
    copied = tmp_path / "run" / "work" / "src"
    assert sorted(p.name for p in copied.iterdir()) == ["test_plain.py"]  # no ..data farm


def _git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write_suite(repo / "e2e", PLAIN)
    write_suite(repo, {"README.md": "not tests\n"})
    _git("init", "--quiet", "--initial-branch", "main", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("commit", "--quiet", "-m", "suite", cwd=repo)
    _git("tag", "v1", cwd=repo)
    _git("config", "uploadpack.allowReachableSHA1InWant", "true", cwd=repo)
    return repo


@pytest.mark.parametrize("ref", ["main", "v1", "sha", None])
def test_git_source_with_subpath(tmp_path: Path, git_repo: Path, ref: str | None) -> None:
    ref = _git("rev-parse", "HEAD", cwd=git_repo) if ref == "sha" else ref
    env = {
        "SLUICE_SOURCE_KIND": "git",
        "SLUICE_GIT_URL": git_repo.as_uri(),
        "SLUICE_GIT_PATH": "e2e",
        "SLUICE_GIT_TOKEN": "s3cret-token",
    }
    if ref:
        env["SLUICE_GIT_REF"] = ref
    run = run_runner(tmp_path / "run", env)
    assert run.returncode == 0, run.output
    assert run.message["passed"] == 2
    assert "s3cret-token" not in run.output


def test_git_source_errors_say_what_was_wrong(tmp_path: Path, git_repo: Path) -> None:
    base = {"SLUICE_SOURCE_KIND": "git", "SLUICE_GIT_URL": git_repo.as_uri()}
    run = run_runner(tmp_path / "ref", {**base, "SLUICE_GIT_REF": "no-such-branch"})
    assert run.returncode == 2, run.output
    assert "no-such-branch" in run.message["message"]
    run = run_runner(tmp_path / "path", {**base, "SLUICE_GIT_PATH": "missing/dir"})
    assert run.returncode == 2 and "does not exist" in run.message["message"], run.output
    run = run_runner(tmp_path / "url", {**base, "SLUICE_GIT_URL": (tmp_path / "nowhere").as_uri()})
    assert run.returncode == 2 and run.message["errorClass"] == "InvalidSpec", run.output
