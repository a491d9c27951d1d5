"""What the runner is asked to do, read once from the environment (plus CLI overrides).

The operator talks to the runner only through environment variables (API.md, runner protocol),
so this model *is* that half of the contract: every variable the runner reads is a field here,
validated up front, so a wrong value ends the run with exit 2 and a message naming the variable
instead of failing half-way through a suite. This module only reads and checks; it never touches
the file system beyond `Path.exists` probes for defaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from sluice_runner.errors import ConfigError

Framework = Literal["playwright-python", "playwright-node"]
# "dir" is a plain local directory (hand use); the operator sets one of the other four.
SourceKind = Literal["inline", "configMap", "git", "image", "dir"]

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
_EXECUTION = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/(?P<prefix>.*))?$")


class Settings(BaseSettings):
    """The runner's inputs; field aliases are the environment variable names."""

    # case_sensitive: the exact names only. Read case-insensitively, a user env entry such as
    # `sluice_artifacts_url` (which the operator's reservation of SLUICE_* did not catch) would
    # override the operator's SLUICE_ARTIFACTS_URL and send artifacts into another prefix.
    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", env_ignore_empty=True, frozen=True, case_sensitive=True
    )

    execution: str | None = Field(None, alias="SLUICE_EXECUTION")
    attempt: int = Field(1, ge=1, alias="SLUICE_ATTEMPT")
    framework: Framework = Field("playwright-python", alias="SLUICE_FRAMEWORK")

    source_kind: SourceKind = Field("dir", alias="SLUICE_SOURCE_KIND")
    source_dir: Path | None = Field(None, alias="SLUICE_SOURCE_DIR")
    git_url: str | None = Field(None, alias="SLUICE_GIT_URL")
    git_ref: str | None = Field(None, alias="SLUICE_GIT_REF")
    git_path: str = Field("", alias="SLUICE_GIT_PATH")
    git_username: str | None = Field(None, alias="SLUICE_GIT_USERNAME")
    # The git Secret's `password` key is an alias of `token` (the operator maps both); token wins.
    git_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLUICE_GIT_TOKEN", "SLUICE_GIT_PASSWORD")
    )

    artifacts_url: str = Field("", alias="SLUICE_ARTIFACTS_URL")
    shard_index: int | None = Field(
        None, ge=0, validation_alias=AliasChoices("SLUICE_SHARD_INDEX", "JOB_COMPLETION_INDEX")
    )
    shard_total: int = Field(1, ge=1, le=64, alias="SLUICE_SHARD_TOTAL")
    base_url: str | None = Field(None, alias="BASE_URL")
    args: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="SLUICE_ARGS")

    # The live channel (progress.py): optional; unset, malformed or unreachable only turns live
    # progress off. SecretStr: the URL may carry the password too.
    redis_url: SecretStr | None = Field(None, alias="SLUICE_REDIS_URL")
    redis_password: SecretStr | None = Field(None, alias="SLUICE_REDIS_PASSWORD")

    termination_log: Path | None = Field(None, alias="SLUICE_TERMINATION_LOG")
    chromium: Path | None = Field(None, alias="SLUICE_CHROMIUM")
    node_modules: Path | None = Field(None, alias="SLUICE_NODE_MODULES")
    work_dir: Path | None = Field(None, alias="SLUICE_WORK_DIR")
    output_dir: Path | None = Field(None, alias="SLUICE_OUTPUT_DIR")

    s3_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    s3_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    s3_addressing_style: Literal["auto", "path", "virtual"] | None = Field(
        None, alias="SLUICE_S3_ADDRESSING_STYLE"
    )

    kill_grace_seconds: float = Field(5.0, gt=0, le=20, alias="SLUICE_KILL_GRACE_SECONDS")
    upload_timeout_seconds: float = Field(180.0, gt=0, alias="SLUICE_UPLOAD_TIMEOUT_SECONDS")
    # After SIGTERM everything (stopping the tests, collecting, uploading) must end within this
    # many seconds, inside Kubernetes' default 30 s grace period.
    stop_budget_seconds: float = Field(22.0, gt=0, alias="SLUICE_STOP_BUDGET_SECONDS")

    @field_validator("args", mode="before")
    @classmethod
    def _args_from_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON list of strings ({exc.msg})") from None
        if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
            raise ValueError("must be a JSON list of strings")
        return parsed

    @field_validator("execution")
    @classmethod
    def _namespaced_name(cls, value: str | None) -> str | None:
        if value is not None and not _EXECUTION.match(value):
            raise ValueError("must be 'namespace/name'")
        return value

    @field_validator("artifacts_url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if not value:
            return ""
        if not _S3_URL.match(value):
            raise ValueError("must be s3://bucket/prefix/ (or empty to keep artifacts local)")
        return value if value.endswith("/") else value + "/"

    @field_validator("git_path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        path = PurePosixPath(value.strip("/")) if value else PurePosixPath(".")
        if ".." in path.parts:
            raise ValueError("must stay inside the repository (no '..')")
        return "" if str(path) == "." else str(path)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.shard_index is not None and self.shard_index >= self.shard_total:
            raise ValueError(
                f"shard index {self.shard_index} must be below SLUICE_SHARD_TOTAL={self.shard_total}"
            )
        if self.source_kind == "git":
            if not self.git_url:
                raise ValueError("SLUICE_SOURCE_KIND=git needs SLUICE_GIT_URL")
        elif self.source_dir is None:
            raise ValueError(f"SLUICE_SOURCE_KIND={self.source_kind} needs SLUICE_SOURCE_DIR (or --source)")
        return self

    # Derived values: small and pure, so callers never re-derive them differently.
    @property
    def shard(self) -> int:
        """0-based shard index (JOB_COMPLETION_INDEX when SLUICE_SHARD_INDEX is absent)."""
        return self.shard_index or 0

    @property
    def sharded(self) -> bool:
        return self.shard_total > 1

    def termination_log_path(self) -> Path | None:
        """Where the termination message goes: explicit, else /dev/termination-log if present."""
        if self.termination_log is not None:
            return self.termination_log
        return DEFAULT_TERMINATION_LOG if DEFAULT_TERMINATION_LOG.exists() else None

    def addressing_style(self) -> str:
        """Path style for custom endpoints (MinIO and friends), else boto3's choice."""
        return self.s3_addressing_style or ("path" if self.s3_endpoint else "auto")


def _describe(exc: ValidationError) -> str:
    aliases = {name: f.alias or name for name, f in Settings.model_fields.items()}
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = ", ".join(aliases.get(p, p) for p in loc) or "settings"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid runner settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; `overrides` (CLI flags) win. Raises ConfigError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid runner settings: {exc}") from None
