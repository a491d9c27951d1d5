"""The API calls that carry a plan out: status writes, Job creates and deletes, reads.

Each call runs as a background task and reports what came back through `cache.assumptions`,
which owns the rules of whose status wins; this module only talks to the API, bounds how many
calls run at once, and never lets a failure loop hot (a pause before anything is retried).
Job creates, deletes and pod reads are on the critical path and never queue behind status
writes. A create the API refuses for good (a 4xx that retrying cannot fix, or a name held by
an object this execution does not own) becomes a refusal the planner turns into `Rejected`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from ..api.execution import TestExecutionStatus
from ..api.settings import Settings
from ..cache import assumptions as A
from ..cache.view import ClusterView, JobRecord, Key, controller_uid
from ..kube.client import ApiError, Kube, core_path, execution_path, job_path
from ..kube.events import EventPoster
from ..planner.model import CreateAttempt
from ..status.event_policy import worth_posting

log = logging.getLogger("sluice.dispatch")

CREATE_RETRY_SECONDS = 5.0
DELETE_RETRY_SECONDS = 2.0
READ_RETRY_SECONDS = 1.0
# API answers that retrying the same object can never fix: the object itself is refused.
PERMANENT_STATUSES = (400, 422)

_STATUS_FIELDS = [f.alias or name for name, f in TestExecutionStatus.model_fields.items()]


def status_patch(new: TestExecutionStatus) -> dict:
    """A merge patch that sets `new` whole: fields it lacks are removed (null)."""
    body = new.wire()
    for name in _STATUS_FIELDS:
        body.setdefault(name, None)
    return {"status": body}


class Refused(Exception):
    """The API will never take this object (retrying cannot help); the text says what to fix."""


class Actuators:
    def __init__(self, kube: Kube, settings: Settings, view: ClusterView, assumed: A.Assumptions,
                 events: EventPoster, spawn: Callable[[Awaitable], asyncio.Task], wake: Callable[[], None],
                 metrics=None):
        self.kube, self.settings, self.view, self.assumed = kube, settings, view, assumed
        self.events, self.spawn, self.wake, self.metrics = events, spawn, wake, metrics
        # told of each status write's answer (the view folds it; the watch's echo of that same
        # version is then skipped, so whoever follows executions hears of it here)
        self.answered: Callable[[Key, dict], None] = lambda key, obj: None
        self.sem = asyncio.Semaphore(settings.write_concurrency)
        self.critical = asyncio.Semaphore(settings.write_concurrency)
        self.fetching: set[Key] = set()
        self.checking: set[Key] = set()
        # executions whose source ConfigMap was created ahead (True) or is being created (task)
        self.sources: dict[Key, asyncio.Task | bool] = {}
        self.writes: dict[Key, int] = {}  # status writes sent per execution (a storm shows here)

    def carry_out(self, fx: A.Effects) -> None:
        for key in fx.status_writers:
            self.spawn(self._status_writer(key))
        for c in fx.creates:
            self.spawn(self._create_attempt(c))
        for job in fx.deletes:
            self.spawn(self._delete_job(job))
        for job in fx.fetch_pods:
            if (job.namespace, job.name) not in self.fetching:
                self.fetching.add((job.namespace, job.name))
                self.spawn(self._fetch_pods(job))
        for key, config_map in fx.sources:
            if key not in self.sources:
                self.sources[key] = self.spawn(self._create_source(key, config_map))
        for key, name in fx.check_config_maps:
            if key not in self.checking:
                self.checking.add(key)
                self.spawn(self._check_config_map(key, name))

    def forget(self, key: Key) -> None:
        self.sources.pop(key, None)
        self.writes.pop(key, None)

    # ---- status writes: serialized and coalesced per execution ------------------------------
    async def _status_writer(self, key: Key) -> None:
        try:
            while (item := A.next_status(self.assumed, key)) is not None:
                status, events = item
                try:
                    async with self.sem:
                        obj = await self.kube.merge_patch(execution_path(*key, "status"), status_patch(status))
                except Exception as exc:
                    A.status_write_failed(self.assumed, key)
                    if not (isinstance(exc, ApiError) and exc.not_found):
                        log.warning("status write failed for %s/%s: %s", *key, exc)
                        await asyncio.sleep(0 if isinstance(exc, ApiError) else READ_RETRY_SECONDS)
                        await self._refetch_execution(key)
                    return
                self.writes[key] = self.writes.get(key, 0) + 1
                A.status_written(self.view, self.assumed, key, obj)
                self.answered(key, obj)
                for event in events:  # the one place an execution's transitions become Events
                    if worth_posting(event[0], event[1], self.settings.events):
                        self.events.post(obj, *event)
                if self.metrics:
                    self.metrics.status_written(obj)
        finally:
            A.writer_done(self.view, self.assumed, key)
            self.wake()

    async def _refetch_execution(self, key: Key) -> None:
        try:
            obj = await self.kube.get(execution_path(*key))
        except ApiError as exc:
            if exc.not_found:
                A.observe_execution(self.view, self.assumed, True, {"metadata": {"namespace": key[0], "name": key[1]}})
            return
        except Exception:
            return
        rec = self.view.executions.get(key)
        if rec is not None:
            rec.resource_version = 0
        A.observe_execution(self.view, self.assumed, False, obj)

    # ---- attempts ---------------------------------------------------------------------------
    async def _create_owned(self, path: Callable[..., str], body: dict, uid: str, kind: str) -> dict:
        """Creates `body`, or adopts the existing object on 409 when this execution controls it."""
        name = body["metadata"]["name"]
        try:
            return await self.kube.create(path(), body)
        except ApiError as exc:
            if exc.status in PERMANENT_STATUSES:
                raise Refused(f"the API server refused the runner {kind}: {exc.text[:600]}") from exc
            if not exc.conflict:
                raise
        existing = await self.kube.get(path(name))
        if controller_uid(existing) != uid:
            raise Refused(f"a {kind} named {name!r} already exists and does not belong to this execution: "
                          "delete it, or create the execution under another name")
        return existing  # made by us before a crash: adopt it

    async def _create_attempt(self, c: CreateAttempt) -> None:
        ns, name = c.key
        try:
            async with self.critical:
                if c.config_map is not None and not await self._source_ready(c.key):
                    await self._create_owned(lambda *n: core_path(ns, "configmaps", *n), c.config_map, c.uid,
                                             "ConfigMap")
                job = await self._create_owned(lambda *n: job_path(ns, *n), c.job, c.uid, "Job")
        except Exception as exc:
            await self._create_failed(c, exc)
            return
        log.info("attempt %d of %s/%s started: Job %s", c.attempt, ns, name, c.job["metadata"]["name"],
                 extra={"execution": f"{ns}/{name}"})
        if self.metrics:
            self.metrics.admitted(ns, c.job["metadata"]["labels"].get("sluice.dev/queue", ""))
        if A.create_succeeded(self.view, self.assumed, c, job):
            self.spawn(self._status_writer(c.key))
        self.wake()

    async def _create_failed(self, c: CreateAttempt, exc: Exception) -> None:
        ns, name = c.key
        refusal = str(exc) if isinstance(exc, Refused) else None
        log.warning("could not start attempt %d of %s/%s: %s", c.attempt, ns, name, exc)
        if refusal is None:
            self.events.post_for(ns, name, c.uid, "Warning", "JobCreateFailed", str(exc)[:500])
            await asyncio.sleep(CREATE_RETRY_SECONDS)  # hold the slot a moment: no hot loop
        A.create_failed(self.view, self.assumed, c, refusal)
        self.wake()

    async def _create_source(self, key: Key, config_map: dict) -> bool:
        """Creates a waiting execution's source ConfigMap ahead of its start; False on failure
        (the start then creates it in series, as after a restart, and judges any refusal)."""
        try:
            async with self.sem:
                await self.kube.create(core_path(key[0], "configmaps"), config_map)
        except Exception as exc:  # a refusal, a name taken, connection trouble: the start decides
            log.info("source ConfigMap of %s/%s not created ahead: %s", *key, exc)
            self.sources.pop(key, None)
            return False
        if key in self.sources:
            self.sources[key] = True
        return True

    async def _source_ready(self, key: Key) -> bool:
        made = self.sources.get(key)
        if isinstance(made, asyncio.Task):
            return await asyncio.shield(made)
        return made is True

    async def _delete_job(self, job: JobRecord) -> None:
        try:
            async with self.critical:
                # Foreground: the Job stays (and holds its slot) until its pods are gone.
                await self.kube.delete(job_path(job.namespace, job.name), propagation="Foreground")
        except Exception as exc:
            if not (isinstance(exc, ApiError) and exc.not_found):
                log.warning("could not delete Job %s/%s: %s", job.namespace, job.name, exc)
                await asyncio.sleep(DELETE_RETRY_SECONDS)  # no hot loop on a refusal (e.g. RBAC)
                A.delete_failed(self.view, job)
        self.wake()

    # ---- reads ------------------------------------------------------------------------------
    async def _fetch_pods(self, job: JobRecord) -> None:
        key = (job.namespace, job.name)
        try:
            async with self.critical:
                pods = await self._read_pods(job)
            self.view.set_pods(job, pods)
        except Exception as exc:
            log.warning("could not read pods of Job %s/%s: %s", job.namespace, job.name, exc)
            await asyncio.sleep(READ_RETRY_SECONDS)
        finally:
            self.fetching.discard(key)
            self.view.touch((job.namespace, job.execution))
            self.wake()

    async def _read_pods(self, job: JobRecord) -> list[dict]:
        """The finished Job's pods. By name when the pod watch saw one per index (backoffLimit 0:
        there are no others): a GET each, O(1) for the API server. Else, or when one is gone, one
        LIST by the Job's label, which it answers by scanning every pod kept in the namespace
        (a Job keeps its pods for its TTL): measured 4.5 % of its CPU under bench/dispatch.py."""
        names = self.view.runner_pods.names_of(job.uid)
        if names and len(names) == job.slots:
            try:
                return [await self.kube.get(core_path(job.namespace, "pods", name)) for name in sorted(names)]
            except ApiError as exc:
                if not exc.not_found:
                    raise
        pods, _ = await self.kube.list_all(core_path(job.namespace, "pods"),
                                           {"labelSelector": f"batch.kubernetes.io/job-name={job.name}"})
        return pods

    async def _check_config_map(self, key: Key, name: str) -> None:
        try:
            async with self.critical:
                await self.kube.get(core_path(key[0], "configmaps", name))
            self.view.set_config_map_check(key, None)
        except Exception as exc:
            if isinstance(exc, ApiError) and exc.not_found:
                self.view.set_config_map_check(key, name)
            else:
                log.warning("could not check ConfigMap %s/%s: %s", key[0], name, exc)
                await asyncio.sleep(READ_RETRY_SECONDS)
        finally:
            self.checking.discard(key)
            self.view.touch(key)
            self.wake()
