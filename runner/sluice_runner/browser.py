"""Chooses the browser executable and makes Playwright's video recording work with system ffmpeg.

Playwright normally downloads its own Chromium and ffmpeg builds; the runner image (and machines
without internet) use the distribution's instead. The browser is passed to the frameworks
explicitly (executable path); ffmpeg cannot be, Playwright only looks for
`<registry>/ffmpeg-<rev>/ffmpeg-linux` (registry = $PLAYWRIGHT_BROWSERS_PATH or
~/.cache/ms-playwright). hack/install-runner-deps and the image create that link ahead of time;
`ensure_ffmpeg_link` repeats it at start-up when it is missing and the place is writable, so a
fresh HOME does not silently lose videos. Never fails the run: without ffmpeg, only videos are lost.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from sluice_runner.config import Settings
from sluice_runner.errors import ConfigError

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
log = logging.getLogger("sluice_runner")


def resolve_chromium(settings: Settings) -> Path | None:
    """SLUICE_CHROMIUM, else Debian's /usr/bin/chromium, else None (Playwright's own build)."""
    if settings.chromium is not None:
        if not settings.chromium.is_file():
            raise ConfigError(f"SLUICE_CHROMIUM={settings.chromium} does not exist or is not a file")
        return settings.chromium
    return DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.is_file() else None


def playwright_registry() -> Path:
    env = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if env and env != "0":
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ms-playwright"


def ffmpeg_revisions(browsers_jsons: list[Path]) -> set[str]:
    revisions = set()
    for path in browsers_jsons:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        revisions |= {str(b["revision"]) for b in data.get("browsers", []) if b.get("name") == "ffmpeg"}
    return revisions


def _python_driver_browsers_json() -> Path | None:
    try:
        import playwright
    except ImportError:
        return None
    return Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"


def ensure_ffmpeg_link(node_modules: Path | None = None) -> None:
    """Link system ffmpeg where Playwright looks, if nothing is there yet (logged)."""
    system = shutil.which("ffmpeg")
    if system is None:
        log.warning("no ffmpeg on PATH: videos will not be recorded")
        return
    jsons = [p for p in (_python_driver_browsers_json(),) if p is not None]
    if node_modules is not None:
        jsons.append(node_modules / "playwright-core" / "browsers.json")
    for rev in sorted(ffmpeg_revisions(jsons)):
        target = playwright_registry() / f"ffmpeg-{rev}" / "ffmpeg-linux"
        if target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.symlink_to(system)
            log.info("linked %s -> %s", system, target)
        except OSError as exc:
            log.warning("cannot link ffmpeg at %s: %s (videos may be missing)", target, exc)
