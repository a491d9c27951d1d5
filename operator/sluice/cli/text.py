"""Pure text helpers for the CLI: ages, tables that fit 80 columns, timestamps."""
from __future__ import annotations

from datetime import datetime, timezone

WIDTH = 80


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def age(seconds: float | None) -> str:
    """kubectl-style short duration: 7s, 4m12s, 3h5m, 2d4h; '-' for unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m" if (s % 3600) // 60 else f"{s // 3600}h"
    return f"{s // 86400}d{(s % 86400) // 3600}h" if (s % 86400) // 3600 else f"{s // 86400}d"


def seconds_text(value: float | None) -> str:
    """A percentile or duration in seconds: 0.42s, 12.3s, 4m12s; '-' for no data."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    return age(value)


def shorten(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "~"


def table(headers: list[str], rows: list[list[str]], width: int = WIDTH, flexible: int = 1) -> list[str]:
    """Left-aligned columns, two spaces apart; column `flexible` (a name) is shortened to fit `width`."""
    cols = len(headers)
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i]) for i in range(cols)]
    total = sum(widths) + 2 * (cols - 1)
    if total > width:
        widths[flexible] = max(len(headers[flexible]), widths[flexible] - (total - width))
    lines = []
    for r in [headers, *rows]:
        cells = [shorten(r[i], widths[i]) for i in range(cols)]
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip())
    return lines
