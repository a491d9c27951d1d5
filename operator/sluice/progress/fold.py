"""Folds a runner's progress events into counts: pure, one event at a time.

Events are the runner's (`sluice_runner.progress`): `start` {total}, `test` {title, outcome,
duration, error}, `console` {line}, `end` {...}. A sharded attempt has one stream per shard;
each is folded on its own and the shards are summed, so a shard's late start never resets
another's counts. Console lines are not kept here (the CLI reads them from the stream).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.execution import Progress

OUTCOMES = ("passed", "failed", "skipped", "flaky")


@dataclass
class StreamState:
    """One stream: where the relay has read to, and what it said."""

    last_id: str = "0-0"
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    current_test: str | None = None
    ended: bool = False

    def apply(self, fields: dict[str, str]) -> None:
        kind = fields.get("type")
        if kind == "start":
            self.total = _int(fields.get("total"))
        elif kind == "test":
            outcome = fields.get("outcome", "")
            if outcome in self.counts:
                self.counts[outcome] += 1
            self.current_test = (fields.get("title") or "")[:200] or self.current_test
        elif kind == "end":
            self.ended = True
            self.total = max(self.total, _int(fields.get("total")))


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def summarize(streams: list[StreamState], now: datetime) -> Progress | None:
    """The execution's progress over its shards' streams, or None when nothing was heard."""
    if not any(s.total or any(s.counts.values()) for s in streams):
        return None
    total = sum(s.total for s in streams)
    counts = {o: sum(s.counts[o] for s in streams) for o in OUTCOMES}
    done = sum(counts.values())
    total = max(total, done)
    current = next((s.current_test for s in reversed(streams) if s.current_test and not s.ended), None)
    return Progress(total=total, done=done, passed=counts["passed"], failed=counts["failed"],
                    skipped=counts["skipped"], flaky=counts["flaky"],
                    percent=int(100 * done / total) if total else 0, summary=f"{done}/{total}",
                    current_test=current, updated_at=now)
