from datetime import timedelta

from hypothesis import given, settings, strategies as st

from sluice.api.execution import Priority
from sluice.queue.capacity import Occupancy, QueueLimits, plan_admissions
from sluice.queue.ordering import Candidate, effective_rank, next_promotion, order
from sluice.queue.positions import position_due, queue_positions

from .builders import T0


def cand(name, prio="normal", created=0, queued=None, queue="q", shards=1, ns="ns"):
    return Candidate(ns, name, queue, Priority(prio), T0 + timedelta(seconds=created),
                     T0 + timedelta(seconds=queued if queued is not None else created), shards)


def test_priority_class_beats_creation_time():
    got = order([cand("a", "low", 0), cand("b", "critical", 5), cand("c", "normal", 1), cand("d", "high", 9)], T0, {})
    assert [c.name for c in got] == ["b", "d", "c", "a"]


def test_fifo_within_class_then_queued_at_then_name():
    got = order([cand("b", created=1, queued=3), cand("a", created=1, queued=3), cand("z", created=1, queued=2),
                 cand("first", created=0, queued=9)], T0, {})
    assert [c.name for c in got] == ["first", "z", "a", "b"]


def test_aging_promotes_one_class_per_period():
    assert effective_rank(Priority.low, 59, 60) == 3
    assert effective_rank(Priority.low, 60, 60) == 2
    assert effective_rank(Priority.low, 1000, 60) == 0
    assert effective_rank(Priority.low, 1000, 0) == 3
    old_low = cand("old-low", "low", created=0)
    new_high = cand("new-high", "high", created=100)
    now = T0 + timedelta(seconds=130)
    assert [c.name for c in order([new_high, old_low], now, {("ns", "q"): 60})] == ["old-low", "new-high"]
    assert next_promotion(old_low, now, 60) == 50


def test_capacity_is_global_and_per_queue_with_shards():
    ordered = [cand("a", queue="q1", shards=2), cand("b", queue="q1"), cand("c", queue="q2"), cand("d", queue="q2")]
    limits = {("ns", "q1"): QueueLimits(2), ("ns", "q2"): QueueLimits(5)}
    got = plan_admissions(ordered, Occupancy(), 4, limits)
    assert [c.name for c in got] == ["a", "c", "d"]  # b blocked by q1's cap, not skipping ahead in q1


def test_head_that_does_not_fit_globally_stops_admission():
    ordered = [cand("big", shards=3), cand("small")]
    occ = Occupancy()
    occ.take(("ns", "q"), 2)
    assert plan_admissions(ordered, occ, 4, {("ns", "q"): QueueLimits(10)}) == []


def test_paused_queue_admits_nothing_but_others_go():
    ordered = [cand("p", queue="paused"), cand("r", queue="run")]
    limits = {("ns", "paused"): QueueLimits(5, paused=True), ("ns", "run"): QueueLimits(5)}
    assert [c.name for c in plan_admissions(ordered, Occupancy(), 5, limits)] == ["r"]


def test_positions_count_per_queue_and_skip_admitted():
    ordered = [cand("a", queue="q1"), cand("b", queue="q2"), cand("c", queue="q1"), cand("d", queue="q1")]
    assert queue_positions(ordered, {("ns", "a")}) == {("ns", "b"): 1, ("ns", "c"): 1, ("ns", "d"): 2}


def test_position_promise_rule():
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    moved = now - timedelta(seconds=1)
    assert position_due(3, None, None, now, 10, 5.0) == now  # never written: now
    assert position_due(3, 3, moved, now, 10, 5.0) is None  # true: nothing to do
    assert position_due(3, 4, moved, now, 10, 5.0) == moved + timedelta(seconds=4)  # head: batched, inside 5 s
    assert position_due(12, 9, moved, now, 10, 5.0) == moved + timedelta(seconds=4)  # leaving the head too
    assert position_due(210, 400, moved, now, 10, 5.0) is None  # deep: within a factor of 2
    assert position_due(200, 400, moved, now, 10, 5.0) == now  # half: rewrite now
    assert position_due(800, 400, moved, now, 10, 5.0) == now  # twice: rewrite now


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["q1", "q2", "q3"])), max_size=40),
       st.integers(1, 12), st.integers(0, 6))
def test_never_overshoots(items, global_cap, used):
    ordered = [cand(f"e{i}", queue=q, shards=s) for i, (s, q) in enumerate(items)]
    limits = {("ns", "q1"): QueueLimits(3), ("ns", "q2"): QueueLimits(5), ("ns", "q3"): QueueLimits(12)}
    occ = Occupancy()
    occ.take(("ns", "q3"), min(used, global_cap))
    got = plan_admissions(ordered, occ, global_cap, limits)
    assert occ.used <= global_cap
    for q, lim in limits.items():
        assert occ.of(q) <= lim.running_capacity
    # FIFO within a queue: the admitted of each queue are a prefix of that queue's order (of
    # those that could ever fit: one wider than a capacity must not block the rest)
    for q, lim in limits.items():
        names = [c.name for c in ordered if c.queue_key == q
                 and c.shards <= lim.running_capacity and c.shards <= global_cap]
        taken = [c.name for c in got if c.queue_key == q]
        assert names[: len(taken)] == taken
