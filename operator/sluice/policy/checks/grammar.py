"""The Kubernetes grammar the checks share: names, keys, label values, quantities, image references.

Why here: the same name or key rule applies to many fields (a Secret name in source.git, in env,
in envFrom, in artifacts), so each rule is written once and returns the sentence for the field it
is given. It never decides whether a field is required or allowed: the area modules do.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ...kube.names import MAX_NAME

# The distribution reference grammar (registry[:port]/path[:tag][@digest]).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$"
)
QUANTITY_RE = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$")
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
# C0 controls (except tab, newline, carriage return) and DEL: nothing a test argument needs.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
            "P": Decimal(10**15), "E": Decimal(10**18)}


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


def is_label_value(value: str) -> bool:
    """At most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)."""
    return len(value) <= MAX_NAME and bool(LABEL_VALUE_RE.match(value))


def is_reserved_key(key: str) -> bool:
    """A pod label/annotation key Kubernetes, the Job controller or Sluice owns."""
    return key in RESERVED_KEYS or bool(RESERVED_KEY_RE.match(key))


def control_problem(field: str, value: str | None) -> str | None:
    """A string that reaches the runner may carry no NUL or other control character."""
    if value is not None and CONTROL_RE.search(value):
        return f"{field} contains a NUL or other control character: remove it"
    return None


def has_space_or_control(value: str) -> bool:
    return bool(CONTROL_RE.search(value)) or any(ch.isspace() for ch in value)
