"""Where a test's trace, video or screenshot ends up in the artifact tree (API.md).

Frameworks put them in one folder per test (`test-results/<test>/trace.zip`, ...); the tree
flattens them to `<kind dir>/<test>.<ext>` (or `<kind dir>/<test>-<file>` when a test has
several). One definition, used by collect.py, which copies the files there, and by the pytest
plugin, which links them from the HTML report (at `report/index.html`, hence `../<key>`) while
the tests still run. Pure and standard-library only: the plugin loads it into every pytest run.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

KIND_DIRS = {"trace": "traces", "video": "videos", "screenshot": "screenshots"}
KIND_BY_SUFFIX = {".zip": "trace", ".webm": "video", ".png": "screenshot"}
REPORT_KEY = "report/index.html"
_CANONICAL = {"trace.zip", "video.webm"}


def flat_name(test_results: Path, path: Path) -> str:
    """`test-results/<test>/trace.zip` -> `<test>.zip`; other files -> `<test>-<file>`."""
    rel = path.relative_to(test_results)
    if len(rel.parts) == 1:
        return rel.name
    folder = "-".join(rel.parts[:-1])
    return f"{folder}{path.suffix}" if rel.name in _CANONICAL else f"{folder}-{rel.name}"


def artifact_key(test_results: Path, path: Path) -> str | None:
    """The tree key of an artifact file under `test_results`; None if it is not collected."""
    kind = KIND_BY_SUFFIX.get(path.suffix)
    try:
        rel = path.relative_to(test_results)
    except ValueError:
        return None
    if kind is None or not rel.parts or rel.parts[0].startswith("."):
        return None
    return f"{KIND_DIRS[kind]}/{flat_name(test_results, path)}"


def report_href(key: str) -> str:
    """A link from the report page (`report/index.html`) to the tree key `key`."""
    return "../" + quote(key, safe="/")
