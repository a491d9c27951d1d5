from sluice.api.effective import RetryPolicy, effective_spec
from sluice.api.execution import TestExecutionSpec
from sluice.api.queue import QueueDefaults
from sluice.api.settings import Settings
from sluice.policy.outcome import classify_attempt
from sluice.policy.retry import backoff_seconds, decide_retry
from sluice.policy.validate import semantic_problems

from .builders import finished, pod

POLICY = RetryPolicy(limit=2, initial_seconds=2, factor=2, max_seconds=300,
                     retry_on=("InfrastructureError", "PodEvicted", "BrowserCrash"))
JOB = {"metadata": {"name": "x-a1"}, "spec": {}}


def test_backoff_follows_the_formula_with_bounded_jitter():
    assert [backoff_seconds(POLICY, n) for n in (1, 2, 3, 8, 9)] == [2, 4, 8, 256, 300]
    assert backoff_seconds(POLICY, 12) == 300
    jittered = backoff_seconds(POLICY, 2, seed="uid")
    assert 4 <= jittered <= 4.4 and jittered == backoff_seconds(POLICY, 2, seed="uid")
    # the cap holds with the jitter included (initialSeconds 900 once gave "attempt 2 in 977.3s")
    assert all(backoff_seconds(POLICY, n, seed=f"uid{n}") <= 300 for n in range(1, 20))


def test_retry_decisions():
    assert decide_retry(POLICY, "InfrastructureError", 1).retry
    assert decide_retry(POLICY, "InfrastructureError", 2).retry
    assert not decide_retry(POLICY, "InfrastructureError", 3).retry  # 3 attempts in all
    assert not decide_retry(POLICY, "TestFailure", 1).retry
    assert not decide_retry(POLICY, "Timeout", 1).retry
    flaky = RetryPolicy(2, 2, 2, 300, ("TestFailure", "Timeout", "InvalidSpec"))
    assert decide_retry(flaky, "TestFailure", 1).retry
    assert not decide_retry(flaky, "Timeout", 1).retry and not decide_retry(flaky, "InvalidSpec", 1).retry


def test_classify_outcomes():
    msg = {"v": 1, "outcome": "passed", "total": 3, "passed": 3, "durationSeconds": 1.5,
           "artifacts": {"url": "s3://b/ns/x/attempt-1/", "report": "report/index.html"}}
    ok = classify_attempt(finished(JOB), [pod("x-a1", 0, msg)])
    assert ok.succeeded and ok.results.passed == 3 and ok.artifacts.report == "s3://b/ns/x/attempt-1/report/index.html"
    failed = classify_attempt(finished(JOB, "Failed", "BackoffLimitExceeded"), [pod("x-a1", 1, {"outcome": "failed", "errorClass": "TestFailure", "total": 2, "failed": 1, "passed": 1})])
    assert failed.failure_class == "TestFailure" and failed.reason == "TestsFailed" and failed.results.failed == 1
    invalid = classify_attempt(finished(JOB, "Failed", "PodFailurePolicy", "exit 2"), [pod("x-a1", 2, "no tests found")])
    assert invalid.failure_class == "InvalidSpec" and "no tests found" in invalid.message
    crash = classify_attempt(finished(JOB, "Failed", "BackoffLimitExceeded"), [pod("x-a1", 3, {"outcome": "error", "errorClass": "BrowserCrash", "message": "chromium died"})])
    assert crash.failure_class == "BrowserCrash" and crash.message == "chromium died"
    timeout = classify_attempt(finished(JOB, "Failed", "DeadlineExceeded", "Job was active longer"), [])
    assert timeout.failure_class == "Timeout"
    evicted = classify_attempt(finished(JOB, "Failed", "BackoffLimitExceeded"),
                               [pod("x-a1", 137, conditions=[{"type": "DisruptionTarget", "status": "True"}])])
    assert evicted.failure_class == "PodEvicted"
    oom = classify_attempt(finished(JOB, "Failed", "BackoffLimitExceeded"), [pod("x-a1", 137, reason="OOMKilled")])
    assert oom.failure_class == "InfrastructureError" and "OOMKilled" in oom.message
    gone = classify_attempt(finished(JOB, "Failed", "BackoffLimitExceeded"), [])
    assert gone.failure_class == "InfrastructureError"


def test_sharded_results_are_summed_and_url_is_the_attempt_prefix():
    def shard(i, p, f):
        return pod("x-a1", 0 if not f else 1, {
            "outcome": "failed" if f else "passed", "total": p + f, "passed": p, "failed": f, "durationSeconds": 2.0 + i,
            "artifacts": {"url": "s3://b/ns/x/attempt-1/", "screenshots": [f"shard-{i}/screenshots/s.png"]}}, index=i)
    out = classify_attempt(finished(JOB, "Failed", "FailedIndexes"), [shard(0, 3, 0), shard(1, 2, 1)])
    assert out.failure_class == "TestFailure"
    assert (out.results.total, out.results.passed, out.results.failed, out.results.duration_seconds) == (6, 5, 1, 3.0)
    assert out.artifacts.url == "s3://b/ns/x/attempt-1/"
    assert out.artifacts.screenshots == [f"s3://b/ns/x/attempt-1/shard-{i}/screenshots/s.png" for i in (0, 1)]


def _eff(**spec):
    spec.setdefault("source", {"inline": {"files": {"t.py": "x"}}})
    return effective_spec(TestExecutionSpec.model_validate(spec), QueueDefaults(), Settings())


def test_semantic_validation_messages_say_what_to_fix():
    assert semantic_problems(_eff(), 5, 5) == []
    assert "not a valid image reference" in semantic_problems(_eff(runner={"image": "Bad Image!!"}), 5, 5)[0]
    assert "not a git URL" in semantic_problems(_eff(source={"git": {"url": "not a url"}}), 5, 5)[0]
    assert semantic_problems(_eff(source={"git": {"url": "git@github.com:org/repo.git"}}), 5, 5) == []
    big = {"t.py": "x" * 1_100_000}
    assert "more than a ConfigMap can store" in semantic_problems(_eff(source={"inline": {"files": big}}), 5, 5)[0]
    assert "does not exist" in semantic_problems(_eff(source={"configMap": {"name": "cm"}}), 5, 5, "cm")[0]
    assert "exceed the queue's runningCapacity" in semantic_problems(_eff(shards=8), 5, 10)[0]
    assert "not an http(s) URL" in semantic_problems(_eff(baseURL="ftp://x"), 5, 5)[0]
    assert "not a Kubernetes quantity" in semantic_problems(_eff(runner={"resources": {"limits": {"memory": "lots"}}}), 5, 5)[0]


def test_effective_spec_layers_execution_over_queue_over_settings():
    defaults = QueueDefaults.model_validate({"timeoutSeconds": 60, "retries": {"limit": 5, "backoff": {"initialSeconds": 1}},
                                             "runner": {"image": "q/img:1", "podLabels": {"team": "a"}},
                                             "artifacts": {"s3": {"bucket": "qbucket"}}})
    spec = TestExecutionSpec.model_validate({"source": {"image": {"path": "/t"}}, "retries": {"limit": 1},
                                             "runner": {"podLabels": {"cost": "x"}}})
    eff = effective_spec(spec, defaults, Settings())
    assert eff.timeout_seconds == 60 and eff.retry.limit == 1 and eff.retry.initial_seconds == 1
    assert eff.retry.max_seconds == 300 and eff.runner.image == "q/img:1"
    assert eff.runner.pod_labels == {"team": "a", "cost": "x"} and eff.s3.bucket == "qbucket"
    assert effective_spec(spec, None, Settings()).timeout_seconds == 300
