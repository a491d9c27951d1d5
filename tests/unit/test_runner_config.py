"""Runner settings: the environment half of the runner protocol, validated up front (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice_runner.cli import parse_args
from sluice_runner.config import load_settings
from sluice_runner.errors import ConfigError, ExitCode


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("SLUICE_", "AWS_", "JOB_COMPLETION", "BASE_URL")):
            monkeypatch.delenv(key)


def settings(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_operator_env_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        SLUICE_EXECUTION="team-a/checkout", SLUICE_ATTEMPT="2", SLUICE_FRAMEWORK="playwright-node",
        SLUICE_SOURCE_KIND="configMap", SLUICE_SOURCE_DIR="/sluice/source",
        SLUICE_ARTIFACTS_URL="s3://bucket/pre/team-a/checkout/attempt-2", SLUICE_SHARD_TOTAL="3",
        JOB_COMPLETION_INDEX="2", BASE_URL="http://app", SLUICE_ARGS='["--grep", "@smoke"]',
        AWS_ENDPOINT_URL_S3="http://minio:9000", AWS_REGION="eu-west-1",
    )  # fmt: skip
    assert (s.execution, s.attempt, s.framework, s.source_kind) == (
        "team-a/checkout",
        2,
        "playwright-node",
        "configMap",
    )
    assert s.source_dir == Path("/sluice/source")
    assert s.artifacts_url == "s3://bucket/pre/team-a/checkout/attempt-2/"  # trailing slash added
    assert (s.shard, s.shard_total, s.sharded) == (2, 3, True)
    assert s.args == ["--grep", "@smoke"]
    assert (s.s3_endpoint, s.s3_region, s.addressing_style()) == ("http://minio:9000", "eu-west-1", "path")


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, SLUICE_SOURCE_DIR="/x", SLUICE_ARTIFACTS_URL="", SLUICE_ARGS="")
    assert (s.framework, s.attempt, s.shard, s.shard_total, s.args, s.artifacts_url) == (
        "playwright-python",
        1,
        0,
        1,
        [],
        "",
    )
    assert s.addressing_style() == "auto"


def test_sluice_shard_index_wins_over_job_completion_index(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        SLUICE_SOURCE_DIR="/x",
        SLUICE_SHARD_TOTAL="4",
        SLUICE_SHARD_INDEX="1",
        JOB_COMPLETION_INDEX="3",
    )
    assert s.shard == 1


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"SLUICE_ARGS": "--grep x"}, "SLUICE_ARGS"),
        ({"SLUICE_ARGS": '["a", 1]'}, "SLUICE_ARGS"),
        ({"SLUICE_FRAMEWORK": "cypress"}, "SLUICE_FRAMEWORK"),
        ({"SLUICE_ATTEMPT": "0"}, "SLUICE_ATTEMPT"),
        ({"SLUICE_SHARD_TOTAL": "65"}, "SLUICE_SHARD_TOTAL"),
        ({"SLUICE_SHARD_TOTAL": "2", "SLUICE_SHARD_INDEX": "2"}, "below SLUICE_SHARD_TOTAL"),
        ({"SLUICE_ARTIFACTS_URL": "https://bucket/x"}, "SLUICE_ARTIFACTS_URL"),
        ({"SLUICE_EXECUTION": "no-namespace"}, "SLUICE_EXECUTION"),
        ({"SLUICE_SOURCE_KIND": "svn"}, "SLUICE_SOURCE_KIND"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], mentions: str
) -> None:
    with pytest.raises(ConfigError) as err:
        settings(monkeypatch, SLUICE_SOURCE_DIR="/x", **env)
    assert mentions in err.value.message
    assert err.value.exit_code == ExitCode.INVALID


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"SLUICE_SOURCE_KIND": "inline"}, "needs SLUICE_SOURCE_DIR"),
        ({"SLUICE_SOURCE_KIND": "git"}, "needs SLUICE_GIT_URL"),
        (
            {"SLUICE_SOURCE_KIND": "git", "SLUICE_GIT_URL": "https://x/y.git", "SLUICE_GIT_PATH": "../etc"},
            "SLUICE_GIT_PATH",
        ),
    ],
)
def test_source_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions):
        settings(monkeypatch, **env)


def test_git_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        SLUICE_SOURCE_KIND="git",
        SLUICE_GIT_URL="https://x/y.git",
        SLUICE_GIT_PATH="/e2e/",
        SLUICE_GIT_REF="main",
        SLUICE_GIT_TOKEN="t0k",
    )
    assert (s.git_path, s.git_ref) == ("e2e", "main")
    assert "t0k" not in repr(s)


def test_cli_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_SOURCE_KIND", "configMap")
    monkeypatch.setenv("SLUICE_SOURCE_DIR", "/from/env")
    monkeypatch.setenv("SLUICE_ARGS", '["-k", "env"]')
    overrides = parse_args(
        [
            "--source",
            "/suite",
            "--framework",
            "playwright-node",
            "--shard",
            "2/3",
            "--",
            "-x",
            "--grep",
            "a b",
        ]
    )
    s = load_settings(**overrides)
    assert (s.source_dir, s.source_kind, s.framework) == (Path("/suite"), "dir", "playwright-node")
    assert (s.shard, s.shard_total) == (1, 3)  # --shard is 1-based
    assert s.args == ["-x", "--grep", "a b"]
