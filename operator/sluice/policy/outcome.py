"""What an attempt's Job and pods say happened: success, or which failure class and why.

Follows the failure-class table of the design notes. Pure: takes the Job and pod objects as
the API returns them (dicts) and never calls the API.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from sluice_runner.report import RunnerResult

from ..api.execution import ArtifactLinks, Results

ARTIFACT_LIST_CAP = 20

# failure class -> the status reason that names it
REASON_OF_CLASS = {
    "TestFailure": "TestsFailed",
    "InvalidSpec": "InvalidSpec",
    "InfrastructureError": "InfrastructureError",
    "BrowserCrash": "BrowserCrash",
    "PodEvicted": "PodEvicted",
    "Timeout": "DeadlineExceeded",
}


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
    if _pod_evicted(pod):
        return "PodEvicted", text or "the runner pod was evicted or its node was lost", exit_code, msg
    if exit_code == 0:
        return None, text, 0, msg
    if exit_code == 1:
        return "TestFailure", text or "tests failed", 1, msg
    if exit_code == 2:
        return "InvalidSpec", text or "the runner rejected the source or configuration", 2, msg
    if exit_code == 3:
        cls = msg.errorClass if msg and msg.errorClass in ("BrowserCrash", "InfrastructureError") else "InfrastructureError"
        return cls, text or "infrastructure error in the runner", 3, msg
    if term.get("reason") == "OOMKilled":
        return "InfrastructureError", "the runner was OOMKilled: raise spec.runner.resources.limits.memory", exit_code, msg
    if exit_code is None:
        return "InfrastructureError", text or "the runner pod ended without a container exit code", None, msg
    return "InfrastructureError", text or f"the runner exited with unexpected code {exit_code}", exit_code, msg


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
        for f in ("traces", "videos", "screenshots"):
            getattr(links, f).extend(_full(a.url, e) for e in getattr(a, f))
    for f in ("traces", "videos", "screenshots"):
        setattr(links, f, getattr(links, f)[:ARTIFACT_LIST_CAP])
    results.duration_seconds = max(durations) if durations else None
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
        return AttemptOutcome(False, "Timeout", "DeadlineExceeded",
                              failed_cond.get("message") or "the attempt ran past timeoutSeconds",
                              None, results, links, msgs)
    failures = [(cls, text, code) for (cls, text, code, _) in per_pod if cls is not None]
    if finished == "Complete" and not failures:
        return AttemptOutcome(True, None, "TestsPassed", "all tests passed", 0, results, links, msgs)
    if failed_cond.get("reason") == "PodFailurePolicy" and not any(c == "InvalidSpec" for c, _, _ in failures):
        failures.insert(0, ("InvalidSpec", failed_cond.get("message") or "the runner rejected the configuration", 2))
    if not failures:
        reason = failed_cond.get("reason") or "JobFailed"
        text = failed_cond.get("message") or "the Job failed and no runner pod was left to say why"
        return AttemptOutcome(False, "InfrastructureError", "InfrastructureError", f"{reason}: {text}",
                              None, results, links, msgs)
    severity = ["InvalidSpec", "TestFailure", "BrowserCrash", "InfrastructureError", "PodEvicted"]
    cls, text, code = min(failures, key=lambda f: severity.index(f[0]) if f[0] in severity else 99)
    return AttemptOutcome(False, cls, REASON_OF_CLASS.get(cls, cls), text, code, results, links, msgs)
