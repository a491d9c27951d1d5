#!/usr/bin/env python3
"""Planner pass cost (pure, no cluster): prints milliseconds per dispatcher pass, asserts nothing.

A view with N executions (running capacity 50, the rest Queued) is planned the way the
dispatcher plans it (incrementally, with a Memo): an idle pass (nothing changed) and a pass
after one Job finished (its execution completes, the next one is admitted, positions move), and
a full pass (the dispatcher forces one every FULL_PASS_SECONDS and after each re-list). Times are CPU time of
this process (time.process_time), so a loaded machine inflates them less than wall time. The
pass after a finish admits one execution: it is the planner's CPU per execution, and must not
grow with the number waiting (the scale curve of issue 17).

    python bench/planner.py [--executions 1000 10000 50000] [--rounds 20] [--environments 50]

With `--environments E`, E TestEnvironments of concurrency 1 exist and execution i names
environment i % E (the shared-environment case: holders counted from Jobs every pass).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluice.api.settings import Settings  # noqa: E402
from tests.unit.builders import execution  # noqa: E402
from tests.unit.test_reconcile import Sim  # noqa: E402


def measure(n: int, rounds: int = 20, environments: int = 0) -> dict:
    sim = Sim(Settings(running_capacity=50, queued_capacity=n + 10))
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
    began = time.process_time()
    for _ in range(rounds):
        sim.step(2)
    idle = (time.process_time() - began) / rounds
    running = [k[1] for k, j in sim.view.jobs.items() if j.occupies][:rounds]
    began = time.process_time()
    for i, name in enumerate(running):
        sim.finish(name, 0)
        # The dispatcher's position and estimate writes are a token bucket of
        # SLUICE_POSITION_WRITES_PER_SECOND (50); passes here are 1 s apart. Without it an estimate
        # that drifts for every waiter at once would rewrite all 5,000 in one pass, which the
        # operator never does.
        sim.step(3 + i, position_budget=int(sim.settings.position_writes_per_second))
    finish = (time.process_time() - began) / len(running)
    began = time.process_time()
    sim.memo.full()
    sim.step(4 + len(running))
    full = time.process_time() - began
    return {"executions": n, "waiting": n - 50, "environments": environments,
            "idle_pass_ms": round(idle * 1000, 2), "pass_after_a_job_finished_ms": round(finish * 1000, 2),
            "full_pass_ms": round(full * 1000, 1), "setup_s": round(setup, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executions", type=int, nargs="+", default=[1000, 10000, 50000],
                    help="executions in the view (50 of them running, the rest waiting)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--environments", type=int, default=0, help="TestEnvironments of concurrency 1 shared round-robin")
    args = ap.parse_args()
    print("| waiting | idle pass ms | pass after a Job finished (one admitted) ms | full pass ms |")
    print("| ---: | ---: | ---: | ---: |")
    for n in args.executions:
        r = measure(n, args.rounds, environments=args.environments)
        print(f"| {r['waiting']:,} | {r['idle_pass_ms']} | {r['pass_after_a_job_finished_ms']} | {r['full_pass_ms']} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
