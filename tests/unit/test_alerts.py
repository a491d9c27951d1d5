"""The alert rules as shipped (docs/prometheus-alerts.yaml, the chart's PrometheusRule with its
default thresholds) under the real `promtool`: they parse, and every case of
tests/alerts/sluice_test.yaml passes. Also that each alert has a case where it fires and one where
it stays quiet, a severity, a summary, a description and a runbook section in docs/alerts.md.

promtool comes from hack/install-deps (unpacked into the tools cache); this test never skips: on a
machine without it, it fails with one line saying so. That the rules file is what the chart
renders is tests/unit/test_chart_render.py's job.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus-alerts.yaml"
CASES = ROOT / "tests" / "alerts" / "sluice_test.yaml"
RUNBOOK = ROOT / "docs" / "alerts.md"


def promtool() -> str:
    """hack/install-deps' promtool (its cache path, computed the way the script does), else PATH's."""
    cache = os.environ.get("SLUICE_TOOLS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice", "tools")
    cached = Path(cache) / "promtool" / "promtool"
    found = str(cached) if os.access(cached, os.X_OK) else shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool not found (not in {cached.parent}, not on PATH): run hack/install-deps", pytrace=False)
    return found


def _run(*args: str) -> None:
    proc = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    if proc.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}", pytrace=False)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_rules_file_is_valid():
    _run("check", "rules", str(RULES.relative_to(ROOT)))


def test_promtool_cases_pass():
    _run("test", "rules", str(CASES.relative_to(ROOT)))


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet():
    fires, quiet = set(), set()
    for case in yaml.safe_load(CASES.read_text())["tests"]:
        for check in case.get("alert_rule_test") or []:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fires == set(), "alerts never seen firing in tests/alerts/sluice_test.yaml"
    assert alerts - quiet == set(), "alerts never seen quiet in tests/alerts/sluice_test.yaml"


def test_every_alert_says_how_bad_what_and_where_to_read_on():
    sections = set(re.findall(r"^## (Sluice\w+)$", RUNBOOK.read_text(), re.M))
    for rule in _rules():
        name = rule["alert"]
        assert rule["labels"].get("severity") in {"critical", "warning", "info"}, name
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), name
        assert rule["annotations"]["runbook_url"].endswith(f"/docs/alerts.md#{name.lower()}"), name
        assert name in sections, f"docs/alerts.md has no '## {name}' section"
