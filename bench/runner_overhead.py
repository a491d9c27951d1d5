"""How much time the runner adds to each attempt, beyond the test command itself.

Runs `python -m sluice_runner` N times on a tiny suite (one real Chromium page test) and, per run,
takes the runner process's wall time (interpreter start to exit, measured here) minus the test
command's wall time and minus uploads (both from the `timings` the runner writes into
results.json). What is left is the runner's own cost: Python start-up and imports, settings,
copying the source, preparing the command, collecting artifacts, writing results and the
termination message. Prints p50/p95 per framework; the target is <= 2 s at p95.

    python bench/runner_overhead.py [--runs 10] [--framework playwright-python|playwright-node|both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 2.0
SUITES = {
    "playwright-python": {
        "test_tiny.py": "def test_tiny(page):\n    page.set_content('<h1>hi</h1>')\n    assert page.inner_text('h1') == 'hi'\n",
    },
    "playwright-node": {
        "tiny.spec.mjs": "import { test, expect } from '@playwright/test';\n"
        "test('tiny', async ({ page }) => { await page.setContent('<h1>hi</h1>'); await expect(page.locator('h1')).toHaveText('hi'); });\n",
    },
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def one_run(framework: str, suite: Path, scratch: Path) -> dict[str, float]:
    out = scratch / "artifacts"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update(
        SLUICE_FRAMEWORK=framework, SLUICE_SOURCE_KIND="inline", SLUICE_SOURCE_DIR=str(suite),
        SLUICE_OUTPUT_DIR=str(out), SLUICE_TERMINATION_LOG=str(scratch / "termination-log"),
    )  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sluice_runner"], env=env, cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"runner failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    timings = json.loads((out / "results.json").read_text())["timings"]
    overhead = wall - timings["tests"] - timings.get("upload", 0.0)
    return {"wall": wall, "tests": timings["tests"], "overhead": overhead,
            **{k: v for k, v in timings.items() if k not in ("tests", "total")}}  # fmt: skip


def bench(framework: str, runs: int) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        suite = Path(tmp) / "suite"
        suite.mkdir()
        for name, body in SUITES[framework].items():
            (suite / name).write_text(body)
        one_run(framework, suite, Path(tmp) / "warmup")  # page cache, pyc files
        for i in range(runs):
            rows.append(one_run(framework, suite, Path(tmp) / f"run{i}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--framework", default="both", choices=["playwright-python", "playwright-node", "both"]
    )
    args = parser.parse_args()
    frameworks = list(SUITES) if args.framework == "both" else [args.framework]
    worst = 0.0
    for framework in frameworks:
        rows = bench(framework, args.runs)
        overhead = [r["overhead"] for r in rows]
        p50, p95 = percentile(overhead, 0.5), percentile(overhead, 0.95)
        worst = max(worst, p95)
        phases = {k: statistics.median(r.get(k, 0.0) for r in rows) for k in ("source", "prepare", "collect")}
        print(f"{framework}: runner overhead over {len(rows)} runs: p50 {p50:.3f}s  p95 {p95:.3f}s  "
              f"(test command p50 {statistics.median(r['tests'] for r in rows):.2f}s, "
              f"runner wall p50 {statistics.median(r['wall'] for r in rows):.2f}s; phase medians "
              + ", ".join(f"{k} {v:.3f}s" for k, v in phases.items()) + ")")  # fmt: skip
    verdict = "OK" if worst <= TARGET_SECONDS else "OVER TARGET"
    print(f"target p95 <= {TARGET_SECONDS:.1f}s: {verdict}")
    return 0 if worst <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
