"""The dispatcher loop: the one task that decides, and the only creator of Jobs.

Watch events come in through the intake (`intake.Intake`, which `Dispatcher` extends): it only
updates the view (executions through `cache.assumptions`), which marks what changed, and wakes
the loop. Each pass runs the pure planner over what changed plus the queue-wide decisions (a full
pass every FULL_PASS_SECONDS and after every relist), applies the plan to the view at once with
`apply_plan` (so a decision is never taken twice while its write is in flight), and hands the API
calls to the actuators. Then every plugged-in `Subsystem` gets its turn.

It never admits before it has listed executions and Jobs (`ready`), and only while it holds
the leader Lease. It never calls the API itself: that is `actuators`, `kube.relist` and the watch
streams of `streams.py`, which it starts and whose first lists it waits for.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Awaitable, Callable, Protocol

from ..api.settings import Settings
from ..cache import assumptions as A
from ..cache.view import ClusterView, Key
from ..kube.client import Kube, environment_path, namespace_path, queue_path
from ..kube.events import EventPoster
from ..planner import Memo, plan
from .actuators import Actuators
from .environment_status import EnvironmentStatusWriter
from .intake import Intake, _now
from .queue_status import QueueStatusWriter
from .memory import release_memory
from .streams import hot_streams
from ..kube.relist import relist

log = logging.getLogger("sluice.dispatch")

FULL_PASS_SECONDS = 10.0  # a full planner pass this often: the safety net under dirty marks
# ... but never more CPU than this share for it: a full pass is O(waiting) (planner/plan.py), an
# incremental one is not; at 50,000 waiting (~2-4 s of CPU) it comes every 40-80 s instead
FULL_PASS_CPU_SHARE = 0.05
MIN_PASS_GAP_SECONDS = 0.05


class Subsystem(Protocol):
    """The seam for the parts that run beside the planner (queue status today; progress relay,
    schedules, retention, notifications next): after each pass each gets the view and the
    clock, does its own bounded work (spawning its own API calls), and says when it wants to be
    woken again (None: on the next event). It must not change the view."""

    def after_pass(self, view: ClusterView, now: datetime) -> datetime | None: ...


class Dispatcher(Intake):
    def __init__(self, kube: Kube, settings: Settings, metrics=None):
        self.kube, self.settings, self.metrics = kube, settings, metrics
        self.view = ClusterView()
        self.assumed = A.Assumptions()
        self.memo = Memo()  # the planner's between-pass state: see planner.plan
        self.full_pass_at = 0.0
        self.first_seen: dict[Key, datetime] = {}
        self.tasks: set[asyncio.Task] = set()
        self.position_tokens = settings.position_writes_per_second
        self.tokens_at = time.monotonic()
        self.wakeup = asyncio.Event()
        self.ready = False
        self.is_leader: Callable[[], bool] = lambda: True
        self.events = EventPoster(kube, self._spawn)
        self.act = Actuators(kube, settings, self.view, self.assumed, self.events, self._spawn, self.wake,
                             metrics)
        self.subsystems: list[Subsystem] = [QueueStatusWriter(kube, settings, self._spawn),
                                            EnvironmentStatusWriter(kube, settings, self._spawn)]
        self.needs_resync = False  # set on becoming leader: the old leader's writes may have landed
        # called with the key of each execution the watch (or a relist) changed in the view, so a
        # subsystem can follow changes without walking every execution (see `listen`)
        self.execution_listeners: list[Callable[[Key], None]] = []
        # called with every execution event as it came (the schedule controller follows its runs)
        self.execution_hooks: list[Callable[[str, dict], None]] = []
        self.streams: list = []  # kube.watch.WatchStream of executions, Jobs and pods: started by run()
        self.act.answered = self._answered

    def plug(self, subsystem: Subsystem) -> None:
        self.subsystems.append(subsystem)

    def on_leadership(self) -> None:
        """This replica became the leader: re-list (the old leader's writes may have landed) and
        run a pass now, not at the next watch event (a quiet cluster may have none for a while,
        and subsystems such as the notifier have work left by the old leader)."""
        self.needs_resync = True
        self.wake()

    def set_metrics(self, metrics) -> None:
        self.metrics = self.act.metrics = metrics

    # ---- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        if self.metrics:
            self.metrics.watch_api(self.kube)  # sluice_api_errors_total
        self.streams = hot_streams(self.kube, self.settings.watch_namespaces, self)
        self.view.history_listed = False
        stream_tasks = [asyncio.create_task(s.run(), name=f"watch {s.path}") for s in self.streams]
        try:
            await self._run(stream_tasks)
        finally:
            for task in stream_tasks:
                task.cancel()

    async def _run(self, stream_tasks: list[asyncio.Task]) -> None:
        await self.resync(streamed=False)
        await asyncio.gather(*(s.listed.wait() for s in self.streams))  # each stream's first list
        self.memo.full()
        release_memory()
        self.ready = True
        self._spawn(self._history_listed())
        log.info("view rebuilt: %d executions, %d jobs, %d queues",
                 len(self.view.executions), len(self.view.jobs), len(self.view.queues))
        next_resync = time.monotonic() + self.settings.resync_seconds
        wake_at: datetime | None = None
        while True:
            await self._sleep_until(next_resync, wake_at)
            self.announce_priority_changes()
            for task in list(stream_tasks):
                if task.done():  # never expected (a stream retries forever): say so loudly, go on
                    log.error("watch stream ended: %r", task.exception() if not task.cancelled() else "cancelled")
                    stream_tasks.remove(task)
            if time.monotonic() >= next_resync or (self.needs_resync and self.is_leader()):
                # on becoming the leader the busy kinds are listed too (the old leader's writes);
                # otherwise their streams are continuous and only the low-rate kinds are re-listed
                await self.resync(streamed=self.needs_resync)
                self.needs_resync = False
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
            wake_at = self._run_subsystems(wake_at)
            # Let a burst of watch events land before the next pass; planning never takes more
            # than about a third of the loop, however large the view (halves the operator CPU
            # of bench/dispatch.py against a gap of `spent`, at no cost in latency).
            await asyncio.sleep(max(MIN_PASS_GAP_SECONDS, 2 * spent))

    async def _history_listed(self) -> None:
        await asyncio.gather(*(s.backfilled.wait() for s in self.streams))
        self.view.history_listed = True
        log.info("history listed: %d executions", len(self.view.executions))
        release_memory()
        self.wake()

    async def _sleep_until(self, next_resync: float, wake_at: datetime | None) -> None:
        timeout = max(0.0, next_resync - time.monotonic())
        if wake_at is not None:
            timeout = min(timeout, max(0.0, (wake_at - _now()).total_seconds()))
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            pass
        self.wakeup.clear()

    def _run_subsystems(self, wake_at: datetime | None) -> datetime | None:
        now = _now()
        for sub in self.subsystems:
            try:
                again = sub.after_pass(self.view, now)
            except Exception:  # one subsystem's bug must not stop the queue
                log.exception("subsystem %s failed", type(sub).__name__)
                continue
            if again is not None and (wake_at is None or again < wake_at):
                wake_at = again
        return wake_at

    def _position_budget(self) -> int:
        """A token bucket for queue-position writes (head of each queue first)."""
        rate = self.settings.position_writes_per_second
        mono = time.monotonic()
        self.position_tokens = min(rate, self.position_tokens + (mono - self.tokens_at) * rate)
        self.tokens_at = mono
        return int(self.position_tokens)

    def pass_once(self) -> datetime | None:
        budget = self._position_budget()
        full = time.monotonic() >= self.full_pass_at
        if full:
            self.memo.full()
        began = time.process_time()
        result = plan(self.view, self.settings, _now(), self.first_seen, self.memo,
                      dirty=self.view.take_dirty(), position_budget=budget)
        spent = time.process_time() - began
        if full:
            self.full_pass_at = time.monotonic() + max(FULL_PASS_SECONDS, spent / FULL_PASS_CPU_SHARE)
        self.position_tokens -= result.position_writes
        self.act.carry_out(A.apply_plan(self.view, result, self.assumed))
        if self.metrics:
            self.metrics.planner_pass.labels("full" if full else "incremental").observe(spent)
            if result.waiting == 0:
                self.metrics.no_waiters()
            if result.position_writes:
                self.metrics.position_writes.inc(result.position_writes)
        return result.wake_at

    # ---- start-up and periodic re-list ------------------------------------------------------
    async def resync(self, streamed: bool = True) -> None:
        """Lists queues, environments and namespaces (and with `streamed` the streams' kinds:
        Jobs, executions, pods); drops what was missed being deleted."""
        view = self.view
        for ns in self.settings.watch_namespaces or [None]:
            await relist(self.kube, queue_path(ns or "_"), ns, view.queues, self.on_queue)
        if streamed:
            for stream in self.streams:
                await stream.relist()
        await self._list_cluster_scoped(environment_path(), view.environments, self.on_environment)
        await self._list_cluster_scoped(namespace_path(), view.namespace_labels, self.on_namespace)
        view.environments_listed = True
        self.memo.full()
        if streamed:  # the large lists: once per re-list, not per list (a full collection costs 0.1-0.5 s)
            release_memory()

    async def _list_cluster_scoped(self, path: str, store: dict, handler: Callable[[str, dict], None]) -> None:
        """Environments and namespace labels: few objects; a failed list keeps what the watch gave."""
        try:
            seen: set[str] = set()
            async for items, _ in self.kube.list_pages(path):
                for obj in items:
                    seen.add(obj["metadata"]["name"])
                    handler("MODIFIED", obj)
        except Exception as exc:
            log.warning("list %s failed (%s): using what the watch gave", path, exc)
            return
        for name in [n for n in store if n not in seen]:
            handler("DELETED", {"metadata": {"name": name}})

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
