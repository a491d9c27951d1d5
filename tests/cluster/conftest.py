"""Operator tests against the real control plane (fixtures: tests/harness/sluice_fixtures.py)."""
from tests.harness.sluice_fixtures import crds, sluice, start_operator  # noqa: F401
