"""How the CLI reaches the cluster, and how it turns API failures into one clear sentence.

The user's kubeconfig (or --kubeconfig, --context) decides the server and the credentials; its
context's namespace is the default namespace, as with kubectl. Nothing here prints a stack
trace: every failure the user can cause or fix becomes a `CliError` with an exit code.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from kubernetes import client, config
from sluice_runner.errors import ExitCode

from ..api.common import (ANNOTATION_QUEUED_CAPACITY, ANNOTATION_RUNNING_CAPACITY, ANNOTATION_WATCHED_NAMESPACES,
                          API_GROUP, API_VERSION, LABEL_OPERATOR_LEASE)

EXIT_INFRA = int(ExitCode.INFRASTRUCTURE)


class CliError(Exception):
    """A failure to report in one line, then exit with `code`."""

    def __init__(self, message: str, code: int = EXIT_INFRA):
        super().__init__(message)
        self.code = code


@dataclass
class Connection:
    api_client: client.ApiClient
    namespace: str
    server: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client)

    # ---- Sluice objects -------------------------------------------------------------------
    def list_executions(self, namespace: str | None) -> list[dict]:
        """Every TestExecution of `namespace` (None: all namespaces)."""
        with api_errors("list testexecutions", namespace):
            if namespace is None:
                return self.custom.list_cluster_custom_object(API_GROUP, API_VERSION, "testexecutions")["items"]
            return self.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions")["items"]

    def operator_caps(self, namespace: str | None = None) -> tuple[int, int] | None:
        """(running, queued) caps the operator running `namespace` applies, from its leader's Lease;
        None when the Lease cannot be read (no operator, or no permission to list Leases), or when
        `namespace` is None and several releases apply different caps."""
        try:
            leases = client.CoordinationV1Api(self.api_client).list_lease_for_all_namespaces(
                label_selector=f"{LABEL_OPERATOR_LEASE}=true").items
        except Exception:  # noqa: BLE001 - any failure only means "unknown"
            return None
        return caps_for_namespace([lease.metadata.annotations or {} for lease in leases], namespace)

    def list_queues(self, namespace: str | None) -> list[dict]:
        with api_errors("list testqueues", namespace):
            if namespace is None:
                return self.custom.list_cluster_custom_object(API_GROUP, API_VERSION, "testqueues")["items"]
            return self.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testqueues")["items"]

    def get_execution(self, namespace: str, name: str) -> dict:
        with api_errors("get testexecution", namespace, name):
            return self.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testexecutions", name)

    def get_queue(self, namespace: str, name: str) -> dict | None:
        try:
            with api_errors("get testqueue", namespace, name):
                return self.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, "testqueues", name)
        except NotFound:
            return None


def caps_for_namespace(leases: list[dict[str, str]], namespace: str | None) -> tuple[int, int] | None:
    """The caps from the Leases' annotations of the release that runs `namespace`: the one that
    lists it, else one watching every namespace (no or an empty watched-namespaces annotation).
    For every namespace (None), or when several answer with different caps: None unless all agree."""
    def caps(ann: dict[str, str]) -> tuple[int, int] | None:
        try:
            return int(ann[ANNOTATION_RUNNING_CAPACITY]), int(ann[ANNOTATION_QUEUED_CAPACITY])
        except (KeyError, ValueError):
            return None

    def watched(ann: dict[str, str]) -> list[str]:
        return [ns for ns in (ann.get(ANNOTATION_WATCHED_NAMESPACES) or "").split(",") if ns]

    answering = [a for a in leases if caps(a) is not None]
    if namespace is not None:
        answering = ([a for a in answering if namespace in watched(a)]
                     or [a for a in answering if not watched(a)])
    found = {caps(a) for a in answering}
    return found.pop() if len(found) == 1 else None


class NotFound(CliError):
    pass


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None) -> Connection:
    """A client for the user's cluster; the namespace defaults to the context's, then `default`."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    if not kubeconfig and not os.environ.get("KUBECONFIG") and not os.path.exists(first):
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            ns = namespace or _incluster_namespace()
            api = client.ApiClient()
            return Connection(api, ns, api.configuration.host)
        raise CliError(f"no kubeconfig found ({first} does not exist): pass --kubeconfig or set KUBECONFIG")
    if kubeconfig and not os.path.exists(kubeconfig):
        raise CliError(f"kubeconfig {kubeconfig} does not exist")
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = current
        if context:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                raise CliError(f"context {context!r} is not in the kubeconfig "
                               f"(contexts: {', '.join(c['name'] for c in contexts)})")
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg,
                                persist_config=False)
    except config.ConfigException as exc:
        raise CliError(f"cannot use the kubeconfig: {exc}") from None
    cfg.retries = 1
    ns = namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
    return Connection(client.ApiClient(cfg), ns, cfg.host)


def _incluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"


class api_errors:
    """Context manager: ApiException and connection failures -> CliError with a clear sentence."""

    def __init__(self, action: str, namespace: str | None = None, name: str | None = None):
        self.action, self.namespace, self.name = action, namespace, name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, client.ApiException):
            raise explain_api_error(exc.status, exc.body, self.action, self.namespace, self.name) from None
        try:
            import urllib3
            connection_errors: tuple = (urllib3.exceptions.HTTPError, OSError)
        except ImportError:  # pragma: no cover
            connection_errors = (OSError,)
        if isinstance(exc, connection_errors):
            raise CliError(f"cannot reach the Kubernetes API server ({type(exc).__name__}: {_short(exc)})") from None
        return False


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:200]


def explain_api_error(status: int, body, action: str, namespace: str | None = None,
                      name: str | None = None) -> CliError:
    """One sentence for an API failure (pure, unit-tested)."""
    details, message = {}, ""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode(errors="replace")
    try:
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict):
            details, message = parsed.get("details") or {}, parsed.get("message") or ""
    except (TypeError, ValueError):
        message = (body or "").strip()
    where = f" in namespace {namespace}" if namespace else ""
    sluice_kind = "testexecution" in action or "testqueue" in action
    if status == 404:
        if sluice_kind and not details:
            # The resource itself is unknown (a bare "404 page not found"), not one object.
            return CliError(f"the API server does not know {API_GROUP} TestExecutions/TestQueues: "
                            "is Sluice installed? (its CRDs are missing)")
        what = action.split(" ", 1)[-1]
        return NotFound(f"{what} {name or details.get('name', '')}".strip() + f" not found{where}", 1)
    if status == 403:
        return CliError(f"forbidden: you may not {action}{where} ({message or 'RBAC denied the request'}); "
                        "ask a cluster admin for access")
    if status == 401:
        return CliError("unauthorized: the kubeconfig's credentials were refused (expired token?)")
    if status in (400, 422):
        causes = [f"{c.get('field')}: {c.get('message')}" for c in details.get("causes") or []
                  if c.get("field") and c.get("field") != "<nil>"]
        return CliError(f"{action} rejected by the API server: {'; '.join(causes) or message or body}", 2)
    if status == 409:
        return CliError(f"{action}: {message or 'already exists'}", 2)
    return CliError(f"{action}{where} failed: HTTP {status} {message}".rstrip())
