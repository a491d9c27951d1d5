"""Checks of spec.runner as merged over the queue's defaults: image, resources, service account,
env, tolerations, pod labels and annotations, node selector.

Why: the runner pod is built from these fields with the operator's rights, and the Job create
would be refused (a 422 that no retry fixes) for a bad image reference, a request above its
limit or a malformed toleration; reserved env names and pod keys would let a user redirect the
runner protocol or impersonate Kubernetes' own metadata. It never renders the pod (kube/render.py
does) and never decides the operator's defaults: it compares against `container_resources`.
"""
from __future__ import annotations

import re

from ...api.effective import EffectiveSpec
from ...api.execution import EnvVar, Toleration
from ...api.settings import Settings
from ...kube.render import container_resources
from .grammar import (
    CONFIGMAP_KEY_RE, DNS_SUBDOMAIN_MAX, IMAGE_RE, control_problem, is_label_value, is_reserved_key,
    object_name_problem, parse_quantity, qualified_key_problem,
)

ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESERVED_ENV_PREFIX = "sluice_"  # compared lower-cased: any case of SLUICE_ is reserved
ANNOTATIONS_LIMIT_BYTES = 64 * 1024
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def image_problems(eff: EffectiveSpec) -> list[str]:
    image = eff.runner.image
    if image is not None and not IMAGE_RE.match(image):
        return [f"runner.image {image!r} is not a valid image reference (expected registry/name:tag)"]
    return []


def _requested(eff: EffectiveSpec, settings: Settings | None) -> dict:
    """requests and limits as the container gets them (or the spec's own without the settings)."""
    if settings is not None:
        return container_resources(eff, settings)
    res = eff.runner.resources  # without the operator's settings only the spec's own pairs can be compared
    return {k: {n: str(v) for n, v in ((getattr(res, k) or {}) if res else {}).items()}
            for k in ("requests", "limits")}


def resource_problems(eff: EffectiveSpec, settings: Settings | None) -> list[str]:
    """Every quantity parses, and no request is above its limit (the operator's default limits included)."""
    problems: list[str] = []
    res = eff.runner.resources
    for kind in ("requests", "limits"):
        for name, qty in ((getattr(res, kind) or {}) if res else {}).items():
            if parse_quantity(qty) is None:
                problems.append(f"runner.resources.{kind}.{name} {qty!r} is not a Kubernetes quantity (e.g. 500m, 2Gi)")
    if problems:
        return problems
    merged = _requested(eff, settings)
    requests, limits = merged.get("requests") or {}, merged.get("limits") or {}
    for name, req in requests.items():
        if name in limits:
            r, lim = parse_quantity(req), parse_quantity(limits[name])
            if r is not None and lim is not None and r > lim:
                problems.append(f"runner.resources.requests.{name} ({req}) is more than its limit ({limits[name]}): "
                                f"lower the request or set runner.resources.limits.{name}")
    return problems


def service_account_problems(eff: EffectiveSpec) -> list[str]:
    why = object_name_problem("runner.serviceAccountName", eff.runner.service_account_name)
    return [why] if why else []


def _env_var_problems(i: int, var: EnvVar) -> list[str]:
    problems: list[str | None] = []
    if var.name.lower().startswith(RESERVED_ENV_PREFIX):
        problems.append(f"runner.env[{i}].name {var.name!r} starts with SLUICE_ (in some case), "
                        "which is reserved for the runner protocol: rename it")
    problems.append(control_problem(f"runner.env[{i}].value", var.value))
    ref = var.value_from and (var.value_from.secret_key_ref or var.value_from.config_map_key_ref)
    if ref is not None:
        problems.append(object_name_problem(f"runner.env[{i}].valueFrom name", ref.name))
        if not CONFIGMAP_KEY_RE.match(ref.key) or len(ref.key) > DNS_SUBDOMAIN_MAX:
            problems.append(f"runner.env[{i}].valueFrom key {ref.key!r} is not a valid key: use letters, "
                            "digits, '-', '_' and '.'")
    return [p for p in problems if p]


def env_problems(eff: EffectiveSpec) -> list[str]:
    """SLUICE_* names and prefixes are the runner protocol's; values carry no control characters."""
    problems: list[str] = []
    for i, var in enumerate(eff.runner.env or []):
        problems.extend(_env_var_problems(i, var))
    for i, src in enumerate(eff.runner.env_from or []):
        if src.prefix and src.prefix.lower().startswith(RESERVED_ENV_PREFIX):
            problems.append(f"runner.envFrom[{i}].prefix {src.prefix!r} starts with SLUICE_ (in some case), "
                            "which is reserved for the runner protocol")
        ref = src.secret_ref or src.config_map_ref
        if ref is not None:
            why = object_name_problem(f"runner.envFrom[{i}] name", ref.name)
            if why:
                problems.append(why)
    return problems


def _toleration_problems(field: str, t: Toleration) -> list[str]:
    problems: list[str | None] = []
    if t.operator is not None and t.operator not in TOLERATION_OPERATORS:
        problems.append(f"{field}.operator {t.operator!r} must be Exists or Equal")
    if t.effect is not None and t.effect not in TAINT_EFFECTS:
        problems.append(f"{field}.effect {t.effect!r} must be NoSchedule, PreferNoSchedule or NoExecute")
    if t.key:
        problems.append(qualified_key_problem(field, t.key))
    elif t.operator != "Exists":
        problems.append(f"{field} has no key, so its operator must be Exists")
    if t.operator == "Exists" and t.value:
        problems.append(f"{field} uses operator Exists, so it may not set a value")
    if t.value and not is_label_value(t.value):
        problems.append(f"{field}.value {t.value!r} is not a label value")
    if t.toleration_seconds is not None and t.effect != "NoExecute":
        problems.append(f"{field}.tolerationSeconds is set, so its effect must be NoExecute")
    return [p for p in problems if p]


def toleration_problems(eff: EffectiveSpec) -> list[str]:
    problems: list[str] = []
    for i, t in enumerate(eff.runner.tolerations or []):
        problems.extend(_toleration_problems(f"runner.tolerations[{i}]", t))
    return problems


def pod_metadata_problems(kind: str, values: dict[str, str] | None, labels: bool) -> list[str]:
    """podLabels (labels=True) or podAnnotations: qualified, unreserved keys; label values; 64 KiB."""
    field = f"runner.{kind}"
    problems: list[str] = []
    for key, value in (values or {}).items():
        why = qualified_key_problem(field, key)
        if why:
            problems.append(why)
        elif is_reserved_key(key):
            problems.append(f"{field} key {key!r} is reserved (kubernetes.io/, k8s.io/ and their subdomains, "
                            "sluice.dev/, job-name, controller-uid): use a key under your own domain")
        if labels and not is_label_value(value):
            problems.append(f"{field} value {value!r} of {key!r} is not a label value: at most 63 letters, digits, "
                            "'-', '_' or '.', starting and ending with a letter or digit")
    if not labels:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in (values or {}).items())
        if size > ANNOTATIONS_LIMIT_BYTES:
            problems.append(f"runner.podAnnotations hold {size} bytes, more than {ANNOTATIONS_LIMIT_BYTES}: "
                            "shorten or drop some")
    return problems


def node_selector_problems(eff: EffectiveSpec) -> list[str]:
    problems: list[str] = []
    for key, value in (eff.runner.node_selector or {}).items():
        why = qualified_key_problem("runner.nodeSelector", key)
        if why:
            problems.append(why)
        if not is_label_value(value):
            problems.append(f"runner.nodeSelector value {value!r} of {key!r} is not a label value")
    return problems


def runner_problems(eff: EffectiveSpec, settings: Settings | None) -> list[str]:
    """Every runner check but the image's, in the order the sentences have always come in."""
    return [
        *resource_problems(eff, settings),
        *service_account_problems(eff),
        *env_problems(eff),
        *toleration_problems(eff),
        *pod_metadata_problems("podLabels", eff.runner.pod_labels, labels=True),
        *pod_metadata_problems("podAnnotations", eff.runner.pod_annotations, labels=False),
        *node_selector_problems(eff),
    ]
