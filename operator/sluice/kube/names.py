"""Deterministic object names: the same execution and attempt always give the same Job name,
so a create retried after a crash finds the existing Job (409) instead of making a second."""
from __future__ import annotations

import hashlib

MAX_NAME = 63


def _fit(base: str, suffix: str) -> str:
    if len(base) + len(suffix) <= MAX_NAME:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    room = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{base[:room].rstrip('-.')}-{digest}{suffix}"


def job_name(execution: str, attempt: int) -> str:
    return _fit(execution, f"-a{attempt}")


def source_config_map_name(execution: str) -> str:
    return _fit(execution, "-src")
