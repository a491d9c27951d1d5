"""Pods that never start: the pod's words, the pure rule (grace, then fail), and the planner's use of it."""
from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from sluice.api.execution import Phase
from sluice.api.settings import Settings
from sluice.cache.pods import PodRecord, RunnerPods, stuck_words
from sluice.cache.view import ClusterView, JobRecord
from sluice.planner.pod_pending import REASON_POD_PENDING_TOO_LONG, judge_pending_pods

from .builders import T0, execution, next_rv, queue, ts
from .test_reconcile import Sim

UNSCHEDULABLE = ("0/3 nodes are available: 1 node(s) had untolerated taint {sluice.dev/process-node: true}, "
                 "2 node(s) didn't match Pod's node affinity/selector.")
PULL = 'Failed to pull image "registry.invalid/does-not-exist:1": not found'


def pending_pod(name: str, created: float = 0, job_uid: str | None = "job-uid-1", execution_name: str = "a",
                waiting: tuple[str, str] | None = None, unschedulable: str | None = None, phase: str = "Pending",
                init_waiting: tuple[str, str] | None = None) -> dict:
    status: dict = {"phase": phase, "conditions": []}
    if unschedulable is not None:
        status["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": unschedulable})
    if waiting is not None:
        status["containerStatuses"] = [{"name": "runner", "state": {"waiting": {"reason": waiting[0],
                                                                               "message": waiting[1]}}}]
    if init_waiting is not None:
        status["initContainerStatuses"] = [{"name": "init", "state": {"waiting": {"reason": init_waiting[0],
                                                                                 "message": init_waiting[1]}}}]
    owners = [] if job_uid is None else [{"apiVersion": "batch/v1", "kind": "Job", "name": "a-a1",
                                          "uid": job_uid, "controller": True}]
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": ts(created),
                         "resourceVersion": next_rv(), "ownerReferences": owners,
                         "labels": {"sluice.dev/execution": execution_name}},
            "status": status}


@pytest.mark.parametrize("pod,words", [
    (pending_pod("p", waiting=("ErrImagePull", PULL)), f"ErrImagePull: {PULL}"),
    (pending_pod("p", waiting=("ImagePullBackOff", 'Back-off pulling image "x"')),
     'ImagePullBackOff: Back-off pulling image "x"'),
    (pending_pod("p", waiting=("InvalidImageName", "")), "InvalidImageName"),
    (pending_pod("p", waiting=("CreateContainerConfigError", 'secret "s3" not found')),
     'CreateContainerConfigError: secret "s3" not found'),
    (pending_pod("p", init_waiting=("ErrImagePull", PULL)), f"ErrImagePull: {PULL}"),
    (pending_pod("p", unschedulable=UNSCHEDULABLE), UNSCHEDULABLE),
    (pending_pod("p", waiting=("ContainerCreating", "")), None),  # slow, not stuck
    (pending_pod("p"), None),  # not scheduled yet, says nothing
], ids=["pull", "backoff", "invalid-name", "missing-secret", "init-container", "unschedulable", "creating",
        "silent"])
def test_the_pods_own_words(pod, words):
    assert stuck_words(pod) == words


def test_only_pending_pods_controlled_by_a_job_get_a_record():
    assert PodRecord.from_object(pending_pod("p", job_uid=None)) is None  # labels alone: not a Job's pod
    assert PodRecord.from_object(pending_pod("p", phase="Running")) is None
    deleting = pending_pod("p")
    deleting["metadata"]["deletionTimestamp"] = ts(5)
    assert PodRecord.from_object(deleting) is None
    rec = PodRecord.from_object(pending_pod("p", created=3, unschedulable=UNSCHEDULABLE))
    assert (rec.job_uid, rec.execution, rec.created, rec.words) == ("job-uid-1", "a", T0 + timedelta(seconds=3),
                                                                   UNSCHEDULABLE)


def test_index_marks_the_execution_only_when_what_the_rule_reads_changed():
    pods = RunnerPods()
    first = pending_pod("p")
    assert pods.upsert(first) == ("ns", "a")
    assert pods.upsert(dict(first, metadata=dict(first["metadata"], resourceVersion=next_rv()))) is None
    stuck = pending_pod("p", waiting=("ErrImagePull", PULL))
    assert pods.upsert(stuck) == ("ns", "a") and pods.of_job("job-uid-1")[0].words.startswith("ErrImagePull")
    assert pods.upsert(first) is None  # older resourceVersion: stale
    started = pending_pod("p", phase="Running")
    assert pods.upsert(started) == ("ns", "a") and pods.of_job("job-uid-1") == [] and not pods.by_job
    assert pods.delete("ns", "p") is None and pods.of_job("") == []


def test_names_outlive_the_records_until_the_jobs_outcome_is_read_or_it_goes():
    """A started pod's record goes, its name stays (the outcome is read by name, not by a LIST);
    reading the outcome or the Job going forgets them."""
    view = ClusterView()
    view.upsert_pod(pending_pod("p-0", job_uid="j1"))
    view.upsert_pod(pending_pod("q-0", job_uid="j2"))
    view.delete_pod("ns", "p-0")  # started: it left the watch's selection
    view.upsert_pod(pending_pod("q-0", job_uid="j2", phase="Running"))
    pods = view.runner_pods
    assert pods.of_job("j1") == [] and pods.names_of("j1") == {"p-0"} and pods.names_of("j2") == {"q-0"}
    job = JobRecord("ns", "a-a1", "a", "default", 1, 1, "Complete", False, {"metadata": {"uid": "j1"}})
    view.set_pods(job, [])
    assert pods.names_of("j1") == set() and pods.names_of("") == set()
    view.jobs[("ns", "b-a1")] = JobRecord("ns", "b-a1", "b", "default", 1, 1, None, False, {"metadata": {"uid": "j2"}})
    view.delete_job("ns", "b-a1")
    assert pods.names == {}


@pytest.mark.parametrize("pods,now,stuck,recheck", [
    ([], 100, None, None),
    ([("p", 0, "ErrImagePull: x")], 9, None, 10),  # within its grace: look again when it runs out
    ([("p", 0, "ErrImagePull: x")], 10, "p", None),  # grace over and stuck: fail
    ([("p", 0, None)], 60, None, None),  # past grace but says nothing: slow, not stuck (an event re-steps)
    ([("q", 0, "Unschedulable"), ("p", 0, "ErrImagePull: x")], 30, "p", None),  # first by name
    ([("p", 0, None), ("q", 5, "ErrImagePull: x")], 12, None, 15),  # shard pods: the next grace to run out
], ids=["none", "within-grace", "past-grace", "silent", "first-by-name", "next-grace"])
def test_the_rule(pods, now, stuck, recheck):
    records = [PodRecord("ns", name, "a", "uid", T0 + timedelta(seconds=c), words) for name, c, words in pods]
    verdict = judge_pending_pods(records, 10, T0 + timedelta(seconds=now))
    assert (verdict.stuck.name if verdict.stuck else None) == stuck
    assert verdict.recheck_at == (T0 + timedelta(seconds=recheck) if recheck is not None else None)


def _running(sim: Sim, name: str, attempt: int, uid: str) -> None:
    """The Job the planner created comes back from the API with its UID."""
    job = copy.deepcopy(sim.job_objects[("ns", f"{name}-a{attempt}")])
    job["metadata"].update(uid=uid, resourceVersion=next_rv())
    sim.view.upsert_job(job)


def test_planner_fails_the_attempt_after_the_grace_deletes_its_job_retries_then_fails():
    sim = Sim(Settings(running_capacity=3))
    sim.view.upsert_queue(queue("q", podPendingGraceSeconds=10))
    sim.add(execution("a", 0, queue="q", retries={"limit": 1, "backoff": {"initialSeconds": 1}}))
    sim.step(1)
    _running(sim, "a", 1, "job-uid-1")
    sim.view.upsert_pod(pending_pod("a-a1-x", created=1, unschedulable=UNSCHEDULABLE))
    p = sim.step(5)
    assert p.writes == [] and p.deletes == [] and p.wake_at == T0 + timedelta(seconds=11)  # woken at the grace
    forged = pending_pod("a-a1-forged", created=0, job_uid="someone-else", waiting=("ErrImagePull", PULL))
    sim.view.upsert_pod(forged)  # a pod of a Job the execution does not control decides nothing
    assert sim.step(10.5).writes == []
    p = sim.step(11)
    st = sim.status("a")
    assert [j.name for j in p.deletes] == ["a-a1"]
    assert st.phase == Phase.BackingOff and REASON_POD_PENDING_TOO_LONG in st.message
    a1 = st.attempts[0]
    assert (a1.outcome, a1.reason) == ("Failed", REASON_POD_PENDING_TOO_LONG) and UNSCHEDULABLE in a1.message
    p = sim.step(13)
    assert [c.job["metadata"]["name"] for c in p.creates] == ["a-a2"]
    _running(sim, "a", 2, "job-uid-2")
    sim.view.upsert_pod(pending_pod("a-a2-x", created=13, job_uid="job-uid-2", waiting=("ErrImagePull", PULL)))
    sim.step(20)
    assert sim.status("a").phase == Phase.Running
    p = sim.step(23)
    st = sim.status("a")
    assert [j.name for j in p.deletes] == ["a-a2"]
    assert (st.phase, st.reason) == (Phase.Failed, REASON_POD_PENDING_TOO_LONG)
    assert st.message.startswith("attempt 2 of 2: runner pod a-a2-x not started within podPendingGraceSeconds (10s)")
    assert f"ErrImagePull: {PULL}" in st.message
    assert [(x.attempt, x.reason) for x in st.attempts] == [(1, REASON_POD_PENDING_TOO_LONG),
                                                             (2, REASON_POD_PENDING_TOO_LONG)]


def test_a_refused_delete_is_sent_again_and_the_default_queue_grace_is_300s():
    sim = Sim(Settings(running_capacity=3), settle_deletes=False)
    sim.add(execution("a", 0, retries={"limit": 1, "backoff": {"initialSeconds": 60}}))
    sim.step(1)
    _running(sim, "a", 1, "job-uid-1")
    sim.view.upsert_pod(pending_pod("a-a1-x", created=1, waiting=("ErrImagePull", PULL)))
    assert sim.step(300).deletes == []
    p = sim.step(301)
    assert [j.name for j in p.deletes] == ["a-a1"] and sim.status("a").phase == Phase.BackingOff
    job = sim.view.jobs[("ns", "a-a1")]
    job.deleting = False  # what `delete_failed` does on a refusal
    sim.view.touch(("ns", "a"))
    assert [j.name for j in sim.step(302).deletes] == ["a-a1"]


def test_the_watch_asks_the_api_server_for_unstarted_runner_pods_only():
    """The selectors go to the API server with the pod stream's lists and watches (dispatch/streams.py)."""
    from types import SimpleNamespace

    from sluice.cache.view import ClusterView
    from sluice.dispatch.streams import hot_streams

    noop = lambda *_: None  # noqa: E731
    disp = SimpleNamespace(view=ClusterView(), assumed=SimpleNamespace(protected_jobs=set, protected_executions=set),
                           on_job=noop, on_execution=noop, on_pod=noop)
    by_path = {s.path.rsplit("/", 1)[1]: s.params for s in hot_streams(None, ["ns"], disp)}
    assert by_path["pods"] == {"labelSelector": "sluice.dev/execution", "fieldSelector": "status.phase=Pending"}
    assert by_path["jobs"] == {"labelSelector": "sluice.dev/execution"}  # Jobs whatever their state
    assert by_path["testexecutions"] == {}
