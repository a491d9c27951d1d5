"""The admission webhook's decision (pure) and its AdmissionReview answers.

The decision claims to deny only what the planner would reject as QueueFull, and exactly that
once the operator has placed every execution: random clusters (caps, queues paused or not,
executions of every priority and 1 to 3 shards, some finished, a burst not yet placed) are
planned with the real planner (the simulator of test_reconcile), then a new execution is judged
by the webhook and planned by the planner, and the two must agree.
"""
from __future__ import annotations

import random

import pytest

from sluice.api.settings import Settings
from sluice.cache.view import ClusterView
from sluice.webhook import decision
from sluice.webhook.decision import admit_create, priority_message, priority_move, waiters
from sluice.webhook.server import AdmissionWebhook

from .builders import execution, queue
from .test_reconcile import Sim


def _view(*objs: dict, queues: tuple[dict, ...] = ()) -> ClusterView:
    view = ClusterView()
    for q in queues:
        view.upsert_queue(q)
    for o in objs:
        view.upsert_execution(o)
    return view


QUEUED = {"phase": "Queued", "queuedAt": "2026-01-01T12:00:00Z"}


@pytest.mark.parametrize("name,objs,queues,settings,ns_queue,allowed,message", [
    ("room in the queue", [execution("a", status=QUEUED, queue="q")],
     [queue("q", runningCapacity=1, queuedCapacity=2, paused=True)], {}, "q", True, ""),
    ("queue full", [execution(n, status=QUEUED, queue="q") for n in "ab"],
     [queue("q", runningCapacity=1, queuedCapacity=2, paused=True)], {}, "q", False,
     "queue q in namespace ns is full: 2/2 waiting (queuedCapacity 2); retry later"),
    ("new ones not yet placed are not counted: the operator may reject them",
     [execution("a", status=QUEUED, queue="q"), execution("b", queue="q")],
     [queue("q", runningCapacity=1, queuedCapacity=2, paused=True)], {}, "q", True, ""),
    ("finished, running, backing off and cancelled ones do not count",
     [execution("a", status={"phase": "Succeeded"}, queue="q"), execution("b", status={"phase": "Running"}, queue="q"),
      execution("c", status={"phase": "BackingOff"}, queue="q"), execution("d", queue="q", cancel=True)],
     [queue("q", runningCapacity=1, queuedCapacity=1, paused=True)], {}, "q", True, ""),
    ("free slots: it may start at once", [execution(n, status=QUEUED, queue="q") for n in "ab"],
     [queue("q", runningCapacity=1, queuedCapacity=2)], {}, "q", True, ""),
    ("cluster-wide cap", [execution(n, status=QUEUED, queue="q") for n in "abc"],
     [queue("q", runningCapacity=1, queuedCapacity=10, paused=True)], {"queued_capacity": 3}, "q", False,
     "Sluice is full: 3/3 executions waiting cluster-wide"),
    ("default queue needs no object: the operator's caps", [execution(n, status=QUEUED) for n in "ab"],
     [], {"queued_capacity": 2, "running_capacity": 1}, "default", True, ""),  # a free slot
    ("missing queue: the operator reports it", [], [], {}, "nope", True, ""),
    ("those ahead take the free slots first",
     [execution("a", queue="q", created=1, status=QUEUED), execution("b", queue="q", created=2, status=QUEUED)],
     [queue("q", runningCapacity=1, queuedCapacity=1)], {}, "q", False, "1/1 waiting"),
    ("a higher priority goes ahead of them",
     [execution("a", queue="q", created=1, status=QUEUED), execution("b", queue="q", created=2, status=QUEUED)],
     [queue("q", runningCapacity=1, queuedCapacity=1)], {}, "q-critical", True, ""),
])
def test_admit_create(name, objs, queues, settings, ns_queue, allowed, message):
    view = _view(*objs, queues=tuple(queues))
    queue_name, _, priority = ns_queue.partition("-")
    verdict = admit_create(view, Settings(**settings), "ns",
                           execution("new", queue=queue_name, priority=priority or "normal"))
    assert verdict.allowed is allowed, name
    if not allowed:
        assert (verdict.code, verdict.reason) == (429, "TooManyRequests")
        assert message in verdict.message
    else:
        assert verdict == decision.ALLOW


def test_a_malformed_spec_is_allowed_for_the_schema_to_explain():
    verdict = admit_create(ClusterView(), Settings(queued_capacity=0), "ns", {"spec": {"shards": "many"}})
    assert verdict.allowed


def _random_cluster(rnd: random.Random, settle: bool, shards: tuple[int, ...]) -> Sim:
    sim = Sim(Settings(running_capacity=rnd.randint(1, 4), queued_capacity=rnd.randint(0, 12)))
    for i in range(3):
        sim.view.upsert_queue(queue(f"q{i}", runningCapacity=rnd.randint(1, 3), queuedCapacity=rnd.randint(0, 5),
                                    paused=rnd.random() < 0.4))
    for i in range(rnd.randint(0, 20)):
        sim.add(execution(f"e{i}", created=i, queue=rnd.choice(NAMES), shards=rnd.choice(shards),
                          priority=rnd.choice(PRIORITIES)))
        if rnd.random() < 0.5:
            sim.step(i + 0.5)
    sim.step(30)
    for job in [j for j in list(sim.view.jobs.values()) if j.occupies and rnd.random() < 0.3]:
        sim.finish(job.name, 0)
    sim.step(31)
    if settle:
        sim.step(32)
    else:  # a burst the operator has not placed yet
        for i in range(rnd.randint(1, 6)):
            sim.add(execution(f"b{i}", created=32 + i, queue=rnd.choice(NAMES), shards=rnd.choice(shards),
                              priority=rnd.choice(PRIORITIES)))
    return sim


NAMES = ["q0", "q1", "q2", "default"]
PRIORITIES = ["low", "normal", "high", "critical"]


def _judge_then_plan(sim: Sim, rnd: random.Random, shards: tuple[int, ...]):
    new = execution("new", created=40, queue=rnd.choice(NAMES), priority=rnd.choice(PRIORITIES),
                    shards=rnd.choice(shards))
    verdict = admit_create(sim.view, sim.settings, "ns", new)
    sim.add(new)
    sim.step(41)
    st = sim.status("new")
    return verdict, st, st.phase is not None and st.phase.value == "Rejected" and st.reason == "QueueFull"


@pytest.mark.parametrize("seed", range(60))
def test_denies_exactly_what_the_planner_rejects_as_queue_full(seed):
    """Settled (every execution placed): the webhook and the planner agree."""
    rnd = random.Random(seed)
    verdict, st, rejected = _judge_then_plan(_random_cluster(rnd, True, (1, 2, 3)), rnd, (1, 2, 3))
    assert verdict.allowed is not rejected, (verdict, st.phase, st.reason, st.message)


@pytest.mark.parametrize("seed", range(60))
def test_denies_only_what_the_planner_rejects_as_queue_full_even_in_a_burst(seed):
    """A burst the operator has not placed yet: the webhook may allow more than the planner takes
    (the backstop rejects those), and denies only what the planner rejects as QueueFull."""
    rnd = random.Random(1000 + seed)
    verdict, st, rejected = _judge_then_plan(_random_cluster(rnd, False, (1, 2, 3)), rnd, (1, 2, 3))
    assert verdict.allowed or rejected, (verdict, st.phase, st.reason, st.message)


def test_waiters_are_the_queued_ones_per_queue_and_in_all():
    view = _view(execution("a", status=QUEUED, queue="q", shards=2), execution("b", queue="q"),
                 execution("c", status=QUEUED, ns="x"), execution("d", status={"phase": "Running"}),
                 execution("e", queue="missing", status={"phase": "Pending", "reason": "QueueNotFound"}),
                 execution("f", status=QUEUED, cancel=True), queues=(queue("q"),))
    w = waiters(view)
    assert {k: [x.shards for x in v] for k, v in w.per_queue.items()} == {("ns", "q"): [2], ("x", "default"): [1]}
    assert w.total == 2


def test_priority_move_and_its_message():
    old, new = execution("a", priority="normal"), execution("a", priority="critical")
    assert priority_move(old, new) == ("normal", "critical")
    assert priority_move(old, execution("a")) is None  # normal is the default
    assert priority_move(old, old) is None
    assert priority_message("normal", "critical", "alice") == "priority changed from normal to critical by alice"


class _Events:
    def __init__(self):
        self.posted = []

    def post_for(self, *args):
        self.posted.append(args)


def _review(operation: str, obj: dict, old: dict | None = None, dry_run: bool = False, user: str = "alice") -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": operation, "namespace": "ns", "name": obj["metadata"]["name"],
                        "userInfo": {"username": user, "groups": ["system:authenticated"]},
                        "object": obj, "oldObject": old, "dryRun": dry_run}}


REVIEWED: list[tuple[str, str]] = []


def _webhook(view: ClusterView, leader: bool = True) -> tuple[AdmissionWebhook, _Events]:
    events = _Events()
    REVIEWED.clear()
    return AdmissionWebhook(lambda: view, Settings(), lambda: leader, events,
                            lambda *answer: REVIEWED.append(answer)), events


def test_review_denies_with_429_and_echoes_the_uid():
    view = _view(execution("a", status=QUEUED, queue="q"), queues=(queue("q", queuedCapacity=1, paused=True),))
    webhook, _ = _webhook(view)
    answer = webhook.review(_review("CREATE", execution("b", queue="q")))
    assert answer == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": "u-1", "allowed": False, "status": {
            "code": 429, "reason": "TooManyRequests",
            "message": "queue q in namespace ns is full: 1/1 waiting (queuedCapacity 1); retry later"}}}
    assert REVIEWED == [("CREATE", "denied")]


def test_a_replica_that_does_not_lead_allows():
    view = _view(execution("a", status=QUEUED, queue="q"), queues=(queue("q", queuedCapacity=1, paused=True),))
    webhook, _ = _webhook(view, leader=False)
    assert webhook.review(_review("CREATE", execution("b", queue="q")))["response"] == {"uid": "u-1", "allowed": True}
    assert REVIEWED == [("CREATE", "standby")]


def test_a_priority_change_is_allowed_and_names_the_user_except_on_dry_runs():
    webhook, events = _webhook(ClusterView())
    old, new = execution("a", priority="normal"), execution("a", priority="critical")
    assert webhook.review(_review("UPDATE", new, old))["response"]["allowed"] is True
    assert events.posted == [("ns", "a", "uid-a", "Normal", "PriorityChanged",
                              "priority changed from normal to critical by alice")]
    webhook.review(_review("UPDATE", new, old, dry_run=True))
    webhook.review(_review("UPDATE", execution("a", priority="normal", cancel=True), old))
    assert len(events.posted) == 1


def test_a_bad_certificate_or_a_busy_port_is_one_line_naming_what_to_change(tmp_path):
    import socket

    from tests.harness.pki import write_serving_cert

    from .test_operator_startup import _run

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tls.crt").write_text("not a certificate")
    (bad / "tls.key").write_text("nor a key")
    out = _run(tmp_path, SLUICE_METRICS_PORT="0", SLUICE_HEALTH_PORT="0", SLUICE_WEBHOOK_CERT_DIR=str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("sluice operator:")]
    assert f"cannot load the webhook certificate from {bad}" in line and "tls.crt and tls.key" in line
    good = tmp_path / "good"
    write_serving_cert(good)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run(tmp_path, SLUICE_METRICS_PORT="0", SLUICE_HEALTH_PORT="0", SLUICE_WEBHOOK_CERT_DIR=str(good),
                   SLUICE_WEBHOOK_PORT=str(port))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("sluice operator:")]
    assert f"port {port}" in line and "SLUICE_WEBHOOK_PORT" in line
