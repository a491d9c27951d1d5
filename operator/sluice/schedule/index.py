"""What the schedule controller knows: TestSchedules and the executions they created.

Fed by the watch (a TestSchedule handler, and a TestExecution handler for those labelled
`sluice.dev/schedule`), by the controller's own start-up and periodic lists, and by the objects
the API answers to the controller's own writes (so a decision is never taken twice while the
watch catches up). An execution belongs to a schedule only when the schedule controls it (a
controller ownerReference with the schedule's UID): the label alone, which anyone who may create
executions can write, never makes a run count. It never calls the API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import ValidationError

from ..api.common import ANNOTATION_SCHEDULED_AT
from ..api.environment import TestScheduleSpec, TestScheduleStatus
from ..api.execution import Phase
from ..cache.view import controller_uid

Key = tuple[str, str]


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _rv(meta: dict) -> int:
    try:
        return int(meta.get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass
class ScheduleRecord:
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    resource_version: int
    spec: TestScheduleSpec | None
    spec_error: str | None
    status: TestScheduleStatus
    template: dict = field(repr=False, default_factory=dict)  # spec.template as written: copied verbatim
    deleting: bool = False

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @classmethod
    def from_object(cls, obj: dict) -> "ScheduleRecord":
        meta, raw = obj["metadata"], obj.get("spec") or {}
        spec, error = None, None
        try:
            spec = TestScheduleSpec.model_validate(raw)
        except ValidationError as exc:
            error = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        try:
            status = TestScheduleStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            status = TestScheduleStatus()
        return cls(namespace=meta["namespace"], name=meta["name"], uid=meta.get("uid", ""),
                   generation=int(meta.get("generation") or 1),
                   created=_time(meta.get("creationTimestamp")) or datetime.now(timezone.utc),
                   resource_version=_rv(meta), spec=spec, spec_error=error, status=status,
                   template=raw.get("template") or {}, deleting=bool(meta.get("deletionTimestamp")))


@dataclass
class RunRecord:
    """The little the controller needs of one execution a schedule created."""

    namespace: str
    name: str
    owner_uid: str
    scheduled_at: datetime | None
    created: datetime
    phase: Phase | None
    completed_at: datetime | None
    cancel_requested: bool
    deleting: bool
    resource_version: int = 0

    @property
    def ended(self) -> bool:
        return self.phase is not None and self.phase.terminal

    @classmethod
    def from_object(cls, obj: dict) -> "RunRecord | None":
        meta = obj["metadata"]
        owner = controller_uid(obj, kind="TestSchedule")
        if owner is None:
            return None  # not controlled by a schedule, whatever its labels say
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        try:
            phase = Phase(status["phase"]) if status.get("phase") else None
        except ValueError:
            phase = None
        created = _time(meta.get("creationTimestamp")) or datetime.now(timezone.utc)
        return cls(namespace=meta["namespace"], name=meta["name"], owner_uid=owner,
                   scheduled_at=_time((meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_AT)),
                   created=created, phase=phase, completed_at=_time(status.get("completedAt")),
                   cancel_requested=bool(spec.get("cancel")), deleting=bool(meta.get("deletionTimestamp")),
                   resource_version=_rv(meta))


@dataclass
class ScheduleIndex:
    schedules: dict[Key, ScheduleRecord] = field(default_factory=dict)
    runs: dict[Key, RunRecord] = field(default_factory=dict)
    by_owner: dict[str, set[Key]] = field(default_factory=dict)  # schedule UID -> its runs
    by_uid: dict[str, Key] = field(default_factory=dict)  # schedule UID -> schedule

    def upsert_schedule(self, obj: dict) -> None:
        rec = ScheduleRecord.from_object(obj)
        old = self.schedules.get(rec.key)
        if old is not None and old.uid == rec.uid and rec.resource_version < old.resource_version:
            return  # a stale event: we already know a newer version (e.g. our own status write)
        if old is not None:
            self.by_uid.pop(old.uid, None)
        self.schedules[rec.key] = rec
        self.by_uid[rec.uid] = rec.key

    def delete_schedule(self, namespace: str, name: str) -> None:
        old = self.schedules.pop((namespace, name), None)
        if old is not None:
            self.by_uid.pop(old.uid, None)

    def schedule_of(self, uid: str | None) -> Key | None:
        return self.by_uid.get(uid) if uid else None

    def upsert_run(self, obj: dict) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        rec = RunRecord.from_object(obj)
        old = self.runs.get(key)
        if rec is None:
            self.delete_run(*key)
            return
        if old is not None and old.owner_uid == rec.owner_uid and rec.resource_version < old.resource_version:
            return
        if old is not None:
            self.by_owner.get(old.owner_uid, set()).discard(key)
        self.runs[key] = rec
        self.by_owner.setdefault(rec.owner_uid, set()).add(key)

    def delete_run(self, namespace: str, name: str) -> None:
        old = self.runs.pop((namespace, name), None)
        if old is not None:
            owned = self.by_owner.get(old.owner_uid)
            if owned is not None:
                owned.discard((namespace, name))
                if not owned:
                    del self.by_owner[old.owner_uid]

    def runs_of(self, schedule: ScheduleRecord) -> list[RunRecord]:
        """The executions the schedule controls (its UID), in the namespace it lives in."""
        keys = self.by_owner.get(schedule.uid, ())
        return [self.runs[k] for k in keys if k[0] == schedule.namespace and k in self.runs]
