"""`sluice artifacts NAME`: the artifact links of an execution, presigned when S3 credentials are at hand.

`status.artifacts` holds `s3://bucket/key` URLs (entries without a scheme are relative to
`url`). With credentials (the standard AWS chain: env, ~/.aws, ...) each becomes a presigned
HTTPS URL; the endpoint and region come from the execution's artifacts settings
(spec, then its TestQueue's defaults), else AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL/AWS_REGION.
Without credentials the s3:// URLs are printed as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

PRESIGN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class S3Location:
    endpoint: str | None
    region: str | None


def artifact_links(artifacts: dict | None) -> list[tuple[str, str]]:
    """(label, URL) of every artifact in `status.artifacts` (pure); report and junit first."""
    if not artifacts:
        return []
    base = artifacts.get("url") or ""
    out: list[tuple[str, str]] = []

    def full(entry: str) -> str:
        if "://" in entry or not base:
            return entry
        return base.rstrip("/") + "/" + entry.lstrip("/")

    for label in ("report", "junit"):
        if artifacts.get(label):
            out.append((label, full(artifacts[label])))
    for label, single in (("traces", "trace"), ("videos", "video"), ("screenshots", "screenshot")):
        for entry in artifacts.get(label) or []:
            out.append((single, full(entry)))
    if base:
        out.append(("prefix", base))
    return out


def split_s3(url: str) -> tuple[str, str] | None:
    """`s3://bucket/a/b` -> ("bucket", "a/b"); None for other schemes."""
    if not url.startswith("s3://"):
        return None
    bucket, _, key = url[5:].partition("/")
    return (bucket, key) if bucket else None


def s3_location(execution: dict, queue: dict | None, env: dict | None = None) -> S3Location:
    """Endpoint and region: the execution's artifacts settings, its queue's defaults, then AWS_* (pure)."""
    env = os.environ if env is None else env
    candidates = [((execution.get("spec") or {}).get("artifacts") or {}).get("s3") or {}]
    if queue:
        defaults = ((queue.get("spec") or {}).get("defaults") or {}).get("artifacts") or {}
        candidates.append(defaults.get("s3") or {})
    endpoint = next((c["endpoint"] for c in candidates if c.get("endpoint")), None)
    region = next((c["region"] for c in candidates if c.get("region")), None)
    endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    return S3Location(endpoint, region)


class Presigner:
    """Presigns s3:// URLs, or returns them unchanged when there are no credentials."""

    def __init__(self, location: S3Location):
        self.client = None
        try:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            if session.get_credentials() is None:
                return
            self.client = session.client("s3", endpoint_url=location.endpoint, region_name=location.region or "us-east-1",
                                         config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        except Exception:  # no boto3, broken config: plain URLs are still useful
            self.client = None

    @property
    def active(self) -> bool:
        return self.client is not None

    def url(self, url: str) -> str:
        parts = split_s3(url)
        if self.client is None or parts is None or not parts[1] or parts[1].endswith("/"):
            return url
        try:
            return self.client.generate_presigned_url("get_object", Params={"Bucket": parts[0], "Key": parts[1]},
                                                      ExpiresIn=PRESIGN_SECONDS)
        except Exception:
            return url


def links_for(conn, execution: dict) -> tuple[list[tuple[str, str]], bool]:
    """(label, URL) with presigned URLs when possible, and whether they were presigned."""
    links = artifact_links((execution.get("status") or {}).get("artifacts"))
    if not links:
        return [], False
    meta = execution["metadata"]
    queue = conn.get_queue(meta.get("namespace") or conn.namespace, (execution.get("spec") or {}).get("queue") or "default")
    presigner = Presigner(s3_location(execution, queue))
    return [(label, presigner.url(url)) for label, url in links], presigner.active


def run(conn, args) -> int:
    obj = conn.get_execution(conn.namespace, args.name)
    links, presigned = links_for(conn, obj)
    if not links:
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        print(f"{args.name} has no artifacts (phase {phase})")
        return 0
    for label, url in links:
        print(f"{label:<11} {url}")
    if not presigned and any(u.startswith("s3://") for _, u in links):
        print("(no S3 credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for presigned HTTPS links)")
    return 0
