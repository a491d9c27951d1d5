"""Source preparation pieces: git argv and credentials, error classes, ConfigMap copies, node config."""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice_runner import node
from sluice_runner.errors import InfrastructureError, SourceError
from sluice_runner.source import (
    check_suite_dir,
    classify_git_failure,
    copy_suite,
    git_commands,
    git_env,
)


def test_git_commands_branch_tag_or_default() -> None:
    assert git_commands("https://h/r.git", "main", Path("/w/git")) == [
        [
            "git",
            "-c",
            "advice.detachedHead=false",
            "clone",
            "--depth",
            "1",
            "--quiet",
            "--branch",
            "main",
            "--",
            "https://h/r.git",
            "/w/git",
        ]
    ]
    assert "--branch" not in git_commands("https://h/r.git", None, Path("/w/git"))[0]


def test_git_commands_for_a_commit_sha() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    cmds = git_commands("https://h/r.git", sha, Path("/w/git"))
    assert [c[c.index("-C") + 2] if "-C" in c else c[1] for c in cmds] == ["init", "fetch", "checkout"]
    assert sha in cmds[1] and "--depth" in cmds[1]


def test_git_credentials_never_in_argv() -> None:
    env = git_env("bot", "s3cret")
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader" and env["GIT_CONFIG_VALUE_0"].startswith(
        "Authorization: Basic "
    )
    assert all(
        "s3cret" not in part for cmd in git_commands("https://h/r.git", "main", Path("/w")) for part in cmd
    )
    assert "GIT_CONFIG_COUNT" not in git_env(None, None)


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("fatal: unable to access 'https://h/r.git/': Could not resolve host: h", InfrastructureError),
        ("fatal: unable to access 'https://h/': Failed to connect to h port 443", InfrastructureError),
        ("warning: x\nfatal: Remote branch nope not found in upstream origin", SourceError),
        ("fatal: Authentication failed for 'https://h/r.git/'", SourceError),
        ("fatal: repository 'https://h/r.git/' not found", SourceError),
    ],
)
def test_git_failures_are_classified(output: str, kind: type) -> None:
    err = classify_git_failure(output, "git source")
    assert type(err) is kind
    assert "fatal:" in err.message


def test_check_suite_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        check_suite_dir(tmp_path / "nope", "src")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="not a directory"):
        check_suite_dir(tmp_path / "file", "src")
    (tmp_path / "empty" / "__pycache__").mkdir(parents=True)
    with pytest.raises(SourceError, match="empty"):
        check_suite_dir(tmp_path / "empty", "src")


def test_copy_follows_configmap_links_and_skips_internals(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    (mount / "..2026_01").mkdir(parents=True)
    (mount / "..2026_01" / "test_a.py").write_text("def test_a(): pass\n")
    (mount / "..data").symlink_to("..2026_01")
    (mount / "test_a.py").symlink_to("..data/test_a.py")
    dest = copy_suite(mount, tmp_path / "src", "configMap")
    assert [p.name for p in dest.iterdir()] == ["test_a.py"]
    assert not (dest / "test_a.py").is_symlink()


def test_node_args_and_config_lookup(tmp_path: Path) -> None:
    assert node.split_config_arg(["--grep", "x", "-c", "e2e/pw.config.ts", "--workers=2"]) == (
        "e2e/pw.config.ts",
        ["--grep", "x", "--workers=2"],
    )
    assert node.split_config_arg(["--config=a.ts"]) == ("a.ts", [])
    assert node.drop_reporter_args(["--reporter", "dot", "--reporter=line", "-j", "1"]) == ["-j", "1"]
    (tmp_path / "playwright.config.mjs").write_text("export default {}")
    assert node.find_user_config(tmp_path, None) == tmp_path / "playwright.config.mjs"
    wrapper = node.render_wrapper(tmp_path / "playwright.config.mjs", {"executablePath": "/usr/bin/chromium"})
    assert 'import * as userModule from "./playwright.config.mjs";' in wrapper
    assert '"executablePath": "/usr/bin/chromium"' in wrapper
    assert "const userConfig: any = {};" in node.render_wrapper(None, {})
