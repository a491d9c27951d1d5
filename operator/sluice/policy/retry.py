"""Retry decisions and backoff.

Delay before attempt n+1 = min(maxSeconds, initialSeconds * factor^(n-1) * (1 + jitter)), the
jitter (up to 10 %) derived from the execution's uid and attempt, so recomputing after a restart
gives the same time; the cap holds with the jitter included. `Timeout` and `InvalidSpec` are never retried.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sluice_runner.errors import ErrorClass

from ..api.effective import RetryPolicy

NEVER_RETRIED = frozenset({ErrorClass.TIMEOUT, ErrorClass.INVALID_SPEC})


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0


def backoff_seconds(policy: RetryPolicy, failed_attempt: int, seed: str = "") -> float:
    base = policy.initial_seconds * policy.factor ** (failed_attempt - 1)
    if seed and base > 0:
        digest = hashlib.sha256(f"{seed}/{failed_attempt}".encode()).digest()
        base *= 1 + int.from_bytes(digest[:4], "big") / 2**32 * 0.1
    return float(min(policy.max_seconds, base))


def decide_retry(policy: RetryPolicy, failure_class: str, failed_attempt: int, seed: str = "") -> RetryDecision:
    if failure_class in NEVER_RETRIED:
        return RetryDecision(False)
    if failure_class not in policy.retry_on or failed_attempt > policy.limit:
        return RetryDecision(False)
    return RetryDecision(True, backoff_seconds(policy, failed_attempt, seed))
