"""The operator's in-memory view of the cluster: the records of `cache.records`, indexed.

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

from collections import deque
from dataclasses import dataclass, field

from .pods import RunnerPods
from ..kube.client import resource_version
from .records import (  # noqa: F401  (re-exported: the names callers and tests import from here)
    EnvironmentRecord, ExecutionRecord, JobRecord, Key, PriorityChange, QueueRecord, controller_uid,
)


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
    # False while a start's finished executions are still being listed (kube.watch backfill):
    # queue totals and retention wait for them, dispatching does not
    history_listed: bool = True

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
        self.runner_pods.forget_job(job.uid)
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
        if self._known(self.executions, obj):
            return False
        meta = obj["metadata"]
        old = self.executions.get((meta["namespace"], meta["name"]))
        rec = ExecutionRecord.from_object(obj, old)  # not stale: `_known` said so
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

    @staticmethod
    def _known(store: dict, obj: dict) -> bool:
        """This very version (or a newer one) of the object is already in the view: the watch event
        of the operator's own write, whose answer was folded already, or a relist of what the
        watch gave. Checked before parsing: parsing and validating is the costly part. (A deleted
        and re-created object has a higher resourceVersion: versions are cluster-wide.)"""
        meta = obj.get("metadata") or {}
        old = store.get((meta.get("namespace", ""), meta.get("name", "")))
        return old is not None and old.resource_version > 0 and resource_version(obj) <= old.resource_version

    def delete_execution(self, namespace: str, name: str) -> None:
        self.executions.pop((namespace, name), None)
        self.missing_config_maps.pop((namespace, name), None)
        self.refusals.pop((namespace, name), None)
        self.active.discard((namespace, name))
        self.dirty.add((namespace, name))

    def upsert_job(self, obj: dict) -> bool:
        if self._known(self.jobs, obj):
            return False
        rec = JobRecord.from_object(obj)
        if rec is None:
            return False
        key = (rec.namespace, rec.name)
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
            self.runner_pods.forget_job(rec.uid)
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
