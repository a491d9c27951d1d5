"""`sluice run`: documents, exit codes, progress text; error sentences; artifact links (pure)."""
from __future__ import annotations

import io
import json

import pytest

from sluice.cli.artifacts import S3Location, artifact_links, s3_location, split_s3
from sluice.cli.connect import CliError, NotFound, explain_api_error
from sluice.cli.run import Progress, Tracked, exit_code_for, load_documents, overall_exit_code, progress_text, summary_lines

TX = "apiVersion: sluice.dev/v1alpha1\nkind: TestExecution\n"


@pytest.mark.parametrize("phase,reason,code", [
    ("Succeeded", "TestsPassed", 0),
    ("Failed", "TestsFailed", 1),
    ("Rejected", "InvalidSpec", 2),
    ("Rejected", "QueueFull", 2),
    ("Failed", "InvalidSpec", 2),  # the runner said the source is invalid (exit 2)
    ("TimedOut", "DeadlineExceeded", 3),
    ("Failed", "QueueTimeout", 3),
    ("Failed", "InfrastructureError", 3),
    ("Failed", "BrowserCrash", 3),
    ("Cancelled", "Cancelled", 3),
])
def test_exit_code_per_final_state(phase, reason, code):
    assert exit_code_for(phase, reason) == code


@pytest.mark.parametrize("codes,code", [([0, 0], 0), ([0, 1], 1), ([1, 2], 2), ([2, 3, 0], 3), ([], 3)])
def test_the_highest_exit_code_wins(codes, code):
    assert overall_exit_code(codes) == code


def test_load_documents_multi_doc_generate_name_and_lists():
    text = (TX + "metadata: {name: a}\nspec: {}\n---\n" + TX + "metadata: {generateName: b-}\n---\n"
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: sluice.dev/v1alpha1, kind: TestExecution, metadata: {name: c}}\n")
    assert [d["metadata"].get("name") or d["metadata"]["generateName"] for d in load_documents(text)] == ["a", "b-", "c"]


@pytest.mark.parametrize("text,fragment", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "TestExecutions only"),
    (TX + "metadata: {}\n", "neither metadata.name"),
    ("a: [", "not valid YAML"),
    ("", "no TestExecution"),
])
def test_load_documents_refuses_with_exit_code_2(text, fragment):
    with pytest.raises(CliError) as err:
        load_documents(text)
    assert err.value.code == 2 and fragment in str(err.value)


def _t(name="tx", **status):
    return Tracked("ns", name, obj={"metadata": {"name": name}, "status": status})


@pytest.mark.parametrize("tracked,text", [
    (_t(), "tx: Pending"),
    (_t(phase="Queued", queuePosition=3), "tx: Queued, position 3"),
    (_t(phase="Queued", queuePosition=1, reason="QueuePaused"), "tx: Queued, position 1, queue paused"),
    (_t(phase="Running", attempt=2), "tx: Running, attempt 2"),
    (_t(phase="BackingOff", attempt=1, nextAttemptAt="2026-01-01T00:00:04Z"),
     "tx: BackingOff, attempt 1, next attempt at 2026-01-01T00:00:04Z"),
    (_t(phase="Failed", attempt=1, reason="TestsFailed", results={"total": 3, "passed": 2}),
     "tx: Failed, attempt 1, 2/3 passed, TestsFailed"),
    (Tracked("ns", "bad*", create_error="rejected"), "bad*: not created"),
])
def test_progress_text(tracked, text):
    assert progress_text(tracked) == text


def test_progress_prints_a_line_per_change_when_not_a_tty():
    out = io.StringIO()
    p = Progress(out)
    t = _t(phase="Queued", queuePosition=2)
    p.update([t], 0)
    p.update([t], 1)
    t.obj["status"] = {"phase": "Running", "attempt": 1}
    p.update([t], 2)
    assert out.getvalue() == "tx: Queued, position 2\ntx: Running, attempt 1\n"


def test_progress_redraws_in_place_on_a_tty():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    out = Tty()
    p = Progress(out)
    p.update([_t(phase="Queued")], 0)
    p.update([_t(phase="Running", attempt=1, progress={"total": 30, "done": 12, "failed": 1})], 1)
    p.close()
    text = out.getvalue()
    assert "\x1b[1A" in text and "\x1b[2K" in text  # redrawn in place (cursor up, clear line)
    assert "tx: Running, attempt 1, 12/30 tests, 1 failed" in text and "━" in text  # a bar, drawn by rich


def test_summary_fits_80_columns_and_explains_failures():
    ok = _t("ok", phase="Succeeded", reason="TestsPassed", attempt=1, startedAt="2026-01-01T00:00:00Z",
            completedAt="2026-01-01T00:00:12Z", results={"passed": 3, "failed": 0, "skipped": 1})
    bad = _t("bad", phase="Failed", reason="TestsFailed", attempt=1, message="2/3 passed, 1 failed")
    lines = summary_lines([ok, bad, Tracked("ns", "x-*", create_error="spec.priority: Unsupported value", create_code=2)])
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split() == ["ok", "Succeeded", "TestsPassed", "3", "0", "1", "1", "12.0s"]
    assert lines[3].split()[:2] == ["x-*", "NotCreated"]
    assert lines[4:] == ["bad: 2/3 passed, 1 failed", "x-*: spec.priority: Unsupported value"]


@pytest.mark.parametrize("status,body,action,fragment,code,cls", [
    (404, "404 page not found", "list testexecutions", "is Sluice installed?", 3, CliError),
    (404, '{"kind":"Status","reason":"NotFound","details":{"name":"x","kind":"testexecutions"},"message":"not found"}',
     "get testexecution", "testexecution x not found in namespace ns", 1, NotFound),
    (403, '{"message":"testexecutions.sluice.dev is forbidden: User \\"bob\\" cannot list"}', "list testexecutions",
     "forbidden: you may not list testexecutions in namespace ns", 3, CliError),
    (401, "", "list testexecutions", "unauthorized", 3, CliError),
    (422, '{"message":"TestExecution.sluice.dev \\"x\\" is invalid: spec.priority: Unsupported value"}',
     "create testexecution", "spec.priority: Unsupported value", 2, CliError),
    (422, json.dumps({"message": "long", "details": {"causes": [
        {"field": "spec.priority", "message": "Unsupported value: \"urgent\""},
        {"field": "<nil>", "message": "some validation rules were not checked"}]}}),
     "create testexecution", "rejected by the API server: spec.priority: Unsupported value: \"urgent\"", 2, CliError),
    (500, '{"message":"etcdserver: timeout"}', "list testqueues", "HTTP 500 etcdserver: timeout", 3, CliError),
])
def test_api_errors_become_one_sentence(status, body, action, fragment, code, cls):
    err = explain_api_error(status, body, action, "ns", "x" if "get" in action else None)
    assert fragment in str(err) and err.code == code and type(err) is cls


def test_artifact_links_are_full_urls_report_first():
    links = artifact_links({"url": "s3://b/p/ns/x/attempt-1/", "report": "s3://b/p/ns/x/attempt-1/report/index.html",
                            "junit": "junit.xml", "traces": ["traces/a.zip"], "videos": [], "screenshots": ["s/1.png"]})
    assert links == [("report", "s3://b/p/ns/x/attempt-1/report/index.html"),
                     ("junit", "s3://b/p/ns/x/attempt-1/junit.xml"),
                     ("trace", "s3://b/p/ns/x/attempt-1/traces/a.zip"),
                     ("screenshot", "s3://b/p/ns/x/attempt-1/s/1.png"),
                     ("prefix", "s3://b/p/ns/x/attempt-1/")]
    assert artifact_links(None) == []
    assert split_s3("s3://bucket/a/b") == ("bucket", "a/b") and split_s3("https://x/y") is None


def test_s3_location_prefers_execution_then_queue_then_env():
    tx = {"spec": {"artifacts": {"s3": {"bucket": "b", "endpoint": "http://minio:9000"}}}}
    q = {"spec": {"defaults": {"artifacts": {"s3": {"bucket": "b", "region": "eu-west-1", "endpoint": "http://q"}}}}}
    env = {"AWS_ENDPOINT_URL_S3": "http://env", "AWS_REGION": "us-east-2"}
    assert s3_location(tx, q, env) == S3Location("http://minio:9000", "eu-west-1")
    assert s3_location({}, None, env) == S3Location("http://env", "us-east-2")
    assert s3_location({}, None, {}) == S3Location(None, None)
