"""Artifacts streamed from S3 through the dashboard, so relative links inside an HTML report work
(a presigned URL cannot give them that) and the trace viewer can load a trace from the same origin.

Credentials are the standard AWS chain the dashboard runs with (env AWS_ACCESS_KEY_ID, ~/.aws, ...)
as `sluice artifacts` uses them; the endpoint and region of a bucket come from the settings of the
executions and queues the feed sees (`cli.artifacts.s3_location`), else AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL / AWS_REGION. Only buckets named in those settings or in `status.artifacts` of a
visible execution are served. It never writes to S3 or to the API, and never lists a bucket.
"""
from __future__ import annotations

import asyncio
import mimetypes

from aiohttp import web

from ..cli.artifacts import S3Location, s3_location, split_s3

CHUNK = 256 * 1024
GENERIC_TYPES = ("", "binary/octet-stream", "application/octet-stream")
EXTRA_TYPES = {".zip": "application/zip", ".webm": "video/webm", ".xml": "application/xml",
               ".log": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def content_type(key: str, stored: str | None) -> str:
    """The object's own Content-Type unless it is generic; then one guessed from the key (pure)."""
    if stored and stored.split(";")[0].strip() not in GENERIC_TYPES:
        return stored
    for ext, kind in EXTRA_TYPES.items():
        if key.endswith(ext):
            return kind
    guessed, _ = mimetypes.guess_type(key)
    if guessed and guessed.startswith("text/"):
        return guessed + "; charset=utf-8"
    return guessed or "application/octet-stream"


def bucket_locations(executions: list[dict], queues: list[dict]) -> dict[str, S3Location]:
    """bucket -> (endpoint, region), from what the visible executions and queues say (pure)."""
    by_queue = {((q["metadata"].get("namespace", "")), q["metadata"]["name"]): q for q in queues}
    out: dict[str, S3Location] = {}
    for q in queues:
        s3 = ((((q.get("spec") or {}).get("defaults") or {}).get("artifacts") or {}).get("s3")) or {}
        if s3.get("bucket"):
            out.setdefault(s3["bucket"], s3_location({}, q))
    for o in executions:
        spec, st = o.get("spec") or {}, o.get("status") or {}
        queue = by_queue.get((o["metadata"].get("namespace", ""), spec.get("queue") or "default"))
        buckets = {(((spec.get("artifacts") or {}).get("s3")) or {}).get("bucket")}
        parts = split_s3(((st.get("artifacts") or {}).get("url")) or "")
        if parts:
            buckets.add(parts[0])
        for bucket in buckets - {None, ""}:
            out[bucket] = s3_location(o, queue)
    return out


class ArtifactStore:
    """One boto3 client per endpoint, made on first use."""

    def __init__(self, feed):
        self.feed = feed
        self.clients: dict[tuple, object] = {}

    def _client(self, loc: S3Location):
        key = (loc.endpoint, loc.region)
        if key not in self.clients:
            import boto3
            from botocore.config import Config
            self.clients[key] = boto3.session.Session().client(
                "s3", endpoint_url=loc.endpoint, region_name=loc.region or "us-east-1",
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return self.clients[key]

    def location(self, bucket: str) -> S3Location | None:
        with self.feed.lock:
            executions = list(self.feed.objects["testexecutions"].values())
            queues = list(self.feed.objects["testqueues"].values())
        return bucket_locations(executions, queues).get(bucket)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        loc = self.location(bucket)
        if loc is None:
            raise web.HTTPNotFound(text=f"bucket {bucket} is not used by any execution visible here\n")
        loop = asyncio.get_running_loop()
        try:
            obj = await loop.run_in_executor(None, lambda: self._client(loc).get_object(Bucket=bucket, Key=key))
        except Exception as exc:  # noqa: BLE001 - botocore: NoSuchKey, AccessDenied, no credentials...
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            status = 404 if code in ("NoSuchKey", "404", "NotFound") else 502
            return web.Response(status=status, text=f"s3://{bucket}/{key}: {code}\n")
        resp = web.StreamResponse(headers={"Content-Type": content_type(key, obj.get("ContentType")),
                                           "Cache-Control": "private, max-age=60"})
        if obj.get("ContentLength") is not None:
            resp.content_length = obj["ContentLength"]
        await resp.prepare(request)
        body = obj["Body"]
        try:
            while True:
                chunk = await loop.run_in_executor(None, body.read, CHUNK)
                if not chunk:
                    break
                await resp.write(chunk)
        finally:
            body.close()
        await resp.write_eof()
        return resp
