"""A one-file HTML report for suites whose framework has none (pytest).

Playwright Test brings its own HTML reporter; pytest does not, and nothing beyond the runner's
declared dependencies may be needed offline. So this renders `results` into one page with no
external CSS, JS or fonts: a summary, one row per test (failures first) with its error, and its
artifacts: screenshots embedded as data URIs (up to a budget, so the page also works when opened
through a presigned URL), videos and traces linked relative to report/ (../videos/x.webm), which
works when the tree is browsed as stored. Pure: results and the tree's root in, a string out.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from sluice_runner.results import RunResults, TestCase

EMBED_BUDGET_BYTES = 4 * 1024 * 1024
_ORDER = {"failed": 0, "flaky": 1, "passed": 2, "skipped": 3}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}.sum span{margin-right:1.2em;font-weight:600}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}
.passed{color:#1a7f37}.failed{color:#cf222e}.flaky{color:#9a6700}.skipped{color:#6e7781}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.6em;max-height:30em;overflow:auto;font-size:12px}
img,video{max-width:480px;display:block;margin:.4em 0;border:1px solid #ddd}
"""


def _artifact_html(test: TestCase, root: Path, budget: list[int]) -> str:
    parts = []
    for art in test.artifacts:
        href = html.escape("../" + art.path, quote=True)
        name = html.escape(art.path.rsplit("/", 1)[-1])
        if art.kind == "screenshot":
            src = href
            path = root / art.path
            if path.is_file() and path.stat().st_size <= budget[0]:
                budget[0] -= path.stat().st_size
                src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<a href="{href}"><img loading="lazy" alt="{name}" src="{src}"></a>')
        elif art.kind == "video":
            parts.append(f'<video controls preload="none" src="{href}"></video><a href="{href}">{name}</a>')
        else:
            parts.append(f'<a href="{href}">trace: {name}</a> (open with <code>playwright show-trace</code>)')
    return "<br>".join(parts)


def render_report(results: RunResults, root: Path) -> str:
    """The report page; artifact paths in `results` are keys relative to `root`."""
    budget = [EMBED_BUDGET_BYTES]
    rows = []
    for test in sorted(results.tests, key=lambda t: (_ORDER.get(t.outcome, 9), t.id)):
        error = f"<pre>{html.escape(test.error)}</pre>" if test.error else ""
        rows.append(
            f'<tr><td class="{test.outcome}">{test.outcome}</td><td>{html.escape(test.id)}{error}</td>'
            f"<td>{test.seconds:.2f}s</td><td>{_artifact_html(test, root, budget)}</td></tr>"
        )
    suite_errors = "".join(f"<pre>{html.escape(e)}</pre>" for e in results.suiteErrors)
    shard = f" — shard {results.shard + 1}/{results.shardTotal}" if results.shardTotal > 1 else ""
    counts = "".join(
        f'<span class="{k}">{getattr(results, k)} {k}</span>'
        for k in ("passed", "failed", "flaky", "skipped")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice test report</title><style>{_CSS}</style></head>
<body><h1>Test report ({html.escape(results.framework)}{shard})</h1>
<p class="sum">{counts}<span>{results.total} total</span><span>{results.durationSeconds:.1f}s</span></p>
{suite_errors}
<table><thead><tr><th>outcome</th><th>test</th><th>time</th><th>artifacts</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
