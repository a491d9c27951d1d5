"""Allow-lists: the runner images, ServiceAccounts and priority a queue lets its executions use.

Why: whoever may create a TestExecution would otherwise run any image under any ServiceAccount
of the namespace at `critical` priority. The queue (written by whoever may write TestQueues)
decides; an execution outside its lists is `Rejected` with reason `NOT_ALLOWED`, and each
problem is one sentence naming what is allowed.

Defaults, when the queue does not say (or the queue is `default` with no TestQueue object):
images are the operator's runner image, the operator's `allowed_images` patterns and the queue's
own `defaults.runner.image`; ServiceAccounts are `[""]` (no name: the operator's default runner
account, never with a token); the highest priority is `critical`. A list the queue sets replaces
the default list.

Pure and cheap (the planner re-checks every waiting execution it steps, since `spec.priority`
may change while it waits): it never renders the pod (kube/render.py decides the token from the
same list), never writes a status and never decides the phase.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from ...api.execution import PRIORITY_ORDER, TestExecutionSpec
from ...api.queue import TestQueueSpec
from ...api.settings import Settings

NOT_ALLOWED = "NotAllowed"  # the reason of a Rejected execution outside its queue's allow-lists
DEFAULT_SERVICE_ACCOUNTS: tuple[str, ...] = ("",)  # the default runner account, no token


def allowed_images(qspec: TestQueueSpec, settings: Settings) -> list[str]:
    """The queue's image patterns: its own list, else the operator's runner image and patterns
    and the queue's default image."""
    if qspec.allowed_images is not None:
        return list(qspec.allowed_images)
    out = [settings.runner_image, *settings.allowed_image_patterns]
    default = qspec.defaults.runner.image if qspec.defaults.runner else None
    if default and default not in out:
        out.append(default)
    return out


def allowed_service_accounts(qspec: TestQueueSpec) -> list[str]:
    if qspec.allowed_service_accounts is None:
        return list(DEFAULT_SERVICE_ACCOUNTS)
    return list(qspec.allowed_service_accounts)


def requested_image(spec: TestExecutionSpec, qspec: TestQueueSpec, settings: Settings) -> str:
    """The image the pod would run: the execution's, else the queue default's, else the operator's
    (the precedence of api/effective.py and kube/render.py, without building the merged spec)."""
    for runner in (spec.runner, qspec.defaults.runner):
        if runner is not None and runner.image:
            return runner.image
    return settings.runner_image


def requested_service_account(spec: TestExecutionSpec, qspec: TestQueueSpec) -> str:
    """The ServiceAccount the execution names (or its queue's default names); "" when none does."""
    for runner in (spec.runner, qspec.defaults.runner):
        if runner is not None and runner.service_account_name:
            return runner.service_account_name
    return ""


def _account(name: str) -> str:
    return name if name else '"" (the default runner account, no token)'


def not_allowed_problems(spec: TestExecutionSpec, qspec: TestQueueSpec, settings: Settings) -> list[str]:
    """Every way `spec` leaves its queue's allow-lists, as sentences; [] when it stays inside."""
    queue = spec.queue
    problems: list[str] = []
    image = requested_image(spec, qspec, settings)
    if qspec.allowed_images is not None or image != settings.runner_image:  # the common case costs nothing
        patterns = allowed_images(qspec, settings)
        if not any(fnmatchcase(image, p) for p in patterns):
            problems.append(f"image {image} is not allowed by queue {queue}: allowed are "
                            f"{', '.join(patterns) or 'none'} (the queue's spec.allowedImages)")
    account = requested_service_account(spec, qspec)
    accounts = allowed_service_accounts(qspec)
    if account not in accounts:
        problems.append(f"serviceAccountName {_account(account)} is not allowed by queue {queue}: allowed are "
                        f"{', '.join(_account(a) for a in accounts) or 'none'} (the queue's spec.allowedServiceAccounts)")
    if spec.priority.rank < qspec.max_priority.rank:
        allowed = PRIORITY_ORDER[qspec.max_priority.rank:]
        problems.append(f"priority {spec.priority.value} is above queue {queue}'s maxPriority "
                        f"{qspec.max_priority.value}: allowed are {', '.join(p.value for p in allowed)}")
    return problems
