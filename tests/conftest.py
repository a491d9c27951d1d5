"""Shared fixtures for every test layer (see tests/harness/)."""

from tests.harness.s3 import s3_server  # noqa: F401  (session-scoped MinIO)
from tests.harness.fixtures import cluster, namespace  # noqa: F401  (real control plane)
from tests.harness.redis import fresh_redis, redis_server  # noqa: F401  (redis-server with the ACL users)
