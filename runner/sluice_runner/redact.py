"""Credentials out of URLs before they reach a message, a log line, a status or an Event.

A git URL may carry `user:token@` (users paste them); the runner echoes the URL in its errors and
the operator in its validation messages, and both end up where anyone who can read the execution
(or its Events) sees them. One definition here, used by both (the operator imports sluice_runner).
Pure and standard-library only.
"""

from __future__ import annotations

import re

REDACTED = "***"
# scheme://userinfo@ anywhere in a text (userinfo: anything up to the first '@' without '/',
# white space or quotes in between).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact_url(url: str) -> str:
    """`https://user:token@host/x` -> `https://***@host/x`; other URLs (and scp-form
    `git@host:path`, whose user is not a secret) are returned unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", url)


def redact_text(text: str, *secrets: str | None) -> str:
    """`text` with the userinfo of every URL in it, and each given secret, replaced by ***."""
    out = redact_url(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, REDACTED)
    return out
