"""Queue positions and start estimates: honest at a bounded cost.

The promise of `status.queuePosition`: among the first `head` ranks of a queue it is never more
than `lag` seconds behind the true rank; deeper, never more than a factor of 2 from it. Writing
every rank change would cost O(queue) writes per admission. Instead:
- a rank in the head that moved is rewritten a little before `lag` seconds after it first moved
  (the written rank was true until then, and one write carries every move of those seconds);
- a deeper rank is rewritten only when the true rank reaches half (or twice) the written one, so
  an execution that joins at rank r costs about log2(r / head) writes before it reaches the head.

`status.estimatedStartAt` comes from the queue's measured admissions: how many start per burst
and how far apart bursts are (`AdmissionRate`), so rank r starts in the burst its number falls
in, counted from the start of the last one. It rides along with position writes, and is rewritten on its
own only when it drifted by more than a quarter of the remaining wait (and 5 s). It is checked
every 10 s (`eta_recheck_at`; checking a far one only every eighth of its remaining wait, which
would cost O(log wait) checks per waiter, left estimates made early in a drain stale for
longer: see ETA_RECHECK_SHARE),
so this is the part of a pass that still grows with depth; one without an estimate (its queue
measured no admissions yet) is checked again once its queue has one, and that first estimate
waits up to FIRST_ETA_WAIT_SECONDS for a position write to carry it. Pure.
"""
from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta, timezone

from .ordering import Candidate

LAG_MARGIN = 0.8  # rewrite a moved head rank at 80 % of the lag: room for a pass and its write
BURSTS_REMEMBERED = 8  # per queue: ~30 s of a drain at 4 s bursts (16 kept a slow start in the rate longer)
BURST_SECONDS = 1.0  # admissions this close to a burst's first one belong to it
ETA_DRIFT = 0.25  # an estimate this far off (as a share of the remaining wait) is rewritten
ETA_DRIFT_FLOOR_SECONDS = 5.0
ETA_REWRITE_SECONDS = 10.0  # least time between two estimate-only rewrites of one execution
# a waiter's first estimate (its queue just measured enough admissions) waits this long for a
# position write to carry it before it is written on its own: a cold queue's backlog gets its
# estimates with the halvings already due, not in one extra write each (bench/README.md, fifth round)
FIRST_ETA_WAIT_SECONDS = 10.0
NO_ESTIMATE = datetime.max.replace(tzinfo=timezone.utc)  # "check again once the queue has an estimate"
ETA_RECHECK_SHARE = 0.0  # 0: every ETA_REWRITE_SECONDS. A share of the remaining wait (1/8) left the estimates made early in a drain stale longer: tests/cluster/test_positions.py p95 0.36 against 0.27 with `stress-ng --cpu 1`


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


def position_due(rank: int, written: int | None, moved_at: datetime | None, now: datetime, head: int,
                 lag: float) -> datetime | None:
    """When the written position must be rewritten to keep the promise (None: it may stay)."""
    if written == rank:
        return None
    if written is None or moved_at is None:
        return now
    if rank <= head or written <= head:
        return moved_at + timedelta(seconds=lag * LAG_MARGIN)
    if rank * 2 <= written or rank >= written * 2:
        return now
    return None


class AdmissionRate:
    """When a queue's last bursts of admissions happened, for the estimate of when the next ones will.

    Admissions come in bursts: Jobs started together finish together, and the slots they free
    are taken over a few passes within a second (measured on the control plane: bursts of 10
    spread over 0.6 s, 4.3 s apart). Counting each pass as a burst gave the right rate but lost
    the steps (rank 11 expected after 5.4 s instead of 8.6 s), so admissions within
    `BURST_SECONDS` of a burst's first one join it. Where runs vary and no bursts exist, a burst
    is one second of admissions: the rate stays right and the steps are at most a second.
    """

    def __init__(self) -> None:
        self.bursts: deque[list] = deque(maxlen=BURSTS_REMEMBERED)  # [first admission, count]
        self._cached: tuple | None = None  # (inputs, cadence): one computation per pass

    def admitted(self, at: datetime) -> None:
        if self.bursts and (at - self.bursts[-1][0]).total_seconds() <= BURST_SECONDS:
            self.bursts[-1][1] += 1
        else:
            self.bursts.append([at, 1])

    def cadence(self, now: datetime) -> tuple[float, float] | None:
        key = (len(self.bursts), self.bursts[-1][1] if self.bursts else 0,
               self.bursts[-1][0] if self.bursts else None, now)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        value = self._cadence(now)
        self._cached = (key, value)
        return value

    def _cadence(self, now: datetime) -> tuple[float, float] | None:
        """(admissions per burst, seconds between bursts) over the remembered bursts, or None.

        Admissions per burst is the mean of the bursts between the first and the last (the
        first may be the tail of an older one, the last may still be taking slots). When no
        burst came for much longer than usual, the gap counts: the queue has stalled.
        """
        if len(self.bursts) < 3:  # two intervals at least: one is no rate
            return None
        first, last = self.bursts[0][0], self.bursts[-1][0]
        intervals = len(self.bursts) - 1
        gap = (last - first).total_seconds() / intervals
        middle = [count for _, count in list(self.bursts)[1:-1]]
        per_burst = sum(middle) / len(middle)
        idle = (now - last).total_seconds()
        if idle > 2 * gap:
            gap = ((last - first).total_seconds() + idle) / (intervals + 1)
        return per_burst, gap

    def estimate(self, rank: int, now: datetime) -> datetime | None:
        """When the candidate at `rank` is expected to start, or None without history: it is
        admission number (taken so far in the last burst + rank) counted from that burst's start."""
        cadence = self.cadence(now)
        if cadence is None:
            return None
        per_burst, gap = cadence
        start, taken = self.bursts[-1]
        bursts_on = max(math.ceil((taken + rank) / per_burst - 1e-9) - 1, 0)
        return max(start + timedelta(seconds=bursts_on * gap), now)


def eta_drifted(new: datetime | None, written: datetime | None, now: datetime) -> bool:
    """An estimate is worth rewriting on its own only when it is far off."""
    if new is None or written is None:
        return new is not None and written is None
    remaining = max((new - now).total_seconds(), 0.0)
    return abs((new - written).total_seconds()) > max(ETA_DRIFT * remaining, ETA_DRIFT_FLOOR_SECONDS)


def eta_recheck_at(eta: datetime | None, now: datetime) -> datetime:
    """When an estimate written or found good now is next worth checking for drift; NO_ESTIMATE
    when there is none (its queue has measured no admissions): then when the queue has one."""
    if eta is None:
        return NO_ESTIMATE
    remaining = max((eta - now).total_seconds(), 0.0)
    return now + timedelta(seconds=max(ETA_REWRITE_SECONDS, ETA_RECHECK_SHARE * remaining))
