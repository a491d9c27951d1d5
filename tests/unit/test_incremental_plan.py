"""The incremental planner decides exactly what a full pass would, on random histories.

The dispatcher steps only executions marked dirty (or whose timer fell due) and keeps the
other candidates from earlier passes. Any input change that forgets to mark its execution
dirty would show up here as a difference from a full pass over a copy of the same view.
"""
import copy
import random
from datetime import timedelta

import pytest

from sluice.api.settings import Settings
from sluice.planner import plan

from .builders import T0, execution, pacing_copy, plan_summary, queue
from .test_reconcile import Sim, replace_spec

PRIORITIES = ["low", "normal", "high", "critical"]


_summary = plan_summary


class TwinSim(Sim):
    """Plans incrementally, and checks each plan against a full pass over a copy of the view."""

    def step(self, seconds=0.0):
        self.now = T0 + timedelta(seconds=seconds) if seconds else self.now
        fresh = pacing_copy(self.memo)
        full = plan(copy.deepcopy(self.view), self.settings, self.now, self.first_seen, fresh)
        p = plan(self.view, self.settings, self.now, self.first_seen, self.memo, dirty=self.view.take_dirty())
        assert _summary(p) == _summary(full)
        if full.wake_at is not None:
            assert p.wake_at is not None and p.wake_at <= full.wake_at
        return self.apply(p)


@pytest.mark.parametrize("seed", range(12))
def test_incremental_plans_equal_full_plans(seed):
    rng = random.Random(seed)
    sim = TwinSim(Settings(running_capacity=4, queued_capacity=30, position_head_lag_seconds=0.5,
                           position_writes_per_second=1000, position_head=5,
                           default_backoff_initial_seconds=1))
    sim.view.upsert_queue(queue("small", runningCapacity=2, queuedCapacity=6))
    sim.view.upsert_queue(queue("aging", runningCapacity=3, agingSeconds=4))
    t, made = 0.0, 0
    for _ in range(80):
        roll = rng.random()
        if roll < 0.35:
            for _ in range(rng.randint(1, 4)):
                made += 1
                spec = {"priority": rng.choice(PRIORITIES), "queue": rng.choice(["default", "small", "aging", "late"])}
                if rng.random() < 0.2:
                    spec["queueTimeoutSeconds"] = rng.randint(2, 8)
                if rng.random() < 0.15:
                    spec["source"] = {"configMap": {"name": "suite"}}
                sim.add(execution(f"e{made:03d}", created=t, **spec))
        running = [k for k, j in sim.view.jobs.items() if j.occupies]
        if running and roll < 0.8:
            job = rng.choice(running)[1]
            sim.finish(job, rng.choice([0, 0, 1, 3]))
        names = [k[1] for k in sim.view.executions]
        if names and rng.random() < 0.08:
            replace_spec(sim, rng.choice(names), cancel=True)
        if names and rng.random() < 0.05:
            victim = rng.choice(names)
            for j in list(sim.view.jobs_of(("ns", victim)).values()):
                sim.view.delete_job(j.namespace, j.name)
            sim.view.delete_execution("ns", victim)
        if rng.random() < 0.05:
            sim.view.upsert_queue(queue("small", runningCapacity=rng.randint(1, 3), queuedCapacity=6,
                                        paused=rng.random() < 0.3))
        if rng.random() < 0.06:  # a queue its executions wait for (QueueNotFound) comes and goes
            if ("ns", "late") in sim.view.queues:
                sim.view.delete_queue("ns", "late")
            else:
                sim.view.upsert_queue(queue("late", runningCapacity=2))
        t += rng.choice([0.0, 0.3, 1.0, 2.5])
        p = sim.step(t)
        for key, name in p.check_config_maps:
            sim.view.set_config_map_check(key, name if rng.random() < 0.3 else None)
    # and it drains: every execution ends, every slot is free
    sim.view.upsert_queue(queue("small", runningCapacity=2, queuedCapacity=6))
    sim.view.upsert_queue(queue("late", runningCapacity=2))
    for i in range(200):
        for k, j in list(sim.view.jobs.items()):
            if j.occupies:
                sim.finish(k[1], 0)
        t += 1.5
        p = sim.step(t)
        for key, _ in p.check_config_maps:
            sim.view.set_config_map_check(key, None)
        if not sim.view.active:
            break
    assert not sim.view.active, [sim.view.executions[k].status.phase for k in sim.view.active]


def test_memo_forgets_what_left_the_queue_and_full_restarts_from_scratch():
    sim = Sim()
    sim.add(execution("a"))
    sim.step()  # admitted; its own status change marks it dirty for the next pass
    sim.step()
    assert sim.memo.waiting == {} and not sim.memo.full_pending
    sim.memo.full()
    assert sim.memo.full_pending
    assert sim.step().creates == [] and not sim.memo.full_pending
