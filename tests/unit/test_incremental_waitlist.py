"""The incremental pass (sorted waiters, only what may be due looked at) decides what a full pass does.

`queue.waitlist` keeps the waiters sorted between passes and names the few whose written
position or estimate may be due; a full pass numbers and checks every waiter. On random
histories of arrivals, finishes, priority changes, cancellations, deletions, queue capacity,
pause, aging and admission-mode changes, and TestEnvironments coming, going and changing
concurrency, every incremental plan must equal a full pass over a copy of the same view with the
same pacing memory: the same admissions, rejections and status writes (positions and estimates
within the same small write budget), and it must wake no later. The waiters' order and
positions are also checked against the plain definitions (`queue.ordering.order`,
`queue.positions.queue_positions`).
"""
import copy
import importlib
import random
from datetime import timedelta

import pytest

from sluice.api.settings import Settings
from sluice.planner import plan
from sluice.queue.ordering import order
from sluice.queue.positions import queue_positions

from .builders import T0, execution, pacing_copy, plan_summary, queue
from .test_reconcile import Sim, replace_spec

PRIORITIES = ["low", "normal", "high", "critical"]
QUEUES = ["default", "small", "aging", "strict"]


_summary = plan_summary


class TwinSim(Sim):
    """Plans incrementally within a random write budget, and checks each plan against a full pass."""

    def __init__(self, settings, rng):
        super().__init__(settings)
        self.rng = rng
        self.compared = 0

    def step(self, seconds=0.0, position_budget=None):
        self.now = T0 + timedelta(seconds=seconds) if seconds else self.now
        budget = position_budget if position_budget is not None else self.rng.choice([0, 1, 2, 3, 50])
        fresh = pacing_copy(self.memo)
        full = plan(copy.deepcopy(self.view), self.settings, self.now, self.first_seen, fresh, position_budget=budget)
        p = plan(self.view, self.settings, self.now, self.first_seen, self.memo, dirty=self.view.take_dirty(),
                 position_budget=budget)
        assert _summary(p) == _summary(full)
        if full.wake_at is not None:
            assert p.wake_at is not None and p.wake_at <= full.wake_at
        # the same pacing memory, but for the backlog's waiters the budget did not reach: a full
        # pass looks at them all (finding some no longer due), an incremental one when it gets there
        assert self.memo.moved_at == fresh.moved_at
        assert self.memo.deep_written == fresh.deep_written
        backlog = self.memo.carry.keys()
        assert {k: v for k, v in self.memo.eta_check_at.items() if k not in backlog} == \
            {k: v for k, v in fresh.eta_check_at.items() if k not in backlog}
        self._check_order()
        self.compared += 1
        return self.apply(p)

    def _check_order(self):
        wait = self.memo.wait
        aging = {k: q.spec.aging_seconds for k, q in self.view.queues.items()}
        plain = order(list(wait.candidates.values()), self.now, aging)
        assert [c.key for c in wait.in_order(set())] == [c.key for c in plain]
        positions = queue_positions(plain, set())
        for qk in wait.queues:
            for i, c in enumerate(wait.queued_in_order(qk)):
                assert positions[c.key] == i + 1


def _environment(sim: Sim, name: str, concurrency: int) -> None:
    sim.view.upsert_environment({"metadata": {"name": name, "generation": 1}, "spec": {"concurrency": concurrency}})


def _waiting(sim: Sim) -> list[str]:
    return [k[1] for k in sim.view.active
            if (st := sim.view.executions[k].status).phase is not None and st.phase.value == "Queued"]


@pytest.mark.parametrize("seed", range(10))
def test_incremental_waitlist_plans_equal_full_plans(seed):
    rng = random.Random(1000 + seed)
    sim = TwinSim(Settings(running_capacity=rng.choice([3, 5, 8]), queued_capacity=120, position_head=rng.choice([0, 2, 3]),
                           position_head_lag_seconds=rng.choice([0.5, 2.0]), position_writes_per_second=1000,
                           default_backoff_initial_seconds=1, best_effort_reserve_seconds=rng.choice([2, 60]),
                           environment_missing_grace_seconds=3), rng)
    sim.view.environments_listed = True
    sim.view.upsert_queue(queue("small", runningCapacity=2, queuedCapacity=25))
    sim.view.upsert_queue(queue("aging", runningCapacity=3, agingSeconds=rng.choice([2, 5])))
    sim.view.upsert_queue(queue("strict", runningCapacity=2, admission="StrictFIFO"))
    _environment(sim, "db", 1)
    t, made = 0.0, 0
    for _ in range(70):
        roll = rng.random()
        if roll < 0.45:  # arrivals, sometimes a burst
            for _ in range(rng.choice([1, 1, 2, 4, 8])):
                made += 1
                spec = {"priority": rng.choice(PRIORITIES), "queue": rng.choice(QUEUES)}
                if rng.random() < 0.15:
                    spec["shards"] = rng.choice([2, 3])
                if rng.random() < 0.15:
                    spec["environments"] = rng.sample(["db", "web", "gone"], rng.choice([1, 2]))
                if rng.random() < 0.1:
                    spec["queueTimeoutSeconds"] = rng.randint(3, 20)
                sim.add(execution(f"e{made:03d}", created=t, **spec))
        running = [k for k, j in sim.view.jobs.items() if j.occupies]
        for _ in range(rng.choice([0, 1, 1, 2])):
            if running:
                job = running.pop(rng.randrange(len(running)))[1]
                sim.finish(job, rng.choice([0, 0, 0, 1]))
        waiting = _waiting(sim)
        if waiting and rng.random() < 0.25:  # the owner raises or lowers a waiting execution's priority
            replace_spec(sim, rng.choice(waiting), priority=rng.choice(PRIORITIES))
        if waiting and rng.random() < 0.06:
            replace_spec(sim, rng.choice(waiting), cancel=True)
        names = [k[1] for k in sim.view.executions]
        if names and rng.random() < 0.08:
            victim = rng.choice(names)
            for j in list(sim.view.jobs_of(("ns", victim)).values()):
                sim.view.delete_job(j.namespace, j.name)
            sim.view.delete_execution("ns", victim)
            sim.memo.forget(("ns", victim))
        if rng.random() < 0.08:
            sim.view.upsert_queue(queue("small", runningCapacity=rng.randint(1, 3), queuedCapacity=rng.choice([5, 25]),
                                        paused=rng.random() < 0.3))
        if rng.random() < 0.04:
            sim.view.upsert_queue(queue("aging", runningCapacity=rng.randint(1, 3), agingSeconds=rng.choice([0, 2, 5])))
        if rng.random() < 0.04:
            sim.view.upsert_queue(queue("strict", runningCapacity=2,
                                        admission=rng.choice(["StrictFIFO", "BestEffortFIFO"])))
        if rng.random() < 0.06:  # environments come, go and change concurrency
            name = rng.choice(["db", "web"])
            if name in sim.view.environments and rng.random() < 0.3:
                sim.view.delete_environment(name)
                sim.view.touch_all()
            else:
                _environment(sim, name, rng.choice([1, 2]))
        t += rng.choice([0.0, 0.3, 1.0, 2.5, 7.0, 12.0])
        sim.step(t)
    # and it drains: the queues open, slots free, every execution ends
    sim.view.upsert_queue(queue("small", runningCapacity=3, queuedCapacity=25))
    sim.view.upsert_queue(queue("aging", runningCapacity=3, agingSeconds=2))
    _environment(sim, "db", 2)
    _environment(sim, "web", 2)
    for i in range(400):
        for k, j in list(sim.view.jobs.items()):
            if j.occupies:
                sim.finish(k[1], 0)
        t += 1.5
        sim.step(t)
        if not sim.view.active:
            break
    assert not sim.view.active, [sim.view.executions[k].status.reason for k in sim.view.active]
    assert sim.compared > 70


def test_deep_waiters_are_looked_at_only_when_their_position_may_be_due():
    """At depth, an idle pass looks at the head only, and one admission rewrites a handful."""
    sim = Sim(Settings(running_capacity=2, queued_capacity=3000, position_head=5))
    for i in range(2000):
        sim.add(execution(f"e{i:05d}", created=i))
    sim.step()
    sim.step(1)
    assert sim.step(2).writes == []  # idle: nothing due
    sim.finish(next(k[1] for k, j in sim.view.jobs.items() if j.occupies), 0)
    p = sim.step(3, position_budget=50)
    assert len(p.creates) == 1
    # one admission moves every rank by one: the head ranks' promise is timed (a wake), the deep
    # ones wait until their rank halves, so only the few whose rank just halved are rewritten
    assert len(p.writes) < 20 and p.wake_at is not None


def test_a_pass_that_fails_midway_makes_the_next_one_full(monkeypatch):
    """The dirty marks are taken and the memo may be half updated: the next pass starts afresh."""
    plan_module = importlib.import_module("sluice.planner.plan")  # the package re-exports `plan` the function

    sim = Sim()
    for i in range(5):
        sim.add(execution(f"e{i}", created=i))
    sim.step()
    assert not sim.memo.full_pending

    def boom(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(plan_module, "admit_and_queue", boom)
    with pytest.raises(RuntimeError):
        sim.step(1)
    assert sim.memo.full_pending
