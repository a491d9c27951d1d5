"""StrictFIFO against BestEffortFIFO, and environments, in `queue.capacity.plan_admissions`.

The rule: a candidate that cannot start blocks those behind it under StrictFIFO; under
BestEffortFIFO it lets them try until it *holds* (has waited long enough), and from then on it
blocks exactly as under StrictFIFO, which is what keeps it from starving.
"""
from datetime import timedelta

from hypothesis import given, settings, strategies as st

from sluice.api.execution import Priority
from sluice.queue.capacity import Occupancy, QueueLimits, plan_admissions
from sluice.queue.ordering import Candidate, order

from .builders import T0

Q = ("ns", "q")


def cand(name, created=0, shards=1, envs=(), queue="q", ns="ns", prio="normal"):
    return Candidate(ns, name, queue, Priority(prio), T0 + timedelta(seconds=created), T0 + timedelta(seconds=created),
                     shards, environments=tuple(envs))


def names(admitted):
    return [c.name for c in admitted]


def occupied(queue_slots=0, envs=()):
    occ = Occupancy()
    if queue_slots:
        occ.take(Q, queue_slots, tuple(envs))
    return occ


def test_strict_head_that_needs_more_slots_blocks_its_queue():
    ordered = [cand("wide", 0, shards=4), cand("a", 1), cand("b", 2)]
    got = plan_admissions(ordered, occupied(1), 100, {Q: QueueLimits(4, strict=True)})
    assert got == []


def test_best_effort_lets_smaller_ones_pass_until_the_wide_one_holds():
    ordered = [cand("wide", 0, shards=4), cand("a", 1), cand("b", 2)]
    limits = {Q: QueueLimits(4)}
    assert names(plan_admissions(ordered, occupied(1), 100, limits, holds=lambda c: False)) == ["a", "b"]
    assert plan_admissions(ordered, occupied(1), 100, limits, holds=lambda c: c.name == "wide") == []


def test_a_full_queue_blocks_in_both_modes():
    ordered = [cand("a", 0), cand("b", 1)]
    assert plan_admissions(ordered, occupied(4), 100, {Q: QueueLimits(4)}, holds=lambda c: False) == []


def test_environment_of_concurrency_one_admits_one_in_order_across_queues_and_namespaces():
    ordered = order([cand("late-high", 5, envs=["db"], queue="q2", ns="other", prio="high"),
                     cand("early", 0, envs=["db"]), cand("free", 1)], T0, {})
    limits = {Q: QueueLimits(10), ("other", "q2"): QueueLimits(10)}
    got = plan_admissions(ordered, Occupancy(), 100, limits, {"db": 1}, holds=lambda c: False)
    assert names(got) == ["late-high", "free"]  # priority first, across namespaces; "early" waits


def test_a_busy_environment_is_busy_for_everyone_behind():
    ordered = [cand("a", 0, envs=["db"]), cand("b", 1, envs=["db"]), cand("c", 2, envs=["web"])]
    got = plan_admissions(ordered, occupied(1, ["db"]), 100, {Q: QueueLimits(10)}, {"db": 1, "web": 1},
                          holds=lambda c: False)
    assert names(got) == ["c"]


def test_a_missing_environment_has_no_room():
    got = plan_admissions([cand("a", 0, envs=["nope"])], Occupancy(), 100, {Q: QueueLimits(10)}, {},
                          holds=lambda c: False)
    assert got == []


def test_a_holding_candidate_reserves_all_its_environments():
    # "both" needs db (busy) and web (free): once it holds, "web-only" behind it may not take web,
    # or "both" could wait forever for the two to be free at once.
    ordered = [cand("both", 0, envs=["db", "web"]), cand("web-only", 1, envs=["web"]), cand("plain", 2)]
    caps = {"db": 1, "web": 1}
    occ = occupied(1, ["db"])
    assert names(plan_admissions(ordered, occ, 100, {Q: QueueLimits(10)}, caps, holds=lambda c: False)) == \
        ["web-only", "plain"]
    occ = occupied(1, ["db"])
    assert names(plan_admissions(ordered, occ, 100, {Q: QueueLimits(10)}, caps, holds=lambda c: True)) == ["plain"]


def test_strict_queue_blocks_behind_a_busy_environment():
    ordered = [cand("a", 0, envs=["db"]), cand("plain", 1)]
    got = plan_admissions(ordered, occupied(1, ["db"]), 100, {Q: QueueLimits(10, strict=True)}, {"db": 1})
    assert got == []


def test_wide_one_at_the_cluster_cap_stops_admission_only_when_holding():
    ordered = [cand("wide", 0, shards=3), cand("a", 1)]
    limits = {Q: QueueLimits(10)}
    assert names(plan_admissions(ordered, occupied(2), 4, limits, holds=lambda c: False)) == ["a"]
    assert plan_admissions(ordered, occupied(2), 4, limits, holds=lambda c: True) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from([(), ("db",), ("web",), ("db", "web")])),
                min_size=1, max_size=12),
       st.integers(0, 6), st.integers(1, 3), st.booleans())
def test_no_cap_is_ever_exceeded(specs, busy, env_cap, strict):
    ordered = [cand(f"c{i}", i, shards=s, envs=e) for i, (s, e) in enumerate(specs)]
    occ = occupied(busy, ["db"] if busy else [])
    before_db = occ.holders_of("db")
    got = plan_admissions(ordered, occ, 8, {Q: QueueLimits(6, strict=strict)}, {"db": env_cap, "web": env_cap},
                          holds=lambda c: c.created.second % 2 == 0)
    assert occ.used <= max(8, busy) and occ.of(Q) <= max(6, busy)
    assert sum("db" in c.environments for c in got) <= max(0, env_cap - before_db)
    assert sum("web" in c.environments for c in got) <= env_cap
    assert [c.name for c in got] == sorted((c.name for c in got), key=lambda n: int(n[1:]))  # in order

