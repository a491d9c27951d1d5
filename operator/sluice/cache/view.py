"""The operator's in-memory view of the cluster: executions, their Jobs, queues.

Fed by watch events and by the dispatcher's own writes (optimistically, so a decision is
never taken twice while its write is in flight; `cache.assumptions` owns those rules). It
holds no state that is not also in the API server: after a restart it is rebuilt from a list
before anything is admitted.

Trust: a Job counts for an execution only when the execution controls it (a controller
ownerReference with the execution's UID) and it carries the name Sluice gives that attempt.
A Job with the labels alone (anyone who may create Jobs can write labels) is ignored; a Job
whose owning execution is gone still holds its slots until the garbage collector removes it.
It never calls the API.
"""
from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import ValidationError

from ..api.common import ANNOTATION_ENVIRONMENTS, API_GROUP, LABEL_ATTEMPT, LABEL_EXECUTION, LABEL_QUEUE
from ..api.environment import TestEnvironmentSpec, TestEnvironmentStatus
from ..api.execution import TestExecutionSpec, TestExecutionStatus
from ..api.queue import TestQueueSpec, TestQueueStatus
from ..kube.names import job_name
from .compact import ResultsSummary, StatusSummary, pack_status, raw_phase, summarize, summary_spec, unpack_status
from .pods import RunnerPods
from ..policy.outcome import job_finished

Key = tuple[str, str]


def _ts(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (KeyError, ValueError):
        return 0


class ExecutionRecord:
    """One execution as the operator holds it.

    Until it is finished the record keeps its spec and status whole. A finished one (terminal
    phase) is compact (see `cache.compact`): `spec` is its summary (queue, priority, shards,
    framework, environments, cancel; `source` is None, so inline files leave memory) and its
    status is kept packed; `status` unpacks it on every read (about 0.1 ms), so code that walks
    every execution reads `summary` (phase, times, attempt, observed generation, results) and
    `queue` instead. Setting `status` keeps both forms right.
    """

    __slots__ = ("namespace", "name", "uid", "generation", "created", "resource_version", "spec", "spec_error",
                 "deleting", "queue", "summary", "_status", "_packed")

    def __init__(self, namespace: str, name: str, uid: str, generation: int, created: datetime,
                 resource_version: int, spec: TestExecutionSpec | None, spec_error: str | None,
                 status: TestExecutionStatus, deleting: bool = False, queue: str | None = None):
        self.namespace, self.name, self.uid, self.generation = namespace, name, uid, generation
        self.created, self.resource_version, self.spec, self.spec_error = created, resource_version, spec, spec_error
        self.deleting = deleting
        # the queue it counts in, even when the spec is invalid (then what the spec names, or default)
        self.queue: str = queue or (spec.queue if spec is not None else "default")
        self._status: TestExecutionStatus | None = None
        self._packed: bytes | None = None
        self.summary: StatusSummary
        self.status = status

    @property
    def status(self) -> TestExecutionStatus:
        if self._status is not None:
            return self._status
        return unpack_status(self._packed or b"")

    @status.setter
    def status(self, status: TestExecutionStatus) -> None:
        if status.phase is not None and status.phase.terminal:
            self._set_packed(status.wire())
        else:
            self._status, self._packed = status, None
            r = status.results
            self.summary = StatusSummary(
                status.phase, status.reason, status.queued_at, status.started_at, status.completed_at, status.attempt,
                status.observed_generation,
                r and ResultsSummary(r.total, r.passed, r.failed, r.skipped, r.flaky, r.duration_seconds))

    def _set_packed(self, raw: dict) -> None:
        self._status, self._packed, self.summary = None, pack_status(raw), summarize(raw)

    @property
    def compact(self) -> bool:
        return self._packed is not None

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    def __repr__(self) -> str:
        return (f"ExecutionRecord({self.namespace}/{self.name}, uid={self.uid}, phase={self.summary.phase}, "
                f"queue={self.queue}, compact={self.compact})")

    @classmethod
    def from_object(cls, obj: dict) -> "ExecutionRecord":
        meta = obj["metadata"]
        raw_spec, raw_status = obj.get("spec") or {}, obj.get("status") or {}
        phase = raw_phase(raw_status)
        common = dict(namespace=sys.intern(meta["namespace"]), name=meta["name"], uid=meta.get("uid", ""),
                      generation=int(meta.get("generation") or 1), created=_ts(meta.get("creationTimestamp")),
                      resource_version=_rv(obj), deleting=bool(meta.get("deletionTimestamp")))
        if phase is not None and phase.terminal:
            # finished: neither the spec nor the status is validated or kept whole (cache.compact)
            rec = cls(**common, spec=summary_spec(raw_spec), spec_error=None, status=_FINISHED_PLACEHOLDER)
            rec._set_packed(raw_status)
            return rec
        spec, error = None, None
        try:
            spec = TestExecutionSpec.model_validate(raw_spec)
        except ValidationError as exc:
            error = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        try:
            status = TestExecutionStatus.model_validate(raw_status)
        except ValidationError:
            status = TestExecutionStatus()
        queue = raw_spec.get("queue") if isinstance(raw_spec.get("queue"), str) else None
        return cls(**common, spec=spec, spec_error=error, status=status, queue=queue)


_FINISHED_PLACEHOLDER = TestExecutionStatus()  # replaced at once by the packed status in from_object


def controller_uid(obj: dict, kind: str = "TestExecution") -> str | None:
    """The UID of the object's controller when that controller is a Sluice `kind`, else None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and str(ref.get("apiVersion", "")).startswith(API_GROUP + "/"):
            return ref.get("uid") or None
    return None


@dataclass
class JobRecord:
    namespace: str
    name: str
    execution: str
    queue: str
    attempt: int
    slots: int
    finished: str | None  # 'Complete' | 'Failed' | None
    deleting: bool
    obj: dict = field(repr=False, default_factory=dict)
    resource_version: int = 0
    owner_uid: str = ""  # the UID of the TestExecution that controls it
    environments: tuple[str, ...] = ()  # the TestEnvironments it holds while unfinished

    @property
    def occupies(self) -> bool:
        """A Job holds its slots until the Job controller says it finished (or it is gone)."""
        return self.finished is None

    @classmethod
    def from_object(cls, obj: dict) -> "JobRecord | None":
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        owner = controller_uid(obj)
        if LABEL_EXECUTION not in labels or owner is None:
            return None  # not controlled by an execution: not ours, whatever its labels say
        try:
            attempt = int(labels.get(LABEL_ATTEMPT, "1"))
        except ValueError:
            attempt = 1
        spec = obj.get("spec") or {}
        if meta.get("name") != job_name(labels[LABEL_EXECUTION], attempt):
            return None  # Sluice names every attempt's Job; another name is not one of ours
        return cls(
            namespace=meta["namespace"], name=meta["name"], execution=labels[LABEL_EXECUTION],
            queue=labels.get(LABEL_QUEUE, "default"), attempt=attempt,
            slots=int(spec.get("parallelism") or 1), finished=job_finished(obj),
            deleting=bool(meta.get("deletionTimestamp")), obj=obj, resource_version=_rv(obj), owner_uid=owner,
            environments=tuple(e for e in ((meta.get("annotations") or {}).get(ANNOTATION_ENVIRONMENTS) or "")
                               .split(",") if e),
        )


def _parsed(model, raw: dict | None, fallback):
    """`raw` read as `model`, or `fallback` when it does not fit (a hand-edited object, an older schema)."""
    try:
        return model.model_validate(raw or {})
    except ValidationError:
        return fallback


@dataclass
class EnvironmentRecord:
    """A TestEnvironment (cluster-scoped): its capacity and who may use it."""

    name: str
    generation: int
    spec: TestEnvironmentSpec
    status: TestEnvironmentStatus
    resource_version: int = 0

    @classmethod
    def from_object(cls, obj: dict) -> "EnvironmentRecord":
        meta = obj["metadata"]
        spec = _parsed(TestEnvironmentSpec, obj.get("spec"), TestEnvironmentSpec(concurrency=0))  # nobody holds it
        status = _parsed(TestEnvironmentStatus, obj.get("status"), TestEnvironmentStatus())
        return cls(meta["name"], int(meta.get("generation") or 1), spec, status, _rv(obj))


@dataclass
class QueueRecord:
    namespace: str
    name: str
    generation: int
    spec: TestQueueSpec
    status: TestQueueStatus
    resource_version: int = 0

    @classmethod
    def from_object(cls, obj: dict) -> "QueueRecord":
        meta = obj["metadata"]
        spec = _parsed(TestQueueSpec, obj.get("spec"), TestQueueSpec(paused=True))
        status = _parsed(TestQueueStatus, obj.get("status"), TestQueueStatus())
        return cls(meta["namespace"], meta["name"], int(meta.get("generation") or 1), spec, status, _rv(obj))


@dataclass(frozen=True)
class PriorityChange:
    """A waiting execution's `spec.priority` changed from `before` to `after`."""

    key: Key
    uid: str
    before: str
    after: str

    @property
    def event(self) -> tuple[str, str, str]:
        """The Event that records it (the admission webhook, where it runs, says who did it)."""
        return ("Normal", "PriorityChanged", f"priority changed from {self.before} to {self.after}")


@dataclass
class ClusterView:
    executions: dict[Key, ExecutionRecord] = field(default_factory=dict)
    jobs: dict[Key, JobRecord] = field(default_factory=dict)
    queues: dict[Key, QueueRecord] = field(default_factory=dict)
    pods: dict[Key, list[dict]] = field(default_factory=dict)  # finished Job key -> its pods
    missing_config_maps: dict[Key, str | None] = field(default_factory=dict)  # execution -> missing name or None
    jobs_by_execution: dict[Key, dict[int, JobRecord]] = field(default_factory=dict)
    # executions the planner must look at: not terminal, or terminal with Jobs still to stop or a
    # generation not yet acknowledged
    active: set[Key] = field(default_factory=set)
    # executions whose inputs changed since the planner last stepped them (see reconcile.Memo)
    dirty: set[Key] = field(default_factory=set)
    occupying: dict[Key, JobRecord] = field(default_factory=dict)  # unfinished Jobs: the used slots
    # execution -> why the API refused to create what its attempt needs (a 4xx retrying cannot fix)
    refusals: dict[Key, str] = field(default_factory=dict)
    runner_pods: RunnerPods = field(default_factory=RunnerPods)  # unstarted runner pods (cache/pods.py)
    # spec.priority changes seen (by any path: watch, relist, a write's answer), for the Event
    # that records them; bounded, so a view nobody drains (the CLI's) cannot grow
    priority_changes: deque[PriorityChange] = field(default_factory=lambda: deque(maxlen=1000))
    environments: dict[str, EnvironmentRecord] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # for namespaceSelectors
    # True once environments and namespaces were listed: only then is "missing" an answer
    environments_listed: bool = False

    def take_priority_changes(self) -> list[PriorityChange]:
        """The priority changes seen since the last call (each reported once)."""
        changes = list(self.priority_changes)
        self.priority_changes.clear()
        return changes

    def take_dirty(self) -> set[Key]:
        """The executions marked since the last call (the planner's input for an incremental pass)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def set_refusal(self, key: Key, message: str) -> None:
        self.refusals[key] = message
        self.dirty.add(key)

    def _index(self, key: Key) -> None:
        self.dirty.add(key)
        rec = self.executions.get(key)
        if rec is None:
            self.active.discard(key)
            return
        done = rec.summary.phase is not None and rec.summary.phase.terminal
        acknowledged = (rec.summary.observed_generation or 0) >= rec.generation
        if done and acknowledged and not rec.deleting and not any(j.occupies for j in self.jobs_of(key).values()):
            self.active.discard(key)
        else:
            self.active.add(key)

    def touch(self, key: Key) -> None:
        """Something the planner reads about this execution changed outside the view's events."""
        self.dirty.add(key)

    def touch_all(self, namespace: str | None = None) -> None:
        self.dirty.update(k for k in self.active if namespace is None or k[0] == namespace)

    def set_pods(self, job: JobRecord, pods: list[dict]) -> None:
        self.pods[(job.namespace, job.name)] = pods
        self.dirty.add((job.namespace, job.execution))

    def set_config_map_check(self, key: Key, missing: str | None) -> None:
        self.missing_config_maps[key] = missing
        self.dirty.add(key)

    def set_status(self, key: Key, status) -> None:
        """The dispatcher's own (optimistic) status change."""
        rec = self.executions.get(key)
        if rec is not None:
            rec.status = status
            self._index(key)

    # ---- events in -------------------------------------------------------------------------
    def upsert_execution(self, obj: dict) -> bool:
        rec = ExecutionRecord.from_object(obj)
        old = self.executions.get(rec.key)
        if old is not None and old.uid == rec.uid and rec.resource_version and rec.resource_version < old.resource_version:
            return False  # a stale event: we already know a newer version
        if old is not None and old.uid != rec.uid:
            self.missing_config_maps.pop(rec.key, None)
            self.refusals.pop(rec.key, None)
        elif old is not None and old.spec is not None and rec.spec is not None \
                and old.spec.priority != rec.spec.priority:
            self.priority_changes.append(PriorityChange(rec.key, rec.uid, old.spec.priority.value,
                                                        rec.spec.priority.value))
        self.executions[rec.key] = rec
        self._index(rec.key)
        return True

    def delete_execution(self, namespace: str, name: str) -> None:
        self.executions.pop((namespace, name), None)
        self.missing_config_maps.pop((namespace, name), None)
        self.refusals.pop((namespace, name), None)
        self.active.discard((namespace, name))
        self.dirty.add((namespace, name))

    def upsert_job(self, obj: dict) -> bool:
        rec = JobRecord.from_object(obj)
        if rec is None:
            return False
        key = (rec.namespace, rec.name)
        old = self.jobs.get(key)
        if old is not None and rec.resource_version and rec.resource_version < old.resource_version:
            return False
        self.jobs[key] = rec
        if rec.occupies:
            self.occupying[key] = rec
        else:
            self.occupying.pop(key, None)
        self.jobs_by_execution.setdefault((rec.namespace, rec.execution), {})[rec.attempt] = rec
        self._index((rec.namespace, rec.execution))
        return True

    def delete_job(self, namespace: str, name: str) -> None:
        rec = self.jobs.pop((namespace, name), None)
        self.pods.pop((namespace, name), None)
        self.occupying.pop((namespace, name), None)
        if rec is not None:
            by = self.jobs_by_execution.get((namespace, rec.execution), {})
            if by.get(rec.attempt) is rec:
                del by[rec.attempt]
            self._index((namespace, rec.execution))

    def upsert_queue(self, obj: dict) -> None:
        rec = QueueRecord.from_object(obj)
        old = self.queues.get((rec.namespace, rec.name))
        self.queues[(rec.namespace, rec.name)] = rec
        if old is None or old.spec != rec.spec:
            self.touch_all(rec.namespace)  # capacity, pause, defaults: its executions re-plan

    def delete_queue(self, namespace: str, name: str) -> None:
        if self.queues.pop((namespace, name), None) is not None:
            self.touch_all(namespace)

    def upsert_environment(self, obj: dict) -> None:
        rec = EnvironmentRecord.from_object(obj)
        old = self.environments.get(rec.name)
        self.environments[rec.name] = rec
        if old is None or old.spec != rec.spec:
            self.touch_all()  # executions waiting for it to exist, or for its selector, re-check

    def delete_environment(self, name: str) -> None:
        self.environments.pop(name, None)

    def upsert_namespace(self, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        labels = dict(meta.get("labels") or {})
        if self.namespace_labels.get(meta.get("name", "")) != labels:
            self.namespace_labels[meta.get("name", "")] = labels
            if any(e.spec.namespace_selector for e in self.environments.values()):
                self.touch_all(meta.get("name", ""))

    def delete_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)

    def upsert_pod(self, obj: dict) -> None:
        """A runner pod event: its execution re-plans when what the planner reads of it changed."""
        changed = self.runner_pods.upsert(obj)
        if changed is not None:
            self.dirty.add(changed)

    def delete_pod(self, namespace: str, name: str) -> None:
        changed = self.runner_pods.delete(namespace, name)
        if changed is not None:
            self.dirty.add(changed)

    # ---- reads -----------------------------------------------------------------------------
    def jobs_of(self, key: Key) -> dict[int, JobRecord]:
        """The execution's own Jobs by attempt: controlled by it (its UID) and named for the attempt (see `JobRecord.from_object`)."""
        jobs = self.jobs_by_execution.get(key)
        if not jobs:
            return {}
        rec = self.executions.get(key)
        uid = rec.uid if rec is not None else None
        return {a: j for a, j in jobs.items() if j.owner_uid == uid}

    def slot_holders(self):
        """The unfinished Jobs that count against capacity (see `holds_slots`)."""
        return (job for job in self.occupying.values() if self.holds_slots(job))

    def holds_slots(self, job: JobRecord) -> bool:
        """An unfinished Job counts against capacity when its execution controls it, or when its
        execution is gone (the garbage collector removes it; until then its pods may run)."""
        rec = self.executions.get((job.namespace, job.execution))
        return rec is None or rec.uid == job.owner_uid
