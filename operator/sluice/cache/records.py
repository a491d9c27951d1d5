"""Records of what the watches bring: one object parsed into what the view keeps of it.

An execution (compact once finished, see `cache.compact`), a Job (trusted only when an
execution controls it and it carries the attempt's name), a queue, an environment, an
observed priority change. Pure parsing: it never indexes, never calls the API.
"""
from __future__ import annotations

import sys
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import BaseModel, ValidationError

from ..api.common import ANNOTATION_ENVIRONMENTS, API_GROUP, LABEL_ATTEMPT, LABEL_EXECUTION, LABEL_QUEUE
from ..api.environment import TestEnvironmentSpec, TestEnvironmentStatus
from ..api.execution import TestExecutionSpec, TestExecutionStatus
from ..api.queue import TestQueueSpec, TestQueueStatus
from ..kube.client import resource_version
from ..kube.names import job_name
from .compact import ResultsSummary, StatusSummary, pack_status, raw_phase, summarize, summary_spec, unpack_status
from ..policy.outcome import job_finished

Key = tuple[str, str]


def _ts(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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
    def from_object(cls, obj: dict, previous: "ExecutionRecord | None" = None) -> "ExecutionRecord":
        """The record of `obj`; the spec of `previous` (the record it replaces) is kept when its
        uid and generation are the same: the API server bumps a custom resource's generation on
        every spec change, so the spec is the same and is not validated again (most versions of
        an execution are status writes)."""
        meta = obj["metadata"]
        raw_spec, raw_status = obj.get("spec") or {}, obj.get("status") or {}
        phase = raw_phase(raw_status)
        common = dict(namespace=sys.intern(meta["namespace"]), name=meta["name"], uid=meta.get("uid", ""),
                      generation=int(meta.get("generation") or 1), created=_ts(meta.get("creationTimestamp")),
                      resource_version=resource_version(obj), deleting=bool(meta.get("deletionTimestamp")))
        if phase is not None and phase.terminal:
            # finished: neither the spec nor the status is validated or kept whole (cache.compact)
            rec = cls(**common, spec=summary_spec(raw_spec), spec_error=None, status=_FINISHED_PLACEHOLDER)
            rec._set_packed(raw_status)
            return rec
        spec, error = None, None
        if previous is not None and not previous.compact and previous.uid == common["uid"] \
                and previous.generation == common["generation"]:
            spec, error = previous.spec, previous.spec_error
        else:
            try:
                spec = TestExecutionSpec.model_validate(raw_spec)
            except ValidationError as exc:
                error = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            lighten(spec)
        try:
            status = TestExecutionStatus.model_validate(raw_status)
        except ValidationError:
            status = TestExecutionStatus()
        lighten(status)
        queue = raw_spec.get("queue") if isinstance(raw_spec.get("queue"), str) else None
        return cls(**common, spec=spec, spec_error=error, status=status, queue=queue)


# The one `__pydantic_fields_set__` of every model the view keeps (see `lighten`).
_UNTRACKED: set[str] = set()


def lighten(model: BaseModel | None) -> None:
    """Points every model in `model` at one shared `__pydantic_fields_set__`.

    pydantic keeps, per model instance, a set of the field names its input gave (728 bytes for
    six names): with a spec's and a status's nested models (seven conditions) that was half of a
    waiting execution's record (5,000 queued: about 35 MB). The set serves only `exclude_unset`
    and `model_fields_set`, which Sluice never uses (`wire()` drops None fields instead; proven
    equal in tests/unit/test_records_memory.py). Assigning a field still works (pydantic adds
    its name to the shared set, which then only grows to the models' field names); copies
    (`model_copy`) get their own set again."""
    if model is None:
        return
    object.__setattr__(model, "__pydantic_fields_set__", _UNTRACKED)
    values = model.__dict__
    for name in _nested_fields(type(model)):
        value = values[name]
        if isinstance(value, BaseModel):
            lighten(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                lighten(item) if isinstance(item, BaseModel) else None
        elif isinstance(value, dict):
            for item in value.values():
                lighten(item) if isinstance(item, BaseModel) else None


_NESTED: dict[type, tuple[str, ...]] = {}


def _nested_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `cls` whose type can hold a model (found once per class, from annotations)."""
    names = _NESTED.get(cls)
    if names is None:
        names = _NESTED[cls] = tuple(n for n, f in cls.model_fields.items() if _holds_model(f.annotation))
    return names


def _holds_model(annotation) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


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

    @property
    def uid(self) -> str:
        return (self.obj.get("metadata") or {}).get("uid") or ""

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
            deleting=bool(meta.get("deletionTimestamp")), obj=_slim_job(obj), resource_version=resource_version(obj),
            owner_uid=owner,
            environments=tuple(e for e in ((meta.get("annotations") or {}).get(ANNOTATION_ENVIRONMENTS) or "")
                               .split(",") if e),
        )


def _slim_job(obj: dict) -> dict:
    """What the planner reads of a Job (its uid for its pods, its status for the outcome): the pod
    template and the rest are dropped, so every Job the view holds costs a few hundred bytes."""
    meta = obj["metadata"]
    return {"metadata": {"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid")},
            "status": obj.get("status") or {}}


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
        return cls(meta["name"], int(meta.get("generation") or 1), spec, status, resource_version(obj))


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
        return cls(meta["namespace"], meta["name"], int(meta.get("generation") or 1), spec, status, resource_version(obj))


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
