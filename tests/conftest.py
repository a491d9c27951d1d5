"""Shared fixtures for every test layer (see tests/harness/)."""

from tests.harness.s3 import s3_server  # noqa: F401  (session-scoped MinIO)
