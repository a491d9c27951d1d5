"""The fixed logarithmic histogram of queue wait and run times (status/histogram.py)."""
from __future__ import annotations

import random

import pytest

from sluice.status.histogram import BUCKETS, GROWTH, K_MIN, Histogram, bucket_of, value_of
from sluice.status.queue_stats import percentile

TOLERANCE = GROWTH ** 0.5 - 1  # a bucket's middle is this close to anything in it


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("q", [50, 95])
def test_percentiles_are_within_tolerance_of_the_exact_ones_on_random_data(seed, q):
    rng = random.Random(seed)
    shape = seed % 4
    n = rng.randint(1, 3000)
    if shape == 0:
        values = [rng.lognormvariate(0, 2) for _ in range(n)]  # waits: ms to minutes
    elif shape == 1:
        values = [rng.uniform(0.01, 5) for _ in range(n)]
    elif shape == 2:
        values = [rng.expovariate(1 / 600) for _ in range(n)]  # runs: minutes
    else:
        values = [rng.choice([0.2, 1.0, 1.0, 30.0, 3600.0]) * rng.uniform(1, 1.01) for _ in range(n)]
    h = Histogram()
    for v in values:
        h.add(v)
    exact = percentile(values, q)
    assert h.percentile(q) == pytest.approx(exact, rel=TOLERANCE + 1e-9, abs=0.0015)


def test_merging_counts_equals_adding_every_sample():
    rng = random.Random(7)
    a_values = [rng.lognormvariate(1, 1.5) for _ in range(500)]
    b_values = [rng.lognormvariate(3, 0.5) for _ in range(300)]
    a, b, both = Histogram(), Histogram(), Histogram()
    for v in a_values:
        a.add(v)
        both.add(v)
    for v in b_values:
        b.add(v)
        both.add(v)
    merged = Histogram(a.counts()).merge(b.counts())
    assert merged.counts() == both.counts() and merged.total == 800
    for q in (1, 50, 95, 99, 100):
        assert merged.percentile(q) == both.percentile(q)


def test_the_wire_form_is_dense_and_cut_after_the_last_count():
    h = Histogram()
    assert h.counts() == [] and h.percentile(50) is None
    h.add(1.0)
    counts = h.counts()
    assert len(counts) == -K_MIN + 1 and counts[-1] == 1 and sum(counts) == 1
    assert Histogram(counts).counts() == counts


@pytest.mark.parametrize("seconds,index", [
    (0, 0), (-3, 0), (1e-9, 0), (1.0, -K_MIN), (GROWTH, -K_MIN + 1), (0.99999, -K_MIN - 1), (1e12, BUCKETS - 1),
])
def test_bucket_edges(seconds, index):
    assert bucket_of(seconds) == index


def test_one_second_is_an_edge_so_a_run_of_at_least_one_second_never_reads_below_it():
    h = Histogram()
    h.add(1.0001)
    assert h.percentile(50) >= 1.0
    assert value_of(bucket_of(1.0)) == pytest.approx(GROWTH ** 0.5)


def test_the_scale_covers_a_millisecond_to_months():
    assert GROWTH ** K_MIN == pytest.approx(0.001, rel=0.03)
    assert GROWTH ** (K_MIN + BUCKETS) / 86400 > 180
