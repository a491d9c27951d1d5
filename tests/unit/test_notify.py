"""Notifications, the pure parts: which outcomes trigger, the at-most-once steps, the retry
schedule, how answers are judged, URL checks, and the JSON and Slack bodies."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from sluice.api.execution import Phase, TestExecutionStatus
from sluice.api.queue import TestQueueSpec
from sluice.notify import decide, payload, policy
from sluice.notify.decide import Record, Send

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
HOOK = {"urlSecretRef": {"name": "hook", "key": "url"}}


def queue(*notifications: dict) -> TestQueueSpec:
    return TestQueueSpec.model_validate({"notifications": [dict(n, webhook=HOOK) for n in notifications]})


def ended(phase: str = "Failed", records: list[dict] = (), completed: datetime = T0, **extra) -> TestExecutionStatus:
    return TestExecutionStatus.model_validate(dict(
        {"phase": phase, "reason": "TestsFailed", "completedAt": completed.isoformat(), "startedAt": (completed - timedelta(seconds=30)).isoformat(),
         "attempt": 1, "notifications": list(records)}, **extra))


# ---- which outcomes trigger ------------------------------------------------------------------

@pytest.mark.parametrize("phase,names", [
    ("Failed", ["fail", "1"]), ("TimedOut", ["fail"]), ("Succeeded", ["1"]), ("Cancelled", []), ("Rejected", []),
])
def test_a_notification_fires_only_for_its_outcomes(phase, names):
    spec = queue({"name": "fail", "outcomes": ["Failed", "TimedOut"]}, {"outcomes": ["Succeeded", "Failed"]})
    assert [name for name, _ in decide.triggered(spec, Phase(phase))] == names


def test_unnamed_notifications_are_named_by_index_and_a_repeated_name_fires_once():
    spec = queue({"outcomes": ["Failed"]}, {"name": "x", "outcomes": ["Failed"]}, {"name": "x", "outcomes": ["Failed"]})
    assert [name for name, _ in decide.triggered(spec, Phase.Failed)] == ["0", "x"]


def test_nothing_for_an_execution_that_has_not_ended():
    spec = queue({"outcomes": ["Failed"]})
    for phase in ("Pending", "Queued", "Running", "BackingOff"):
        assert decide.steps(TestExecutionStatus(phase=phase), "u", spec, T0, set()) == []


# ---- the at-most-once steps ------------------------------------------------------------------

def rec(**kw) -> dict:
    return dict({"name": "n", "outcome": "Failed", "state": "Pending", "key": "u-Failed-n"}, **kw)


def one_step(records=(), now=T0, mine=(), completed=T0):
    spec = queue({"name": "n", "outcomes": ["Failed"]})
    out = decide.steps(ended("Failed", list(records), completed), "u", spec, now, set(mine))
    assert len(out) <= 1
    return out[0] if out else None


def test_a_new_outcome_is_sent_once_at_once():
    step = one_step()
    assert isinstance(step, Send) and (step.name, step.attempt, step.at) == ("n", 1, T0)


def test_nothing_while_this_process_delivers_it():
    assert one_step(mine=["n"]) is None
    assert one_step([rec(attempts=1)], mine=["n"]) is None


@pytest.mark.parametrize("state", ["Delivered", "GivenUp"])
def test_a_finished_record_is_never_sent_again(state):
    assert one_step([rec(state=state, attempts=1, message="HTTP 200")], now=T0 + timedelta(hours=1)) is None


def test_an_in_flight_post_found_after_a_restart_is_not_sent_again():
    """Pending, attempts 2, no answer: POST 2 was out when the operator stopped; the receiver may have it."""
    step = one_step([rec(attempts=2, lastAttemptAt=T0.isoformat())], now=T0 + timedelta(seconds=5))
    assert isinstance(step, Record) and step.unknown
    assert (step.record.state, step.record.attempts, step.record.key) == ("GivenUp", 2, "u-Failed-n")
    assert "not sent again" in step.record.message and "u-Failed-n" in step.record.message


def test_a_retry_found_after_a_restart_resumes_on_its_schedule():
    """Pending with the answer of POST 2 recorded: POST 3 goes out 2 s after POST 2, not before."""
    step = one_step([rec(attempts=2, message="HTTP 503", lastAttemptAt=T0.isoformat())], now=T0 + timedelta(seconds=1))
    assert isinstance(step, Send) and step.attempt == 3 and step.at == T0 + timedelta(seconds=2)
    late = one_step([rec(attempts=2, message="HTTP 503", lastAttemptAt=T0.isoformat())], now=T0 + timedelta(minutes=5))
    assert late.at == T0 + timedelta(minutes=5)


def test_a_retry_past_the_bound_is_given_up_without_a_post():
    step = one_step([rec(attempts=policy.MAX_ATTEMPTS, message="HTTP 503")])
    assert isinstance(step, Record) and not step.unknown and step.record.state == "GivenUp"


def test_a_notification_added_later_does_not_fire_for_old_executions():
    assert one_step(now=T0 + timedelta(seconds=policy.ELIGIBLE_SECONDS + 1)) is None
    assert isinstance(one_step(now=T0 + timedelta(seconds=policy.ELIGIBLE_SECONDS - 1)), Send)


def test_the_key_is_stable_per_execution_outcome_and_notification():
    assert decide.idempotency_key("1234-ab", "Failed", "oncall") == "1234-ab-Failed-oncall"
    sent = decide.in_flight("n", "Failed", "k", 3, T0)
    assert (sent.state, sent.attempts, sent.message, sent.key) == ("Pending", 3, None, "k")
    done = decide.answered(sent, "Delivered", "HTTP 200")
    assert (done.state, done.attempts, done.key, done.message) == ("Delivered", 3, "k", "HTTP 200")
    assert decide.same(sent, sent.model_copy(update={"last_attempt_at": T0 + timedelta(seconds=1)}))
    assert not decide.same(sent, done)


# ---- retries ---------------------------------------------------------------------------------

def test_the_backoff_schedule_doubles_from_one_second_within_the_bound():
    assert policy.MAX_ATTEMPTS == 5
    assert policy.schedule() == [1.0, 2.0, 4.0, 8.0]
    worst = sum(policy.schedule()) + policy.MAX_ATTEMPTS * policy.REQUEST_TIMEOUT_SECONDS
    assert worst <= 120, "the whole bound stays around two minutes"
    assert policy.backoff_seconds(2, retry_after=5) == 5 and policy.backoff_seconds(1, retry_after=3600) == 30


@pytest.mark.parametrize("code,verdict", [
    (200, "Delivered"), (204, "Delivered"), (500, "Retry"), (503, "Retry"), (429, "Retry"),
    (400, "GivenUp"), (401, "GivenUp"), (404, "GivenUp"), (410, "GivenUp"), (301, "GivenUp"),
])
def test_answers(code, verdict):
    assert policy.judge_status(code, "some\n body").verdict.value == verdict
    assert policy.judge_status(code, "some\n body").message == f"HTTP {code}: some body" + (
        " (redirects are not followed: put the final URL in the Secret)" if code == 301 else "")


def test_retry_after_is_read_and_network_errors_retry():
    assert policy.judge_status(429, "", "7").retry_after == 7
    assert policy.judge_status(503, "", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None
    assert policy.judge_error("timeout").verdict == policy.Verdict.RETRY
    assert len(policy.judge_status(500, "x" * 5000).message) < 250


@pytest.mark.parametrize("url,problem", [
    ("https://hooks.slack.com/services/T/B/X", None), ("http://127.0.0.1:8080/hook", None),
    (" https://example.com/a \n", None),
    ("ftp://example.com/x", "scheme 'ftp'"), ("file:///etc/passwd", "scheme 'file'"),
    ("example.com/hook", "is not an http or https URL"), ("https://", "has no host"),
    ("$(rm -rf /)", "is not an http or https URL"), ("http://[::1", "is not a URL"),
])
def test_only_http_and_https_urls_and_never_the_url_in_the_message(url, problem):
    got = policy.url_problem(url)
    assert (got is None) == (problem is None)
    if problem:
        assert problem in got and "/x" not in got and "passwd" not in got and "rm" not in got


# ---- bodies ----------------------------------------------------------------------------------

FAILURES = [{"test": "tests/test_login.py::test_bad_password", "error": "AssertionError: expected <401> & got 200"}]


def the_payload(phase="Failed", **status) -> payload.OutcomePayload:
    st = ended(phase, results={"total": 3, "passed": 2, "failed": 1, "durationSeconds": 12.5, "failures": FAILURES},
               artifacts={"report": "https://reports.example.com/x/report/index.html"}, message="1 of 3 tests failed",
               **status)
    return payload.outcome_payload("team-a", "nightly-1", "uid-1", "smoke", st, "oncall", "uid-1-Failed-oncall")


def test_json_payload_shape():
    doc = json.loads(payload.body("json", the_payload()))
    assert doc == {
        "kind": "TestExecutionOutcome", "notification": "oncall", "idempotencyKey": "uid-1-Failed-oncall",
        "execution": {"namespace": "team-a", "name": "nightly-1", "uid": "uid-1"}, "queue": "smoke",
        "phase": "Failed", "reason": "TestsFailed", "message": "1 of 3 tests failed",
        "results": {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "flaky": 0, "durationSeconds": 12.5,
                    "failures": FAILURES},
        "reportURL": "https://reports.example.com/x/report/index.html", "attempts": 1,
        "startedAt": "2026-01-01T11:59:30Z", "completedAt": "2026-01-01T12:00:00Z",
    }


def test_json_payload_of_a_rejected_execution_has_no_results():
    st = TestExecutionStatus(phase="Rejected", reason="InvalidSpec", message="bad", completed_at=T0)
    doc = payload.outcome_payload("ns", "x", "u", "default", st, "0", "k").wire()
    assert doc["phase"] == "Rejected" and "results" not in doc and "reportURL" not in doc and doc["attempts"] == 0


def test_slack_payload_is_an_incoming_webhook_message():
    doc = json.loads(payload.body("slack", the_payload()))
    assert set(doc) == {"text", "blocks"}
    assert doc["text"] == "TestExecution team-a/nightly-1 Failed (TestsFailed)"
    assert len(doc["blocks"]) == 1
    block = doc["blocks"][0]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    text = block["text"]["text"]
    assert text.startswith(":x: *team-a/nightly-1* in queue `smoke`: *Failed* (TestsFailed)")
    assert "2 passed, 1 failed, 0 skipped of 3 in 12s" in text
    assert "AssertionError: expected &lt;401&gt; &amp; got 200" in text, "mrkdwn control characters escaped"
    assert "<https://reports.example.com/x/report/index.html|report>" in text


def test_slack_text_stays_within_the_section_limit_and_cuts_whole_lines():
    many = [{"test": f"t{i}" + "<" * 180, "error": "&" * 200} for i in range(5)]
    st = ended("Failed", results={"total": 5, "failed": 5, "failures": many}, message="m" * 5000,
               artifacts={"report": "s3://bucket/x/report/index.html"})
    text = payload.slack_message(payload.outcome_payload("n", "x", "u", "q", st, "0", "k"))["blocks"][0]["text"]["text"]
    assert len(text) <= payload.SLACK_TEXT_LIMIT
    assert text.endswith("\n…") and not text.endswith("&am\n…")
    assert all(line.count("`") % 2 == 0 for line in text.splitlines())


def test_a_report_that_is_not_http_is_shown_not_linked():
    st = ended("Succeeded", artifacts={"report": "s3://bucket/x/report/index.html"})
    text = payload.slack_message(payload.outcome_payload("n", "x", "u", "q", st, "0", "k"))["blocks"][0]["text"]["text"]
    assert "Report: `s3://bucket/x/report/index.html`" in text and text.startswith(":white_check_mark:")


def test_the_same_bytes_on_every_retry():
    assert payload.body("json", the_payload()) == payload.body("json", the_payload())


def test_a_notification_added_while_the_operator_runs_fires_only_for_what_ends_after():
    spec = queue({"name": "n", "outcomes": ["Failed"]})
    since = {"n": T0 + timedelta(seconds=1)}
    assert decide.steps(ended("Failed"), "u", spec, T0 + timedelta(seconds=2), set(), since) == []
    later = decide.steps(ended("Failed", completed=T0 + timedelta(seconds=1)), "u", spec, T0 + timedelta(seconds=2),
                         set(), since)
    assert [type(s) for s in later] == [Send]
