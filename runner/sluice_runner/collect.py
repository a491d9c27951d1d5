"""Lays out a run's outputs as the artifact tree API.md promises, ready to upload as is.

    junit.xml  results.json  report/index.html  traces/*.zip  videos/*.webm  screenshots/*.png

Frameworks put traces, videos and screenshots in one folder per test
(`test-results/<test>/trace.zip`, ...); here they are flattened as layout.py says
(`<kind>/<test>.<ext>`, or `<kind>/<test>-<file>` when a test has several) so the lists in the
termination message are short, and each test's artifact paths in the results become keys
relative to the tree's root. Only files under the framework's output folder are picked up, never
arbitrary paths a suite named. The HTML report is the framework's own, copied as written:
Playwright's report folder for playwright-node, pytest-html's self-contained page for
playwright-python (whose links to traces, videos and screenshots the pytest plugin pointed at
these same keys). results.json itself is written by the CLI at the end (it carries the phase
timings).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runner.execute import Outputs
from sluice_runner.layout import REPORT_KEY, artifact_key
from sluice_runner.results import Artifact, RunResults


@dataclass
class ArtifactTree:
    """The laid-out tree: keys are paths relative to `root`, with '/' separators."""

    root: Path
    report: str | None = None
    junit: str | None = None
    traces: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    console: str | None = None


CONSOLE_KEY = "console.txt"


def collect(
    results: RunResults | None, outputs: Outputs, dest: Path, console: Path | None = None
) -> tuple[ArtifactTree, RunResults | None]:
    """Copy outputs into `dest` in the API layout; return the tree and results with keys."""
    dest.mkdir(parents=True, exist_ok=True)
    for stale in ("traces", "videos", "screenshots", "report"):  # a reused --output-dir
        shutil.rmtree(dest / stale, ignore_errors=True)
    (dest / "junit.xml").unlink(missing_ok=True)
    (dest / CONSOLE_KEY).unlink(missing_ok=True)
    tree = ArtifactTree(root=dest)
    if outputs.junit.is_file():
        shutil.copyfile(outputs.junit, dest / "junit.xml")
        tree.junit = "junit.xml"

    keys: dict[Path, str] = {}
    base = outputs.test_results
    if base.is_dir():
        # Dot-folders are Playwright's scratch space (.playwright-artifacts-N), not test output:
        # artifact_key skips them, and files of other kinds.
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            key = artifact_key(base, path)
            if key is None:
                continue
            (dest / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / key)
            keys[path.resolve()] = key
            getattr(tree, key.split("/", 1)[0]).append(key)

    if results is not None:
        results = _with_keys(results, keys)

    if console is not None and console.is_file():
        shutil.copyfile(console, dest / CONSOLE_KEY)
        tree.console = CONSOLE_KEY
    if outputs.html.is_dir() and (outputs.html / "index.html").is_file():
        shutil.copytree(outputs.html, dest / "report", dirs_exist_ok=True)
        tree.report = REPORT_KEY
    return tree, results


def _with_keys(results: RunResults, keys: dict[Path, str]) -> RunResults:
    tests = []
    for test in results.tests:
        found = [
            Artifact(kind=a.kind, path=keys[Path(a.path).resolve()])
            for a in test.artifacts
            if Path(a.path).resolve() in keys
        ]
        tests.append(test.model_copy(update={"artifacts": found}))
    return results.model_copy(update={"tests": tests})
