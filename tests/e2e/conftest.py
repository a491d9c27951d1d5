"""End-to-end: operator, real runner on the process node, real S3 (fixtures: tests/harness/sluice_fixtures.py)."""
from tests.harness.sluice_fixtures import crds, sluice, start_operator  # noqa: F401
