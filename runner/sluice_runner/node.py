"""Finds @playwright/test and writes the config that wraps a playwright-node suite's own config.

Playwright Test takes the browser executable, launch flags, trace/video/screenshot modes and
reporter outputs only from its config file, and a suite usually has a config of its own. So the
runner generates `sluice.playwright.config.ts` next to the suite's config: it imports that config
(TypeScript, ESM or CommonJS all load through Playwright's own transform when the wrapper is .ts),
spreads it, and overrides only what the runner owns: reporters (list, junit, json, html), outputDir,
trace/video/screenshot, and for chromium projects launchOptions.executablePath and extra args
(appended to the suite's). baseURL comes from BASE_URL unless the suite sets one.

@playwright/test lookup order (first with `@playwright/test/cli.js` wins):
  1. `node_modules` inside the suite itself (an image source that ships its own dependencies);
  2. SLUICE_NODE_MODULES (a node_modules directory);
  3. runner/node/node_modules of this checkout (hack/install-runner-deps installs it there);
  4. the global npm root (`/usr/local/lib/node_modules`, `/usr/lib/node_modules`, `npm root -g`):
     the runner image installs @playwright/test globally.
The chosen node_modules is linked into the suite as `node_modules` so the suite's own
`import ... from '@playwright/test'` resolves to the very same copy the CLI runs (two copies make
Playwright refuse to run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sluice_runner.errors import ConfigError, InfrastructureError

WRAPPER_NAME = "sluice.playwright.config.ts"
CONFIG_NAMES = [f"playwright.config.{ext}" for ext in ("ts", "js", "mts", "mjs", "cts", "cjs")]
_REPO_NODE_MODULES = Path(__file__).resolve().parents[1] / "node" / "node_modules"
_GLOBAL_ROOTS = [Path("/usr/local/lib/node_modules"), Path("/usr/lib/node_modules")]


def _has_playwright(modules: Path) -> bool:
    return (modules / "@playwright" / "test" / "cli.js").is_file()


def find_node_modules(suite: Path, configured: Path | None) -> Path:
    """The node_modules directory holding @playwright/test (see the module docstring)."""
    candidates = [suite / "node_modules"]
    if configured is not None:
        if not _has_playwright(configured):
            raise ConfigError(f"SLUICE_NODE_MODULES={configured} has no @playwright/test")
        candidates.append(configured)
    candidates += [_REPO_NODE_MODULES, *_GLOBAL_ROOTS]
    for modules in candidates:
        if _has_playwright(modules):
            return modules.resolve()
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
        if root and _has_playwright(Path(root)):
            return Path(root).resolve()
    raise InfrastructureError(
        "@playwright/test not found (looked in the suite, SLUICE_NODE_MODULES, runner/node/node_modules "
        "and the global npm root): run hack/install-runner-deps or install it in the image"
    )


def link_node_modules(suite: Path, modules: Path) -> None:
    """Make `suite/node_modules` resolve to `modules` unless it already does."""
    link = suite / "node_modules"
    if link.exists() and link.resolve() == modules:
        return
    if link.is_symlink() or link.exists():
        raise ConfigError(f"{link} exists but has no @playwright/test; remove it from the source")
    link.symlink_to(modules, target_is_directory=True)


def split_config_arg(args: list[str]) -> tuple[str | None, list[str]]:
    """Take `-c X` / `--config X` / `--config=X` out of the user's args (we wrap that config)."""
    rest: list[str] = []
    config: str | None = None
    it = iter(args)
    for arg in it:
        if arg in ("-c", "--config"):
            config = next(it, None)
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return config, rest


def drop_reporter_args(args: list[str]) -> list[str]:
    """--reporter on the command line would replace the reporters results depend on."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--reporter":
            skip = True
        elif not arg.startswith("--reporter="):
            out.append(arg)
    return out


def find_user_config(suite: Path, explicit: str | None) -> Path | None:
    if explicit:
        path = (suite / explicit).resolve()
        if not path.is_file():
            raise ConfigError(f"Playwright config {explicit!r} (from SLUICE_ARGS) not found in the suite")
        return path
    return next((suite / name for name in CONFIG_NAMES if (suite / name).is_file()), None)


def render_wrapper(user_config: Path | None, settings: dict[str, object]) -> str:
    """TypeScript source of the wrapping config; `settings` is embedded as JSON."""
    imports = (
        f"import * as userModule from {json.dumps('./' + user_config.name)};\n"
        "const userConfig: any = (userModule as any).default ?? userModule;\n"
        if user_config
        else "const userConfig: any = {};\n"
    )
    return (
        "// Generated by sluice_runner for this run: wraps the suite's own Playwright config.\n"
        + imports
        + f"const sluice: any = {json.dumps(settings, indent=2)};\n"
        + _WRAPPER_BODY
    )


_WRAPPER_BODY = r"""
function isChromium(use: any): boolean {
  return (use?.browserName ?? use?.defaultBrowserType ?? 'chromium') === 'chromium';
}

// `own` is the suite's use block at this level, `inherited` the suite's top-level one.
function withSluice(own: any, inherited: any): any {
  const out: any = { ...(own ?? {}), ...sluice.use };
  if (!inherited && sluice.baseURL && !out.baseURL) out.baseURL = sluice.baseURL;
  if (isChromium({ ...(inherited ?? {}), ...(own ?? {}) })) {
    const launch = own?.launchOptions ?? inherited?.launchOptions ?? {};
    out.launchOptions = { ...launch, args: [...(launch.args ?? []), ...sluice.args] };
    if (sluice.executablePath && !launch.executablePath) {
      out.launchOptions.executablePath = sluice.executablePath;
      out.channel = undefined;
    }
  }
  return out;
}

export default {
  ...userConfig,
  outputDir: sluice.outputDir,
  reporter: sluice.reporter,
  use: withSluice(userConfig.use, undefined),
  projects: userConfig.projects?.map((p: any) => ({ ...p, use: withSluice(p.use, userConfig.use ?? {}) })),
};
"""


def write_wrapper(suite: Path, user_config: Path | None, settings: dict[str, object]) -> Path:
    """Write the wrapper next to the suite's config (so its relative paths keep their meaning)."""
    where = user_config.parent if user_config else suite
    path = where / WRAPPER_NAME
    path.write_text(render_wrapper(user_config, settings))
    return path


# The live channel's Playwright Test reporter (progress.py): `start` when the run begins, one
# `test` event per test once its outcome is final (after its last retry), as JSON lines appended
# to `outputFile`, which the runner tails and publishes (only the runner talks to Redis). Titles
# are the ids results.parse_playwright_json gives (`file › describe › title [project]`). It ships
# inside the Python package (the runner image has only the wheel and node_modules) and is written
# next to the wrapper config at run time; CommonJS (.cjs) whatever the suite's package type.
PROGRESS_REPORTER_NAME = "sluice.progress-reporter.cjs"
PROGRESS_REPORTER_JS = r"""// Generated by sluice_runner for this run: live progress events for the Sluice runner.
'use strict';
const fs = require('fs');
const path = require('path');

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const OUTCOMES = { expected: 'passed', unexpected: 'failed', flaky: 'flaky', skipped: 'skipped' };

function firstLine(text) {
  for (const line of String(text || '').replace(ANSI, '').split(/\r?\n/)) {
    const t = line.trim();
    if (t) return t.length <= 200 ? t : t.slice(0, 199) + '\u2026';
  }
  return '';
}

class SluiceProgressReporter {
  constructor(options = {}) {
    this.fd = options.outputFile ? fs.openSync(options.outputFile, 'a') : null;
  }
  printsToStdio() { return false; }
  write(event) {
    if (this.fd === null) return;
    try { fs.writeSync(this.fd, JSON.stringify(event) + '\n'); } catch (e) { /* best effort */ }
  }
  onBegin(config, suite) {
    this.rootDir = config.rootDir;
    this.write({ type: 'start', total: suite.allTests().length });
  }
  onTestEnd(test, result) {
    const retrying = result.status !== 'passed' && result.status !== 'skipped' && result.retry < test.retries;
    if (retrying || result.status === 'interrupted') return;
    const outcome = OUTCOMES[test.outcome()] || 'failed';
    const file = path.relative(this.rootDir || '', test.location.file).split(path.sep).join('/');
    const describes = test.titlePath().slice(3, -1);
    const project = test.parent.project() ? test.parent.project().name : '';
    const name = [file, ...describes, test.title].join(' \u203a ');
    const duration = test.results.reduce((sum, r) => sum + (r.duration || 0), 0) / 1000;
    let error = '';
    if (outcome === 'failed' || outcome === 'flaky') {
      const failed = test.results.find((r) => r.error || (r.errors && r.errors.length));
      const err = failed && (failed.error || failed.errors[0]);
      error = firstLine(err && (err.message || err.value || err.stack));
    }
    this.write({ type: 'test', title: project ? `${name} [${project}]` : name, outcome, duration, error });
  }
  onEnd() {
    if (this.fd !== null) { try { fs.closeSync(this.fd); } catch (e) { /* ignore */ } this.fd = null; }
  }
}

module.exports = SluiceProgressReporter;
"""


def write_progress_reporter(where: Path) -> Path:
    """Write the live-progress reporter into `where` (the wrapper config's folder); return it."""
    path = where / PROGRESS_REPORTER_NAME
    path.write_text(PROGRESS_REPORTER_JS)
    return path
