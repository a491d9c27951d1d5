"""The planner over a synthetic view: what it decides, step by step, with the clock as input."""
from datetime import timedelta

from sluice.api.execution import Phase
from sluice.api.settings import Settings
from sluice.cache.assumptions import (Assumptions, apply_plan, create_succeeded, next_status, observe_execution,
                                      status_written, writer_done)
from sluice.cache.view import ClusterView
from sluice.planner import Memo, plan

from .builders import T0, execution, finished, next_rv, pod, queue


class Sim:
    """Applies plans with the dispatcher's own `apply_plan`, then plays the API's part.

    The API's part is explicit and separate: status writes land and come back as the API's
    answer (a new resourceVersion), Job creates succeed, and a delete finishes at once
    (`settle_deletes`; the dispatcher only marks the Job deleting until the watch says DELETED).
    """

    def __init__(self, settings=None, settle_deletes=True):
        self.view = ClusterView()
        self.assumed = Assumptions()
        self.settings = settings or Settings(running_capacity=3, queued_capacity=50)
        self.first_seen = {}
        self.objects = {}  # the API's copy of each execution
        self.now = T0
        self.memo = Memo()  # incremental, as the dispatcher plans
        self.settle_deletes = settle_deletes
        self.job_objects = {}  # the API's copy of each Job created (the view keeps only a slim one)

    def add(self, obj):
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.objects[key] = obj
        observe_execution(self.view, self.assumed, False, obj)
        self.first_seen.setdefault(key, self.now)

    def step(self, seconds=0.0, position_budget=10**9):
        self.now = T0 + timedelta(seconds=seconds) if seconds else self.now
        p = plan(self.view, self.settings, self.now, self.first_seen, self.memo, dirty=self.view.take_dirty(),
                 position_budget=position_budget)
        return self.apply(p)

    def apply(self, p):
        """What the dispatcher does with a plan (`apply_plan`), then the API's answers."""
        fx = apply_plan(self.view, p, self.assumed)
        writers = list(fx.status_writers)
        for c in fx.creates:
            self.job_objects[(c.job["metadata"]["namespace"], c.job["metadata"]["name"])] = c.job
            if create_succeeded(self.view, self.assumed, c, c.job):
                writers.append(c.key)
        for key in writers:
            while (item := next_status(self.assumed, key)) is not None:
                status_written(self.view, self.assumed, key, self.api_status_write(key, item[0]))
            writer_done(self.view, self.assumed, key)
        if self.settle_deletes:
            for job in fx.deletes:
                self.view.delete_job(job.namespace, job.name)
        return p

    def api_status_write(self, key, status):
        obj = dict(self.objects[key], status=status.wire())
        obj["metadata"] = dict(obj["metadata"], resourceVersion=next_rv())
        self.objects[key] = obj
        return obj

    def status(self, name):
        return self.view.executions[("ns", name)].status

    def finish(self, job_name, exit_code, message="", kind=None, reason=None):
        job = self.job_objects[("ns", job_name)]
        kind = kind or ("Complete" if exit_code == 0 else "Failed")
        self.view.upsert_job(finished(job, kind, reason or (None if kind == "Complete" else "BackoffLimitExceeded")))
        pods = [pod(job_name, exit_code, message)] if exit_code is not None else []
        self.view.set_pods(self.view.jobs[("ns", job_name)], pods)


def replace_spec(sim: Sim, name: str, **changes) -> None:
    """The owner edits execution `name`'s spec (`changes` by wire name, e.g. `cancel=True`): the
    API server bumps its generation and keeps its uid, and the watch brings the new object."""
    rec = sim.view.executions[("ns", name)]
    spec = rec.spec.model_dump(by_alias=True, exclude_none=True, mode="json") | changes
    obj = execution(name, created=(rec.created - T0).total_seconds(), status=rec.status.wire(),
                    generation=rec.generation + 1, **spec)
    obj["metadata"]["uid"] = rec.uid
    sim.objects[rec.key] = obj
    sim.view.upsert_execution(obj)


def test_admits_up_to_capacity_in_order_and_queues_the_rest_with_positions():
    sim = Sim()
    for i, prio in enumerate(["low", "normal", "critical", "normal", "high"]):
        sim.add(execution(f"e{i}", created=i, priority=prio))
    p = sim.step()
    assert [c.key[1] for c in p.creates] == ["e2", "e4", "e1"]
    assert {c.job["metadata"]["name"] for c in p.creates} == {"e2-a1", "e4-a1", "e1-a1"}
    assert (sim.status("e3").phase, sim.status("e3").queue_position) == (Phase.Queued, 1)
    assert (sim.status("e0").phase, sim.status("e0").queue_position) == (Phase.Queued, 2)
    assert sim.step().creates == [] and sim.step().writes == []  # idempotent: nothing more to do


def test_finished_job_frees_its_slot_and_next_is_admitted():
    sim = Sim(Settings(running_capacity=1))
    sim.add(execution("a", 0))
    sim.add(execution("b", 1))
    sim.step()
    sim.finish("a-a1", 0, {"outcome": "passed", "total": 1, "passed": 1})
    p = sim.step(10)
    assert sim.status("a").phase == Phase.Succeeded and sim.status("a").results.passed == 1
    assert [c.key[1] for c in p.creates] == ["b"]
    conds = {c.type: c.status for c in sim.status("a").conditions}
    assert conds == {"Admitted": "True", "Running": "False", "Complete": "True", "Succeeded": "True",
                     "Ready": "True", "Reconciling": "False", "Stalled": "False"}


def test_infrastructure_errors_are_retried_with_backoff_keeping_queued_at():
    sim = Sim(Settings(running_capacity=1))
    sim.add(execution("a", 0, retries={"limit": 2, "backoff": {"initialSeconds": 10, "factor": 2}}))
    sim.step()
    queued_at = sim.status("a").queued_at
    sim.finish("a-a1", 3, {"outcome": "error", "errorClass": "InfrastructureError", "message": "net down"})
    sim.step(5)
    st = sim.status("a")
    assert st.phase == Phase.BackingOff and st.reason == "RetryScheduled"
    assert 10 <= (st.next_attempt_at - sim.now).total_seconds() <= 11
    assert sim.step(10).creates == []  # not yet due
    p = sim.step(17)
    assert [c.job["metadata"]["name"] for c in p.creates] == ["a-a2"]
    assert sim.status("a").queued_at == queued_at and sim.status("a").attempt == 2
    sim.finish("a-a2", 0)
    sim.step(20)
    st = sim.status("a")
    assert st.phase == Phase.Succeeded and [a.outcome for a in st.attempts] == ["Failed", "Succeeded"]


def test_test_failures_and_timeouts_and_invalid_are_not_retried():
    for code, kind, reason, phase, why in [
        (1, "Failed", "BackoffLimitExceeded", Phase.Failed, "TestsFailed"),
        (2, "Failed", "PodFailurePolicy", Phase.Failed, "InvalidSpec"),
        (None, "Failed", "DeadlineExceeded", Phase.TimedOut, "DeadlineExceeded"),
    ]:
        sim = Sim()
        sim.add(execution("a", 0))
        sim.step()
        sim.finish("a-a1", code, kind=kind, reason=reason)
        p = sim.step(5)
        assert (sim.status("a").phase, sim.status("a").reason) == (phase, why)
        assert p.creates == []


def test_adopts_a_job_created_before_a_crash_instead_of_creating_another():
    sim = Sim()
    sim.add(execution("a", 0))
    job = sim.step().creates[0].job
    sim2 = Sim()
    sim2.add(execution("a", 0))  # status never written
    sim2.view.upsert_job(job)
    p = sim2.step()
    assert p.creates == [] and sim2.status("a").phase == Phase.Running and sim2.status("a").job_name == "a-a1"


def test_cancel_deletes_the_running_job_and_frees_the_slot():
    sim = Sim(Settings(running_capacity=1))
    sim.add(execution("a", 0))
    sim.add(execution("b", 1))
    sim.step()
    sim.add(execution("a", 0, generation=2, cancel=True, status=sim.status("a").wire()))
    p = sim.step(3)
    assert [j.name for j in p.deletes] == ["a-a1"] and sim.status("a").phase == Phase.Cancelled
    assert [c.key[1] for c in sim.step(4).creates] == ["b"]


def test_queue_full_rejects_with_numbers_and_paused_queue_holds():
    sim = Sim(Settings(running_capacity=5, queued_capacity=100))
    sim.view.upsert_queue(queue("small", runningCapacity=1, queuedCapacity=2))
    for i in range(5):
        sim.add(execution(f"e{i}", i, queue="small"))
    sim.step()
    phases = [sim.status(f"e{i}").phase for i in range(5)]
    assert phases == [Phase.Running, Phase.Queued, Phase.Queued, Phase.Rejected, Phase.Rejected]
    assert "2 executions waiting, queuedCapacity is 2" in sim.status("e3").message
    sim.view.upsert_queue(queue("small", runningCapacity=1, queuedCapacity=2, paused=True))
    sim.finish("e0-a1", 0)
    p = sim.step(5)
    assert p.creates == [] and sim.status("e1").reason == "QueuePaused"


def test_queue_timeout_and_missing_queue_and_invalid_spec():
    sim = Sim(Settings(running_capacity=1))
    sim.add(execution("runs", 0))
    sim.add(execution("waits", 1, queueTimeoutSeconds=30))
    sim.add(execution("orphan", 2, queue="nope"))
    sim.add(execution("bad", 3, shards=4))
    p = sim.step()
    assert p.wake_at == T0 + timedelta(seconds=30)
    assert sim.status("orphan").reason == "QueueNotFound" and sim.status("orphan").phase == Phase.Pending
    assert sim.status("bad").phase == Phase.Rejected and "shards (4)" in sim.status("bad").message
    sim.step(31)
    assert (sim.status("waits").phase, sim.status("waits").reason) == (Phase.Failed, "QueueTimeout")


def test_job_that_vanished_mid_attempt_counts_as_infrastructure_error():
    sim = Sim()
    sim.add(execution("a", 0))
    sim.step()
    sim.view.delete_job("ns", "a-a1")
    sim.step(2)
    assert sim.status("a").phase == Phase.BackingOff and "disappeared" in sim.status("a").message


def test_a_retry_whose_queue_vanished_waits_for_it_then_starts_the_next_attempt():
    """Found by the incremental-vs-full test: it used to restart attempt 1 under the failed Job's name."""
    sim = Sim(Settings(running_capacity=2))
    sim.view.upsert_queue(queue("q", runningCapacity=1))
    sim.add(execution("a", 0, queue="q", retries={"limit": 2, "backoff": {"initialSeconds": 10}}))
    sim.step()
    sim.finish("a-a1", 3)
    sim.step(1)
    assert sim.status("a").phase == Phase.BackingOff
    sim.view.delete_queue("ns", "q")
    sim.step(2)
    st = sim.status("a")
    assert (st.phase, st.reason, st.next_attempt_at) == (Phase.Pending, "QueueNotFound", None)
    sim.view.upsert_queue(queue("q", runningCapacity=1))
    p = sim.step(3)
    assert [c.job["metadata"]["name"] for c in p.creates] == ["a-a2"]
    assert sim.status("a").attempt == 2


def test_a_waiting_inline_source_is_created_ahead_and_a_started_one_with_its_job():
    sim = Sim(Settings(running_capacity=1))
    sim.add(execution("a", 0))
    sim.add(execution("b", 1))
    p = sim.step()
    assert [c.key[1] for c in p.creates] == ["a"] and p.creates[0].config_map is not None
    assert [(k[1], cm["metadata"]["name"], cm["immutable"]) for k, cm in p.sources] == [("b", "b-src", True)]
    assert sim.step().sources == []  # once, when it joins the queue


def test_a_late_cancel_on_a_finished_execution_is_acknowledged_once():
    sim = Sim()
    sim.add(execution("a", 0))
    sim.step()
    sim.finish("a-a1", 0)
    sim.step(5)
    st = sim.status("a").wire()
    late = execution("a", 0, generation=2, cancel=True, status=st)
    late["metadata"]["generation"] = 2
    sim.add(late)
    p = sim.step(6)
    st = sim.status("a")
    assert [w.key for w in p.writes] == [("ns", "a")] and p.writes[0].event is None
    assert st.phase == Phase.Succeeded and st.observed_generation == 2
    assert {c.observed_generation for c in st.conditions} == {2}
    assert sim.step(7).writes == [] and ("ns", "a") not in sim.view.active
