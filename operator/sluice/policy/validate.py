"""Semantic checks the CRD schema cannot express. Each problem is a sentence that says what to fix.

Pure: the one check that needs the API (does a referenced ConfigMap exist) is made by the
dispatcher and passed in as `missing_config_map`.

Why the schema's checks are repeated here: the schema sees one object, while an attempt runs
with the execution merged over its queue's defaults and the operator's settings (a 4Gi request
over the operator's 2Gi default limit is visible only here), and executions stored before a
schema change were never checked by it. Anything the Job create would be refused for (a 4xx that
retrying cannot fix) is refused here first, as `Rejected`/`InvalidSpec`, before any API write.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from sluice_runner.redact import redact_url

from ..api.effective import EffectiveSpec
from ..api.settings import Settings
from ..kube.names import MAX_NAME, shard_hostname
from ..kube.render import container_resources

# The distribution reference grammar (registry[:port]/path[:tag][@digest]).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$"
)
QUANTITY_RE = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$")
SCP_GIT_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
GIT_SCHEMES = ("https", "http", "ssh", "git")  # network transports only: no file://, ext::, ...
CONFIGMAP_LIMIT_BYTES = 1_000_000  # a ConfigMap holds at most 1 MiB, metadata included
ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESERVED_ENV_PREFIX = "sluice_"  # compared lower-cased: any case of SLUICE_ is reserved
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MAX = 253
CONFIGMAP_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# Keys a user may not put on runner pods: Kubernetes' own (kubernetes.io, k8s.io and every
# subdomain: batch.kubernetes.io/*, container.apparmor.security.beta.kubernetes.io/*, ...), the
# Job controller's unprefixed ones, and Sluice's own.
RESERVED_KEY_RE = re.compile(r"^(([^/]*\.)?(kubernetes\.io|k8s\.io)|sluice\.dev)/")
RESERVED_KEYS = frozenset({"job-name", "controller-uid"})
ANNOTATIONS_LIMIT_BYTES = 64 * 1024
# C0 controls (except tab, newline, carriage return) and DEL: nothing a test argument needs.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}


def check_git_url(url: str) -> str | None:
    """Why `url` is not a network git URL (None when it is); the message never shows credentials."""
    shown = redact_url(url)
    if SCP_GIT_RE.match(url):
        return None
    parsed = urlparse(url)
    if parsed.scheme not in GIT_SCHEMES:
        return (f"source.git.url {shown!r} is not a git URL: use https://host/org/repo.git, ssh://, git:// "
                "or user@host:path (file://, local paths and other schemes are refused)")
    if any(ch.isspace() for ch in url) or CONTROL_RE.search(url):
        return f"source.git.url {shown!r} contains white space or control characters"
    if not parsed.hostname:
        return f"source.git.url {shown!r} has no host"
    return None


def parse_quantity(text: str | int) -> Decimal | None:
    """A Kubernetes quantity as a number (None when it is not one)."""
    s = str(text)
    if not QUANTITY_RE.match(s):
        return None
    m = re.match(r"^[+]?([0-9.]+)(.*)$", s)
    assert m is not None
    number, suffix = m.groups()
    try:
        value = Decimal(number)
        if suffix in _BINARY:
            return value * _BINARY[suffix]
        if suffix in _DECIMAL:
            return value * _DECIMAL[suffix]
        return value * (Decimal(10) ** int(suffix[1:]))  # e/E exponent
    except (InvalidOperation, ValueError):
        return None


def object_name_problem(field: str, name: str | None) -> str | None:
    """A ConfigMap/Secret/ServiceAccount name must be a DNS-1123 subdomain."""
    if name is None:
        return None
    if len(name) > DNS_SUBDOMAIN_MAX or not DNS_SUBDOMAIN_RE.match(name):
        return (f"{field} {name!r} is not a Kubernetes object name: use at most {DNS_SUBDOMAIN_MAX} lower-case "
                "letters, digits, '-' and '.', starting and ending with a letter or digit")
    return None


def qualified_key_problem(field: str, key: str) -> str | None:
    """A label/annotation key: optional DNS-subdomain prefix and '/', then a name of at most 63."""
    prefix, _, name = key.rpartition("/")
    if ("/" in key and (len(prefix) > DNS_SUBDOMAIN_MAX or not DNS_SUBDOMAIN_RE.match(prefix))) \
            or len(name) > MAX_NAME or not QUALIFIED_NAME_RE.match(name):
        return (f"{field} key {key!r} is not a qualified name: an optional DNS-subdomain prefix and '/', then at "
                "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    return None


def _reserved_key(key: str) -> bool:
    return key in RESERVED_KEYS or bool(RESERVED_KEY_RE.match(key))


def _metadata_problems(kind: str, values: dict[str, str] | None, labels: bool) -> list[str]:
    field = f"runner.{kind}"
    problems: list[str] = []
    for key, value in (values or {}).items():
        why = qualified_key_problem(field, key)
        if why:
            problems.append(why)
        elif _reserved_key(key):
            problems.append(f"{field} key {key!r} is reserved (kubernetes.io/, k8s.io/ and their subdomains, "
                            "sluice.dev/, job-name, controller-uid): use a key under your own domain")
        if labels and (len(value) > MAX_NAME or not LABEL_VALUE_RE.match(value)):
            problems.append(f"{field} value {value!r} of {key!r} is not a label value: at most 63 letters, digits, "
                            "'-', '_' or '.', starting and ending with a letter or digit")
    if not labels:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in (values or {}).items())
        if size > ANNOTATIONS_LIMIT_BYTES:
            problems.append(f"runner.podAnnotations hold {size} bytes, more than {ANNOTATIONS_LIMIT_BYTES}: "
                            "shorten or drop some")
    return problems


def _control(field: str, value: str | None) -> str | None:
    if value is not None and CONTROL_RE.search(value):
        return f"{field} contains a NUL or other control character: remove it"
    return None


def _env_problems(eff: EffectiveSpec) -> list[str]:
    problems: list[str] = []
    for i, var in enumerate(eff.runner.env or []):
        if var.name.lower().startswith(RESERVED_ENV_PREFIX):
            problems.append(f"runner.env[{i}].name {var.name!r} starts with SLUICE_ (in some case), "
                            "which is reserved for the runner protocol: rename it")
        problems.append(_control(f"runner.env[{i}].value", var.value) or "")
        ref = var.value_from and (var.value_from.secret_key_ref or var.value_from.config_map_key_ref)
        if ref is not None:
            problems.append(object_name_problem(f"runner.env[{i}].valueFrom name", ref.name) or "")
            if not CONFIGMAP_KEY_RE.match(ref.key) or len(ref.key) > DNS_SUBDOMAIN_MAX:
                problems.append(f"runner.env[{i}].valueFrom key {ref.key!r} is not a valid key: use letters, "
                                "digits, '-', '_' and '.'")
    for i, src in enumerate(eff.runner.env_from or []):
        if src.prefix and src.prefix.lower().startswith(RESERVED_ENV_PREFIX):
            problems.append(f"runner.envFrom[{i}].prefix {src.prefix!r} starts with SLUICE_ (in some case), "
                            "which is reserved for the runner protocol")
        ref = src.secret_ref or src.config_map_ref
        if ref is not None:
            problems.append(object_name_problem(f"runner.envFrom[{i}] name", ref.name) or "")
    return [p for p in problems if p]


def _toleration_problems(eff: EffectiveSpec) -> list[str]:
    problems: list[str] = []
    for i, t in enumerate(eff.runner.tolerations or []):
        field = f"runner.tolerations[{i}]"
        if t.operator is not None and t.operator not in TOLERATION_OPERATORS:
            problems.append(f"{field}.operator {t.operator!r} must be Exists or Equal")
        if t.effect is not None and t.effect not in TAINT_EFFECTS:
            problems.append(f"{field}.effect {t.effect!r} must be NoSchedule, PreferNoSchedule or NoExecute")
        if t.key:
            why = qualified_key_problem(field, t.key)
            if why:
                problems.append(why)
        elif t.operator != "Exists":
            problems.append(f"{field} has no key, so its operator must be Exists")
        if t.operator == "Exists" and t.value:
            problems.append(f"{field} uses operator Exists, so it may not set a value")
        if t.value and (len(t.value) > MAX_NAME or not LABEL_VALUE_RE.match(t.value)):
            problems.append(f"{field}.value {t.value!r} is not a label value")
        if t.toleration_seconds is not None and t.effect != "NoExecute":
            problems.append(f"{field}.tolerationSeconds is set, so its effect must be NoExecute")
    return problems


def _resource_problems(eff: EffectiveSpec, settings: Settings | None) -> list[str]:
    problems: list[str] = []
    res = eff.runner.resources
    for kind in ("requests", "limits"):
        for name, qty in ((getattr(res, kind) or {}) if res else {}).items():
            if parse_quantity(qty) is None:
                problems.append(f"runner.resources.{kind}.{name} {qty!r} is not a Kubernetes quantity (e.g. 500m, 2Gi)")
    if problems:
        return problems
    if settings is not None:
        merged = container_resources(eff, settings)
    else:  # without the operator's settings only the spec's own pairs can be compared
        merged = {k: {n: str(v) for n, v in ((getattr(res, k) or {}) if res else {}).items()}
                  for k in ("requests", "limits")}
    requests, limits = merged.get("requests") or {}, merged.get("limits") or {}
    for name, req in requests.items():
        if name in limits:
            r, lim = parse_quantity(req), parse_quantity(limits[name])
            if r is not None and lim is not None and r > lim:
                problems.append(f"runner.resources.requests.{name} ({req}) is more than its limit ({limits[name]}): "
                                f"lower the request or set runner.resources.limits.{name}")
    return problems


def _name_problems(name: str, eff: EffectiveSpec) -> list[str]:
    problems: list[str] = []
    shards = eff.spec.shards
    if shards > 1:
        if "." in name:
            problems.append(f"metadata.name {name!r} may not contain '.' when shards > 1: each shard's pod "
                            "hostname is derived from it and must be a DNS label")
        else:
            last = shard_hostname(name, eff.retry.limit + 1, shards - 1)
            if len(last) > MAX_NAME or not DNS_LABEL_RE.match(last):
                problems.append(f"metadata.name {name!r} is too long for {shards} shards: shorten it")
    return problems


def semantic_problems(
    eff: EffectiveSpec,
    queue_capacity: int,
    global_capacity: int,
    missing_config_map: str | None = None,
    *,
    name: str | None = None,
    settings: Settings | None = None,
) -> list[str]:
    """Every reason `eff` cannot run, as sentences; [] when it can.

    `name` (the execution's metadata.name) enables the name-length checks and `settings` (the
    operator's) the requests-vs-limits check against the operator's default limits; both are
    optional so older callers keep working, but callers should pass them.
    """
    spec = eff.spec
    problems: list[str] = []
    image = eff.runner.image
    if image is not None and not IMAGE_RE.match(image):
        problems.append(f"runner.image {image!r} is not a valid image reference (expected registry/name:tag)")
    if name is not None:
        problems.extend(_name_problems(name, eff))
    if not DNS_LABEL_RE.match(spec.queue) or len(spec.queue) > MAX_NAME:
        problems.append(f"queue {spec.queue!r} is not a TestQueue name (a DNS label)")
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
        for key in src.inline.files:
            if not CONFIGMAP_KEY_RE.match(key) or key.startswith("..") or key == "." or len(key) > DNS_SUBDOMAIN_MAX:
                problems.append(f"source.inline.files name {key!r} is not a valid file name: use letters, digits, "
                                "'-', '_' and '.' (no directories, not starting with '..')")
    if src.config_map is not None:
        why = object_name_problem("source.configMap.name", src.config_map.name)
        if why:
            problems.append(why)
    if src.git is not None:
        why = check_git_url(src.git.url)
        if why:
            problems.append(why)
        if src.git.ref is not None and (src.git.ref.startswith("-") or CONTROL_RE.search(src.git.ref)
                                        or any(ch.isspace() for ch in src.git.ref)):
            problems.append(f"source.git.ref {src.git.ref!r} is not a branch, tag or commit")
        if src.git.path and (".." in src.git.path.split("/") or src.git.path.startswith("/")
                             or CONTROL_RE.search(src.git.path)):
            problems.append(f"source.git.path {src.git.path!r} must be a relative path inside the repository")
        if src.git.secret_ref is not None:
            why = object_name_problem("source.git.secretRef.name", src.git.secret_ref.name)
            if why:
                problems.append(why)
    if missing_config_map and object_name_problem("", missing_config_map) is None:
        problems.append(f"source.configMap {missing_config_map!r} does not exist in this namespace: create it first")
    for i, arg in enumerate(spec.args):
        why = _control(f"args[{i}]", arg)
        if why:
            problems.append(why)
    if spec.base_url:
        parsed = urlparse(spec.base_url)
        if CONTROL_RE.search(spec.base_url) or any(ch.isspace() for ch in spec.base_url):
            problems.append("baseURL contains white space or control characters")
        elif parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"baseURL {redact_url(spec.base_url)!r} is not an http(s) URL")
    if spec.shards > queue_capacity:
        problems.append(
            f"shards ({spec.shards}) exceed the queue's runningCapacity ({queue_capacity}): it could never start"
        )
    elif spec.shards > global_capacity:
        problems.append(
            f"shards ({spec.shards}) exceed the operator's running capacity ({global_capacity}): it could never start"
        )
    problems.extend(_resource_problems(eff, settings))
    sa = eff.runner.service_account_name
    why = object_name_problem("runner.serviceAccountName", sa)
    if why:
        problems.append(why)
    problems.extend(_env_problems(eff))
    problems.extend(_toleration_problems(eff))
    problems.extend(_metadata_problems("podLabels", eff.runner.pod_labels, labels=True))
    problems.extend(_metadata_problems("podAnnotations", eff.runner.pod_annotations, labels=False))
    for key, value in (eff.runner.node_selector or {}).items():
        why = qualified_key_problem("runner.nodeSelector", key)
        if why:
            problems.append(why)
        if len(value) > MAX_NAME or not LABEL_VALUE_RE.match(value):
            problems.append(f"runner.nodeSelector value {value!r} of {key!r} is not a label value")
    r = eff.retry
    if r.max_seconds < r.initial_seconds:
        problems.append(
            f"retries.backoff.maxSeconds ({r.max_seconds}) is less than initialSeconds ({r.initial_seconds})"
        )
    if eff.s3 is not None:
        if eff.s3.endpoint:
            parsed = urlparse(eff.s3.endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or CONTROL_RE.search(eff.s3.endpoint):
                problems.append(f"artifacts.s3.endpoint {redact_url(eff.s3.endpoint)!r} is not an http(s) URL")
        if eff.s3.prefix and (any(seg in (".", "..") for seg in eff.s3.prefix.split("/"))
                              or CONTROL_RE.search(eff.s3.prefix)):
            problems.append(f"artifacts.s3.prefix {eff.s3.prefix!r} may not contain '.' or '..' segments "
                            "or control characters")
        if eff.s3.secret_ref is not None:
            why = object_name_problem("artifacts.s3.secretRef.name", eff.s3.secret_ref.name)
            if why:
                problems.append(why)
    return problems
