"""Translate a pod's first container into a local process: argv, environment, working dir, files.

Why a module of its own: this is the part of the process node that decides what a pod *means*
on a machine without containers, and it is pure apart from writing volume files and reading
Secrets/ConfigMaps through the `source` callable it is given, so it is easy to read and to test.

The mapping (see also tests/harness/process_node.py):
- env: the agent's own environment (PATH, the same Python...), then HOME/TMPDIR/HOSTNAME and
  SLUICE_TERMINATION_LOG, then envFrom (configMapRef/secretRef, optional prefix), then env (value
  with $(VAR) expansion; valueFrom secretKeyRef, configMapKeyRef, fieldRef incl.
  metadata.labels['x'] / metadata.annotations['x']; resourceFieldRef is ignored).
- volumes: configMap, secret (with `items`), emptyDir, downwardAPI and projected (configMap,
  secret, downwardAPI sources; no service-account token) land in <pod dir>/volumes/<name>;
  other kinds become empty dirs.
- paths: a process cannot see mountPaths, so any env value, command word, arg or workingDir equal
  to or below a volumeMount's mountPath (longest first, honouring subPath) is rewritten to the
  materialized dir, and the terminationMessagePath (default /dev/termination-log) to
  <pod dir>/termination-log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

FIELD_REF = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")
# source(kind, name, optional) -> {key: text} or None (missing and optional); kind is
# "secret" or "configmap". Raises ConfigError when a required one is missing.
Source = Callable[[str, str, "bool | None"], "dict[str, str] | None"]


class ConfigError(Exception):
    """The pod references something missing (kubelet: CreateContainerConfigError); retried."""


def expand(value: str, env: dict) -> str:
    """Kubernetes $(VAR) expansion: known vars are replaced, $$ escapes, unknown refs stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def rewrite(value: str, mounts: list[tuple[str, str]]) -> str:
    """Map a container path (a mountPath or below it) to where the volume lives on this host."""
    for mount_path, host in mounts:
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return host + value[len(mount_path.rstrip("/")):]
    return value


def field(pod: dict, path: str) -> str:
    """A downward-API fieldPath of `pod` (the process node's addresses are 127.0.0.1)."""
    meta = pod["metadata"]
    m = FIELD_REF.match(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
              "metadata.uid": meta["uid"], "spec.nodeName": pod["spec"].get("nodeName", ""),
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1",
              "status.podIPs": "127.0.0.1", "status.hostIPs": "127.0.0.1"}
    return simple.get(path, "")


def build(pod: dict, pod_dir: Path, source: Source) -> tuple[list[str], dict, str]:
    """Materialize volumes and return (argv, env, cwd) for the pod's first container."""
    c = pod["spec"]["containers"][0]
    if not c.get("command"):
        raise ConfigError("the process node cannot run images: the container needs `command`")
    for sub in ("volumes", "home"):
        (pod_dir / sub).mkdir(parents=True, exist_ok=True)
    tlog = pod_dir / "termination-log"
    tlog.touch()
    volumes = {v["name"]: materialize(v, pod_dir / "volumes" / v["name"], pod, source)
               for v in pod["spec"].get("volumes") or []}
    mounts = [(m["mountPath"], str(volumes[m["name"]] / m.get("subPath", "")).rstrip("/"))
              for m in c.get("volumeMounts") or [] if m["name"] in volumes]
    mounts.sort(key=lambda m: len(m[0]), reverse=True)
    mounts.insert(0, (c.get("terminationMessagePath", "/dev/termination-log"), str(tlog)))

    own: dict[str, str] = {}
    for src in c.get("envFrom") or []:
        kind, ref = ("configmap", src["configMapRef"]) if "configMapRef" in src \
            else ("secret", src["secretRef"])
        for key, value in (source(kind, ref["name"], ref.get("optional")) or {}).items():
            own[src.get("prefix", "") + key] = value
    for var in c.get("env") or []:
        value = env_value(var, own, pod, source)
        if value is not None:
            own[var["name"]] = value
    env = dict(os.environ, HOME=str(pod_dir / "home"), TMPDIR=str(short_tmp(pod_dir, pod)),
               HOSTNAME=pod["metadata"]["name"], SLUICE_TERMINATION_LOG=str(tlog))
    env.update({k: rewrite(v, mounts) for k, v in own.items()})
    argv = [rewrite(expand(a, env), mounts) for a in c["command"] + (c.get("args") or [])]
    cwd = rewrite(c.get("workingDir") or str(pod_dir), mounts)
    Path(cwd).mkdir(parents=True, exist_ok=True)
    return argv, env, cwd


def short_tmp(pod_dir: Path, pod: dict) -> Path:
    """A short TMPDIR: Chromium's singleton socket lives there and Unix socket paths are limited
    to 107 bytes, which a pytest tmp path plus the pod dir name exceeds. `pod_dir/tmp` links to it."""
    target = Path("/tmp/sluice-pods") / (pod["metadata"].get("uid") or pod["metadata"]["name"])[:13]
    target.mkdir(parents=True, exist_ok=True)
    link = pod_dir / "tmp"
    if link.is_dir() and not link.is_symlink():
        link.rmdir()
    if not link.exists():
        link.symlink_to(target)
    return target


def env_value(var: dict, own: dict, pod: dict, source: Source) -> str | None:
    if "valueFrom" not in var:
        return expand(var.get("value", ""), own)
    src = var["valueFrom"]
    if "fieldRef" in src:
        return field(pod, src["fieldRef"]["fieldPath"])
    for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
        if key in src:
            ref = src[key]
            data = source(kind, ref["name"], ref.get("optional"))
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise ConfigError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
            return data[ref["key"]]
    return None  # resourceFieldRef: not modelled


def materialize(volume: dict, target: Path, pod: dict, source: Source) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for src in (volume.get("projected") or {}).get("sources") or [volume]:
        for kind, key in (("configmap", "configMap"), ("secret", "secret")):
            spec = src.get(key)
            name = spec and (spec.get("name") or spec.get("secretName"))
            if not name:
                continue
            data = source(kind, name, spec.get("optional")) or {}
            for item in spec.get("items") or [{"key": k, "path": k} for k in data]:
                if item["key"] in data:
                    _write(target / item["path"], data[item["key"]])
                elif not spec.get("optional"):
                    raise ConfigError(f"{kind} {name!r} has no key {item['key']!r}")
        for item in (src.get("downwardAPI") or {}).get("items") or []:
            if "fieldRef" in item:
                _write(target / item["path"], field(pod, item["fieldRef"]["fieldPath"]))
    return target


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
