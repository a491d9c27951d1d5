"""Notifications against the real control plane and a real HTTP receiver started by the test:
one POST per outcome, retries on 503, Slack's shape, give-ups, and at most once across a SIGKILL."""
from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from kubernetes import client

from tests.harness.sluice_api import kwok_runner
from tests.harness.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.cluster

FAILURES = [{"test": "tests/test_login.py::test_bad_password", "error": "AssertionError: expected 401 & got <200>"}]
PASSED = json.dumps({"v": 1, "outcome": "passed", "total": 4, "passed": 4, "failed": 0, "skipped": 0, "flaky": 0,
                     "durationSeconds": 1.2, "artifacts": {"url": "https://reports.example.com/x/attempt-1/",
                                                           "report": "report/index.html"}})
FAILED = json.dumps({"v": 1, "outcome": "failed", "total": 3, "passed": 2, "failed": 1, "skipped": 0, "flaky": 0,
                     "durationSeconds": 2.0, "failures": FAILURES,
                     "artifacts": {"url": "https://reports.example.com/y/attempt-1/", "report": "report/index.html"}})


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


def secret(sluice, name: str, url: str) -> None:
    sluice.core.create_namespaced_secret(sluice.ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name=name), data={"url": base64.b64encode(url.encode()).decode()}))


def hook(secret_name: str) -> dict:
    return {"urlSecretRef": {"name": secret_name, "key": "url"}}


def passes() -> dict:
    return {"queue": "q", "runner": kwok_runner("1s", termination=PASSED)}


def fails() -> dict:
    return {"queue": "q", "runner": kwok_runner("1s", exit_code=1, message=FAILED)}


def records(sluice, name: str) -> dict[str, dict]:
    return {r["name"]: r for r in (sluice.get(name).get("status") or {}).get("notifications") or []}


def wait_records(sluice, name: str, want: dict[str, str], timeout: float = 60) -> dict[str, dict]:
    """Waits until the named records reach the given states; returns all records."""
    obj = sluice.wait(name, lambda o: all(
        any(r["name"] == n and r.get("state") == s for r in (o.get("status") or {}).get("notifications") or [])
        for n, s in want.items()), timeout, f"notified {want}")
    return {r["name"]: r for r in obj["status"]["notifications"]}


def metric(op, result: str, queue: str = "q") -> float:
    for line in op.metrics().splitlines():
        if line.startswith("sluice_notifications_total{") and f'result="{result}"' in line and f'queue="{queue}"' in line:
            return float(line.split()[-1])
    return 0.0


def test_exactly_one_json_post_per_outcome(sluice, start_operator, receiver):
    secret(sluice, "hook", receiver.url("/json"))
    sluice.create_queue("q", {"notifications": [{"name": "team", "outcomes": ["Succeeded", "Failed"],
                                                  "webhook": hook("hook")}]})
    op = start_operator()
    sluice.create("ok", passes())
    sluice.create("bad", fails())
    sluice.create("stopped", {"queue": "q", "cancel": True, "runner": kwok_runner("60s")})
    sluice.wait_phase("stopped", "Cancelled")
    ok = wait_records(sluice, "ok", {"team": "Delivered"})["team"]
    bad = wait_records(sluice, "bad", {"team": "Delivered"})["team"]
    time.sleep(3)  # anything extra (a second POST, a Cancelled one) would come in this time
    posts = receiver.at("/json")
    assert len(posts) == 2, [p.json()["execution"]["name"] for p in posts]
    by_name = {p.json()["execution"]["name"]: p for p in posts}
    assert set(by_name) == {"ok", "bad"} and records(sluice, "stopped") == {}
    for name, phase, rec in (("ok", "Succeeded", ok), ("bad", "Failed", bad)):
        uid = sluice.get(name)["metadata"]["uid"]
        post = by_name[name]
        assert post.headers["content-type"] == "application/json"
        assert post.headers["idempotency-key"] == f"{uid}-{phase}-team" == rec["key"]
        assert (rec["outcome"], rec["attempts"], rec["message"]) == (phase, 1, "HTTP 200: ok")
        body = post.json()
        assert body["execution"] == {"namespace": sluice.ns, "name": name, "uid": uid}
        assert (body["kind"], body["queue"], body["phase"], body["notification"], body["attempts"]) == (
            "TestExecutionOutcome", "q", phase, "team", 1)
        assert body["startedAt"] and body["completedAt"] and body["idempotencyKey"] == rec["key"]
    assert by_name["ok"].json()["reportURL"] == "https://reports.example.com/x/attempt-1/report/index.html"
    bad_body = by_name["bad"].json()
    assert bad_body["reason"] == "TestsFailed" and bad_body["results"]["failed"] == 1
    assert bad_body["results"]["failures"] == FAILURES
    assert "NotificationSent" in [e.reason for e in sluice.events("ok")]
    assert metric(op, "delivered") == 2 and metric(op, "given_up") == 0
    # A notification added now is for what ends from now on, not for the executions above.
    secret(sluice, "late", receiver.url("/late"))
    sluice.patch_queue("q", {"notifications": [
        {"name": "team", "outcomes": ["Succeeded", "Failed"], "webhook": hook("hook")},
        {"name": "late", "outcomes": ["Succeeded", "Failed", "Cancelled"], "webhook": hook("late")}]})
    time.sleep(3)
    assert receiver.at("/late") == [] and set(records(sluice, "ok")) == {"team"}
    sluice.create("after", {"queue": "q", "cancel": True, "runner": kwok_runner("60s")})
    wait_records(sluice, "after", {"late": "Delivered"})
    assert [p.json()["execution"]["name"] for p in receiver.at("/late")] == ["after"]
    assert len(receiver.at("/json")) == 2


def test_retries_on_503_with_the_same_key_and_slack_shape(sluice, start_operator, receiver):
    """Two notifications of one failed execution: a JSON one whose receiver answers 503 twice, and
    a Slack one."""
    secret(sluice, "hook", receiver.url("/flaky"))
    secret(sluice, "slack", receiver.url("/services/T0/B0/XYZ"))
    receiver.script("/flaky", 503, 503)
    sluice.create_queue("q", {"notifications": [
        {"name": "ops", "outcomes": ["Failed"], "webhook": hook("hook")},
        {"name": "chat", "outcomes": ["Failed"], "format": "slack", "webhook": hook("slack")}]})
    op = start_operator()
    sluice.create("bad", fails())
    recs = wait_records(sluice, "bad", {"ops": "Delivered", "chat": "Delivered"})
    rec = recs["ops"]
    posts = receiver.at("/flaky")
    assert [p.status for p in posts] == [503, 503, 200]
    assert len({p.headers["idempotency-key"] for p in posts}) == 1 and posts[0].headers["idempotency-key"] == rec["key"]
    assert len({p.body for p in posts}) == 1, "every retry sends the same bytes"
    assert (rec["state"], rec["attempts"]) == ("Delivered", 3)

    [post] = receiver.at("/services/T0/B0/XYZ")
    assert recs["chat"]["attempts"] == 1 and post.headers["idempotency-key"] == recs["chat"]["key"]
    doc = post.json()
    assert set(doc) == {"text", "blocks"} and doc["text"] == f"TestExecution {sluice.ns}/bad Failed (TestsFailed)"
    [block] = doc["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    text = block["text"]["text"]
    assert text.startswith(f":x: *{sluice.ns}/bad* in queue `q`: *Failed* (TestsFailed)")
    assert "2 passed, 1 failed, 0 skipped of 3" in text
    assert "AssertionError: expected 401 &amp; got &lt;200&gt;" in text
    assert "<https://reports.example.com/y/attempt-1/report/index.html|report>" in text
    time.sleep(2)  # anything extra would come in this time (and the counters follow the records)
    assert len(receiver.at("/flaky")) == 3 and len(receiver.at("/services/T0/B0/XYZ")) == 1
    assert metric(op, "retried") == 2 and metric(op, "delivered") == 2


def test_missing_secret_bad_scheme_and_4xx_are_given_up_at_once(sluice, start_operator, receiver):
    secret(sluice, "ftp", "ftp://files.example.com/secret-token")
    secret(sluice, "gone", receiver.url("/gone"))
    receiver.script("/gone", 404)
    sluice.create_queue("q", {"notifications": [
        {"name": "missing", "outcomes": ["Cancelled"], "webhook": hook("no-such-secret")},
        {"name": "ftp", "outcomes": ["Cancelled"], "webhook": hook("ftp")},
        {"name": "gone", "outcomes": ["Cancelled"], "webhook": hook("gone")}]})
    op = start_operator()
    sluice.create("stopped", {"queue": "q", "cancel": True, "runner": kwok_runner("60s")})
    recs = wait_records(sluice, "stopped", {"missing": "GivenUp", "ftp": "GivenUp", "gone": "GivenUp"})
    assert recs["missing"]["attempts"] == 0 and "Secret 'no-such-secret' not found" in recs["missing"]["message"]
    assert recs["ftp"]["attempts"] == 0 and "not an http or https URL (scheme 'ftp')" in recs["ftp"]["message"]
    assert "secret-token" not in json.dumps(recs), "the URL never reaches the status"
    assert (recs["gone"]["attempts"], recs["gone"]["message"]) == (1, "HTTP 404: try later")
    time.sleep(2)
    assert len(receiver.at("/gone")) == 1
    warnings = [e for e in sluice.events("stopped") if e.reason == "NotificationGivenUp"]
    assert len(warnings) == 3 and all(e.type == "Warning" for e in warnings)
    assert metric(op, "given_up") == 3


def test_at_most_once_across_a_sigkill(sluice, start_operator, receiver):
    """The operator is SIGKILLed while its POST waits for the receiver's answer: after the restart
    the receiver has exactly one POST, and the record says the outcome is unknown. A retry that
    was waiting (its 503 recorded) resumes with the same key. A SIGTERM instead lets the POST in
    flight be answered and recorded."""
    secret(sluice, "held", receiver.url("/held"))
    secret(sluice, "later", receiver.url("/later"))
    receiver.hold("/held")
    receiver.script("/later", 503, retry_after=25)  # its retry waits past the kill
    sluice.create_queue("q", {"notifications": [
        {"name": "held", "outcomes": ["Failed"], "webhook": hook("held")},
        {"name": "later", "outcomes": ["Failed"], "webhook": hook("later")}]})
    first = start_operator()
    sluice.create("bad", fails())
    receiver.wait_posts("/held", 1)
    receiver.wait_posts("/later", 1)
    before = sluice.wait("bad", lambda o: any(r["name"] == "later" and r.get("message") for r in
                                              o["status"].get("notifications", [])), 10, "503 recorded")
    recs = {r["name"]: r for r in before["status"]["notifications"]}
    assert (recs["held"]["state"], recs["held"]["attempts"], recs["held"].get("message")) == ("Pending", 1, None), \
        "the POST went out only after its record reached the API"
    assert (recs["later"]["state"], recs["later"]["attempts"], recs["later"]["message"]) == (
        "Pending", 1, "HTTP 503: try later")
    first.kill()
    receiver.release("/held")
    second = start_operator()
    recs = wait_records(sluice, "bad", {"held": "GivenUp", "later": "Delivered"})
    time.sleep(3)
    assert len(receiver.at("/held")) == 1, "never sent again after the restart"
    assert recs["held"]["attempts"] == 1 and "not sent again" in recs["held"]["message"]
    assert recs["held"]["key"] in recs["held"]["message"]
    later_posts = receiver.at("/later")
    assert len({p.headers["idempotency-key"] for p in later_posts}) == 1
    assert [p.status for p in later_posts] == [503, 200] and recs["later"]["attempts"] == 2
    assert metric(second, "unknown") == 1
    assert any(e.reason == "NotificationGivenUp" and "stopped while" in e.message for e in sluice.events("bad"))

    # A stop by SIGTERM (a rolling update) lets a POST in flight finish and records its answer.
    receiver.hold("/held")
    sluice.create("bad2", fails())
    receiver.wait_posts("/held", 2)
    threading.Timer(1.0, receiver.release, ["/held"]).start()
    second.stop()
    assert second.proc.returncode is not None
    held = records(sluice, "bad2")["held"]
    assert (held["state"], held["attempts"], held["message"]) == ("Delivered", 1, "HTTP 200: ok")
