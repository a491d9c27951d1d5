"""Shared model configuration: camelCase on the wire, snake_case in Python."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

API_GROUP = "sluice.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

LABEL_EXECUTION = "sluice.dev/execution"
LABEL_QUEUE = "sluice.dev/queue"
LABEL_ATTEMPT = "sluice.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_RERUN_OF = "sluice.dev/rerun-of"  # on an execution `sluice rerun` made: the name of the first run
LABEL_SCHEDULE = "sluice.dev/schedule"  # on an execution a TestSchedule created: the schedule's name
ANNOTATION_SCHEDULED_AT = "sluice.dev/scheduled-at"  # ... and the scheduled time it was created for (RFC 3339)
DEFAULT_QUEUE = "default"  # needs no TestQueue object: the operator's caps bound it

# The leader's Lease says which caps the operator really applies, for the CLI to show.
LABEL_OPERATOR_LEASE = "sluice.dev/operator-lease"
ANNOTATION_RUNNING_CAPACITY = "sluice.dev/running-capacity"
ANNOTATION_QUEUED_CAPACITY = "sluice.dev/queued-capacity"
# ... and which namespaces that operator watches (comma-separated; "" = all), so with several
# releases side by side (docs/sharding.md) the CLI shows the caps of the release that runs a namespace.
ANNOTATION_WATCHED_NAMESPACES = "sluice.dev/watched-namespaces"

# On a runner Job: the TestEnvironments its execution holds while the Job is unfinished
# (comma-separated). Holders are counted from these, like running slots, never from statuses.
ANNOTATION_ENVIRONMENTS = "sluice.dev/environments"


class WireModel(BaseModel):
    """A model that reads and writes Kubernetes-style camelCase JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
    __test__ = False  # TestExecution*/TestQueue* are not pytest test classes

    def wire(self) -> dict:
        """The JSON-ready dict, without unset or None fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

