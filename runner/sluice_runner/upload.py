"""Uploads the artifact tree to S3 (or any S3-compatible server) under SLUICE_ARTIFACTS_URL.

Key layout (API.md): `<prefix>[shard-<i>/]<path in the tree>`, where `<prefix>` is the URL's
path (`prefix/namespace/name/attempt-N/`, chosen by the operator) and `shard-<i>/` (i = the
0-based JOB_COMPLETION_INDEX) is added only when the execution has more than one shard. Objects
get a Content-Type so a browser opens the report and plays the videos straight from the bucket.

Uploads run in a few threads, most important objects first (results, junit, report page, then
screenshots, traces, videos, the rest of the report), each retried with exponential backoff,
all bounded by one deadline: after SIGTERM only ~15 s remain. An object that still fails makes
the run an InfrastructureError (exit 3). Key planning and content types are pure; only
`upload_tree` and `make_client` touch the network (boto3 is imported lazily: it costs ~0.3 s).
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice_runner.errors import ConfigError, UploadError

if TYPE_CHECKING:
    from sluice_runner.config import Settings

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".webm": "video/webm",
    ".png": "image/png",
    ".zip": "application/zip",
    ".json": "application/json",
    ".xml": "application/xml",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ttf": "font/ttf",
    ".webmanifest": "application/manifest+json",
}
# S3 error codes no retry can cure (a wrong bucket or credentials): fail at once.
PERMANENT_ERRORS = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
}
_PRIORITY = ["results.json", "junit.xml", "report/index.html", "screenshots/", "traces/", "videos/"]
_S3_URL = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


@dataclass(frozen=True)
class PlannedObject:
    path: Path
    key: str
    content_type: str


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/a/b/` -> ("bucket", "a/b/"); the prefix is empty or ends with '/'."""
    match = _S3_URL.match(url)
    if not match:
        raise ConfigError(f"SLUICE_ARTIFACTS_URL={url!r} is not an s3:// URL")
    prefix = match["prefix"]
    return match["bucket"], prefix if not prefix or prefix.endswith("/") else prefix + "/"


def shard_dir(shard: int, total: int) -> str:
    """The sub-folder of a shard's artifacts: `shard-<i>/` (0-based), or '' when not sharded."""
    return f"shard-{shard}/" if total > 1 else ""


def _rank(rel: str) -> int:
    return next(
        (i for i, p in enumerate(_PRIORITY) if rel == p or (p.endswith("/") and rel.startswith(p))),
        len(_PRIORITY),
    )


def plan_uploads(root: Path, key_prefix: str) -> list[PlannedObject]:
    """Every file under `root` as an object under `key_prefix`, most important first."""
    files = [p for p in root.rglob("*") if p.is_file()]
    planned = [
        PlannedObject(p, key_prefix + p.relative_to(root).as_posix(), content_type(p.name)) for p in files
    ]
    return sorted(planned, key=lambda o: (_rank(o.key[len(key_prefix) :]), o.key))


def make_client(settings: Settings, workers: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.s3_region,
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=workers,
        s3={"addressing_style": settings.addressing_style()},
    )
    return boto3.client("s3", endpoint_url=settings.s3_endpoint, config=config)


def _put(
    client: Any, bucket: str, obj: PlannedObject, deadline: Callable[[], float], attempts: int
) -> str | None:
    """Upload one object; None on success, else the last error."""
    error = "deadline passed before the upload started"
    for attempt in range(attempts):
        if time.monotonic() >= deadline():
            break
        try:
            with obj.path.open("rb") as body:
                client.put_object(Bucket=bucket, Key=obj.key, Body=body, ContentType=obj.content_type)
            return None
        except Exception as exc:  # botocore's and the socket's errors alike: retry, then report
            error = f"{type(exc).__name__}: {exc}"
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in PERMANENT_ERRORS:
                break
        time.sleep(max(0.0, min(0.5 * 2**attempt, deadline() - time.monotonic())))
    return error


def upload_tree(
    client: Any,
    bucket: str,
    planned: list[PlannedObject],
    deadline: Callable[[], float],
    workers: int = 8,
    attempts: int = 4,
) -> int:
    """Upload all planned objects; return the bytes sent. Raises UploadError if any failed."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload") as pool:
        errors = list(pool.map(lambda o: _put(client, bucket, o, deadline, attempts), planned))
    failed = [(o.key, e) for o, e in zip(planned, errors, strict=True) if e is not None]
    if failed:
        key, error = failed[0]
        raise UploadError(
            f"{len(failed)} of {len(planned)} artifacts not uploaded to s3://{bucket}/ (first: {key}: {error})"
        )
    return sum(o.path.stat().st_size for o in planned)
