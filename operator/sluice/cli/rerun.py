"""`sluice rerun NAME`: a new execution with the same spec, Bull's "manual retry".

The copy is named `<first run>-r<N>` (N one more than the highest rerun of the first run; a
rerun of `x-r2` is `x-r3`, never `x-r2-r1`) and labelled `sluice.dev/rerun-of=<first run>`,
so `kubectl get tx -l sluice.dev/rerun-of=x` lists every rerun of `x`. It carries the user's
labels and annotations, not Sluice's own (`sluice.dev/*`), not `spec.cancel`, and no owner: a
rerun of a scheduled execution belongs to whoever asked for it, not to the schedule.

It never changes the original execution.
"""
from __future__ import annotations

import re

from kubernetes import client

from ..api.common import API_GROUP, API_VERSION, GROUP_VERSION, LABEL_RERUN_OF
from ..kube.names import rerun_name
from .connect import CliError, api_errors

SLUICE_PREFIX = f"{API_GROUP}/"
# describes the original object's last `kubectl apply`, not this one
NOT_COPIED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
CREATE_TRIES = 5  # names taken meanwhile (another rerun, or an execution a user named so)


def first_run(original: dict) -> str:
    """The name reruns count from: the original's own `rerun-of` label, else its name (pure)."""
    meta = original["metadata"]
    return (meta.get("labels") or {}).get(LABEL_RERUN_OF) or meta["name"]


_RERUN_SUFFIX = re.compile(r"-r([0-9]+)$")


def next_number(first: str, existing: list[str]) -> int:
    """One more than the highest rerun number of `first` among `existing` names (pure); 1 when none."""
    numbers = [0]
    for name in existing:
        match = _RERUN_SUFFIX.search(name)
        if match and rerun_name(first, int(match.group(1))) == name:
            numbers.append(int(match.group(1)))
    return max(numbers) + 1


def _user_owned(mapping: dict | None, drop: frozenset[str] = frozenset()) -> dict:
    return {k: v for k, v in (mapping or {}).items() if not k.startswith(SLUICE_PREFIX) and k not in drop}


def rerun_body(original: dict, name: str, first: str) -> dict:
    """The new TestExecution (pure): the original's spec without `cancel`, its user metadata."""
    meta = original["metadata"]
    spec = {k: v for k, v in (original.get("spec") or {}).items() if k != "cancel"}
    labels = dict(_user_owned(meta.get("labels")), **{LABEL_RERUN_OF: first})
    body = {"apiVersion": GROUP_VERSION, "kind": "TestExecution",
            "metadata": {"name": name, "labels": labels}, "spec": spec}
    annotations = _user_owned(meta.get("annotations"), NOT_COPIED_ANNOTATIONS)
    if annotations:
        body["metadata"]["annotations"] = annotations
    return body


def follow_hint(name: str, namespace: str) -> str:
    return f"follow it: sluice watch {name} -n {namespace}   (console: sluice logs -f {name} -n {namespace})"


def _create(conn, namespace: str, body: dict) -> bool:
    """Creates the rerun; False when its name is taken (409)."""
    with api_errors("create testexecution", namespace, body["metadata"]["name"]):
        try:
            conn.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions", body)
        except client.ApiException as exc:
            if exc.status == 409:
                return False
            raise
    return True


def create_rerun(conn, namespace: str, name: str) -> str:
    """The same spec under the next free `<first run>-r<N>`; returns the new name (also the
    dashboard's rerun action)."""
    original = conn.get_execution(namespace, name)
    first = first_run(original)
    with api_errors("list testexecutions", namespace):
        reruns = conn.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions",
                                                           label_selector=f"{LABEL_RERUN_OF}={first}")["items"]
    number = next_number(first, [o["metadata"]["name"] for o in reruns])
    for _ in range(CREATE_TRIES):
        new = rerun_name(first, number)
        if _create(conn, namespace, rerun_body(original, new, first)):
            return new
        number += 1
    raise CliError(f"no free rerun name: {rerun_name(first, number - CREATE_TRIES)} to "
                   f"{rerun_name(first, number - 1)} are all taken in namespace {namespace}")


def run(conn, args) -> int:
    name = create_rerun(conn, conn.namespace, args.name)
    print(f"testexecution/{name} created (rerun of {args.name}, same spec)")
    print(follow_hint(name, conn.namespace))
    return 0
