"""Which transitions post an Event (`status.event_policy`): the rule, the planner's real
transitions under it, the proof that every Event `notable` drops is said by a condition, and the
status writer (the one place an execution's Events are posted) applying it."""
import asyncio

import pytest

from sluice.api.settings import Settings
from sluice.cache import assumptions as A
from sluice.dispatch.actuators import Actuators
from sluice.status.event_policy import ORDINARY_REASONS, worth_posting

from .builders import execution, queue
from .test_reconcile import Sim


@pytest.mark.parametrize("type_, reason, mode, posted", [
    ("Normal", "Admitted", "notable", False),         # conditions Admitted and Running say it
    ("Normal", "TestsPassed", "notable", False),      # conditions Complete and Succeeded say it
    ("Normal", "Admitted", "all", True),
    ("Normal", "TestsPassed", "all", True),
    ("Warning", "TestsFailed", "notable", True),
    ("Warning", "DeadlineExceeded", "notable", True),
    ("Warning", "QueueFull", "notable", True),
    ("Warning", "InvalidSpec", "notable", True),
    ("Warning", "QueueNotFound", "notable", True),
    ("Warning", "PodPendingTooLong", "notable", True),
    ("Normal", "RetryScheduled", "notable", True),
    ("Normal", "Cancelled", "notable", True),
    ("Normal", "PriorityChanged", "notable", True),
    ("Warning", "Admitted", "notable", True),         # a Warning is always posted, whatever its reason
])
def test_the_rule(type_, reason, mode, posted):
    assert worth_posting(type_, reason, mode) is posted


def test_the_default_is_notable_and_a_typo_is_refused(monkeypatch):
    assert Settings().events == "notable"
    monkeypatch.setenv("SLUICE_EVENTS", "everything")
    with pytest.raises(ValueError, match="'all' or 'notable'"):
        Settings()


class Told(Sim):
    """The Sim of test_reconcile, keeping every Event the plans ask for with the status it goes with."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self.told: list[tuple[str, tuple[str, str, str], object]] = []  # (name, event, status)

    def apply(self, p):
        for w in p.writes:
            if w.event:
                self.told.append((w.key[1], w.event, w.status.model_copy(deep=True)))
        for c in p.creates:
            if c.event:
                self.told.append((c.key[1], c.event, c.status.model_copy(deep=True)))
        return super().apply(p)

    def reasons(self, name: str, mode: str) -> list[str]:
        return [e[1] for n, e, _ in self.told if n == name and worth_posting(e[0], e[1], mode)]


def _lives() -> Told:
    sim = Told(Settings(running_capacity=5, queued_capacity=100))
    sim.view.upsert_queue(queue("small", runningCapacity=5, queuedCapacity=0, paused=True))
    sim.add(execution("passes", 0))
    sim.add(execution("fails", 1, retries={"limit": 0}))
    sim.add(execution("retried", 2, retries={"limit": 1, "backoff": {"initialSeconds": 1}}))
    sim.add(execution("cancelled", 3))
    sim.add(execution("full", 4, queue="small"))
    sim.add(execution("orphan", 5, queue="nope"))
    sim.step()
    sim.finish("passes-a1", 0, {"outcome": "passed", "total": 2, "passed": 2})
    sim.finish("fails-a1", 1, {"outcome": "failed", "total": 2, "passed": 1, "failed": 1}, reason="BackoffLimitExceeded")
    sim.finish("retried-a1", 3, {"outcome": "error", "errorClass": "InfrastructureError", "message": "net down"})
    sim.add(execution("cancelled", 3, generation=2, cancel=True, status=sim.status("cancelled").wire()))
    sim.step(5)
    sim.step(10)
    sim.finish("retried-a2", 0)
    sim.step(15)
    return sim


def test_notable_keeps_every_event_out_of_the_ordinary_course():
    sim = _lives()
    assert sim.reasons("passes", "all") == ["Admitted", "TestsPassed"]
    assert sim.reasons("passes", "notable") == []
    assert sim.reasons("fails", "all") == ["Admitted", "TestsFailed"]
    assert sim.reasons("fails", "notable") == ["TestsFailed"]
    assert sim.reasons("retried", "notable") == ["RetryScheduled"]
    assert sim.reasons("retried", "all") == ["Admitted", "RetryScheduled", "Admitted", "TestsPassed"]
    assert sim.reasons("cancelled", "notable") == ["Cancelled"]
    assert sim.reasons("full", "notable") == ["QueueFull"]
    assert sim.reasons("orphan", "notable") == ["QueueNotFound"]


def test_every_event_notable_drops_is_said_by_a_true_condition_of_the_status_it_comes_with():
    dropped = [(n, e, st) for n, e, st in _lives().told if not worth_posting(e[0], e[1], "notable")]
    assert {e[1] for _, e, _ in dropped} == ORDINARY_REASONS
    for name, (_, reason, message), st in dropped:
        said = {(c.reason, c.message) for c in st.conditions if c.status == "True"}
        assert (reason, message) in said, (name, reason, message, said)


class _Kube:
    async def merge_patch(self, path, body):
        return dict(execution("a"), status=body["status"])


class _Events:
    def __init__(self):
        self.posted: list[str] = []

    def post(self, obj, type_, reason, message):
        self.posted.append(reason)


@pytest.mark.parametrize("mode, posted", [("notable", ["RetryScheduled"]), ("all", ["Admitted", "RetryScheduled"])])
def test_the_status_writer_posts_only_what_the_rule_allows(mode, posted):
    sim = Sim()
    sim.add(execution("a", 0))
    events = _Events()
    act = Actuators(_Kube(), Settings(events=mode), sim.view, sim.assumed, events, spawn=None, wake=lambda: None)
    st = sim.status("a").model_copy(deep=True)
    st.message = "one"
    assert A.assume_status(sim.view, sim.assumed, ("ns", "a"), st, ("Normal", "Admitted", "one"))
    st = st.model_copy(deep=True)
    st.message = "two"
    A.assume_status(sim.view, sim.assumed, ("ns", "a"), st, ("Normal", "RetryScheduled", "two"))
    asyncio.run(act._status_writer(("ns", "a")))
    assert events.posted == posted
