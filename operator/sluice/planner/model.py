"""What a planning pass produces (`Plan`) and keeps between passes (`Memo`), and its inputs
(`Context`). Data only: the decisions are in `lifecycle` (one execution) and `admission`
(queue-wide), the entry point in `plan`."""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from ..api.common import DEFAULT_QUEUE
from ..api.execution import TestExecutionStatus
from ..api.queue import TestQueueSpec
from ..api.settings import Settings
from ..cache.view import ClusterView, JobRecord, Key
from ..queue.ordering import Candidate
from ..queue.positions import NO_ESTIMATE, AdmissionRate
from ..queue.waitlist import Backlog, WaitList


@dataclass
class StatusWrite:
    key: Key
    status: TestExecutionStatus
    event: tuple[str, str, str] | None = None  # (type, reason, message)


@dataclass
class CreateAttempt:
    key: Key
    uid: str
    attempt: int
    job: dict
    config_map: dict | None
    status: TestExecutionStatus
    event: tuple[str, str, str] | None = None


@dataclass
class Plan:
    writes: list[StatusWrite] = field(default_factory=list)
    creates: list[CreateAttempt] = field(default_factory=list)
    deletes: list[JobRecord] = field(default_factory=list)
    fetch_pods: list[JobRecord] = field(default_factory=list)
    check_config_maps: list[tuple[Key, str]] = field(default_factory=list)
    # inline-source ConfigMaps to create ahead, while the execution waits: the start of an
    # attempt is then one API call (the Job), not two in series
    sources: list[tuple[Key, dict]] = field(default_factory=list)
    wake_at: datetime | None = None
    waiting: int = 0  # candidates left waiting after this plan
    position_writes: int = 0  # how much of the position budget this plan used

    def wake(self, when: datetime) -> None:
        if self.wake_at is None or when < self.wake_at:
            self.wake_at = when


@dataclass
class Memo:
    """What the planner keeps between passes, so that a pass costs what changed, not what waits.

    `full()` forgets the candidates: the dispatcher asks for a full pass now and then, so a
    change that was never marked dirty would cost a delay, never a stuck execution. The rest is
    the pacing of positions and estimates (see `queue.positions`), kept across full passes.
    """

    wait: WaitList = field(default_factory=WaitList)  # the candidates, per queue in admission order
    timers: dict[Key, datetime] = field(default_factory=dict)  # earliest re-step per execution
    heap: list[tuple[datetime, Key]] = field(default_factory=list)
    moved_at: dict[Key, datetime] = field(default_factory=dict)  # when the rank first left the written one
    # a deep (past the head) position this operator wrote, and when: the rank was true then
    deep_written: dict[Key, tuple[int, datetime]] = field(default_factory=dict)
    eta_check_at: dict[Key, datetime] = field(default_factory=dict)  # when its estimate is next checked
    admissions: dict[tuple[str, str], AdmissionRate] = field(default_factory=dict)  # per queue
    # per queue, the waiters whose estimate is checked again once the queue has one (NO_ESTIMATE)
    no_estimate: dict[tuple[str, str], set[Key]] = field(default_factory=dict)
    carry: Backlog = field(default_factory=Backlog)  # due, but past the last passes' write budget
    full_pending: bool = True

    @property
    def waiting(self) -> dict[Key, Candidate]:
        return self.wait.candidates

    def full(self) -> None:
        self.full_pending = True

    def forget(self, key: Key) -> None:
        """The execution is gone: drop what was kept for it."""
        self.wait.remove(key)
        self.timers.pop(key, None)
        self.moved_at.pop(key, None)
        self.deep_written.pop(key, None)
        self.eta_check_at.pop(key, None)
        self.carry.discard(key)
        for keys in self.no_estimate.values():
            keys.discard(key)

    def wrote_position(self, key: Key, position: int, head: int, now: datetime) -> None:
        """A waiting status with this true rank is written now: a deep one is remembered, so
        that when the rank reaches the head its lag is timed from now at the latest."""
        if position > head:
            self.deep_written[key] = (position, now)
        else:
            self.deep_written.pop(key, None)

    def deep_true_at(self, key: Key, written: int) -> datetime | None:
        """When the deep position `written` was last the true rank, at the earliest (None: unknown,
        e.g. written before this operator started)."""
        kept = self.deep_written.get(key)
        return kept[1] if kept is not None and kept[0] == written else None

    def eta_checked(self, key: Key, queue_key: tuple[str, str], again_at: datetime) -> None:
        """Its estimate was written or found good: check it again at `again_at`."""
        self.eta_check_at[key] = again_at
        self.watch_estimate(key, queue_key)

    def watch_estimate(self, key: Key, queue_key: tuple[str, str]) -> None:
        """Have the pass that reaches its `eta_check_at` look at it (`queue.waitlist`)."""
        again_at = self.eta_check_at[key]
        if again_at == NO_ESTIMATE:
            self.no_estimate.setdefault(queue_key, set()).add(key)
        else:
            self.wait.recheck(key, again_at)

    def admission_rate(self, queue_key: tuple[str, str]) -> AdmissionRate:
        rate = self.admissions.get(queue_key)
        if rate is None:
            rate = self.admissions[queue_key] = AdmissionRate()
        return rate

    def timer(self, key: Key, when: datetime) -> None:
        current = self.timers.get(key)
        if current is None or when < current:
            self.timers[key] = when
            heapq.heappush(self.heap, (when, key))

    def due(self, now: datetime) -> set[Key]:
        """Executions whose timer fell due (a stale heap entry only costs a spare re-step)."""
        out: set[Key] = set()
        while self.heap and self.heap[0][0] <= now:
            _, key = heapq.heappop(self.heap)
            if key in self.timers and self.timers[key] <= now:
                del self.timers[key]
            out.add(key)
        return out


@dataclass
class Context:
    """One pass's inputs, handed to the lifecycle and admission steps."""

    view: ClusterView
    settings: Settings
    now: datetime
    first_seen: dict[Key, datetime]
    memo: Memo
    position_budget: int = 10**9
    _default_queue: TestQueueSpec | None = None
    _estimates: dict = field(default_factory=dict)  # (queue key, rank) -> estimate, for this pass
    per_pass: dict = field(default_factory=dict)  # values derived once per pass (admission's caches)

    def has_estimates(self, queue_key: tuple[str, str]) -> bool:
        """Whether the queue measured enough admissions to estimate starts."""
        return self.memo.admission_rate(queue_key).cadence(self.now) is not None

    def estimate(self, queue_key: tuple[str, str], rank: int) -> datetime | None:
        """The queue's start estimate for `rank`, computed once per pass."""
        key = (queue_key, rank)
        if key not in self._estimates:
            self._estimates[key] = self.memo.admission_rate(queue_key).estimate(rank, self.now)
        return self._estimates[key]

    def timer(self, plan: Plan, key: Key, when: datetime) -> None:
        """Step this execution again at `when` (a backoff ends, a queue timeout expires)."""
        plan.wake(when)
        self.memo.timer(key, when)

    def queue_spec(self, namespace: str, queue: str) -> TestQueueSpec | None:
        rec = self.view.queues.get((namespace, queue))
        if rec is not None:
            return rec.spec
        if queue == DEFAULT_QUEUE:
            # The default queue needs no object: only the operator-wide caps bound it.
            if self._default_queue is None:
                self._default_queue = TestQueueSpec(running_capacity=self.settings.running_capacity,
                                                    queued_capacity=self.settings.queued_capacity)
            return self._default_queue
        return None
