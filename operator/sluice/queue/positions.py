"""Queue positions and when they are worth writing.

Writing every position on every admission costs O(queue) writes per admission. Positions are
exact up to `exact_depth`; deeper ones are rewritten only when they drift by a quarter, and no
execution gets two position writes closer than the cooldown.
"""
from __future__ import annotations

from .ordering import Candidate


def queue_positions(ordered: list[Candidate], admitted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """1-based position within its queue of every queued (not retrying, not admitted) candidate."""
    counters: dict[tuple[str, str], int] = {}
    out: dict[tuple[str, str], int] = {}
    for c in ordered:
        if c.key in admitted or not c.queued:
            continue
        n = counters.get(c.queue_key, 0) + 1
        counters[c.queue_key] = n
        out[c.key] = n
    return out


def position_worth_writing(
    desired: int, written: int | None, exact_depth: int, seconds_since_write: float | None, cooldown: float
) -> bool:
    if desired == written:
        return False
    if written is None:
        return True
    if seconds_since_write is not None and seconds_since_write < cooldown:
        return False
    if desired <= exact_depth:
        return True
    return abs(desired - written) * 4 >= written
