"""kopf registrations: translate watch events of the low-rate kinds into calls on the dispatcher.

TestExecutions, runner Jobs and runner pods are not here: they are the busy kinds, watched by
the operator's own streams (dispatch/streams.py, kube/watch.py) because kopf's per-event
pipeline cost more than the view's fold of the event (issue 17). kopf keeps queues,
environments, namespaces and schedules, the login and the operator's lifecycle.

Handlers are coroutines so they run on the dispatcher's event loop (kopf runs plain functions
in a thread pool, where touching the view would race with the dispatcher). Only `on.event`
handlers: they make no writes of their own (no finalizers, no
last-handled-configuration annotations), so the API writes per execution stay the
dispatcher's alone.
"""
from __future__ import annotations

import kopf

from .api.common import API_GROUP, API_VERSION


class NoDiffBase(kopf.DiffBaseStorage):
    """Sluice has no change-detecting handlers: skip kopf's per-event deep copy of every body."""

    def build(self, *, body, extra_fields=None):
        return kopf.BodyEssence()

    def fetch(self, *, body):
        return None

    def store(self, *, body, patch, essence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """Nor handler progress to persist: `on.event` handlers are not retried by kopf."""

    def fetch(self, *, key, body):
        return None

    def store(self, *, key, record, body, patch) -> None:
        return None

    def purge(self, *, key, body, patch) -> None:
        return None

    def touch(self, *, body, patch, value) -> None:
        return None

    def clear(self, *, essence):
        return essence


def register(registry: kopf.OperatorRegistry, dispatcher, schedules=None) -> None:
    def _type(event: dict) -> str:
        return event.get("type") or "MODIFIED"  # None: the initial listing

    if schedules is not None:  # runs of schedules, from the dispatcher's execution stream
        dispatcher.execution_hooks.append(schedules.on_run)

    @kopf.on.event(API_GROUP, API_VERSION, "testqueues", registry=registry)
    async def queue_event(event: dict, **_) -> None:
        dispatcher.on_queue(_type(event), event["object"])

    @kopf.on.event(API_GROUP, API_VERSION, "testenvironments", registry=registry)
    async def environment_event(event: dict, **_) -> None:
        dispatcher.on_environment(_type(event), event["object"])

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_event(event: dict, **_) -> None:
        dispatcher.on_namespace(_type(event), event["object"])

    if schedules is not None:  # schedule.controller.ScheduleController
        @kopf.on.event(API_GROUP, API_VERSION, "testschedules", registry=registry)
        async def schedule_event(event: dict, **_) -> None:
            schedules.on_schedule(_type(event), event["object"])

    @kopf.on.login(registry=registry)
    def login(**_) -> kopf.ConnectionInfo:
        return dispatcher.kube.connection_info()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_) -> None:
        settings.peering.standalone = True  # leadership is our Lease, see leader.py
        settings.posting.enabled = False  # our Events are written by kube/events.py
        settings.scanning.disabled = True  # no CRD scanning: needs no cluster-wide CRD read
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.chunk_size = 500  # initial lists in pages: bounded memory after a restart
        # An idle per-object worker keeps its object's last event (the whole body) until it exits:
        # with kopf's 5 s, a list of 5,000 finished executions with 20 KB suites pinned 170 MB
        # (bench/history.py, when kopf still watched executions). A worker costs ~0.1 ms to start again; memory is the scarce part.
        settings.queueing.idle_timeout = 0.5
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.persistence.progress_storage = NoProgress()
