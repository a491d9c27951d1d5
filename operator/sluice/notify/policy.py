"""The delivery rules of a notification, in one place: how often, how long, what counts as done.

A POST is retried on 5xx, 429 and network errors (timeouts included) with a doubling pause, at
most MAX_ATTEMPTS times in all; any other answer outside 2xx ends it at once (a 4xx will not get
better by asking again, and redirects are not followed: the URL in the Secret must be the final
one). Pure: never any I/O, and no message here ever contains the URL (it is a secret).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

MAX_ATTEMPTS = 5  # POSTs per notification and outcome, the first included
FIRST_BACKOFF_SECONDS = 1.0  # pause after the first failed attempt; doubles after each one
BACKOFF_MAX_SECONDS = 30.0  # also the most a Retry-After header can ask for
REQUEST_TIMEOUT_SECONDS = 10.0  # one POST, connect to last byte: the whole bound is ~65 s
SEND_CONCURRENCY = 16  # POSTs in flight at once across all executions
ANSWER_CHARS = 200  # of the receiver's body kept in status.notifications[].message
# An execution that ended longer ago than this without a record is not notified: a notification
# added to a queue does not fire for its whole history.
ELIGIBLE_SECONDS = 600.0


class Verdict(str, Enum):
    DELIVERED = "Delivered"
    RETRY = "Retry"
    GIVE_UP = "GivenUp"


@dataclass(frozen=True)
class Answer:
    """What one POST came to: the verdict, one line for the status, and a pause the receiver asked for."""

    verdict: Verdict
    message: str
    retry_after: float | None = None


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """The pause after `attempts` failed POSTs: 1, 2, 4, 8 s (capped), or the receiver's Retry-After."""
    if retry_after is not None and retry_after >= 0:
        return min(BACKOFF_MAX_SECONDS, retry_after)
    return min(BACKOFF_MAX_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))


def schedule() -> list[float]:
    """The pauses between the MAX_ATTEMPTS POSTs when nobody asks for another: the retry bound in numbers."""
    return [backoff_seconds(n) for n in range(1, MAX_ATTEMPTS)]


def judge_status(code: int, body: str = "", retry_after: str | None = None) -> Answer:
    """The verdict on an HTTP answer."""
    snippet = " ".join(body.split())[:ANSWER_CHARS]
    text = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 200 <= code < 300:
        return Answer(Verdict.DELIVERED, text)
    if code == 429 or code >= 500:
        return Answer(Verdict.RETRY, text, _seconds(retry_after))
    if 300 <= code < 400:
        return Answer(Verdict.GIVE_UP, f"{text} (redirects are not followed: put the final URL in the Secret)")
    return Answer(Verdict.GIVE_UP, text)


def judge_error(kind: str, detail: str = "") -> Answer:
    """A POST that got no HTTP answer (refused, reset, DNS, TLS, timeout): always worth another try."""
    detail = " ".join(detail.split())[:ANSWER_CHARS]
    return Answer(Verdict.RETRY, f"network error: {kind}" + (f" ({detail})" if detail else ""))


def url_problem(url: str) -> str | None:
    """Why `url` cannot be POSTed to (one line that never repeats the URL), or None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return f"is not an http or https URL (scheme {parts.scheme!r})" if parts.scheme else "is not an http or https URL"
    if not parts.hostname:
        return "has no host"
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the doubling pause is close enough
