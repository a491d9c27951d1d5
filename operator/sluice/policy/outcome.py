"""What an attempt's Job and pods say happened: success, or which failure class and why.

Follows the failure-class table of the design notes. Pure: takes the Job and pod objects as
the API returns them (dicts) and never calls the API. The classes and exit codes are the runner
contract's (sluice_runner.errors), never repeated here.

A Job failed by one of its podFailurePolicy rules says so in its Failed condition (reason
`PodFailurePolicy`, message "... matching FailJob rule at index N"); the rule's index names the
class through kube.render.POD_FAILURE_RULES. That is what makes an eviction through the Eviction
API `PodEvicted` even when the evicted pod is already gone when the operator looks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError
from sluice_runner.errors import ErrorClass, ExitCode
from sluice_runner.report import MAX_FAILURES, RunnerResult

from ..api.execution import ArtifactLinks, FailedTest, Results
from ..kube.render import POD_FAILURE_RULES

ARTIFACT_LIST_CAP = 20

# failure class -> the status reason that names it: the class's own name, except for two.
REASON_OF_CLASS = {
    **{cls: cls.value for cls in ErrorClass},
    ErrorClass.TEST_FAILURE: "TestsFailed",
    ErrorClass.TIMEOUT: "DeadlineExceeded",
}
# Worst first: the class an attempt gets when its pods disagree.
SEVERITY = (ErrorClass.INVALID_SPEC, ErrorClass.TEST_FAILURE, ErrorClass.BROWSER_CRASH,
            ErrorClass.INFRASTRUCTURE, ErrorClass.POD_EVICTED)
_RULE_INDEX = re.compile(r"rule at index (\d+)")


@dataclass
class AttemptOutcome:
    succeeded: bool
    failure_class: str | None = None  # None on success
    reason: str = "TestsPassed"
    message: str = ""
    exit_code: int | None = None
    results: Results | None = None
    artifacts: ArtifactLinks | None = None
    messages: list[RunnerResult] = field(default_factory=list)


def parse_runner_message(text: str | None) -> RunnerResult | None:
    """None when the text is not a runner message (e.g. the log tail of a crashed container)."""
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        return RunnerResult.from_termination_message(text)
    except (ValueError, ValidationError):
        return None


def job_finished(job: dict) -> str | None:
    """'Complete' or 'Failed' once the Job controller says so (after all pods terminated), else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return cond["type"]
    return None


def _condition(job: dict, kind: str) -> dict:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return {}


def _terminated(pod: dict) -> dict:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == "runner" or len((pod.get("status") or {}).get("containerStatuses") or []) == 1:
            return (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    return {}


def _pod_evicted(pod: dict) -> bool:
    status = pod.get("status") or {}
    if status.get("reason") in ("Evicted", "Preempting", "NodeLost", "Terminated", "NodeShutdown"):
        return True
    return any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def classify_pod(pod: dict) -> tuple[str | None, str, int | None, RunnerResult | None]:
    """(failure class or None for success, message, exit code, runner message) of one pod."""
    term = _terminated(pod)
    exit_code = term.get("exitCode")
    msg = parse_runner_message(term.get("message"))
    text = (msg.message if msg and msg.message else None) or (term.get("message") or "").strip()[-500:]
    infra = ErrorClass.INFRASTRUCTURE
    if _pod_evicted(pod):
        return ErrorClass.POD_EVICTED, text or "the runner pod was evicted or its node was lost", exit_code, msg
    if exit_code == ExitCode.PASSED:
        return None, text, int(ExitCode.PASSED), msg
    if exit_code == ExitCode.TESTS_FAILED:
        return ErrorClass.TEST_FAILURE, text or "tests failed", int(ExitCode.TESTS_FAILED), msg
    if exit_code == ExitCode.INVALID:
        return ErrorClass.INVALID_SPEC, text or "the runner rejected the source or configuration", int(ExitCode.INVALID), msg
    if exit_code == ExitCode.INFRASTRUCTURE:
        cls = ErrorClass(msg.errorClass) if msg and msg.errorClass in (ErrorClass.BROWSER_CRASH, infra) else infra
        return cls, text or "infrastructure error in the runner", int(ExitCode.INFRASTRUCTURE), msg
    if term.get("reason") == "OOMKilled":
        return infra, "the runner was OOMKilled: raise spec.runner.resources.limits.memory", exit_code, msg
    if exit_code is None:
        return infra, text or "the runner pod ended without a container exit code", None, msg
    return infra, text or f"the runner exited with unexpected code {exit_code}", exit_code, msg


def policy_failure_class(failed_cond: dict) -> ErrorClass | None:
    """The class of a Job failed by one of its podFailurePolicy rules (None: not failed by one).

    Kubernetes names the rule ("... matching FailJob rule at index N"); an unreadable message
    falls back to the condition it names, and then to InvalidSpec (the exit-code rule).
    """
    if failed_cond.get("reason") != "PodFailurePolicy":
        return None
    message = failed_cond.get("message") or ""
    m = _RULE_INDEX.search(message)
    if m and int(m.group(1)) < len(POD_FAILURE_RULES):
        return POD_FAILURE_RULES[int(m.group(1))][0]
    if "DisruptionTarget" in message:
        return ErrorClass.POD_EVICTED
    return ErrorClass.INVALID_SPEC


def _full(url: str | None, entry: str | None) -> str | None:
    """Runner entries are keys relative to the attempt's prefix; status shows full URLs."""
    if entry is None or "://" in entry or not url:
        return entry
    return url.rstrip("/") + "/" + entry.lstrip("/")


def _merge_messages(msgs: list[RunnerResult]) -> tuple[Results | None, ArtifactLinks | None]:
    """Sums shard results; artifact lists are joined (as full URLs) and capped."""
    if not msgs:
        return None, None
    results = Results()
    links = ArtifactLinks()
    durations = []
    for m in msgs:
        for f in ("total", "passed", "failed", "skipped", "flaky"):
            setattr(results, f, getattr(results, f) + getattr(m, f))
        durations.append(m.durationSeconds)
        a = m.artifacts
        links.url = links.url or a.url
        links.report = links.report or _full(a.url, a.report)
        links.junit = links.junit or _full(a.url, a.junit)
        links.console = links.console or _full(a.url, a.console)
        results.failures.extend(FailedTest(test=f.test, error=f.error) for f in m.failures)
        for f in ("traces", "videos", "screenshots"):
            getattr(links, f).extend(_full(a.url, e) for e in getattr(a, f))
    for f in ("traces", "videos", "screenshots"):
        setattr(links, f, getattr(links, f)[:ARTIFACT_LIST_CAP])
    results.duration_seconds = max(durations) if durations else None
    results.failures = results.failures[:MAX_FAILURES]
    return results, links


def classify_attempt(job: dict, pods: list[dict]) -> AttemptOutcome:
    """The outcome of a finished Job. Worst pod wins: InvalidSpec > failures > success."""
    finished = job_finished(job)
    pods = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", ""))
    per_pod = [classify_pod(p) for p in pods]
    msgs = [m for (_, _, _, m) in per_pod if m is not None]
    results, links = _merge_messages(msgs)
    failed_cond = _condition(job, "Failed")
    if finished == "Failed" and failed_cond.get("reason") == "DeadlineExceeded":
        return AttemptOutcome(False, ErrorClass.TIMEOUT, REASON_OF_CLASS[ErrorClass.TIMEOUT],
                              failed_cond.get("message") or "the attempt ran past timeoutSeconds",
                              None, results, links, msgs)
    failures = [(cls, text, code) for (cls, text, code, _) in per_pod if cls is not None]
    if finished == "Complete" and not failures:
        return AttemptOutcome(True, None, "TestsPassed", "all tests passed", 0, results, links, msgs)
    by_rule = policy_failure_class(failed_cond)
    if by_rule == ErrorClass.POD_EVICTED:
        # The pods' own exit codes (SIGTERM, a half-run suite) say nothing about an evicted attempt.
        evicted = [f for f in failures if f[0] == ErrorClass.POD_EVICTED]
        text = evicted[0][1] if evicted else failed_cond.get("message") or "the runner pod was evicted"
        return AttemptOutcome(False, by_rule, REASON_OF_CLASS[by_rule], text,
                              evicted[0][2] if evicted else None, results, links, msgs)
    if by_rule is not None and not any(c == by_rule for c, _, _ in failures):
        failures.insert(0, (by_rule, failed_cond.get("message") or "the runner rejected the configuration",
                            int(ExitCode.INVALID) if by_rule == ErrorClass.INVALID_SPEC else None))
    if not failures:
        reason = failed_cond.get("reason") or "JobFailed"
        text = failed_cond.get("message") or "the Job failed and no runner pod was left to say why"
        infra = ErrorClass.INFRASTRUCTURE
        return AttemptOutcome(False, infra, REASON_OF_CLASS[infra], f"{reason}: {text}",
                              None, results, links, msgs)
    cls, text, code = min(failures, key=lambda f: SEVERITY.index(f[0]) if f[0] in SEVERITY else 99)
    return AttemptOutcome(False, cls, REASON_OF_CLASS.get(cls, cls), text, code, results, links, msgs)
