"""Semantic checks the CRD schema cannot express. Each problem is a sentence that says what to fix.

Pure: the one check that needs the API (does a referenced ConfigMap exist) is made by the
dispatcher and passed in as `missing_config_map`. It never calls the API, never writes a status
and never decides the phase: the planner turns a non-empty list into `Rejected`/`InvalidSpec`.

Why the schema's checks are repeated here: the schema sees one object, while an attempt runs
with the execution merged over its queue's defaults and the operator's settings (a 4Gi request
over the operator's 2Gi default limit is visible only here), and executions stored before a
schema change were never checked by it. Anything the Job create would be refused for (a 4xx that
retrying cannot fix) is refused here first, as `Rejected`/`InvalidSpec`, before any API write.

The checks live in `policy/checks/`, one module per area (`grammar`, `source`, `runner`,
`execution`); this module runs them in a fixed order and keeps the names callers import.

The queue's allow-lists (`checks/allowed.py`, `not_allowed_problems`) are a separate verdict: the
spec is well-formed but its queue does not let it run, so the planner rejects with reason
`NOT_ALLOWED` instead of `InvalidSpec`, and checks them again before every attempt (the priority
may change while an execution waits, the queue's lists at any time).
"""
from __future__ import annotations

from ..api.effective import EffectiveSpec
from ..api.settings import Settings
from .checks.allowed import NOT_ALLOWED, not_allowed_problems  # noqa: F401  (the planner's second verdict)
from .checks.execution import (
    args_problems, artifacts_problems, base_url_problems, capacity_problems, name_problems, queue_problems,
    retry_problems,
)
from .checks.grammar import (  # noqa: F401  (re-exported: the names callers and tests import from here)
    CONFIGMAP_KEY_RE, CONTROL_RE, DNS_LABEL_RE, DNS_SUBDOMAIN_MAX,
    DNS_SUBDOMAIN_RE, IMAGE_RE, LABEL_VALUE_RE, QUALIFIED_NAME_RE, QUANTITY_RE, RESERVED_KEY_RE, RESERVED_KEYS,
    object_name_problem, parse_quantity, qualified_key_problem,
)
from .checks.runner import (  # noqa: F401
    ANNOTATIONS_LIMIT_BYTES, ENV_NAME_RE, RESERVED_ENV_PREFIX, TAINT_EFFECTS, TOLERATION_OPERATORS,
    image_problems, runner_problems,
)
from .checks.source import (  # noqa: F401
    CONFIGMAP_LIMIT_BYTES, GIT_SCHEMES, SCP_GIT_RE, check_git_url, source_problems,
)


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
    return [
        *image_problems(eff),
        *(name_problems(name, eff) if name is not None else []),
        *queue_problems(spec),
        *source_problems(spec.source, missing_config_map),
        *args_problems(spec),
        *base_url_problems(spec),
        *capacity_problems(spec, queue_capacity, global_capacity),
        *runner_problems(eff, settings),
        *retry_problems(eff),
        *artifacts_problems(eff.s3),
    ]
