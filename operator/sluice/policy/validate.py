"""Semantic checks the CRD schema cannot express. Each problem is a sentence that says what to fix.

Pure: the one check that needs the API (does a referenced ConfigMap exist) is made by the
dispatcher and passed in as `missing_config_map`.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

from ..api.effective import EffectiveSpec

# The distribution reference grammar (registry[:port]/path[:tag][@digest]).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$"
)
QUANTITY_RE = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$")
SCP_GIT_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
CONFIGMAP_LIMIT_BYTES = 1_000_000  # a ConfigMap holds at most 1 MiB, metadata included
ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_git_url(url: str) -> str | None:
    if SCP_GIT_RE.match(url):
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http", "ssh", "git", "file"):
        return f"source.git.url {url!r} is not a git URL: use https://host/org/repo.git, ssh://, git:// or user@host:path"
    if parsed.scheme != "file" and not parsed.netloc:
        return f"source.git.url {url!r} has no host"
    if any(ch.isspace() for ch in url):
        return f"source.git.url {url!r} contains white space"
    return None


def semantic_problems(
    eff: EffectiveSpec,
    queue_capacity: int,
    global_capacity: int,
    missing_config_map: str | None = None,
) -> list[str]:
    spec = eff.spec
    problems: list[str] = []
    image = eff.runner.image
    if image is not None and not IMAGE_RE.match(image):
        problems.append(f"runner.image {image!r} is not a valid image reference (expected registry/name:tag)")
    src = spec.source
    if src.kind == "none":
        problems.append("source must set exactly one of inline, configMap, git, image")
    if src.inline is not None:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in src.inline.files.items())
        if size > CONFIGMAP_LIMIT_BYTES:
            problems.append(
                f"source.inline.files hold {size} bytes, more than a ConfigMap can store ({CONFIGMAP_LIMIT_BYTES}): "
                "use source.git or source.image for large suites"
            )
    if src.git is not None:
        why = check_git_url(src.git.url)
        if why:
            problems.append(why)
        if src.git.path and (".." in src.git.path.split("/") or src.git.path.startswith("/")):
            problems.append(f"source.git.path {src.git.path!r} must be a relative path inside the repository")
    if missing_config_map:
        problems.append(f"source.configMap {missing_config_map!r} does not exist in this namespace: create it first")
    if spec.base_url:
        parsed = urlparse(spec.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"baseURL {spec.base_url!r} is not an http(s) URL")
    if spec.shards > queue_capacity:
        problems.append(
            f"shards ({spec.shards}) exceed the queue's runningCapacity ({queue_capacity}): it could never start"
        )
    elif spec.shards > global_capacity:
        problems.append(
            f"shards ({spec.shards}) exceed the operator's running capacity ({global_capacity}): it could never start"
        )
    res = eff.runner.resources
    for kind in ("requests", "limits"):
        for name, qty in ((getattr(res, kind) or {}) if res else {}).items():
            if not QUANTITY_RE.match(str(qty)):
                problems.append(f"runner.resources.{kind}.{name} {qty!r} is not a Kubernetes quantity (e.g. 500m, 2Gi)")
    r = eff.retry
    if r.max_seconds < r.initial_seconds:
        problems.append(
            f"retries.backoff.maxSeconds ({r.max_seconds}) is less than initialSeconds ({r.initial_seconds})"
        )
    if eff.s3 is not None and eff.s3.endpoint:
        parsed = urlparse(eff.s3.endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"artifacts.s3.endpoint {eff.s3.endpoint!r} is not an http(s) URL")
    return problems
