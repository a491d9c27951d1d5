"""Helpers for the Helm chart tests: run helm, log in as a ServiceAccount, run Argo CD's Lua.

`helm` is the binary hack/build-tools builds next to kubectl. `service_account_kubeconfig` makes
a kubeconfig whose only credential is a TokenRequest token of one ServiceAccount, so a process
using it has exactly the rights RBAC gives that account. `lua_health` runs an Argo CD health
script under a real Lua interpreter with `obj` set the way Argo CD sets it.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sluice"
KUBE_VERSION = "1.35.4"


def helm_binary(bin_dir: Path) -> Path | None:
    helm = Path(bin_dir) / "helm"
    return helm if os.access(helm, os.X_OK) else None


def helm(bin_dir: Path, *args: str, kubeconfig: Path | None = None, check: bool = True,
         timeout: float = 180) -> subprocess.CompletedProcess:
    argv = [str(Path(bin_dir) / "helm"), *args]
    if kubeconfig is not None:
        argv.append(f"--kubeconfig={kubeconfig}")
    env = dict(os.environ, HELM_CACHE_HOME="/tmp/sluice-helm/cache", HELM_CONFIG_HOME="/tmp/sluice-helm/config",
               HELM_DATA_HOME="/tmp/sluice-helm/data")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    return proc


def template(bin_dir: Path, *set_args: str, namespace: str = "sluice-system", release: str = "sluice",
             values: dict | None = None, tmp: Path | None = None) -> list[dict]:
    """`helm template` of the chart; returns the rendered objects."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    for s in set_args:
        args += ["--set", s]
    if values is not None:
        assert tmp is not None
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["-f", str(path)]
    out = helm(bin_dir, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
            and (namespace is None or o["metadata"].get("namespace") == namespace)]


def operator_deployments(objs: list[dict]) -> list[dict]:
    """The operator's Deployment (the chart may also deploy the live channel's Redis)."""
    return [d for d in find(objs, "Deployment") if not d["metadata"]["name"].endswith("-redis")]


def operator_env(objs: list[dict]) -> dict[str, str]:
    (deploy,) = operator_deployments(objs)
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def service_account_kubeconfig(cluster, namespace: str, service_account: str, path: Path,
                               duration: str = "1h") -> Path:
    """A kubeconfig that authenticates as system:serviceaccount:NAMESPACE:SA and nothing else."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace,
                            f"--duration={duration}").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": service_account, "namespace": namespace}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# ---- Argo CD Lua --------------------------------------------------------------------------------
def lua_binary() -> str | None:
    return shutil.which("lua5.4") or shutil.which("lua")


def lua_literal(value) -> str:
    """A JSON value as a Lua expression, the way Argo CD hands objects to Lua (tables, strings...)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0"
    if isinstance(value, str):
        safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_/+=()@#%!?*<>|~^$&")
        return "\"" + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in value.encode()) + "\""
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not JSON: {value!r}")


def lua_health(script: Path, obj: dict, lua: str | None = None) -> dict:
    """Runs an Argo CD health.lua on `obj`; returns its `{status, message}`."""
    lua = lua or lua_binary()
    if lua is None:
        raise RuntimeError("no Lua interpreter (apt-get install lua5.4)")
    # Argo CD runs the script as a chunk with `obj` global and takes the value it returns.
    harness = (
        f"obj = {lua_literal(obj)}\n"
        f"local check = assert(load({lua_literal(script.read_text())}, 'health.lua'))\n"
        "local hs = check()\n"
        "io.write(hs.status or '', '\\n', hs.message or '')\n"
    )
    proc = subprocess.run([lua, "-"], input=harness, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"lua failed: {proc.stderr}")
    status, _, message = proc.stdout.partition("\n")
    return {"status": status, "message": message}


def dump_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
