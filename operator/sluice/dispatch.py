"""The dispatcher: the one task that decides, and the only creator of Jobs.

Watch handlers only update the view (which marks what changed) and wake it. Each pass runs the
pure planner over what changed plus the queue-wide decisions (a full pass every
FULL_PASS_SECONDS and after every relist), applies the plan to the view at once (so a decision
is never taken twice while its write is in flight), and hands the writes to bounded background
tasks. Status writes to one execution are serialized and coalesced: only the newest desired
status is sent.

It never admits before it has listed executions and Jobs (`ready`), and only while it holds
the leader Lease.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from .api.execution import TestExecutionStatus
from .api.settings import Settings
from .kube.client import ApiError, Kube, all_namespaces, core_path, execution_path, job_path, queue_path
from .kube.events import EventPoster
from .queue_status import QueueStatusWriter
from .reconcile import CreateAttempt, Memo, Plan, plan
from .view import ClusterView, JobRecord, Key

log = logging.getLogger("sluice.dispatch")

CREATE_RETRY_SECONDS = 5.0
FULL_PASS_SECONDS = 10.0  # a full planner pass this often: the safety net under dirty marks
DELETE_RETRY_SECONDS = 2.0


def release_memory() -> None:
    """Hands freed heap back to the OS after a large list (glibc keeps it otherwise), so RSS
    reflects the view, not the peak of decoding the list."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _now() -> datetime:
    return datetime.now(timezone.utc)


_STATUS_FIELDS = [f.alias or name for name, f in TestExecutionStatus.model_fields.items()]


def status_patch(new: TestExecutionStatus) -> dict:
    """A merge patch that sets `new` whole: fields it lacks are removed (null)."""
    body = new.wire()
    for name in _STATUS_FIELDS:
        body.setdefault(name, None)
    return {"status": body}


class Dispatcher:
    def __init__(self, kube: Kube, settings: Settings, metrics=None):
        self.kube, self.settings, self.metrics = kube, settings, metrics
        self.view = ClusterView()
        self.memo = Memo()  # the planner's between-pass state: see reconcile.plan
        self.full_pass_at = 0.0
        self.first_seen: dict[Key, datetime] = {}
        self.position_written_at: dict[Key, datetime] = {}
        # execution -> (status to send, events to post after it)
        self.pending_status: dict[Key, tuple[TestExecutionStatus, list]] = {}
        self.writing: set[Key] = set()
        self.inflight_jobs: set[Key] = set()
        self.starting: set[Key] = set()  # executions whose Job create is in flight
        self.fetching: set[Key] = set()
        self.checking: set[Key] = set()
        # executions whose source ConfigMap was created ahead (True) or is being created (task)
        self.sources: dict[Key, asyncio.Task | bool] = {}
        self.tasks: set[asyncio.Task] = set()
        # Job creates, deletes and pod reads are on the critical path: they never queue
        # behind status writes.
        self.sem = asyncio.Semaphore(settings.write_concurrency)
        self.critical = asyncio.Semaphore(settings.write_concurrency)
        self.position_tokens = settings.position_writes_per_second
        self.tokens_at = time.monotonic()
        self.wakeup = asyncio.Event()
        self.ready = False
        self.is_leader: Callable[[], bool] = lambda: True
        self.events = EventPoster(kube, self._spawn)
        self.queue_status = QueueStatusWriter(kube, settings, self._spawn)
        self.passes = 0
        self.needs_resync = False  # set on becoming leader: the old leader's writes may have landed

    # ---- watch events in (called from kopf handlers) -------------------------------------
    def on_execution(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.view.delete_execution(*key)
            self.first_seen.pop(key, None)
            self.sources.pop(key, None)
            self.position_written_at.pop(key, None)
        else:
            old = self.view.executions.get(key)
            if self.view.upsert_execution(obj):
                if old is not None and (key in self.writing or key in self.pending_status or key in self.starting):
                    self.view.set_status(key, old.status)  # ours is newer
                self.first_seen.setdefault(key, _now())
        self.wake()

    def on_job(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        if event_type == "DELETED":
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if key not in self.inflight_jobs:
                self.view.delete_job(*key)
        else:
            before = self.view.jobs.get((meta.get("namespace", ""), meta.get("name", "")))
            self.view.upsert_job(obj)
            after = self.view.jobs.get((meta.get("namespace", ""), meta.get("name", "")))
            if self.metrics and before is not None and before.occupies and after is not None and not after.occupies:
                self.metrics.slot_freed(time.monotonic())
        self.wake()

    def on_queue(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        if event_type == "DELETED":
            self.view.delete_queue(meta.get("namespace", ""), meta.get("name", ""))
        else:
            self.view.upsert_queue(obj)
        self.wake()

    def wake(self) -> None:
        self.wakeup.set()

    # ---- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        if self.metrics:
            self.metrics.watch_api(self.kube)  # sluice_api_errors_total
        await self.resync()
        self.ready = True
        log.info("view rebuilt: %d executions, %d jobs, %d queues",
                 len(self.view.executions), len(self.view.jobs), len(self.view.queues))
        next_resync = time.monotonic() + self.settings.resync_seconds
        wake_at: datetime | None = None
        while True:
            timeout = max(0.0, next_resync - time.monotonic())
            if wake_at is not None:
                timeout = min(timeout, max(0.0, (wake_at - _now()).total_seconds()))
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)
            except asyncio.TimeoutError:
                pass
            self.wakeup.clear()
            if time.monotonic() >= next_resync or (self.needs_resync and self.is_leader()):
                self.needs_resync = False
                await self.resync()
                next_resync = time.monotonic() + self.settings.resync_seconds
            if not self.is_leader():
                wake_at = None
                continue
            began = time.monotonic()
            try:
                wake_at = self.pass_once()
            except Exception:  # a bug in one pass must not stop the queue
                log.exception("dispatch pass failed")
                wake_at = None
                await asyncio.sleep(1)
            spent = time.monotonic() - began
            again = self.queue_status.maybe_write(self.view, _now())
            if again is not None and (wake_at is None or again < wake_at):
                wake_at = again
            # Let a burst of watch events land before the next pass; planning never takes more
            # than about a third of the loop, however large the view (halves the operator CPU
            # of bench/dispatch.py against a gap of `spent`, at no cost in latency).
            await asyncio.sleep(max(0.05, 2 * spent))

    def pass_once(self) -> datetime | None:
        now = _now()
        rate = self.settings.position_writes_per_second
        mono = time.monotonic()
        self.position_tokens = min(rate, self.position_tokens + (mono - self.tokens_at) * rate)
        self.tokens_at = mono
        if mono >= self.full_pass_at:
            self.memo.full()
            self.full_pass_at = mono + FULL_PASS_SECONDS
        result = plan(self.view, self.settings, now, self.first_seen, self.position_written_at,
                      int(self.position_tokens), self.memo)
        self.position_tokens -= result.position_writes
        self.passes += 1
        self.apply(result)
        if self.metrics and result.waiting == 0:
            self.metrics.no_waiters()
        return result.wake_at

    def apply(self, result: Plan) -> None:
        for w in result.writes:
            self._set_status(w.key, w.status, w.event)
        for c in result.creates:
            self._start_attempt(c)
        for job in result.deletes:
            job.deleting = True
            self._spawn(self._delete_job(job))
        for job in result.fetch_pods:
            key = (job.namespace, job.name)
            if key not in self.fetching:
                self.fetching.add(key)
                self._spawn(self._fetch_pods(job))
        for key, config_map in result.sources:
            if key not in self.sources:
                self.sources[key] = self._spawn(self._create_source(key, config_map))
        for key, name in result.check_config_maps:
            if key not in self.checking:
                self.checking.add(key)
                self._spawn(self._check_config_map(key, name))

    # ---- status writes: serialized and coalesced per execution ------------------------------
    def _set_status(self, key: Key, status: TestExecutionStatus, event: tuple | None) -> None:
        """Applies `status` to the view now and queues it for the writer of this execution."""
        rec = self.view.executions.get(key)
        if rec is None:
            return
        prev = self.pending_status.get(key)
        events = (prev[1] if prev else []) + ([event] if event else [])
        self.view.set_status(key, status)
        self.pending_status[key] = (status, events)
        if key not in self.writing:
            self.writing.add(key)
            self._spawn(self._status_writer(key))

    async def _status_writer(self, key: Key) -> None:
        try:
            while key in self.pending_status:
                status, events = self.pending_status.pop(key)
                ns, name = key
                try:
                    async with self.sem:
                        obj = await self.kube.merge_patch(execution_path(ns, name, "status"), status_patch(status))
                except ApiError as exc:
                    if exc.not_found:
                        self.pending_status.pop(key, None)
                        return
                    log.warning("status write failed for %s/%s: %s", ns, name, exc)
                    self.pending_status.pop(key, None)
                    await self._refetch_execution(key)
                    return
                except Exception as exc:  # connection trouble: re-read and let the next pass decide
                    log.warning("status write failed for %s/%s: %s", ns, name, exc)
                    self.pending_status.pop(key, None)
                    await asyncio.sleep(1)
                    await self._refetch_execution(key)
                    return
                if key not in self.pending_status:
                    old = self.view.executions.get(key)
                    self.view.upsert_execution(obj)
                    if key in self.starting and old is not None:
                        # A position write that returns while this execution's Job is being
                        # created must not undo the optimistic Running status: the next pass
                        # would "adopt" the Job and write Running (and Admitted) a second time.
                        self.view.set_status(key, old.status)
                for event in events:
                    self.events.post(obj, *event)
                if self.metrics:
                    self.metrics.status_written(obj)
        finally:
            self.writing.discard(key)
            self.view.touch(key)
            self.wake()

    async def _refetch_execution(self, key: Key) -> None:
        try:
            obj = await self.kube.get(execution_path(*key))
        except ApiError as exc:
            if exc.not_found:
                self.view.delete_execution(*key)
            return
        except Exception:
            return
        rec = self.view.executions.get(key)
        if rec is not None:
            rec.resource_version = 0
        self.view.upsert_execution(obj)

    # ---- attempts ---------------------------------------------------------------------------
    def _start_attempt(self, c: CreateAttempt) -> None:
        ns, name = c.key
        job_key = (ns, c.job["metadata"]["name"])
        placeholder = dict(c.job, metadata=dict(c.job["metadata"], resourceVersion="0"))
        self.view.upsert_job(placeholder)
        self.inflight_jobs.add(job_key)
        self.view.set_status(c.key, c.status)  # optimistic: the next pass must not admit it again
        self.starting.add(c.key)
        self._spawn(self._create_attempt(c, job_key))

    async def _create_attempt(self, c: CreateAttempt, job_key: Key) -> None:
        ns, name = c.key
        try:
            async with self.critical:
                if c.config_map is not None and not await self._source_ready(c.key):
                    try:
                        await self.kube.create(core_path(ns, "configmaps"), c.config_map)
                    except ApiError as exc:
                        if not exc.conflict:
                            raise
                try:
                    job = await self.kube.create(job_path(ns), c.job)
                except ApiError as exc:
                    if not exc.conflict:
                        raise
                    job = await self.kube.get(job_path(ns, job_key[1]))  # made before a crash: adopt it
            self.view.upsert_job(job)
            log.info("attempt %d of %s/%s started: Job %s", c.attempt, ns, name, job_key[1],
                     extra={"execution": f"{ns}/{name}"})
            if self.metrics:
                self.metrics.admitted(ns, c.job["metadata"]["labels"].get("sluice.dev/queue", ""))
            self._set_status(c.key, c.status, c.event)
        except Exception as exc:
            log.warning("could not start attempt %d of %s/%s: %s", c.attempt, ns, name, exc)
            rec = self.view.executions.get(c.key)
            if rec is not None:
                self.events.post_for(ns, name, rec.uid, "Warning", "JobCreateFailed", str(exc)[:500])
            await asyncio.sleep(CREATE_RETRY_SECONDS)  # hold the slot a moment: no hot loop
            self.view.delete_job(*job_key)
            await self._refetch_execution(c.key)
        finally:
            self.inflight_jobs.discard(job_key)
            self.starting.discard(c.key)
            self.view.touch(c.key)
            self.wake()

    async def _create_source(self, key: Key, config_map: dict) -> bool:
        """Creates a waiting execution's source ConfigMap ahead of its start; False on failure
        (the start then creates it in series, as after a restart)."""
        try:
            async with self.sem:
                await self.kube.create(core_path(key[0], "configmaps"), config_map)
        except Exception as exc:  # a refusal or connection trouble: the start will try again
            if not (isinstance(exc, ApiError) and exc.conflict):
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
                job.deleting = False
                self.view.touch((job.namespace, job.execution))
        self.wake()

    async def _fetch_pods(self, job: JobRecord) -> None:
        key = (job.namespace, job.name)
        try:
            async with self.critical:
                pods, _ = await self.kube.list_all(core_path(job.namespace, "pods"),
                                                   {"labelSelector": f"batch.kubernetes.io/job-name={job.name}"})
            self.view.set_pods(job, pods)
        except Exception as exc:
            log.warning("could not read pods of Job %s/%s: %s", job.namespace, job.name, exc)
            await asyncio.sleep(1)
        finally:
            self.fetching.discard(key)
            self.view.touch((job.namespace, job.execution))
            self.wake()

    async def _check_config_map(self, key: Key, name: str) -> None:
        try:
            async with self.critical:
                await self.kube.get(core_path(key[0], "configmaps", name))
            self.view.set_config_map_check(key, None)
        except ApiError as exc:
            if exc.not_found:
                self.view.set_config_map_check(key, name)
            else:
                log.warning("could not check ConfigMap %s/%s: %s", key[0], name, exc)
                await asyncio.sleep(1)
        except Exception as exc:
            log.warning("could not check ConfigMap %s/%s: %s", key[0], name, exc)
            await asyncio.sleep(1)
        finally:
            self.checking.discard(key)
            self.view.touch(key)
            self.wake()

    # ---- start-up and periodic re-list ------------------------------------------------------
    async def resync(self) -> None:
        """Lists queues, Jobs and executions; drops what the watch missed being deleted."""
        namespaces = self.settings.watch_namespaces or [None]
        for ns in namespaces:
            await self._relist(queue_path(ns or "_"), ns, self.view.queues, self.on_queue)
            await self._relist(job_path(ns or "_"), ns, self.view.jobs, self.on_job,
                               {"labelSelector": "sluice.dev/execution"}, protect=self.inflight_jobs)
            await self._relist(execution_path(ns or "_"), ns, self.view.executions, self.on_execution,
                               protect=self.writing)
        self.memo.full()

    async def _relist(self, path: str, ns: str | None, store: dict, handler: Callable[[str, dict], None],
                      params: dict | None = None, protect: set | None = None) -> None:
        url = path if ns else all_namespaces(path)
        while True:
            seen: set[Key] = set()
            rv = ""
            try:
                async for items, rv in self.kube.list_pages(url, params):
                    for obj in items:
                        meta = obj["metadata"]
                        seen.add((meta["namespace"], meta["name"]))
                        handler("MODIFIED", obj)
                    del items
                break
            except Exception as exc:  # an expired continue token or the API away: list again
                log.warning("list %s failed (%s); retrying", url, exc)
                await asyncio.sleep(2)
        try:
            list_rv = int(rv)
        except ValueError:
            list_rv = 0
        for key in [k for k in store if k not in seen and (ns is None or k[0] == ns)]:
            rec = store[key]
            if protect and key in protect:
                continue
            if list_rv and getattr(rec, "resource_version", 0) > list_rv:
                continue  # created after the list was taken
            handler("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
        release_memory()

    # ---- helpers ----------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
