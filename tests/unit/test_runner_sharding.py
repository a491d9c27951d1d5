"""Deterministic sharding of pytest suites by nodeid (the runner's pytest plugin)."""

from __future__ import annotations

import random

import pytest
from sluice_runner.pytest_plugin import shard_select

IDS = [f"tests/test_{m}.py::test_{n}[chromium]" for m in "abc" for n in range(7)] + [
    "tests/test_z.py::test_only"
]


@pytest.mark.parametrize("total", [1, 2, 3, 5, 22, 64])
def test_shards_partition_the_suite(total: int) -> None:
    shards = [shard_select(IDS, i, total) for i in range(total)]
    assert set().union(*shards) == set(IDS)
    assert sum(len(s) for s in shards) == len(IDS)  # disjoint: every test exactly once
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced by count


def test_split_does_not_depend_on_collection_order() -> None:
    shuffled = IDS[:]
    random.Random(7).shuffle(shuffled)
    assert [shard_select(shuffled, i, 3) for i in range(3)] == [shard_select(IDS, i, 3) for i in range(3)]


def test_more_shards_than_tests_leaves_some_empty() -> None:
    ids = ["a::x", "a::y"]
    assert [shard_select(ids, i, 4) for i in range(4)] == [{"a::x"}, {"a::y"}, set(), set()]
