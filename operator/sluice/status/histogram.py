"""The fixed logarithmic histogram of wait and run times (docs/API.md, "History").

Why: `TestQueue.status` percentiles must survive the deletion of the executions they were
computed from, so the queue keeps bucket counts (`status.retired.waitBuckets`/`runBuckets`)
instead of samples. The scale is part of the API (counts written by one operator version are
read by the next), so it is one fixed definition here, not a sketch library's internal mapping:

- bucket `i` holds the times in `[GROWTH**(i + K_MIN), GROWTH**(i + K_MIN + 1))` seconds, with
  `GROWTH = 1.05` and `K_MIN = -142` (about 1 ms); bucket 0 also holds anything shorter, the last
  bucket (`BUCKETS - 1`, from about 176 days) anything longer;
- a percentile is the nearest-rank bucket's geometric middle, `GROWTH**(k + 0.5)`: within 2.5 %
  of the exact nearest-rank value for times between 1 ms and 176 days (plus rounding to 1 ms).

Live executions and retired buckets are merged into one histogram before a percentile is read,
so moving an execution from one side to the other never changes what the status says.
It never reads the view or the clock.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

GROWTH = 1.05
K_MIN = -142  # GROWTH**K_MIN is about 0.98 ms
K_MAX = 339  # GROWTH**K_MAX is about 176 days, GROWTH**(K_MAX + 1) about 185
BUCKETS = K_MAX - K_MIN + 1
_LOG_GROWTH = math.log(GROWTH)


def bucket_of(seconds: float) -> int:
    """The bucket index of a duration (clamped to the scale's ends)."""
    if seconds <= 0:
        return 0
    i = math.floor(math.log(seconds) / _LOG_GROWTH) - K_MIN  # walks over 50,000 executions call this
    return 0 if i < 0 else BUCKETS - 1 if i >= BUCKETS else i


def value_of(index: int) -> float:
    """The duration a bucket stands for: its geometric middle, in seconds."""
    return GROWTH ** (index + K_MIN + 0.5)


class Histogram:
    """Counts per bucket of the fixed scale; `counts()` is the wire form (trailing zeros cut)."""

    __slots__ = ("_counts", "total")

    def __init__(self, counts: Iterable[int] = ()):
        self._counts = [0] * BUCKETS
        self.total = 0
        self.merge(counts)

    def add(self, seconds: float) -> None:
        self._counts[bucket_of(seconds)] += 1
        self.total += 1

    def add_bucket(self, index: int, count: int = 1) -> None:
        self._counts[min(BUCKETS - 1, max(0, index))] += count
        self.total += count

    def merge(self, counts: Iterable[int]) -> "Histogram":
        """Adds wire-form counts (or another histogram's `counts()`); negatives are ignored."""
        for i, n in enumerate(counts):
            if n > 0:
                self.add_bucket(i, n)
        return self

    def counts(self) -> list[int]:
        end = len(self._counts)
        while end and not self._counts[end - 1]:
            end -= 1
        return self._counts[:end]

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (the rank `ceil(q% of n)`), as its bucket's middle; None when empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        seen = 0
        for i, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return round(value_of(i), 3)
        return round(value_of(BUCKETS - 1), 3)
