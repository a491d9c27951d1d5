"""Shared model configuration: camelCase on the wire, snake_case in Python."""
from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

API_GROUP = "sluice.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

LABEL_EXECUTION = "sluice.dev/execution"
LABEL_QUEUE = "sluice.dev/queue"
LABEL_ATTEMPT = "sluice.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"


class WireModel(BaseModel):
    """A model that reads and writes Kubernetes-style camelCase JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
    __test__ = False  # TestExecution*/TestQueue* are not pytest test classes

    def wire(self) -> dict:
        """The JSON-ready dict, without unset or None fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
