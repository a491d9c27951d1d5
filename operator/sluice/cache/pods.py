"""Runner pods that have not started: a compact record per pod, indexed by the Job that owns it.

Why: a runner pod that cannot be scheduled, cannot pull its image or lacks a Secret never
starts, and its Job would wait for the whole `activeDeadlineSeconds`. The planner fails such an
attempt early (`planner/pod_pending.py`); this module keeps what that rule reads, and nothing
more: the pod's name, its creation time, the Job that controls it and, when the pod says it is
stuck, its own words (`ErrImagePull: ...`, `0/3 nodes are available: ...`).

Only the pods the API server selects for us are seen (label `sluice.dev/execution`, phase
Pending: `RUNNER_POD_FIELD_SELECTOR`); a pod that starts leaves the selection (the watch says
DELETED) and its record goes. Its name stays, under its Job's UID, until that Job's outcome is
read or the Job goes (`names_of`, `forget_job`): the outcome is then read by name (a GET per
pod) instead of a LIST by label, which the API server answers by scanning every pod of the
namespace. Trust: a record is kept under the UID of the Job that controls the pod (a controller
ownerReference to a batch Job); the planner only asks for the pods of Jobs it trusts, so a pod
that merely carries Sluice's labels decides nothing. It never calls the API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..api.common import LABEL_EXECUTION

Key = tuple[str, str]

RUNNER_POD_FIELD_SELECTOR = "status.phase=Pending"  # the API server drops started pods for us
# A container waiting for one of these will not start by waiting longer (kubelet's reasons).
STUCK_WAITING_REASONS = frozenset({
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
})
WORDS_LIMIT = 600  # a scheduler message lists every node group: keep the status readable


def _ts(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def owning_job_uid(pod: dict) -> str | None:
    """The UID of the batch Job that controls the pod (a controller ownerReference), else None."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job" and str(ref.get("apiVersion", "")).startswith("batch/"):
            return ref.get("uid") or None
    return None


def stuck_words(pod: dict) -> str | None:
    """What the pod says keeps it from starting, in its own words; None when it says nothing of the
    kind (still scheduling, pulling, creating: waiting longer may help)."""
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in STUCK_WAITING_REASONS:
            message = " ".join((waiting.get("message") or "").split())
            return f"{reason}: {message}"[:WORDS_LIMIT] if message else reason
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            return " ".join((cond.get("message") or "Unschedulable").split())[:WORDS_LIMIT]
    return None


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    execution: str
    job_uid: str
    created: datetime
    words: str | None  # see `stuck_words`
    resource_version: int = 0

    @classmethod
    def from_object(cls, obj: dict) -> "PodRecord | None":
        """None for a pod that needs no record: started, going away, or not a Job's runner pod."""
        meta = obj.get("metadata") or {}
        execution = (meta.get("labels") or {}).get(LABEL_EXECUTION)
        job_uid = owning_job_uid(obj)
        if not execution or not job_uid or meta.get("deletionTimestamp"):
            return None
        if (obj.get("status") or {}).get("phase", "Pending") != "Pending":
            return None
        try:
            rv = int(meta.get("resourceVersion") or 0)
        except ValueError:
            rv = 0
        return cls(meta.get("namespace", ""), meta.get("name", ""), execution, job_uid,
                   _ts(meta.get("creationTimestamp")), stuck_words(obj), rv)


@dataclass
class RunnerPods:
    """The unstarted runner pods, by (namespace, name) and by the UID of their Job."""

    by_key: dict[Key, PodRecord] = field(default_factory=dict)
    by_job: dict[str, dict[Key, PodRecord]] = field(default_factory=dict)
    names: dict[str, set[str]] = field(default_factory=dict)  # every runner pod seen, by its Job's UID

    def of_job(self, job_uid: str) -> list[PodRecord]:
        return list(self.by_job.get(job_uid, {}).values()) if job_uid else []

    def names_of(self, job_uid: str) -> set[str]:
        """The names of the Job's pods seen so far (started or not); a pod created while the watch
        was away may be missing."""
        return self.names.get(job_uid, set()) if job_uid else set()

    def forget_job(self, job_uid: str) -> None:
        self.names.pop(job_uid, None)

    def upsert(self, obj: dict) -> Key | None:
        """Records a watch or list event; returns the execution whose planner input changed."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        rec = PodRecord.from_object(obj)
        if rec is None:
            return self.delete(*key)
        old = self.by_key.get(key)
        if old is not None and rec.resource_version and rec.resource_version < old.resource_version:
            return None  # a stale event
        if old is not None and old.job_uid != rec.job_uid:
            self.delete(*key)
        self.by_key[key] = rec
        self.by_job.setdefault(rec.job_uid, {})[key] = rec
        self.names.setdefault(rec.job_uid, set()).add(rec.name)
        same = old is not None and (old.words, old.created, old.job_uid) == (rec.words, rec.created, rec.job_uid)
        return None if same else (rec.namespace, rec.execution)

    def delete(self, namespace: str, name: str) -> Key | None:
        rec = self.by_key.pop((namespace, name), None)
        if rec is None:
            return None
        pods = self.by_job.get(rec.job_uid)
        if pods is not None:
            pods.pop((namespace, name), None)
            if not pods:
                del self.by_job[rec.job_uid]
        return (rec.namespace, rec.execution)
