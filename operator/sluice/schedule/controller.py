"""The schedule controller: carries out `decide` for every TestSchedule. A dispatcher `Subsystem`.

Why a Subsystem and not a task of its own: the dispatcher already runs only on the leader,
after the start-up lists, and sleeps until the earliest time any subsystem asks for; returning
the next scheduled time from `after_pass` is all it takes to be woken then, and watch events
on schedules and their runs wake it through the same `wake`.

After each pass it decides for the schedules whose inputs changed or whose time came (never for
all of them on every pass) and, per schedule, runs at most one task at a time that carries the
decision out in this order: cancel (Replace), create the run, write the status, delete history.
Exactly-once per scheduled time comes from the run's name (`<schedule>-<unix minutes>`): a
create that meets the name (409) is the run already made, before a crash or by the other
replica, and is adopted when the schedule controls it. Every failed call pauses the schedule
(RETRY_SECONDS, doubling) before it is decided again: no hot loop. It never changes the
dispatcher's view and never decides anything itself (that is `decide`).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from ..api.common import API_GROUP, API_VERSION, LABEL_SCHEDULE
from ..api.environment import TestScheduleStatus
from ..api.settings import Settings
from ..cache.view import ClusterView, controller_uid
from ..kube.relist import relist
from ..kube.client import ApiError, Kube, api_path, execution_path
from ..kube.events import EventPoster
from .decide import Decision, Event, decide
from .index import Key, ScheduleIndex, ScheduleRecord
from .manifest import render_run

log = logging.getLogger("sluice.schedule")

RETRY_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


def schedule_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    return api_path(f"/apis/{API_GROUP}/{API_VERSION}", "namespaces", namespace, "testschedules", name, sub)


def _skipped(d: Decision, last_execution: str | None) -> TestScheduleStatus:
    """The decision's status when its run could not be made: the time is recorded (not retried
    until the next one), the run is neither active nor the last execution."""
    st = d.status.model_copy(deep=True)
    st.active = [n for n in st.active if n != d.run_name]
    st.active_count, st.last_execution = len(st.active), last_execution
    return st


class ScheduleController:
    def __init__(self, kube: Kube, settings: Settings, events: EventPoster,
                 spawn: Callable[[Awaitable], object], wake: Callable[[], None]):
        self.kube, self.settings, self.events, self.spawn, self.wake = kube, settings, events, spawn, wake
        self.index = ScheduleIndex()
        self.listed = False  # the index holds a full list: only then may Forbid trust "no run is active"
        self.listing = False
        self.next_list = 0.0  # monotonic
        self.dirty: set[Key] = set()
        self.due: dict[Key, datetime] = {}  # schedule -> when to decide again
        self.busy: set[Key] = set()  # a task is carrying out a decision
        self.failures: dict[Key, int] = {}  # consecutive failed tasks per schedule
        self.held: dict[Key, datetime] = {}  # not decided again before this (after a failure)
        self.announced: dict[Key, Event] = {}  # the last Event posted per schedule: no repeats

    # ---- watch events in ---------------------------------------------------------------------
    def on_schedule(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.index.delete_schedule(*key)
            for table in (self.due, self.failures, self.held, self.announced):
                table.pop(key, None)
        else:
            self.index.upsert_schedule(obj)
        self.dirty.add(key)
        self.wake()

    def on_run(self, event_type: str, obj: dict) -> None:
        """Every TestExecution event: cheap for those no schedule made."""
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        labelled = LABEL_SCHEDULE in (meta.get("labels") or {})
        if not labelled and key not in self.index.runs:
            return
        before = self.index.runs.get(key)
        if event_type == "DELETED" or not labelled:
            self.index.delete_run(*key)
        else:
            self.index.upsert_run(obj)
        after = self.index.runs.get(key)
        for uid in {r.owner_uid for r in (before, after) if r is not None} | {controller_uid(obj, "TestSchedule")}:
            self._touch_owner(key[0], uid)

    def _touch_owner(self, namespace: str, uid: str | None) -> None:
        key = self.index.schedule_of(uid)
        if key is not None and key[0] == namespace:
            self.dirty.add(key)
            self.wake()

    # ---- the Subsystem -----------------------------------------------------------------------
    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None:
        if not self.listing and time.monotonic() >= self.next_list:
            self.listing = True
            self.spawn(self._list())
        if not self.listed:
            return None
        for key, at in self.due.items():
            if at <= now:
                self.dirty.add(key)
        todo, self.dirty = self.dirty, set()
        for key in todo:
            rec = self.index.schedules.get(key)
            if rec is None:
                self.due.pop(key, None)
                continue
            if key in self.busy or rec.deleting:
                continue  # the task marks it again when it ends
            if self.held.get(key, now) > now:
                continue  # `due` brings it back when the pause ends
            decision = decide(rec, self.index.runs_of(rec), now)
            self._announce(rec, decision.events)
            if decision.wake_at is None:
                self.due.pop(key, None)
            else:
                self.due[key] = decision.wake_at
            if decision.create_at or decision.cancel or decision.delete or decision.status.wire() != rec.status.wire():
                self.busy.add(key)
                self.spawn(self._carry_out(rec, decision))
        return min(self.due.values(), default=None)

    def _announce(self, rec: ScheduleRecord, events) -> None:
        for event in events:
            if self.announced.get(rec.key) == event:
                continue
            self.announced[rec.key] = event
            self._post(rec, *event)

    def _post(self, rec: ScheduleRecord, type_: str, reason: str, message: str) -> None:
        self.events.post_for(rec.namespace, rec.name, rec.uid, type_, reason, message, kind="TestSchedule")

    # ---- carrying a decision out -------------------------------------------------------------
    async def _carry_out(self, rec: ScheduleRecord, d: Decision) -> None:
        key = rec.key
        try:
            for name in d.cancel:
                await self._cancel(rec, name, d)
            status = d.status
            if d.create_at is not None and d.run_name is not None and not await self._create(rec, d):
                status = _skipped(d, rec.status.last_execution)
            if status.wire() != rec.status.wire():
                obj = await self.kube.merge_patch(schedule_path(*key, "status"), {"status": status.wire()})
                self.index.upsert_schedule(obj)
            for name in d.delete:
                await self._ignore_gone(self.kube.delete(execution_path(rec.namespace, name)))
                self.index.delete_run(rec.namespace, name)  # not decided again while the watch catches up
                log.info("deleted %s/%s: beyond the history limits of schedule %s", rec.namespace, name, rec.name)
            self.failures.pop(key, None)
            self.held.pop(key, None)
        except Exception as exc:  # the API away or refusing: pause this schedule, then decide again
            n = self.failures[key] = self.failures.get(key, 0) + 1
            pause = min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** (n - 1))
            log.warning("schedule %s/%s: %s; trying again in %.0f s", *key, exc, pause)
            self.held[key] = self.due[key] = datetime.now(timezone.utc) + timedelta(seconds=pause)
        finally:
            self.busy.discard(key)
            self.dirty.add(key)
            self.wake()

    async def _cancel(self, rec: ScheduleRecord, name: str, d: Decision) -> None:
        await self._ignore_gone(self.kube.merge_patch(execution_path(rec.namespace, name), {"spec": {"cancel": True}}))
        self._post(rec, "Normal", "Replaced", f"cancelled {name}: the run of {d.create_at:%Y-%m-%d %H:%M} UTC "
                                              f"replaces it (concurrencyPolicy Replace)")

    async def _create(self, rec: ScheduleRecord, d: Decision) -> bool:
        """Creates the run (or finds it made before a restart): True; False when the API refuses
        for good (the time is skipped with a Warning Event); raises what retrying may fix."""
        body = render_run(rec, d.create_at, d.run_name)
        try:
            obj = await self.kube.create(execution_path(rec.namespace), body)
        except ApiError as exc:
            if exc.conflict:
                existing = await self.kube.get(execution_path(rec.namespace, d.run_name))
                if controller_uid(existing, "TestSchedule") == rec.uid:
                    self.index.upsert_run(existing)  # made before a restart: the run of this time is done
                    return True
                self._post(rec, "Warning", "NameTaken", f"testexecution {d.run_name} exists and is not this "
                                                        f"schedule's: the run of {d.create_at:%Y-%m-%d %H:%M} UTC is skipped")
                return False
            if exc.status in (400, 403, 422):  # retrying cannot fix it: skip this time, say why
                self._post(rec, "Warning", "CreateFailed", f"could not create {d.run_name}: {exc.text[:400]}")
                return False
            raise
        self.index.upsert_run(obj)
        self._post(rec, "Normal", "Created", f"created testexecution {d.run_name} for the run of "
                                             f"{d.create_at:%Y-%m-%d %H:%M} UTC")
        return True

    @staticmethod
    async def _ignore_gone(call: Awaitable) -> None:
        try:
            await call
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _list(self) -> None:
        """Lists schedules and their runs (start-up and every resync): a missed watch event heals."""
        try:
            for ns in self.settings.watch_namespaces or [None]:
                await relist(self.kube, schedule_path(ns or "_"), ns, self.index.schedules, self.on_schedule)
                await relist(self.kube, execution_path(ns or "_"), ns, self.index.runs, self.on_run,
                             {"labelSelector": LABEL_SCHEDULE})
            self.listed = True
        finally:
            self.listing = False
            self.next_list = time.monotonic() + self.settings.resync_seconds
            self.dirty.update(self.index.schedules)
            self.wake()
