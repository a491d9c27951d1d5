"""Fixtures shared by the unit tests."""
from __future__ import annotations

import os

import pytest

from tests.harness.tools import HarnessError, ensure_bin_dir


@pytest.fixture(scope="module")
def bin_dir():
    """The built tools (helm for chart rendering); in CI their absence fails, locally it skips."""
    try:
        return ensure_bin_dir()
    except HarnessError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
