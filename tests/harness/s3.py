"""A real S3-compatible server (MinIO) for tests that upload artifacts, and a client to read back.

`s3_server` (session-scoped) starts the `minio` binary that hack/build-tools builds (found via
SLUICE_MINIO, the build-tools bin dir, or PATH) on a free 127.0.0.1 port with a temp data dir and
fixed credentials, creates one bucket, and stops it at the end. Tests then list and read objects
with `S3Server.client()` exactly as any S3 user would: nothing about S3 is mocked.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .procs import wait_http_ok

ACCESS_KEY = "sluice-test"
SECRET_KEY = "sluice-test-secret"
REGION = "us-east-1"
BUCKET = "sluice-artifacts"


def find_minio() -> Path | None:
    explicit = os.environ.get("SLUICE_MINIO")
    if explicit:
        return Path(explicit)
    try:
        from tests.harness.tools import expected_bin_dir

        built = expected_bin_dir() / "minio"
        if os.access(built, os.X_OK):
            return built
    except Exception:  # the control-plane harness is optional here
        pass
    found = shutil.which("minio")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str

    def env(self) -> dict[str, str]:
        """The AWS_* variables the runner (or any S3 client) needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": self.region,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def get(self, key: str) -> tuple[bytes, str]:
        """Body and Content-Type of one object."""
        obj = self.client().get_object(Bucket=self.bucket, Key=key)
        return obj["Body"].read(), obj["ContentType"]


def start_minio(root: Path, port: int | None = None) -> tuple[S3Server, subprocess.Popen[bytes]]:
    """Starts MinIO in `root` (data and log), detached in its own session; creates the bucket."""
    binary = find_minio()
    if binary is None:
        raise RuntimeError("minio not found: run hack/build-tools (or set SLUICE_MINIO to a minio binary)")
    root.mkdir(parents=True, exist_ok=True)
    port, console = port or free_port(), free_port()
    env = {
        **os.environ,
        "MINIO_ROOT_USER": ACCESS_KEY,
        "MINIO_ROOT_PASSWORD": SECRET_KEY,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    log = root / "minio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "server", "--quiet", "--address", f"127.0.0.1:{port}",
             "--console-address", f"127.0.0.1:{console}", str(root / "data")],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{endpoint}/minio/health/ready", proc, "minio", lambda: log.read_text()[-2000:], 30)
    server = S3Server(endpoint, ACCESS_KEY, SECRET_KEY, REGION, BUCKET)
    client = server.client()
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    return server, proc


def stop_minio(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if find_minio() is None:
        pytest.fail("minio not found: run hack/build-tools (or set SLUICE_MINIO to a minio binary)")
    server, proc = start_minio(tmp_path_factory.mktemp("minio"))
    try:
        yield server
    finally:
        stop_minio(proc)
