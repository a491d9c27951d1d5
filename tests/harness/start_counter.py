"""How often each execution was started, as the API server saw it (never the operator's word).

Two watch streams of the test's namespace, opened (from a list's resourceVersion) before the
executions are created, see every change for the whole test:
- runner Jobs ADDED, per `sluice.dev/execution` label: a second Job for an execution is seen even
  if it was deleted a moment later;
- status writes that announce a start: the execution's status becomes `Running` with a message it
  did not have (what an `Admitted` Event tells under `SLUICE_EVENTS=all`), so an attempt announced
  twice (say, a stale status making the operator "adopt" its own Job) is counted twice.
A watch that expires (410) is recorded in `errors`, never resumed past the gap. Stop it with
`stop()` before reading the counts.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Callable

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from .sluice_api import GROUP, VERSION

LABEL_EXECUTION = "sluice.dev/execution"
WATCH_SECONDS = 2  # each watch call ends this often, so `stop()` returns within about that long


class StartCounter:
    def __init__(self, sluice):
        self.sluice = sluice
        self.jobs: Counter[str] = Counter()  # execution -> Jobs ADDED
        self.job_names: dict[str, list[str]] = defaultdict(list)
        self.starts: Counter[str] = Counter()  # execution -> status writes announcing a start
        self.errors: list[str] = []
        self._last: dict[str, tuple[str | None, str | None]] = {}  # execution -> (phase, message)
        self._stop_at: float | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> "StartCounter":
        ns = self.sluice.ns
        jobs_rv = self.sluice.batch.list_namespaced_job(ns, label_selector=LABEL_EXECUTION).metadata.resource_version
        listed = self.sluice.api.list_namespaced_custom_object(GROUP, VERSION, ns, "testexecutions")
        for item in listed["items"]:
            self._on_execution("ADDED", item)
        self.starts.clear()  # only starts from now on count
        streams = [
            (self.sluice.batch.list_namespaced_job, (ns,), {"label_selector": LABEL_EXECUTION}, jobs_rv, self._on_job),
            (self.sluice.api.list_namespaced_custom_object, (GROUP, VERSION, ns, "testexecutions"), {},
             listed["metadata"]["resourceVersion"], self._on_execution),
        ]
        for fn, args, kwargs, rv, handle in streams:
            t = threading.Thread(target=self._follow, args=(fn, args, kwargs, rv, handle), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Returns once each stream finished a watch call begun after this was called: everything
        the API server had committed by then has been counted."""
        self._stop_at = time.monotonic()
        for t in self._threads:
            t.join(timeout=WATCH_SECONDS * 5)

    def _follow(self, fn: Callable, args: tuple, kwargs: dict, rv: str,
                handle: Callable[[str, dict], None]) -> None:
        began = time.monotonic()
        while self._stop_at is None or began <= self._stop_at:
            began = time.monotonic()
            try:
                for ev in watch.Watch().stream(fn, *args, resource_version=rv, timeout_seconds=WATCH_SECONDS,
                                               allow_watch_bookmarks=True, **kwargs):
                    obj = ev["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    handle(ev["type"], obj)
            except ApiException as exc:
                self.errors.append(f"{fn.__name__}: {exc.status} {exc.reason}")
                return

    def _on_job(self, event_type: str, obj: dict) -> None:
        if event_type == "ADDED":
            execution = (obj["metadata"].get("labels") or {}).get(LABEL_EXECUTION, "")
            self.jobs[execution] += 1
            self.job_names[execution].append(obj["metadata"]["name"])

    def _on_execution(self, event_type: str, obj: dict) -> None:
        if event_type not in ("ADDED", "MODIFIED"):
            return
        name = obj["metadata"]["name"]
        st = obj.get("status") or {}
        now = (st.get("phase"), st.get("message"))
        if now[0] == "Running" and self._last.get(name) != now:
            self.starts[name] += 1
        self._last[name] = now
