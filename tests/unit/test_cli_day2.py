"""Day-2 commands, the pure parts: rerun names and bodies, queue clear's selection and texts,
bump's one-line refusal, and the view noticing a priority change (for the operator's Event)."""
from __future__ import annotations

import json

import pytest
from kubernetes import client

from sluice.api.common import LABEL_RERUN_OF
from sluice.api.settings import Settings
from sluice.cache.view import ClusterView
from sluice.cli import clear
from sluice.cli.bump import schema_refusal
from sluice.cli.connect import CliError
from sluice.cli.rerun import first_run, next_number, rerun_body
from sluice.dispatch.loop import Dispatcher
from sluice.kube.events import EventPoster
from sluice.kube.names import MAX_NAME, rerun_name

from .builders import execution


@pytest.mark.parametrize("first,number,name", [
    ("smoke", 1, "smoke-r1"),
    ("smoke", 12, "smoke-r12"),
    ("a" * 60, 1, "a" * 60 + "-r1"),  # 63: fits as is
])
def test_rerun_name(first, number, name):
    assert rerun_name(first, number) == name


def test_rerun_name_of_a_long_name_stays_a_distinct_63_character_name():
    long_a, long_b = "a" * 62 + "x", "a" * 62 + "y"
    assert len(rerun_name(long_a, 10)) == MAX_NAME
    assert rerun_name(long_a, 10).endswith("-r10")
    assert rerun_name(long_a, 10) != rerun_name(long_b, 10)  # a digest, not a plain cut


@pytest.mark.parametrize("existing,expected", [
    ([], 1),
    (["x-r1"], 2),
    (["x-r1", "x-r2", "x-r10"], 11),
    (["x-r5"], 6),  # the next number, not the lowest gap: reruns read in order
    (["y-r3", "x-rr", "x-r2-r1", "xx-r4"], 1),  # not reruns of x
])
def test_next_rerun_number(existing, expected):
    assert next_number("x", existing) == expected


def test_next_rerun_number_of_a_long_first_run():
    first = "b" * 63
    assert next_number(first, [rerun_name(first, 1), rerun_name(first, 2)]) == 3


def test_a_rerun_counts_from_the_first_run():
    original = {"metadata": {"name": "x"}}
    rerun = {"metadata": {"name": "x-r2", "labels": {LABEL_RERUN_OF: "x"}}}
    named_like_one = {"metadata": {"name": "y-r2"}}  # a user's own name, not a rerun
    assert first_run(original) == "x"
    assert first_run(rerun) == "x"
    assert first_run(named_like_one) == "y-r2"


def test_rerun_body_copies_the_spec_without_cancel_and_only_user_metadata():
    spec = {"queue": "q", "priority": "high", "cancel": True, "source": {"inline": {"files": {"t.py": "x"}}}}
    original = {"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
                "metadata": {"name": "x-r1", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                             "labels": {"team": "a", LABEL_RERUN_OF: "x", "sluice.dev/schedule": "nightly"},
                             "annotations": {"note": "n", "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                             "sluice.dev/other": "1"},
                             "ownerReferences": [{"kind": "TestSchedule", "name": "nightly"}]},
                "spec": spec, "status": {"phase": "Failed"}}
    body = rerun_body(original, "x-r2", "x")
    assert body == {"apiVersion": "sluice.dev/v1alpha1", "kind": "TestExecution",
                    "metadata": {"name": "x-r2", "labels": {"team": "a", LABEL_RERUN_OF: "x"},
                                 "annotations": {"note": "n"}},
                    "spec": {"queue": "q", "priority": "high", "source": {"inline": {"files": {"t.py": "x"}}}}}
    assert original["spec"]["cancel"] is True  # the original is not touched


def _obj(name, phase=None, queue="q", cancel=False):
    obj = {"metadata": {"name": name}, "spec": {"queue": queue}}
    if cancel:
        obj["spec"]["cancel"] = True
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def test_queue_clear_selects_the_waiting_executions_of_the_queue():
    items = [_obj("pending"), _obj("queued", "Queued"), _obj("backing", "BackingOff"), _obj("explicit", "Pending"),
             _obj("running", "Running"), _obj("done", "Succeeded"), _obj("gone", "Cancelled"),
             _obj("asked", "Queued", cancel=True), _obj("other", "Queued", queue="q2"),
             {"metadata": {"name": "dflt"}, "spec": {}, "status": {"phase": "Queued"}}]
    assert [o["metadata"]["name"] for o in clear.waiting_in(items, "q")] == ["pending", "queued", "backing",
                                                                             "explicit"]
    assert [o["metadata"]["name"] for o in clear.waiting_in(items, "default")] == ["dflt"]


def test_queue_clear_texts():
    waiting = [_obj("a", "Queued"), _obj("b", "Queued"), _obj("c"), _obj("d", "BackingOff")]
    assert clear.question(waiting, "q", "ns") == \
        "cancel 4 waiting executions of queue q in namespace ns (1 Pending, 2 Queued, 1 BackingOff)? [y/N] "
    assert clear.question(waiting[:1], "q", "ns") == \
        "cancel 1 waiting execution of queue q in namespace ns (1 Queued)? [y/N] "
    assert clear.summary(3, 0, "q", "ns") == "cancelled 3 waiting executions of queue q in namespace ns"
    assert clear.summary(1, 1, "q", "ns") == ("cancelled 1 waiting execution of queue q in namespace ns; 1 started, "
                                              "ended or changed meanwhile and was left alone")
    assert str(clear.forbidden("team-a")) == \
        "you may not cancel executions in namespace team-a (RBAC: patch on testexecutions.sluice.dev)"


class _Custom:
    """Stands in for CustomObjectsApi's patch and get; differs in that it knows one object and
    answers the scripted statuses in turn (then succeeds), as the API server would on conflicts."""

    def __init__(self, obj: dict, answers: list[int], current: dict | None = None):
        self.obj, self.answers, self.current, self.patches = obj, answers, current or obj, []

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.patches.append(body)
        if self.answers:
            raise client.ApiException(status=self.answers.pop(0))
        return self.obj

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return self.current


class _Conn:
    def __init__(self, custom):
        self.custom = custom


def _rv(name, phase, rv):
    obj = _obj(name, phase)
    obj["metadata"]["resourceVersion"] = rv
    return obj


def test_queue_clear_cancels_with_the_listed_version_and_rereads_on_conflict():
    custom = _Custom(_rv("a", "Queued", "1"), [409], current=_rv("a", "Queued", "2"))
    assert clear._cancel(_Conn(custom), "ns", custom.obj) is True
    assert [p["metadata"]["resourceVersion"] for p in custom.patches] == ["1", "2"]
    assert custom.patches[-1]["spec"] == {"cancel": True}


def test_queue_clear_leaves_alone_what_started_meanwhile():
    custom = _Custom(_rv("a", "Queued", "1"), [409], current=_rv("a", "Running", "2"))
    assert clear._cancel(_Conn(custom), "ns", custom.obj) is False
    assert len(custom.patches) == 1


def test_queue_clear_forbidden_patch_is_one_line():
    custom = _Custom(_rv("a", "Queued", "1"), [403])
    with pytest.raises(CliError) as err:
        clear._cancel(_Conn(custom), "ns", custom.obj)
    assert str(err.value) == "you may not cancel executions in namespace ns (RBAC: patch on testexecutions.sluice.dev)"


RULE = ("spec.priority may change only while the execution waits (Pending, Queued or BackingOff), "
        "not once it runs or has ended")


@pytest.mark.parametrize("body", [
    # what kube-apiserver 1.35 answers for a rule on the object's root
    json.dumps({"kind": "Status", "code": 422, "message": f'TestExecution.sluice.dev "x" is invalid: <nil>: '
                f"Invalid value: {RULE}", "details": {"causes": [
                    {"reason": "FieldValueInvalid", "message": f"Invalid value: {RULE}", "field": "<nil>"}]}}),
    # older servers quote the value
    json.dumps({"message": "x", "details": {"causes": [{"message": f'Invalid value: "object": {RULE}'}]}}),
])
def test_bump_refusal_is_the_rule_message(body):
    assert schema_refusal(body) == RULE


def test_bump_refusal_without_causes_is_the_message_in_one_line():
    assert schema_refusal(json.dumps({"message": "spec.priority:\n Unsupported value"})) == \
        "spec.priority: Unsupported value"
    assert schema_refusal("not json") == "not json"


def test_view_records_a_priority_change_once():
    view = ClusterView()
    obj = execution("x", status={"phase": "Queued"}, priority="normal")
    obj["metadata"]["resourceVersion"] = "1"
    view.upsert_execution(obj)
    assert view.take_priority_changes() == []  # first sight is no change
    bumped = json.loads(json.dumps(obj))
    bumped["metadata"]["resourceVersion"] = "2"
    bumped["spec"]["priority"] = "critical"
    bumped["metadata"]["generation"] = 2
    view.upsert_execution(bumped)
    view.upsert_execution(obj)  # a stale event does not count it back
    view.upsert_execution(bumped)  # nor does seeing the same version again
    (change,) = view.take_priority_changes()
    assert change.key == (obj["metadata"]["namespace"], "x")
    assert change.event == ("Normal", "PriorityChanged", "priority changed from normal to critical")
    assert view.take_priority_changes() == []


class _RecordingPoster(EventPoster):
    """The real poster (budget, memory of what it told); only the API call is left out."""

    def __init__(self):
        super().__init__(kube=None, spawn=lambda coro: coro.close())
        self.sent: list[tuple[str, str, str]] = []

    def post_for(self, namespace, name, uid, type_, reason, message, resource_version=None, **kw):
        self.sent.append((name, reason, message))
        super().post_for(namespace, name, uid, type_, reason, message, resource_version, **kw)


def _moved(obj: dict, priority: str, rv: int) -> dict:
    moved = json.loads(json.dumps(obj))
    moved["metadata"]["resourceVersion"] = str(rv)
    moved["spec"]["priority"] = priority
    moved["metadata"]["generation"] = rv  # a spec edit: the API server bumps it
    return moved


def test_the_leader_tells_a_priority_change_once_unless_the_webhook_told_it():
    dispatcher = Dispatcher(kube=None, settings=Settings())
    poster = dispatcher.events = _RecordingPoster()
    obj = _moved(execution("x", status={"phase": "Queued"}), "normal", 1)
    dispatcher.on_execution("ADDED", obj)
    dispatcher.on_execution("MODIFIED", _moved(obj, "critical", 2))
    dispatcher.announce_priority_changes()
    dispatcher.announce_priority_changes()
    assert poster.sent == [("x", "PriorityChanged", "priority changed from normal to critical")]

    # the webhook saw the request and named the user: the change is not told twice
    poster.post_for("ns", "x", "uid-x", "Normal", "PriorityChanged", "priority changed from critical to low by alice")
    dispatcher.on_execution("MODIFIED", _moved(obj, "low", 3))
    dispatcher.announce_priority_changes()
    assert [m for _, _, m in poster.sent[1:]] == ["priority changed from critical to low by alice"]

    # a change back within the window is a new change, told again
    dispatcher.on_execution("MODIFIED", _moved(obj, "critical", 4))
    dispatcher.announce_priority_changes()
    assert poster.sent[-1][2] == "priority changed from low to critical"

    # a standby tells nothing, and does not keep the changes for later
    dispatcher.is_leader = lambda: False
    dispatcher.on_execution("MODIFIED", _moved(obj, "high", 5))
    dispatcher.announce_priority_changes()
    dispatcher.is_leader = lambda: True
    dispatcher.announce_priority_changes()
    assert len(poster.sent) == 3
