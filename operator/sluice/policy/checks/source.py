"""Checks of spec.source: where the tests come from (inline files, a ConfigMap, git, the image).

Why: an inline suite must fit a ConfigMap and have keys a ConfigMap accepts, and a git source may
use network transports only (file://, local paths and ext:: would read the runner's own disk or
run commands). It never shows a credential: git URLs are redacted in every sentence, and it never
looks a ConfigMap up itself (the dispatcher passes in the one that is missing).
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

from sluice_runner.redact import redact_url

from ...api.execution import Source
from .grammar import (
    CONFIGMAP_KEY_RE, CONTROL_RE, DNS_SUBDOMAIN_MAX, has_space_or_control, object_name_problem,
)

SCP_GIT_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
GIT_SCHEMES = ("https", "http", "ssh", "git")  # network transports only: no file://, ext::, ...
CONFIGMAP_LIMIT_BYTES = 1_000_000  # a ConfigMap holds at most 1 MiB, metadata included


def check_git_url(url: str) -> str | None:
    """Why `url` is not a network git URL (None when it is); the message never shows credentials."""
    shown = redact_url(url)
    if SCP_GIT_RE.match(url):
        return None
    parsed = urlparse(url)
    if parsed.scheme not in GIT_SCHEMES:
        return (f"source.git.url {shown!r} is not a git URL: use https://host/org/repo.git, ssh://, git:// "
                "or user@host:path (file://, local paths and other schemes are refused)")
    if has_space_or_control(url):
        return f"source.git.url {shown!r} contains white space or control characters"
    if not parsed.hostname:
        return f"source.git.url {shown!r} has no host"
    return None


def inline_problems(files: dict[str, str]) -> list[str]:
    """The files must fit one ConfigMap, under keys a ConfigMap accepts (no '..data', no '/')."""
    problems: list[str] = []
    size = sum(len(k.encode()) + len(v.encode()) for k, v in files.items())
    if size > CONFIGMAP_LIMIT_BYTES:
        problems.append(
            f"source.inline.files hold {size} bytes, more than a ConfigMap can store ({CONFIGMAP_LIMIT_BYTES}): "
            "use source.git or source.image for large suites"
        )
    for key in files:
        if not CONFIGMAP_KEY_RE.match(key) or key.startswith("..") or key == "." or len(key) > DNS_SUBDOMAIN_MAX:
            problems.append(f"source.inline.files name {key!r} is not a valid file name: use letters, digits, "
                            "'-', '_' and '.' (no directories, not starting with '..')")
    return problems


def git_problems(url: str, ref: str | None, path: str | None, secret_name: str | None) -> list[str]:
    """A network URL, a ref that is not an option, a relative path, a Secret name."""
    problems = [check_git_url(url)]
    if ref is not None and (ref.startswith("-") or has_space_or_control(ref)):
        problems.append(f"source.git.ref {ref!r} is not a branch, tag or commit")
    if path and (".." in path.split("/") or path.startswith("/") or CONTROL_RE.search(path)):
        problems.append(f"source.git.path {path!r} must be a relative path inside the repository")
    problems.append(object_name_problem("source.git.secretRef.name", secret_name))
    return [p for p in problems if p]


def source_problems(src: Source, missing_config_map: str | None) -> list[str]:
    """Exactly one kind of source, and that one usable."""
    problems: list[str] = []
    if src.kind == "none":
        problems.append("source must set exactly one of inline, configMap, git, image")
    if src.inline is not None:
        problems.extend(inline_problems(src.inline.files))
    if src.config_map is not None:
        why = object_name_problem("source.configMap.name", src.config_map.name)
        if why:
            problems.append(why)
    if src.git is not None:
        secret = src.git.secret_ref.name if src.git.secret_ref is not None else None
        problems.extend(git_problems(src.git.url, src.git.ref, src.git.path, secret))
    if missing_config_map and object_name_problem("", missing_config_map) is None:
        problems.append(f"source.configMap {missing_config_map!r} does not exist in this namespace: create it first")
    return problems
