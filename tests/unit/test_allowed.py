"""Allow-lists (policy/checks/allowed.py): one row per rule, then the planner's use of them (reason
NotAllowed, checked before every attempt, a widened queue lets a waiting execution through) and
the renderer's token rule."""
from __future__ import annotations

import pytest

from sluice.api.effective import effective_spec
from sluice.api.execution import Phase, TestExecutionSpec
from sluice.api.queue import TestQueueSpec
from sluice.api.settings import Settings
from sluice.kube.render import render_job
from sluice.policy.checks.allowed import NOT_ALLOWED, allowed_images, not_allowed_problems
from tests.unit.builders import execution, queue
from tests.unit.test_reconcile import Sim

SRC = {"inline": {"files": {"test_a.py": "def test_a(): pass"}}}
SETTINGS = Settings(runner_image="ghcr.io/sluice-dev/sluice-runner:0.1.0", allowed_images="reg.example/tests/*, x:?")


def _problems(spec: dict, qspec: dict | None = None, settings: Settings = SETTINGS) -> list[str]:
    return not_allowed_problems(TestExecutionSpec.model_validate({"source": SRC, **spec}),
                                TestQueueSpec.model_validate(qspec or {}), settings)


@pytest.mark.parametrize("spec,qspec,needle", [
    ({}, None, None),  # the operator's runner image, no account, normal priority
    ({"runner": {"image": "reg.example/tests/e2e:7"}}, None, None),  # the operator's patterns
    ({"runner": {"image": "x:1"}}, None, None),  # `?` is one character
    ({"runner": {"image": "x:12"}}, None, "image x:12 is not allowed by queue default: allowed are "
                                          "ghcr.io/sluice-dev/sluice-runner:0.1.0, reg.example/tests/*, x:?"),
    ({"runner": {"image": "Reg.example/tests/e2e:7"}}, None, "is not allowed"),  # case-sensitive
    ({}, {"defaults": {"runner": {"image": "team/suite:3"}}}, None),  # the queue's default image
    ({"runner": {"image": "team/suite:3"}}, {"defaults": {"runner": {"image": "team/suite:3"}}}, None),
    ({}, {"allowedImages": ["team/*"]}, "image ghcr.io/sluice-dev/sluice-runner:0.1.0 is not allowed"),  # replaces
    ({"runner": {"image": "team/a/b:1"}}, {"allowedImages": ["team/*"]}, None),  # `*` crosses `/`
    ({"runner": {"image": "evil/x:1"}}, {"allowedImages": []}, "allowed are none"),
    ({"runner": {"serviceAccountName": "deployer"}}, None,
     'serviceAccountName deployer is not allowed by queue default: allowed are "" (the default runner account, no token)'),
    ({"runner": {"serviceAccountName": "deployer"}}, {"allowedServiceAccounts": ["", "deployer"]}, None),
    ({}, {"allowedServiceAccounts": ["deployer"]}, 'serviceAccountName "" (the default runner account'),
    ({}, {"allowedServiceAccounts": ["deployer"], "defaults": {"runner": {"serviceAccountName": "deployer"}}}, None),
    ({"priority": "critical"}, None, None),
    ({"priority": "high"}, {"maxPriority": "high"}, None),
    ({"priority": "critical"}, {"maxPriority": "normal"},
     "priority critical is above queue default's maxPriority normal: allowed are normal, low"),
])
def test_allow_list_rules(spec, qspec, needle):
    problems = _problems(spec, qspec)
    if needle is None:
        assert problems == []
    else:
        assert len(problems) == 1 and needle in problems[0], problems


def test_every_problem_is_named_and_the_default_list_has_no_duplicates():
    problems = _problems({"priority": "critical", "runner": {"image": "evil/x:1", "serviceAccountName": "admin"}},
                         {"maxPriority": "low"})
    assert [p.split()[0] for p in problems] == ["image", "serviceAccountName", "priority"]
    q = TestQueueSpec.model_validate({"defaults": {"runner": {"image": SETTINGS.runner_image}}})
    assert allowed_images(q, SETTINGS) == [SETTINGS.runner_image, "reg.example/tests/*", "x:?"]


def _pod(spec: dict, token_accounts=(), settings: Settings = SETTINGS) -> dict:
    eff = effective_spec(TestExecutionSpec.model_validate({"source": SRC, **spec}), None, settings)
    return render_job("ns", "x", "uid", 1, eff, settings, token_accounts=token_accounts)["spec"]["template"]["spec"]


def test_a_token_only_for_an_account_the_queue_names():
    assert _pod({})["automountServiceAccountToken"] is False
    named = {"runner": {"serviceAccountName": "deployer"}}
    assert _pod(named)["automountServiceAccountToken"] is False  # renderer called without the list
    assert _pod(named, ["", "other"])["automountServiceAccountToken"] is False
    pod = _pod(named, ["", "deployer"])
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == "deployer"
    # The operator's default runner account (the chart's sluice-runner): no token, unless named.
    with_default = Settings(runner_service_account="sluice-runner")
    pod = _pod({}, [""], with_default)
    assert pod["serviceAccountName"] == "sluice-runner" and pod["automountServiceAccountToken"] is False
    assert _pod({}, ["sluice-runner"], with_default)["automountServiceAccountToken"] is True


def test_planner_rejects_with_not_allowed_and_starts_the_allowed():
    sim = Sim(Settings(running_capacity=3, queued_capacity=50))
    sim.view.upsert_queue(queue("strict", allowedImages=["ok/*"], maxPriority="high"))
    sim.add(execution("evil", queue="strict", runner={"image": "evil/x:1"}))
    sim.add(execution("urgent", queue="strict", priority="critical", runner={"image": "ok/a:1"}))
    sim.add(execution("fine", queue="strict", runner={"image": "ok/a:1"}))
    sim.add(execution("bad-ref", queue="strict", runner={"image": "UPPER CASE/no"}))
    created = {c.key[1]: c.job for c in sim.step().creates}
    for name in ("evil", "urgent"):
        st = sim.status(name)
        assert (st.phase, st.reason) == (Phase.Rejected, NOT_ALLOWED) and "queue strict" in st.message
    assert "allowed are ok/*" in sim.status("evil").message
    assert sim.status("bad-ref").reason == "InvalidSpec"  # a malformed spec is InvalidSpec first
    assert sim.status("fine").phase == Phase.Running
    job = created["fine"]  # the Job as sent (the view keeps only its status)
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_a_priority_raised_while_queued_is_rejected_and_a_widened_queue_lets_a_waiter_through():
    sim = Sim(Settings(running_capacity=1, queued_capacity=50))
    sim.view.upsert_queue(queue("q", maxPriority="normal"))
    sim.add(execution("first", queue="q"))
    sim.add(execution("second", queue="q", created=1))
    sim.add(execution("custom", queue="q", created=2, runner={"image": "y/z:1"}))
    sim.add(execution("later", queue="new", created=3, runner={"image": "y/z:1"}))  # its queue comes later
    sim.step()
    assert sim.status("second").phase == Phase.Queued
    assert sim.status("custom").reason == NOT_ALLOWED
    assert sim.status("later").reason == "QueueNotFound"
    raised = execution("second", queue="q", created=1, priority="critical", generation=2,
                       status=sim.objects[("ns", "second")]["status"])
    sim.add(raised)  # a user patched spec.priority while it waited
    sim.step(1)
    st = sim.status("second")
    assert (st.phase, st.reason) == (Phase.Rejected, NOT_ALLOWED) and st.queue_position is None
    sim.view.upsert_queue(queue("new", allowedImages=["y/*"]))  # not yet rejected: the wider list counts
    sim.view.upsert_queue(queue("q", allowedImages=["y/*", "ghcr.io/*"]))
    sim.step(2)
    assert sim.status("later").phase in (Phase.Queued, Phase.Running)
    assert sim.status("custom").phase == Phase.Rejected  # terminal stays terminal
