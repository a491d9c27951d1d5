import json

from sluice.api.effective import effective_spec
from sluice.api.execution import TestExecutionSpec
from sluice.api.settings import Settings
from sluice.kube.names import job_name
from sluice.kube.render import RUNNER_UID, render_job, render_source_config_map
from sluice_runner.errors import ExitCode

from tests.harness.pod_spec import expand  # the kubelet's $(VAR) expansion, as the process node does it


def _render(shards=1, **spec):
    spec.setdefault("source", {"inline": {"files": {"test_a.py": "x"}}})
    eff = effective_spec(TestExecutionSpec.model_validate(dict(spec, shards=shards)), None,
                         Settings(artifacts_bucket="arts", artifacts_secret="s3creds", artifacts_endpoint="http://minio:9000"))
    return eff, render_job("team", "checkout", "uid-1", 2, eff, Settings(artifacts_bucket="arts"))


def test_job_names_are_deterministic_and_fit():
    assert job_name("checkout", 2) == "checkout-a2"
    long = job_name("x" * 63, 10)
    assert len(long) <= 63 and long == job_name("x" * 63, 10) and long.endswith("-a10")


def test_job_follows_the_contract():
    eff, job = _render(args=["--grep", "$(rm -rf /)"], baseURL="http://app", timeoutSeconds=120)
    meta, spec = job["metadata"], job["spec"]
    assert meta["labels"]["sluice.dev/execution"] == "checkout" and meta["labels"]["sluice.dev/attempt"] == "2"
    assert meta["ownerReferences"][0]["controller"] is True and meta["ownerReferences"][0]["uid"] == "uid-1"
    assert spec["activeDeadlineSeconds"] == 120 and spec["backoffLimit"] == 0 and "completionMode" not in spec
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["onExitCodes"]["values"] == [int(ExitCode.INVALID)]
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["sluice.dev/queue"] == "default"
    c = pod["containers"][0]
    assert c["name"] == "runner" and c["command"] == ["python", "-m", "sluice_runner"] and "args" not in c
    env = {e["name"]: expand(e["value"], {}) if "value" in e else e["valueFrom"] for e in c["env"]}
    assert json.loads(env["SLUICE_ARGS"]) == ["--grep", "$(rm -rf /)"]  # data, never a shell or $(VAR)
    assert env["SLUICE_ARTIFACTS_URL"] == "s3://arts/team/checkout/attempt-2/"
    assert env["BASE_URL"] == "http://app" and env["SLUICE_EXECUTION"] == "team/checkout"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3creds", "key": "AWS_ACCESS_KEY_ID"}}
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and pod["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsUser"] == pod["securityContext"]["runAsUser"] == RUNNER_UID != 0
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == RUNNER_UID
    assert pod["restartPolicy"] == "Never"
    cm = render_source_config_map("team", "checkout", "uid-1", eff)
    assert cm["metadata"]["name"] == "checkout-src" and cm["data"] == {"test_a.py": "x"}
    assert {"name": "source", "configMap": {"name": "checkout-src"}} in pod["volumes"]


def test_sharded_job_is_indexed_and_every_shard_reports():
    _, job = _render(shards=4)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimitPerIndex"] == 0 and "backoffLimit" not in spec
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert "job-completion-index" in env["SLUICE_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
