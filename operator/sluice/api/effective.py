"""The spec an attempt actually runs with: execution fields over queue defaults over operator settings.

Computed in one place so the Job renderer, the retry policy and validation agree on the values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sluice_runner.errors import DEFAULT_RETRY_ON as _DEFAULT_CLASSES

from .execution import RunnerOverrides, S3Target, TestExecutionSpec
from .queue import QueueDefaults
from .settings import Settings

DEFAULT_RETRY_ON: tuple[str, ...] = tuple(c.value for c in _DEFAULT_CLASSES)


@dataclass(frozen=True)
class RetryPolicy:
    limit: int
    initial_seconds: float
    factor: float
    max_seconds: float
    retry_on: tuple[str, ...]


@dataclass(frozen=True)
class EffectiveSpec:
    spec: TestExecutionSpec
    timeout_seconds: int
    retry: RetryPolicy
    runner: RunnerOverrides
    s3: S3Target | None
    runner_service_account: str | None = None
    extra: dict = field(default_factory=dict)


def _merge_runner(base: RunnerOverrides | None, over: RunnerOverrides | None) -> RunnerOverrides:
    """Field-by-field: a field the execution sets replaces the queue's; maps are merged."""
    merged = (base or RunnerOverrides()).model_copy(deep=True)
    if over is None:
        return merged
    for name in RunnerOverrides.model_fields:
        value = getattr(over, name)
        if value is None:
            continue
        current = getattr(merged, name)
        if isinstance(value, dict) and isinstance(current, dict):
            value = {**current, **value}
        setattr(merged, name, value)
    return merged


def effective_spec(spec: TestExecutionSpec, defaults: QueueDefaults | None, settings: Settings) -> EffectiveSpec:
    defaults = defaults or QueueDefaults()
    retries_q = defaults.retries
    retries_x = spec.retries

    def pick(attr: str, sub: str | None, fallback):
        for source in (retries_x, retries_q):
            if source is None:
                continue
            value = getattr(source, attr)
            if sub is not None and value is not None:
                value = getattr(value, sub)
            if value is not None:
                return value
        return fallback

    retry = RetryPolicy(
        limit=pick("limit", None, settings.default_retries),
        initial_seconds=pick("backoff", "initial_seconds", settings.default_backoff_initial_seconds),
        factor=pick("backoff", "factor", settings.default_backoff_factor),
        max_seconds=pick("backoff", "max_seconds", settings.default_backoff_max_seconds),
        retry_on=tuple(pick("retry_on", None, list(DEFAULT_RETRY_ON))),
    )
    s3 = None
    for candidate in (spec.artifacts, defaults.artifacts):
        if candidate is not None and candidate.s3 is not None:
            s3 = candidate.s3
            break
    if s3 is None and settings.artifacts_bucket:
        s3 = S3Target(
            bucket=settings.artifacts_bucket,
            prefix=settings.artifacts_prefix or None,
            endpoint=settings.artifacts_endpoint or None,
            region=settings.artifacts_region or None,
            secret_ref={"name": settings.artifacts_secret} if settings.artifacts_secret else None,
        )
    return EffectiveSpec(
        spec=spec,
        timeout_seconds=spec.timeout_seconds or defaults.timeout_seconds or settings.default_timeout_seconds,
        retry=retry,
        runner=_merge_runner(defaults.runner, spec.runner),
        s3=s3,
    )
