"""The races this repository fixed over time, one table row each, against the pure rules of
`cache.assumptions` (what the dispatcher asserts before the API confirms it) and `apply_plan`.

Each row drives a `World` (view + assumptions + planner, no API) through an interleaving that
once went wrong on a cluster, and checks who wins.
"""
from __future__ import annotations

import copy

import pytest

from sluice.api.execution import Phase
from sluice.api.settings import Settings
from sluice.cache import assumptions as A
from sluice.cache.view import ClusterView
from sluice.planner import Memo, plan

from .builders import T0, execution, finished, next_rv

KEY = ("ns", "a")


class World:
    def __init__(self, capacity: int = 1):
        self.view, self.a, self.memo = ClusterView(), A.Assumptions(), Memo()
        self.settings = Settings(running_capacity=capacity, queued_capacity=10)
        self.api = {}  # the API's copy of each execution

    def add(self, name: str, created: float = 0, **spec) -> dict:
        obj = execution(name, created, **spec)
        self.api[("ns", name)] = obj
        A.observe_execution(self.view, self.a, False, obj)
        return obj

    def step(self) -> A.Effects:
        p = plan(self.view, self.settings, T0, {}, self.memo, dirty=self.view.take_dirty())
        return A.apply_plan(self.view, p, self.a)

    def api_answer(self, key, status) -> dict:
        """The object the API returns for a status write (and later sends as a watch event)."""
        obj = copy.deepcopy(self.api[key])
        obj["status"] = status.wire()
        obj["metadata"]["resourceVersion"] = next_rv()
        self.api[key] = obj
        return obj

    def write_all(self, key) -> None:
        while (item := A.next_status(self.a, key)) is not None:
            A.status_written(self.view, self.a, key, self.api_answer(key, item[0]))
        A.writer_done(self.view, self.a, key)

    def phase(self, name: str = "a"):
        return self.view.executions[("ns", name)].status.phase


def watch_event_during_status_write(w: World) -> None:
    stale = w.add("a")  # the event before our write, delivered late
    w.add("b", 1)
    fx = w.step()  # a starts; b joins the queue: its Queued write is in flight
    assert ("ns", "b") in fx.status_writers
    A.observe_execution(w.view, w.a, False, dict(w.api[("ns", "b")], metadata=dict(
        w.api[("ns", "b")]["metadata"], resourceVersion=next_rv())))
    assert w.phase("b") == Phase.Queued  # ours is newer than the event's empty status
    w.write_all(("ns", "b"))
    assert w.phase("b") == Phase.Queued and w.view.executions[("ns", "b")].status.queue_position == 1
    del stale


def write_returning_during_job_create(w: World) -> None:
    w.add("a")
    queued = w.view.executions[KEY].status.model_copy(deep=True)
    fx = w.step()
    assert [c.key for c in fx.creates] == [KEY] and w.phase() == Phase.Running
    queued.phase = Phase.Queued  # an earlier position write returns now
    A.status_written(w.view, w.a, KEY, w.api_answer(KEY, queued))
    assert w.phase() == Phase.Running  # the optimistic status stands while the create is in flight
    assert w.step().creates == []  # and nothing is started twice
    assert A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    w.write_all(KEY)
    assert w.phase() == Phase.Running and w.view.executions[KEY].status.attempt == 1


def adopt_on_409_when_owned(w: World) -> None:
    w.add("a")
    fx = w.step()
    made_before_crash = copy.deepcopy(fx.creates[0].job)  # what the GET after the 409 returns
    assert A.create_succeeded(w.view, w.a, fx.creates[0], made_before_crash)
    w.write_all(KEY)
    assert w.phase() == Phase.Running and ("ns", "a-a1") in w.view.jobs
    assert w.step().creates == []


def not_ours_on_409_is_refused(w: World) -> None:
    w.add("a")
    fx = w.step()
    A.create_failed(w.view, w.a, fx.creates[0], "a Job named 'a-a1' already exists and does not belong to it")
    assert ("ns", "a-a1") not in w.view.jobs  # the placeholder is gone: its slot is free
    fx = w.step()
    st = w.view.executions[KEY].status
    assert (st.phase, st.reason) == (Phase.Rejected, "InvalidSpec") and "does not belong" in st.message
    assert fx.creates == []


def failed_create_is_taken_back_and_tried_again(w: World) -> None:
    w.add("a")
    before = w.view.executions[KEY].status
    fx = w.step()
    A.create_failed(w.view, w.a, fx.creates[0], None)
    assert w.view.executions[KEY].status is before and not w.view.occupying
    assert [c.key for c in w.step().creates] == [KEY]


def relist_during_create_keeps_the_placeholder(w: World) -> None:
    w.add("a")
    w.add("b", 1)
    fx = w.step()
    job_key = ("ns", "a-a1")
    assert job_key in w.a.protected_jobs()
    A.observe_job_deleted(w.view, w.a, job_key)  # a relist that did not see it yet says DELETED
    assert job_key in w.view.occupying
    assert w.step().creates == []  # b does not take a's slot
    A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    assert job_key not in w.a.protected_jobs()


def cancel_during_create_is_not_overwritten(w: World) -> None:
    w.add("a")
    fx = w.step()
    cancelled = copy.deepcopy(w.api[KEY])
    cancelled["spec"]["cancel"] = True
    cancelled["metadata"]["resourceVersion"] = next_rv()
    cancelled["metadata"]["generation"] = 2
    w.api[KEY] = cancelled
    A.observe_execution(w.view, w.a, False, cancelled)
    w.step()
    assert w.phase() == Phase.Cancelled
    assert not A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    w.write_all(KEY)
    assert w.phase() == Phase.Cancelled


def refused_delete_is_sent_again(w: World) -> None:
    w.add("a")
    fx = w.step()
    A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    w.write_all(KEY)
    cancelled = copy.deepcopy(w.api[KEY])
    cancelled["spec"]["cancel"] = True
    cancelled["metadata"]["resourceVersion"] = next_rv()
    cancelled["metadata"]["generation"] = 2
    A.observe_execution(w.view, w.a, False, cancelled)
    fx = w.step()
    assert [j.name for j in fx.deletes] == ["a-a1"] and w.step().deletes == []  # sent once
    A.delete_failed(w.view, fx.deletes[0])
    assert [j.name for j in w.step().deletes] == ["a-a1"]


def vanished_job_is_closed_once(w: World) -> None:
    """The write storm of issue 11: a Job deleted mid-attempt used to rewrite BackingOff every pass."""
    w.add("a", retries={"limit": 1, "backoff": {"initialSeconds": 60}})
    fx = w.step()
    A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    w.write_all(KEY)
    w.view.delete_job("ns", "a-a1")
    fx = w.step()
    assert fx.status_writers == [KEY] and w.phase() == Phase.BackingOff
    w.write_all(KEY)
    for _ in range(3):
        assert w.step().status_writers == []


def same_status_twice_is_dropped(w: World) -> None:
    w.add("a")
    fx = w.step()
    A.create_succeeded(w.view, w.a, fx.creates[0], fx.creates[0].job)
    w.write_all(KEY)
    again = w.view.executions[KEY].status.model_copy(deep=True)
    assert not A.assume_status(w.view, w.a, KEY, again, ("Normal", "Admitted", "again"))
    assert KEY not in w.a.pending


def forged_job_neither_counts_nor_reports(w: World) -> None:
    w.add("victim")
    fx = w.step()
    forged = finished(copy.deepcopy(fx.creates[0].job))
    forged["metadata"]["name"] = "victim-a9"
    forged["metadata"]["labels"]["sluice.dev/attempt"] = "9"
    forged["metadata"]["ownerReferences"] = []  # labels alone
    w.view.upsert_job(forged)
    assert ("ns", "victim-a9") not in w.view.jobs
    squatter = copy.deepcopy(fx.creates[0].job)
    squatter["metadata"].update(name="victim-a2", resourceVersion=next_rv())
    squatter["metadata"]["labels"]["sluice.dev/attempt"] = "2"
    squatter["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    w.view.upsert_job(squatter)  # controlled by another execution: not victim's, not adopted
    assert set(w.view.jobs_of(("ns", "victim"))) == {1}


RACES = [
    watch_event_during_status_write,
    write_returning_during_job_create,
    adopt_on_409_when_owned,
    not_ours_on_409_is_refused,
    failed_create_is_taken_back_and_tried_again,
    relist_during_create_keeps_the_placeholder,
    cancel_during_create_is_not_overwritten,
    refused_delete_is_sent_again,
    vanished_job_is_closed_once,
    same_status_twice_is_dropped,
    forged_job_neither_counts_nor_reports,
]


@pytest.mark.parametrize("race", RACES, ids=[r.__name__ for r in RACES])
def test_race(race):
    race(World())
