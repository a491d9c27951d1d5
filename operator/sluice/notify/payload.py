"""The bodies a notification POSTs: Sluice's JSON, or a Slack incoming-webhook message.

Built from the execution's status only (never its spec or inline files), the same bytes on
every retry of one notification. Pure.
"""
from __future__ import annotations

import json
from datetime import datetime

from pydantic import Field

from ..api.common import WireModel
from ..api.execution import Results, TestExecutionStatus

PAYLOAD_KIND = "TestExecutionOutcome"
SLACK_TEXT_LIMIT = 3000  # Slack's limit for a section's text
FAILURES_SHOWN = 5
MESSAGE_CHARS = 400  # of a message, test name or error shown in Slack (escaped, a line stays under the limit)
PHASE_EMOJI = {"Succeeded": ":white_check_mark:", "Failed": ":x:", "TimedOut": ":hourglass:",
               "Cancelled": ":no_entry_sign:", "Rejected": ":no_entry:"}


class ExecutionRef(WireModel):
    namespace: str
    name: str
    uid: str


class OutcomePayload(WireModel):
    """The `json` format: what ended, how, and where its report is."""

    kind: str = PAYLOAD_KIND
    notification: str
    idempotency_key: str
    execution: ExecutionRef
    queue: str
    phase: str
    reason: str | None = None
    message: str | None = None
    results: Results | None = None
    report_url: str | None = Field(default=None, alias="reportURL")
    attempts: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None


def outcome_payload(namespace: str, name: str, uid: str, queue: str, status: TestExecutionStatus,
                    notification: str, key: str) -> OutcomePayload:
    return OutcomePayload(
        notification=notification, idempotency_key=key, execution=ExecutionRef(namespace=namespace, name=name, uid=uid),
        queue=queue, phase=status.phase.value if status.phase else "", reason=status.reason, message=status.message,
        results=status.results, report_url=status.artifacts.report if status.artifacts else None,
        attempts=status.attempt or len(status.attempts), started_at=status.started_at,
        completed_at=status.completed_at)


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str) -> str:
    if url.startswith(("http://", "https://")) and not any(c in url for c in "<>| "):
        return f"<{url}|report>"
    return f"`{_escape(url)}`"


def slack_message(p: OutcomePayload) -> dict:
    """Slack's incoming-webhook shape: `text` (the notification's fallback) and one mrkdwn section."""
    who = f"{p.execution.namespace}/{p.execution.name}"
    head = f"TestExecution {who} {p.phase}" + (f" ({p.reason})" if p.reason else "")
    lines = [f"{PHASE_EMOJI.get(p.phase, '')} *{_escape(who)}* in queue `{_escape(p.queue)}`: "
             f"*{_escape(p.phase)}*" + (f" ({_escape(p.reason)})" if p.reason else "")]
    if p.message:
        lines.append(_escape(p.message[:MESSAGE_CHARS]))
    r = p.results
    if r is not None and r.total:
        counts = f"{r.passed} passed, {r.failed} failed, {r.skipped} skipped"
        lines.append(counts + (f", {r.flaky} flaky" if r.flaky else "") + f" of {r.total}"
                     + (f" in {r.duration_seconds:.0f}s" if r.duration_seconds else "")
                     + (f" · attempt {p.attempts}" if p.attempts > 1 else ""))
        for f in r.failures[:FAILURES_SHOWN]:
            lines.append(f"• `{_escape(f.test[:MESSAGE_CHARS])}`" + (f": {_escape(f.error[:MESSAGE_CHARS])}" if f.error else ""))
    if p.report_url:
        lines.append(f"Report: {_link(p.report_url)}")
    text = lines[0]
    for line in lines[1:]:  # whole lines only: a cut could split an escape or a link
        if len(text) + 1 + len(line) > SLACK_TEXT_LIMIT - 2:
            text += "\n…"
            break
        text += "\n" + line
    return {"text": head, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def body(fmt: str, p: OutcomePayload) -> bytes:
    """The bytes POSTed for format `json` or `slack`."""
    doc = slack_message(p) if fmt == "slack" else p.wire()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
