"""The TestExecution a schedule creates for one scheduled time, built from `spec.template`.

The template's spec is copied as written (not re-serialized through the models, which would
drop what they do not know); its labels and annotations are kept, and the schedule adds its own:
`sluice.dev/schedule` (which schedule), `sluice.dev/scheduled-at` (which time) and a controller
ownerReference, so deleting the schedule deletes its executions. Pure: it never calls the API.
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone

from ..api.common import ANNOTATION_SCHEDULED_AT, GROUP_VERSION, LABEL_SCHEDULE
from ..kube.names import schedule_label_value
from .index import ScheduleRecord


def schedule_owner_reference(schedule: ScheduleRecord) -> dict:
    # No blockOwnerDeletion: setting it needs `update` on testschedules/finalizers, and the
    # garbage collector deletes the runs with the schedule without it.
    return {"apiVersion": GROUP_VERSION, "kind": "TestSchedule", "name": schedule.name, "uid": schedule.uid,
            "controller": True}


def render_run(schedule: ScheduleRecord, at: datetime, name: str) -> dict:
    template = schedule.template
    meta = template.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), LABEL_SCHEDULE: schedule_label_value(schedule.name)}
    stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {**(meta.get("annotations") or {}), ANNOTATION_SCHEDULED_AT: stamp}
    return {
        "apiVersion": GROUP_VERSION, "kind": "TestExecution",
        "metadata": {"name": name, "namespace": schedule.namespace, "labels": labels, "annotations": annotations,
                     "ownerReferences": [schedule_owner_reference(schedule)]},
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
