"""Hostile input, unit level: paths cannot escape, env values reach the runner exactly, the
reservations agree between schema, operator and runner, and every API-refusable spec is refused
by validation first. The control-plane proofs are in tests/cluster/test_hostile_inputs.py."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from sluice.api.effective import effective_spec
from sluice.api.execution import TestExecutionSpec
from sluice.api.settings import Settings
from sluice.kube.client import all_namespaces, core_path, execution_path, job_path, queue_path, segment
from sluice.kube.names import MAX_NAME, job_name, shard_hostname
from sluice.kube.render import RUNNER_HOME, RUNNER_UID, literal, render_job
from sluice.policy.outcome import classify_attempt, policy_failure_class
from sluice.policy.validate import check_git_url, parse_quantity, semantic_problems
from sluice_runner.config import load_settings
from sluice_runner.errors import ErrorClass, ExitCode
from sluice_runner.redact import redact_text, redact_url

from tests.harness.pod_spec import expand

from .builders import finished, pod

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["../../x", "a?watch=true", "..", ".", "a/b", "a#frag", "%2e%2e", "a b", "x/../../../api"]


# -- item 3: paths are built from quoted segments --------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("build", [
    lambda n: core_path("ns", "configmaps", n),
    lambda n: job_path("ns", n),
    lambda n: execution_path("ns", n, "status"),
    lambda n: queue_path("ns", n),
    lambda n: core_path(n, "configmaps", "x"),
])
def test_a_name_is_one_path_segment(build, name):
    path = build(name)
    assert "?" not in path and "#" not in path and " " not in path
    parts = path.split("/")
    assert ".." not in parts and "." not in parts
    assert name in [unquote(p) for p in parts]  # the name arrives whole, as one segment


def test_paths_are_unchanged_for_ordinary_names():
    assert execution_path("team", "smoke", "status") == "/apis/sluice.dev/v1alpha1/namespaces/team/testexecutions/smoke/status"
    assert job_path("team") == "/apis/batch/v1/namespaces/team/jobs"
    assert core_path("team", "configmaps", "a.b-c") == "/api/v1/namespaces/team/configmaps/a.b-c"
    assert all_namespaces(job_path("_")) == "/apis/batch/v1/jobs"
    with pytest.raises(ValueError):
        segment("")


def test_no_path_is_joined_from_raw_strings_in_the_client():
    text = (ROOT / "operator/sluice/kube/client.py").read_text()
    assert not re.search(r'f"/api[^"]*\{(namespace|name|plural|sub)\}', text)


# -- item 4: env values reach the runner exactly -----------------------------------------------------

def _job(**spec):
    spec.setdefault("source", {"inline": {"files": {"test_a.py": "x"}}})
    eff = effective_spec(TestExecutionSpec.model_validate(spec), None, Settings())
    return render_job("team", "checkout", "uid-1", 1, eff, Settings())


def _seen_by_runner(job: dict) -> dict[str, str]:
    """The env as the kubelet hands it to the process ($(VAR) expanded against earlier vars)."""
    env: dict[str, str] = {}
    for var in job["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
    return env


@pytest.mark.parametrize("text", ["$(SLUICE_EXECUTION)", "a$$b", "$", "$$$(HOME)", "x$(", "plain"])
def test_user_strings_survive_kubelet_expansion(text):
    job = _job(args=[text, "--x"], baseURL=f"http://app/{text}",
               source={"git": {"url": f"https://h/{text}", "ref": text, "path": text}},
               runner={"env": [{"name": "MY_VAR", "value": text}]})
    env = _seen_by_runner(job)
    assert json.loads(env["SLUICE_ARGS"]) == [text, "--x"]
    assert env["BASE_URL"] == f"http://app/{text}" and env["MY_VAR"] == text
    assert (env["SLUICE_GIT_URL"], env["SLUICE_GIT_REF"], env["SLUICE_GIT_PATH"]) == (f"https://h/{text}", text, text)
    assert literal("a$b") == "a$$b"


# -- item 5: the runner's settings are read by their exact names -------------------------------------

def test_runner_reads_exact_names_only(monkeypatch):
    monkeypatch.setenv("SLUICE_SOURCE_KIND", "dir")
    monkeypatch.setenv("SLUICE_SOURCE_DIR", "/tmp")
    monkeypatch.setenv("sluice_artifacts_url", "s3://other-team/prefix/")
    monkeypatch.setenv("Sluice_Attempt", "7")
    settings = load_settings()
    assert settings.artifacts_url == "" and settings.attempt == 1


def test_git_secret_password_is_an_alias_of_token(monkeypatch):
    monkeypatch.setenv("SLUICE_SOURCE_KIND", "git")
    monkeypatch.setenv("SLUICE_GIT_URL", "https://h/r.git")
    monkeypatch.setenv("SLUICE_GIT_PASSWORD", "pw")
    assert load_settings().git_token.get_secret_value() == "pw"
    monkeypatch.setenv("SLUICE_GIT_TOKEN", "tk")
    assert load_settings().git_token.get_secret_value() == "tk"
    env = {e["name"]: e for e in _job(source={"git": {"url": "https://h/r", "secretRef": {"name": "creds"}}})
           ["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SLUICE_GIT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "creds", "key": "password", "optional": True}


# -- item 7: runner pods -----------------------------------------------------------------------------

def test_runner_pod_has_a_read_only_root_and_writable_scratch():
    pod_spec = _job()["spec"]["template"]["spec"]
    c = pod_spec["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for path in ("/tmp", RUNNER_HOME, "/sluice/work", "/dev/shm"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert {"name": "HOME", "value": RUNNER_HOME} in c["env"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"USER {RUNNER_UID}:{RUNNER_UID}" in dockerfile and f"HOME={RUNNER_HOME}" in dockerfile


# -- item 8: Git --------------------------------------------------------------------------------------

def test_git_credentials_are_redacted_everywhere():
    assert redact_url("https://bob:s3cret@h.example/r.git") == "https://***@h.example/r.git"
    assert redact_url("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert "s3cret" not in redact_text("fatal: repository 'https://bob:s3cret@h/r/' not found")
    assert redact_text("token tk in text", "tk") == "token *** in text"
    why = check_git_url("file://bob:s3cret@/etc/passwd")
    assert why and "s3cret" not in why and "not a git URL" in why


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/srv/repo", "./repo", "ext::sh -c id", "FILE:///x"])
def test_non_network_git_urls_are_refused(url):
    assert check_git_url(url) is not None


@pytest.mark.parametrize("url", ["https://h/r.git", "http://h:8080/r", "ssh://git@h/r", "git://h/r", "git@h:o/r.git"])
def test_network_git_urls_pass(url):
    assert check_git_url(url) is None


# -- item 7/10: validate before the API can refuse ------------------------------------------------------

def _problems(name="smoke", settings=None, **spec):
    spec.setdefault("source", {"inline": {"files": {"t.py": "x"}}})
    eff = effective_spec(TestExecutionSpec.model_validate(spec), None, settings or Settings())
    return semantic_problems(eff, 100, 100, name=name, settings=settings or Settings())


def test_names_with_shards_always_fit():
    for attempt in (1, 11):
        assert len(shard_hostname("x" * MAX_NAME, attempt, 63)) <= MAX_NAME
    assert job_name("checkout", 2) == "checkout-a2"
    assert any("may not contain '.'" in p for p in _problems(name="a.b", shards=2))
    assert _problems(name="a.b") == [] and _problems(name="x" * 63, shards=64) == []


@pytest.mark.parametrize("spec,needle", [
    ({"runner": {"resources": {"requests": {"memory": "4Gi"}}}}, "requests.memory (4Gi) is more than its limit (2Gi)"),
    ({"runner": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}}}, "requests.cpu (2) is more than"),
    ({"runner": {"resources": {"requests": {"cpu": "lots"}}}}, "not a Kubernetes quantity"),
    ({"source": {"inline": {"files": {"..data": "x"}}}}, "not a valid file name"),
    ({"source": {"inline": {"files": {"a/b.py": "x"}}}}, "not a valid file name"),
    ({"runner": {"podLabels": {"team": "bad value!"}}}, "is not a label value"),
    ({"runner": {"podLabels": {"-bad": "x"}}}, "is not a qualified name"),
    ({"runner": {"podLabels": {"app.kubernetes.io/name": "x"}}}, "is reserved"),
    ({"runner": {"podLabels": {"controller-uid": "x"}}}, "is reserved"),
    ({"runner": {"podAnnotations": {"container.apparmor.security.beta.kubernetes.io/runner": "unconfined"}}}, "is reserved"),
    ({"runner": {"podAnnotations": {"k8s.io/x": "y"}}}, "is reserved"),
    ({"runner": {"podAnnotations": {"sluice.dev/x": "y"}}}, "is reserved"),
    ({"runner": {"podAnnotations": {"big": "x" * 300_000}}}, "more than 65536"),
    ({"runner": {"tolerations": [{"key": "k", "operator": "Sometimes"}]}}, "must be Exists or Equal"),
    ({"runner": {"tolerations": [{"key": "k", "effect": "Never"}]}}, "must be NoSchedule"),
    ({"runner": {"tolerations": [{"key": "bad key!"}]}}, "not a qualified name"),
    ({"runner": {"tolerations": [{"operator": "Equal", "value": "v"}]}}, "no key, so its operator must be Exists"),
    ({"runner": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}}, "may not set a value"),
    ({"runner": {"tolerations": [{"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}]}}, "must be NoExecute"),
    ({"runner": {"serviceAccountName": "a..b"}}, "runner.serviceAccountName 'a..b' is not a Kubernetes object name"),
    ({"source": {"configMap": {"name": "../../other-ns/configmaps/x"}}}, "source.configMap.name"),
    ({"source": {"git": {"url": "https://h/r", "secretRef": {"name": "A_B"}}}}, "source.git.secretRef.name"),
    ({"artifacts": {"s3": {"bucket": "bkt", "secretRef": {"name": "x?y"}}}}, "artifacts.s3.secretRef.name"),
    ({"artifacts": {"s3": {"bucket": "bkt", "prefix": "a/../b"}}}, "artifacts.s3.prefix"),
    ({"runner": {"env": [{"name": "x", "valueFrom": {"secretKeyRef": {"name": "a/b", "key": "k"}}}]}}, "valueFrom name"),
    ({"runner": {"envFrom": [{"configMapRef": {"name": "UPPER"}}]}}, "envFrom[0] name"),
    ({"runner": {"envFrom": [{"prefix": "Sluice_", "configMapRef": {"name": "c"}}]}}, "reserved"),
    ({"runner": {"env": [{"name": "sluice_artifacts_url", "value": "s3://x/"}]}}, "reserved"),
    ({"runner": {"env": [{"name": "X", "value": "a\x00b"}]}}, "control character"),
    ({"args": ["a\x00b"]}, "args[0] contains a NUL"),
    ({"baseURL": "http://a\x00b"}, "baseURL contains"),
    ({"queue": "Bad_Queue"}, "not a TestQueue name"),
    ({"runner": {"nodeSelector": {"k": "bad value"}}}, "not a label value"),
    ({"source": {"git": {"url": "https://h/r", "ref": "--upload-pack=x"}}}, "source.git.ref"),
])
def test_each_problem_is_one_sentence_saying_what_to_fix(spec, needle):
    problems = _problems(**spec)
    assert any(needle in p for p in problems), problems


def test_requests_are_compared_with_the_operator_limits_only_when_given():
    eff = effective_spec(TestExecutionSpec.model_validate(
        {"source": {"inline": {"files": {"t.py": "x"}}}, "runner": {"resources": {"requests": {"memory": "4Gi"}}}}),
        None, Settings())
    assert semantic_problems(eff, 5, 5) == []  # the old signature: nothing to compare against
    assert semantic_problems(eff, 5, 5, settings=Settings(runner_memory_limit="8Gi")) == []
    assert parse_quantity("1.5Gi") == 1.5 * 2**30 and parse_quantity("500m") * 2 == 1 and parse_quantity("1e3") == 1000


def test_kwok_and_example_metadata_stay_valid():
    from tests.harness.sluice_api import kwok_runner
    assert _problems(runner=kwok_runner("1s", exit_code=3, message="m", termination="{}", fail_attempts=(1,))) == []


# -- item 8 (eviction) and 9 (one contract) ---------------------------------------------------------------

JOB = {"metadata": {"name": "x-a1"}, "spec": {}}
EVICTED = "Pod ns/x-a1-abcde has condition DisruptionTarget matching FailJob rule at index 0"
EXIT2 = "Container runner for pod ns/x-a1-abcde failed with exit code 2 matching FailJob rule at index 1"


def test_an_eviction_is_pod_evicted_even_when_the_pod_is_gone():
    out = classify_attempt(finished(JOB, "Failed", "PodFailurePolicy", EVICTED), [])
    assert out.failure_class == ErrorClass.POD_EVICTED and out.reason == "PodEvicted"
    terminated = classify_attempt(finished(JOB, "Failed", "PodFailurePolicy", EVICTED), [pod("x-a1", 143)])
    assert terminated.failure_class == "PodEvicted"


def test_exit_code_2_by_the_policy_stays_invalid_spec():
    out = classify_attempt(finished(JOB, "Failed", "PodFailurePolicy", EXIT2), [])
    assert out.failure_class == "InvalidSpec" and out.exit_code == ExitCode.INVALID
    assert policy_failure_class({"reason": "PodFailurePolicy", "message": "has condition DisruptionTarget"}) == "PodEvicted"
    assert policy_failure_class({"reason": "PodFailurePolicy", "message": "exit 2"}) == "InvalidSpec"
    assert policy_failure_class({"reason": "BackoffLimitExceeded"}) is None


def test_failure_classes_are_defined_once():
    """The operator files this session owns import the runner contract instead of repeating it."""
    for rel in ("operator/sluice/policy/outcome.py", "operator/sluice/kube/render.py",
                "operator/sluice/api/execution.py", "operator/sluice/api/effective.py",
                "operator/sluice/policy/validate.py"):
        text = (ROOT / rel).read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        body = code.split('"""', 2)[-1]  # past the module docstring
        for cls in ("TestFailure", "InfrastructureError", "BrowserCrash", "PodEvicted"):
            assert f'"{cls}"' not in body, f"{rel} repeats {cls!r}"
        assert "EXIT_INVALID = 2" not in body


def test_crd_reservation_rules_are_case_insensitive():
    crd = yaml.safe_load((ROOT / "crds/testexecution.yaml").read_text())
    text = json.dumps(crd)
    assert "lowerAscii().startsWith('sluice_')" in text
    assert "container.apparmor" in text or "kubernetes[.]io" in text


def test_lease_path_is_quoted_too():
    from sluice.kube.client import lease_path
    assert lease_path("sluice-system", "sluice-operator") == \
        "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice-operator"
    assert lease_path("ns", "a/../b").endswith("/leases/a%2F..%2Fb")
