#!/usr/bin/env python3
"""Planner pass cost (pure, no cluster): prints milliseconds per dispatcher pass, asserts nothing.

A view with N executions (running capacity 50, the rest Queued) is planned the way the
dispatcher plans it (incrementally, with a Memo): an idle pass (nothing changed), a pass after
one Job finished (its execution completes, the next one is admitted, positions move), a full
pass (the dispatcher forces one every FULL_PASS_SECONDS and after each re-list), and the
planner's CPU per admitted execution: `--drain` Jobs finish one at a time, one pass 1 s apart
after each (each admits one), total CPU of `plan()` / admitted. The last column adds the
dispatcher's full pass every 10 s to that drain (amortized over the admissions of those 10 s).
Every pass gets the dispatcher's budget of position and estimate writes (50), full passes too;
the drain's mean writes per pass are printed beside (they are CPU the budget allows, not depth),
and the same drain is run again with a budget of 0 (what the pass costs besides those writes).
Before the timed finishes, WARM_UP finishes let the queue measure its first admissions: every
waiter then gets its first estimate at once (the largest of those passes is printed last).
Times are CPU time of this process (time.process_time) inside `plan()` only, so a loaded
machine inflates them less than wall time, and the simulator's own bookkeeping is not counted.
Per-execution cost must not grow with the number waiting (the scale curve of issue 17).

    python bench/planner.py [--executions 1000 10000 50000] [--rounds 20] [--drain 300]
                            [--environments 50] [--json]

With `--environments E`, E TestEnvironments of concurrency 1 exist and execution i names
environment i % E (the shared-environment case: holders counted from Jobs every pass).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluice.api.settings import Settings  # noqa: E402
from sluice.planner import plan  # noqa: E402
from tests.unit.builders import T0, execution  # noqa: E402
from tests.unit.test_reconcile import Sim  # noqa: E402

FULL_PASS_EVERY = 10  # passes 1 s apart; the dispatcher's FULL_PASS_SECONDS
WARM_UP = 5  # finishes before the timed ones: the queue's first estimates go out meanwhile


class TimedSim(Sim):
    """The unit tests' simulator, counting the CPU spent inside `plan()` only."""

    cpu = 0.0
    last = None

    def step(self, seconds=0.0, position_budget=10**9):
        self.now = T0 + timedelta(seconds=seconds) if seconds else self.now
        began = time.process_time()
        p = plan(self.view, self.settings, self.now, self.first_seen, self.memo, dirty=self.view.take_dirty(),
                 position_budget=position_budget)
        self.cpu += time.process_time() - began
        return self.apply(p)


def _finish_one_and_step(sim: TimedSim, t: float, budget: int | None = None) -> int:
    """A Job finishes; one pass (the dispatcher's position write budget: a token bucket of
    SLUICE_POSITION_WRITES_PER_SECOND, passes here 1 s apart). Returns how many it admitted."""
    running = next(k[1] for k, j in sim.view.jobs.items() if j.occupies)
    sim.finish(running, 0)
    budget = int(sim.settings.position_writes_per_second) if budget is None else budget
    sim.last = sim.step(t, position_budget=budget)
    return len(sim.last.creates)


def measure(n: int, rounds: int = 20, environments: int = 0, drain: int = 300) -> dict:
    sim = TimedSim(Settings(running_capacity=50, queued_capacity=n + 10))
    for e in range(environments):
        sim.view.upsert_environment({"metadata": {"name": f"env-{e}", "generation": 1}, "spec": {"concurrency": 1}})
    sim.view.environments_listed = True
    began = time.process_time()
    for i in range(n):
        envs = {"environments": [f"env-{i % environments}"]} if environments else {}
        sim.add(execution(f"e{i:06d}", created=i * 0.01, **envs))
    sim.step()
    sim.step(1)
    setup = time.process_time() - began
    t = 2.0
    sim.cpu = 0.0
    for _ in range(rounds):
        sim.step(t)
        t += 1
    idle = sim.cpu / rounds
    # warm-up: the queue measures its first admissions, so every waiter gets its first estimate
    # (each is looked at once, and the writes go out within the budget); the passes below come after
    first_estimates = 0.0
    for _ in range(WARM_UP):
        sim.cpu = 0.0
        _finish_one_and_step(sim, t)
        t += 1
        first_estimates = max(first_estimates, sim.cpu)
    sim.cpu = 0.0
    for _ in range(rounds):
        _finish_one_and_step(sim, t)
        t += 1
    finish = sim.cpu / rounds
    sim.cpu = 0.0
    sim.memo.full()
    sim.step(t, position_budget=int(sim.settings.position_writes_per_second))
    t += 1
    full = sim.cpu
    per_admitted, writes = {}, 0
    for budget in (int(sim.settings.position_writes_per_second), 0):
        sim.cpu, admitted = 0.0, 0
        for i in range(drain):
            admitted += _finish_one_and_step(sim, t, budget)
            writes += sim.last.position_writes if budget else 0
            t += 1
        per_admitted[budget] = sim.cpu / max(admitted, 1)
    per_admitted, bare = per_admitted[int(sim.settings.position_writes_per_second)], per_admitted[0]
    # the same drain's cost with the dispatcher's periodic full pass: one per FULL_PASS_EVERY passes
    with_full = per_admitted + full / FULL_PASS_EVERY
    return {"executions": n, "waiting": n - 50, "environments": environments,
            "idle_pass_ms": round(idle * 1000, 2), "pass_after_a_job_finished_ms": round(finish * 1000, 2),
            "full_pass_ms": round(full * 1000, 1), "drained": drain, "admitted": admitted,
            "cpu_per_admitted_ms": round(per_admitted * 1000, 2),
            "cpu_per_admitted_with_full_passes_ms": round(with_full * 1000, 2),
            "cpu_per_admitted_without_position_writes_ms": round(bare * 1000, 2),
            "first_estimates_pass_ms": round(first_estimates * 1000, 1),
            "position_writes_per_pass": round(writes / max(drain, 1), 1), "setup_s": round(setup, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executions", type=int, nargs="+", default=[1000, 10000, 50000],
                    help="executions in the view (50 of them running, the rest waiting)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--drain", type=int, default=300, help="Jobs finished one at a time for CPU per admitted")
    ap.add_argument("--environments", type=int, default=0, help="TestEnvironments of concurrency 1 shared round-robin")
    ap.add_argument("--json", action="store_true", help="one JSON object per depth instead of the table")
    args = ap.parse_args()
    if not args.json:
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        print("| waiting | idle pass ms | pass after a Job finished (one admitted) ms | full pass ms "
              "| CPU per admitted ms | with a full pass every 10 s ms | position writes per pass "
              "| CPU per admitted, no position writes ms | first estimates pass ms |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.executions:
        r = measure(n, args.rounds, environments=args.environments, drain=args.drain)
        if args.json:
            print(json.dumps(r | {"load_average": os.getloadavg()[0]}), flush=True)
        else:
            print(f"| {r['waiting']:,} | {r['idle_pass_ms']} | {r['pass_after_a_job_finished_ms']} | "
                  f"{r['full_pass_ms']} | {r['cpu_per_admitted_ms']} | {r['cpu_per_admitted_with_full_passes_ms']} | "
                  f"{r['position_writes_per_pass']} | {r['cpu_per_admitted_without_position_writes_ms']} | "
                  f"{r['first_estimates_pass_ms']} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
