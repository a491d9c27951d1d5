"""S3 key layout and content types of uploaded artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice_runner.errors import ConfigError
from sluice_runner.layout import flat_name
from sluice_runner.upload import content_type, parse_s3_url, plan_uploads, shard_dir


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/pre/ns/name/attempt-1/") == ("bucket", "pre/ns/name/attempt-1/")
    assert parse_s3_url("s3://bucket/pre/ns/name/attempt-1") == ("bucket", "pre/ns/name/attempt-1/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ConfigError):
        parse_s3_url("https://bucket/x")


def test_shard_dir_only_when_sharded() -> None:
    assert shard_dir(0, 1) == ""
    assert (shard_dir(0, 2), shard_dir(11, 12)) == ("shard-0/", "shard-11/")


@pytest.mark.parametrize(
    ("name", "ctype"),
    [("index.html", "text/html; charset=utf-8"), ("a.webm", "video/webm"), ("a.png", "image/png"),
     ("t.zip", "application/zip"), ("results.json", "application/json"), ("junit.xml", "application/xml"),
     ("app.js", "text/javascript; charset=utf-8"), ("x.unknownext", "application/octet-stream")],
)  # fmt: skip
def test_content_types(name: str, ctype: str) -> None:
    assert content_type(name) == ctype


def test_plan_uploads_layout_and_priority(tmp_path: Path) -> None:
    for rel in ["videos/t-a.webm", "report/data/1.png", "traces/t-a.zip", "report/index.html", "junit.xml",
                "screenshots/t-a-test-failed-1.png", "results.json"]:  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    plan = plan_uploads(tmp_path, "pre/ns/name/attempt-2/shard-1/")
    assert [o.key.removeprefix("pre/ns/name/attempt-2/shard-1/") for o in plan] == [
        "results.json", "junit.xml", "report/index.html", "screenshots/t-a-test-failed-1.png",
        "traces/t-a.zip", "videos/t-a.webm", "report/data/1.png",
    ]  # fmt: skip
    assert {o.key: o.content_type for o in plan}[
        "pre/ns/name/attempt-2/shard-1/videos/t-a.webm"
    ] == "video/webm"


def test_flat_artifact_names(tmp_path: Path) -> None:
    base = tmp_path / "test-results"
    assert (
        flat_name(base, base / "test-a-py-test-x-chromium" / "trace.zip") == "test-a-py-test-x-chromium.zip"
    )
    assert (
        flat_name(base, base / "test-a-py-test-x-chromium" / "video.webm") == "test-a-py-test-x-chromium.webm"
    )
    assert flat_name(base, base / "t" / "video-2.webm") == "t-video-2.webm"
    assert flat_name(base, base / "t" / "test-failed-1.png") == "t-test-failed-1.png"
