"""Pure renderers of the objects an attempt needs: the runner Job and the inline-source ConfigMap.

The Job follows the API contract (labels, ownerReference, deadline, backoffLimit 0, a
podFailurePolicy that fails the Job on an eviction and on runner exit code 2, TTL, Indexed when
sharded) and carries the runner protocol in its environment. It is built in parts, each a small
function: the env (`_env`), the volumes (`_volumes`), the container, the pod spec, the Job spec.
They never call the API, read the clock or decide whether an execution may run (that is
policy/validate.py, which compares `container_resources` before any Job is created). Nothing the user wrote reaches a shell: the
command is a fixed argv and user args travel as a JSON list in SLUICE_ARGS.

Nothing the user wrote is expanded either: the kubelet expands `$(VAR)` in env values (and `$$`
to `$`), so every literal env value is written through `literal()`, which doubles each `$`; the
runner then receives exactly what the user wrote (`$(SLUICE_EXECUTION)` stays that text).

The pod runs as the runner image's non-root user (RUNNER_UID, the Dockerfile's `runner` user)
with a read-only root file system; the only writable places are emptyDirs: the work directory,
/tmp and HOME (Chromium and Playwright write profiles and caches there) and /dev/shm.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Collection

from sluice_runner.errors import ErrorClass, ExitCode

from ..api.common import (
    ANNOTATION_ENVIRONMENTS, GROUP_VERSION, LABEL_ATTEMPT, LABEL_EXECUTION, LABEL_MANAGED_BY, LABEL_QUEUE,
)
from ..api.effective import EffectiveSpec
from ..api.settings import Settings
from .names import job_name, source_config_map_name

SOURCE_MOUNT = "/sluice/source"
WORK_MOUNT = "/sluice/work"
TMP_MOUNT = "/tmp"
RUNNER_HOME = "/home/runner"  # the Dockerfile's runner user's HOME
RUNNER_UID = 65532  # the Dockerfile's runner user (uid and gid)
RUNNER_COMMAND = ["python", "-m", "sluice_runner"]
EXIT_INVALID = int(ExitCode.INVALID)

# podFailurePolicy rules, in order, each with the failure class a Job failed by it has. The
# eviction rule comes first: an evicted pod's exit code (whatever SIGTERM produced) says nothing.
# policy/outcome.py maps "rule at index N" in the Job's Failed condition back through this table.
POD_FAILURE_RULES: tuple[tuple[ErrorClass, dict], ...] = (
    (ErrorClass.POD_EVICTED,
     {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}),
    (ErrorClass.INVALID_SPEC,
     {"action": "FailJob", "onExitCodes": {"containerName": "runner", "operator": "In", "values": [EXIT_INVALID]}}),
)


def literal(value: str) -> str:
    """An env value the kubelet passes through unchanged: `$` doubled, so `$(VAR)` is not expanded."""
    return value.replace("$", "$$")


def owner_reference(name: str, uid: str) -> dict:
    return {
        "apiVersion": GROUP_VERSION, "kind": "TestExecution", "name": name, "uid": uid,
        "controller": True, "blockOwnerDeletion": True,
    }


def labels_for(execution: str, queue: str, attempt: int | None = None) -> dict[str, str]:
    out = {LABEL_EXECUTION: execution, LABEL_QUEUE: queue, LABEL_MANAGED_BY: "sluice"}
    if attempt is not None:
        out[LABEL_ATTEMPT] = str(attempt)
    return out


def render_source_config_map(namespace: str, name: str, uid: str, eff: EffectiveSpec) -> dict | None:
    inline = eff.spec.source.inline
    if inline is None:
        return None
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": source_config_map_name(name), "namespace": namespace,
            "labels": labels_for(name, eff.spec.queue),
            "ownerReferences": [owner_reference(name, uid)],
        },
        "data": dict(inline.files),
        "immutable": True,
    }


def artifacts_url(eff: EffectiveSpec, namespace: str, name: str, attempt: int) -> str:
    if eff.s3 is None:
        return ""
    prefix = (eff.s3.prefix or "").strip("/")
    parts = [p for p in (prefix, namespace, name, f"attempt-{attempt}") if p]
    return f"s3://{eff.s3.bucket}/" + "/".join(parts) + "/"


GIT_SECRET_KEYS = (
    ("SLUICE_GIT_USERNAME", "username"), ("SLUICE_GIT_TOKEN", "token"), ("SLUICE_GIT_PASSWORD", "password"),
)


def live_channel_env(settings: Settings) -> list[dict]:
    """Where the runner appends its progress events (Redis), as its own append-only ACL user;
    the password comes from a Secret in the execution's namespace, never from the spec."""
    env = []
    if settings.runner_redis_url:
        env.append({"name": "SLUICE_REDIS_URL", "value": literal(settings.runner_redis_url)})
        if settings.runner_redis_secret:
            env.append({"name": "SLUICE_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
                "name": settings.runner_redis_secret, "key": "password", "optional": True}}})
    return env


def _env(namespace: str, name: str, attempt: int, eff: EffectiveSpec) -> list[dict]:
    spec = eff.spec
    src = spec.source
    env = [
        {"name": "SLUICE_EXECUTION", "value": f"{namespace}/{name}"},
        {"name": "SLUICE_ATTEMPT", "value": str(attempt)},
        {"name": "SLUICE_FRAMEWORK", "value": spec.framework},
        {"name": "SLUICE_SOURCE_KIND", "value": src.kind},
        {"name": "SLUICE_SOURCE_DIR", "value": src.image.path if src.image else SOURCE_MOUNT},
        {"name": "SLUICE_WORK_DIR", "value": WORK_MOUNT},
        {"name": "SLUICE_ARTIFACTS_URL", "value": artifacts_url(eff, namespace, name, attempt)},
        {"name": "SLUICE_SHARD_TOTAL", "value": str(spec.shards)},
        {"name": "SLUICE_ARGS", "value": json.dumps(spec.args)},
    ]
    if spec.shards > 1:
        env.append({"name": "SLUICE_SHARD_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}})
    else:
        env.append({"name": "SLUICE_SHARD_INDEX", "value": "0"})
    if spec.base_url:
        env.append({"name": "BASE_URL", "value": spec.base_url})
    if src.git is not None:
        env.append({"name": "SLUICE_GIT_URL", "value": src.git.url})
        if src.git.ref:
            env.append({"name": "SLUICE_GIT_REF", "value": src.git.ref})
        if src.git.path:
            env.append({"name": "SLUICE_GIT_PATH", "value": src.git.path})
        if src.git.secret_ref is not None:
            # `password` is read as an alias of `token` (the runner prefers token when both are set).
            for var, key in GIT_SECRET_KEYS:
                env.append({"name": var, "valueFrom": {"secretKeyRef": {
                    "name": src.git.secret_ref.name, "key": key, "optional": True}}})
    s3 = eff.s3
    if s3 is not None:
        if s3.endpoint:
            env.append({"name": "AWS_ENDPOINT_URL_S3", "value": s3.endpoint})
        if s3.region:
            env.append({"name": "AWS_REGION", "value": s3.region})
        if s3.secret_ref is not None:
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": s3.secret_ref.name, "key": key}}})
    env.append({"name": "HOME", "value": RUNNER_HOME})
    env.extend(e.wire() for e in eff.runner.env or [])
    return [dict(e, value=literal(e["value"])) if "value" in e else e for e in env]


def container_resources(eff: EffectiveSpec, settings: Settings) -> dict:
    """The runner container's requests and limits: the operator's settings under the spec's.
    policy/checks/runner.py compares these (requests <= limits) before the Job is ever created."""
    requests = {"cpu": settings.runner_cpu_request, "memory": settings.runner_memory_request}
    limits = {"cpu": settings.runner_cpu_limit, "memory": settings.runner_memory_limit}
    res = eff.runner.resources
    if res is not None:
        requests.update({k: str(v) for k, v in (res.requests or {}).items()})
        limits.update({k: str(v) for k, v in (res.limits or {}).items()})
    out = {}
    if any(requests.values()):
        out["requests"] = {k: v for k, v in requests.items() if v}
    if any(limits.values()):
        out["limits"] = {k: v for k, v in limits.items() if v}
    return out


def _volumes(namespace: str, name: str, eff: EffectiveSpec) -> tuple[list[dict], list[dict]]:
    volumes = [
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "home", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
    ]
    mounts = [
        {"name": "work", "mountPath": WORK_MOUNT},
        {"name": "tmp", "mountPath": TMP_MOUNT},
        {"name": "home", "mountPath": RUNNER_HOME},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    src = eff.spec.source
    cm = source_config_map_name(name) if src.inline else (src.config_map.name if src.config_map else None)
    if cm:
        volumes.append({"name": "source", "configMap": {"name": cm}})
        mounts.append({"name": "source", "mountPath": SOURCE_MOUNT, "readOnly": True})
    return volumes, mounts


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": RUNNER_UID,
    "runAsGroup": RUNNER_UID,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
POD_SECURITY = {
    "runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID, "fsGroup": RUNNER_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _container(namespace: str, name: str, attempt: int, eff: EffectiveSpec, settings: Settings,
               mounts: list[dict]) -> dict:
    """The one `runner` container: fixed argv, the runner protocol's env, non-root and read-only."""
    runner = eff.runner
    container = {
        "name": "runner",
        "image": runner.image or settings.runner_image,
        "imagePullPolicy": runner.image_pull_policy or settings.runner_image_pull_policy,
        "command": list(RUNNER_COMMAND),
        "env": _env(namespace, name, attempt, eff) + live_channel_env(settings),
        "resources": container_resources(eff, settings),
        "volumeMounts": mounts,
        "workingDir": WORK_MOUNT,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": copy.deepcopy(CONTAINER_SECURITY),
    }
    if runner.env_from:
        container["envFrom"] = [e.wire() for e in runner.env_from]
    return container


def _pod_spec(container: dict, volumes: list[dict], eff: EffectiveSpec, settings: Settings,
              token_accounts: Collection[str] = ()) -> dict:
    """The pod: never restarted, no service-account token unless its account is one the queue
    allows by name (`token_accounts`: its allowedServiceAccounts, "" excluded)."""
    runner = eff.runner
    service_account = runner.service_account_name or settings.runner_service_account or None
    pod_spec: dict = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "automountServiceAccountToken": service_account is not None and service_account in token_accounts,
        "securityContext": copy.deepcopy(POD_SECURITY),
        "enableServiceLinks": False,
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if runner.node_selector:
        pod_spec["nodeSelector"] = dict(runner.node_selector)
    if runner.tolerations:
        pod_spec["tolerations"] = [t.wire() for t in runner.tolerations]
    return pod_spec


def _job_spec(pod_template: dict, eff: EffectiveSpec, settings: Settings) -> dict:
    """Deadline, TTL, the podFailurePolicy, and no Job-level retries (the operator's own, with backoff)."""
    shards = eff.spec.shards
    job_spec: dict = {
        "activeDeadlineSeconds": eff.timeout_seconds,
        "completions": shards,
        "parallelism": shards,
        "ttlSecondsAfterFinished": settings.job_ttl_seconds,
        "podFailurePolicy": {"rules": [dict(rule) for _, rule in POD_FAILURE_RULES]},
        "template": pod_template,
    }
    if shards > 1:
        # Every shard runs once and all shards finish, so the attempt reports every shard's results.
        job_spec["completionMode"] = "Indexed"
        job_spec["backoffLimitPerIndex"] = 0
        job_spec["maxFailedIndexes"] = shards
    else:
        job_spec["backoffLimit"] = 0
    return job_spec


def render_job(namespace: str, name: str, uid: str, attempt: int, eff: EffectiveSpec, settings: Settings,
               token_accounts: Collection[str] = ()) -> dict:
    """The attempt's Job, owned by the execution, with Sluice's labels on the Job and its pods;
    its pod mounts an API token only when its ServiceAccount is in `token_accounts`."""
    runner = eff.runner
    volumes, mounts = _volumes(namespace, name, eff)
    container = _container(namespace, name, attempt, eff, settings, mounts)
    pod_labels = {**(runner.pod_labels or {}), **labels_for(name, eff.spec.queue, attempt)}
    template = {
        "metadata": {"labels": pod_labels, "annotations": dict(runner.pod_annotations or {})},
        "spec": _pod_spec(container, volumes, eff, settings, token_accounts),
    }
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": job_name(name, attempt), "namespace": namespace,
            "labels": labels_for(name, eff.spec.queue, attempt),
            **({"annotations": {ANNOTATION_ENVIRONMENTS: ",".join(eff.spec.environments)}}
               if eff.spec.environments else {}),
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": _job_spec(template, eff, settings),
    }
