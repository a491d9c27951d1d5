"""Retry decisions and backoff.

Delay before attempt n+1 = min(maxSeconds, initialSeconds * factor^(n-1)), plus up to 10%
jitter that is derived from the execution's uid and attempt, so recomputing after a restart
gives the same time. `Timeout` and `InvalidSpec` are never retried.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..api.effective import RetryPolicy

NEVER_RETRIED = frozenset({"Timeout", "InvalidSpec"})


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0


def backoff_seconds(policy: RetryPolicy, failed_attempt: int, seed: str = "") -> float:
    base = min(policy.max_seconds, policy.initial_seconds * policy.factor ** (failed_attempt - 1))
    if not seed or base <= 0:
        return float(base)
    digest = hashlib.sha256(f"{seed}/{failed_attempt}".encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") / 2**32 * 0.1
    return float(base * (1 + jitter))


def decide_retry(policy: RetryPolicy, failure_class: str, failed_attempt: int, seed: str = "") -> RetryDecision:
    if failure_class in NEVER_RETRIED:
        return RetryDecision(False)
    if failure_class not in policy.retry_on or failed_attempt > policy.limit:
        return RetryDecision(False)
    return RetryDecision(True, backoff_seconds(policy, failed_attempt, seed))
