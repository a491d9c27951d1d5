#!/usr/bin/env python3
"""Top functions of a py-spy raw profile (collapsed stacks): own and total samples, as a table.

`py-spy record --format raw` writes one line per distinct stack, `frame;frame;... COUNT`, root
first; idle threads are left out by py-spy unless --idle. A function's own time is the samples
where it is the innermost frame, its total the samples where it is anywhere on the stack
(counted once per stack, so recursion does not inflate it). Line numbers are dropped, so one
function is one row. Prints only; reads nothing but the file.

    python bench/profile_top.py PROFILE.raw [--top 10]
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def function(frame: str) -> str:
    m = FRAME.match(frame.strip())
    return f"{m['func']} ({m['file']})" if m else frame.strip()


def tally(lines) -> tuple[Counter, Counter, int]:
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    return own, total, samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--skip-total", default="runpy,asyncio/,<module>,cli/main.py,kopf/_core/reactor/running.py",
                    help="comma list of file parts whose frames are left out of the total table (the loop's roots)")
    args = ap.parse_args()
    with open(args.profile) as f:
        own, total, samples = tally(f)
    skip = [s for s in args.skip_total.split(",") if s]
    print(f"{samples} samples")
    print(f"\n{'own %':>6}  function (file)")
    for name, n in own.most_common(args.top):
        print(f"{100 * n / samples:6.1f}  {name}")
    print(f"\n{'total %':>7}  function (file)")
    shown = [(k, v) for k, v in total.most_common() if not any(s in k for s in skip)][: args.top]
    for name, n in shown:
        print(f"{100 * n / samples:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
