"""The dashboard page: one self-contained HTML document (inline CSS and JS, no CDN, no build step).

Kept as a Python string so it ships inside the package with no package-data setting. The page
renders the snapshots `/events` pushes and never polls. Its only writes are the actions the
snapshot says the user may take in a namespace (cancel, rerun, pause/resume), each behind a
confirm dialog, POSTed to the dashboard (actions.py) which does them with the user's kubeconfig.
"""

HTML = r'''<!doctype html>
<!-- The Sluice dashboard: one self-contained page (no CDN, no build step). It renders the
     snapshots /events pushes (server-sent events) and never polls; the clock below only ages the
     last snapshot's durations locally. Actions (cancel, rerun, pause/resume) appear only where the
     snapshot says the user's RBAC allows them, each behind a confirm dialog. -->
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice dashboard</title>
<style>
  :root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#f6f7f9; --ok:#1f7a3a; --bad:#b3261e; --run:#1f5fbf; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; color:var(--fg); background:var(--bg); }
  header { display:flex; gap:1rem; align-items:baseline; flex-wrap:wrap; padding:.6rem 1rem; background:#fff; border-bottom:1px solid var(--line); }
  header h1 { font-size:1.1rem; margin:0; } header a { color:inherit; text-decoration:none; }
  main { padding:1rem; max-width:1400px; margin:auto; }
  section { position:relative; background:#fff; border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; margin-bottom:1rem; overflow-x:auto; }
  h2 { font-size:1rem; margin:.2rem 0 .5rem; }
  table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:.25rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--muted); font-weight:600; font-size:.8rem; text-transform:uppercase; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(260px, 1fr)); gap:.8rem; }
  .card { border:1px solid var(--line); border-radius:6px; padding:.5rem .7rem; min-width:0; overflow-wrap:anywhere; }
  header > * { min-width:0; overflow-wrap:anywhere; } #errors, #notes, #toast { overflow-wrap:anywhere; }
  .bar { display:flex; align-items:center; gap:.4rem; margin:.2rem 0; } .bar progress { flex:1; height:.9rem; }
  .muted { color:var(--muted); } .badge { border:1px solid currentColor; border-radius:4px; padding:0 .3rem; font-size:.8rem; }
  .Succeeded { color:var(--ok); } .Failed, .TimedOut, .Rejected { color:var(--bad); } .Running { color:var(--run); }
  #live.off { color:var(--bad); } .err { color:var(--bad); }
  a { color:var(--run); } a:focus, button:focus { outline:2px solid var(--run); }
  .links a { margin-right:.5rem; white-space:nowrap; }
  button { font:inherit; padding:.1rem .5rem; border:1px solid var(--line); border-radius:4px; background:#fff; cursor:pointer; }
  button.act { font-size:.8rem; } button.danger { color:var(--bad); border-color:var(--bad); }
  dialog { border:1px solid var(--line); border-radius:6px; max-width:min(92vw, 420px); }
  dialog::backdrop { background:rgba(0,0,0,.3); }
  .sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); white-space:nowrap; }
  .envs { margin:.3rem 0 0; padding-left:1rem; } .notes { color:var(--muted); }
  #toast:empty { display:none; } #toast { padding:.4rem .8rem; background:#fff; border:1px solid var(--line); border-radius:6px; margin-bottom:1rem; }
  .failures { margin:.2rem 0 0; padding-left:1rem; color:var(--bad); font-size:.85rem; }
  pre.console { background:#10141c; color:#e6e6e6; padding:.5rem; max-height:28rem; overflow:auto; white-space:pre-wrap; word-break:break-all; font-size:.8rem; }
  @media (max-width: 600px) { main { padding:.4rem; } header { padding:.4rem; } th, td { padding:.2rem .3rem; font-size:.85rem; }
    .cards { grid-template-columns:1fr; } .wide { display:none; } }
</style>
</head>
<body>
<header><h1><a href="/">Sluice</a></h1><span id="scope" class="muted"></span>
  <span id="live" class="off" role="status" data-testid="live">connecting…</span></header>
<main>
  <div id="errors" class="err" role="alert"></div>
  <div id="notes" class="notes" data-testid="notes"></div>
  <div id="toast" role="status" aria-live="polite" data-testid="toast"></div>
  <div id="overview">
    <section aria-labelledby="hq"><h2 id="hq">Queues</h2><div id="queues" class="cards" data-testid="queues"></div></section>
    <section aria-labelledby="hw"><h2 id="hw">Waiting, in admission order</h2>
      <table data-testid="waiting"><thead><tr><th>Queue</th><th>Rank</th><th>Name</th><th class="wide">Priority</th><th>Waited</th><th class="wide">ETA</th><th class="wide">Why</th><th><span class="sr">Actions</span></th></tr></thead><tbody id="waiting"></tbody></table></section>
    <section aria-labelledby="hr"><h2 id="hr">Running</h2>
      <table data-testid="running"><thead><tr><th>Name</th><th class="wide">Attempt</th><th>Elapsed</th><th>Progress</th><th>Failed</th><th class="wide">Now</th><th><span class="sr">Actions</span></th></tr></thead><tbody id="running"></tbody></table></section>
    <section aria-labelledby="hf"><h2 id="hf">Finished</h2>
      <table data-testid="finished"><thead><tr><th>Name</th><th>Outcome</th><th class="wide">Passed</th><th class="wide">Failed</th><th class="wide">Duration</th><th>Artifacts</th><th><span class="sr">Actions</span></th></tr></thead><tbody id="finished"></tbody></table></section>
  </div>
  <div id="detail" hidden data-testid="detail"></div>
  <section id="live-box" hidden aria-labelledby="hc"><h2 id="hc">Live console</h2>
    <div id="live-failures"></div>
    <p id="console-note" class="muted" data-testid="console-note"></p>
    <pre class="console" id="console" data-testid="console" tabindex="0" aria-label="live console"></pre></section>
</main>
<dialog id="confirm" data-testid="confirm" aria-labelledby="confirm-text">
  <form method="dialog"><p id="confirm-text"></p>
    <button value="no" autofocus data-testid="confirm-no">Keep as is</button>
    <button value="yes" class="danger" id="confirm-yes" data-testid="confirm-yes">Yes</button></form>
</dialog>
<script>
"use strict";
let snap = null, got = 0, detailRv = null;
const route = location.pathname.match(/^\/x\/([^/]+)\/([^/]+)/);
const $ = id => document.getElementById(id);
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = v; else if (k in e && k !== "list") e[k] = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function age(s) {
  if (s === null || s === undefined) return "-";
  s = Math.max(0, Math.floor(s));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60 ? s % 60 + "s" : "");
  if (s < 86400) return Math.floor(s / 3600) + "h" + (Math.floor(s % 3600 / 60) ? Math.floor(s % 3600 / 60) + "m" : "");
  return Math.floor(s / 86400) + "d" + (Math.floor(s % 86400 / 3600) ? Math.floor(s % 86400 / 3600) + "h" : "");
}
function secs(v) { return v === null || v === undefined ? "-" : v < 10 ? v.toFixed(2) + "s" : v < 60 ? v.toFixed(1) + "s" : age(v); }
const since = () => (Date.now() - got) / 1000;
function plus(s) { return s === null || s === undefined ? null : s + since(); }
function clock(iso) { return iso ? "~" + new Date(iso).toLocaleTimeString() : "-"; }
function xlink(r) { return h("a", {href: `/x/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`, text: r.name}); }
function bar(label, value, max, testid) {
  const known = max !== null && max !== undefined;
  return h("div", {className: "bar", "data-testid": testid},
    h("span", {text: label}), h("progress", {max: known ? Math.max(max, 1) : Math.max(value, 1), value: value, "aria-label": label}),
    h("span", {text: `${value}/${known ? max : "?"}`}));
}
function links(list) {
  return h("span", {className: "links"}, ...(list || []).map(l =>
    h("a", {href: l.href, target: "_blank", rel: "noopener", title: l.name, text: l.label, "data-label": l.label})));
}
const EMPTY = {waiting: "nothing waiting", running: "nothing running", finished: "nothing finished yet"};
function fill(id, rows) {
  if (!rows.length && EMPTY[id]) rows = [h("tr", {className: "empty"}, h("td", {colSpan: 9, className: "muted", text: EMPTY[id]}))];
  $(id).replaceChildren(...rows);
}
const TERMINAL = ["Succeeded", "Failed", "TimedOut", "Cancelled", "Rejected"];
const may = (ns, action) => ((snap && snap.actions[ns]) || []).includes(action);
const ACTIONS = {
  cancel: r => ({label: "Cancel", ask: `Cancel execution ${r.name} in namespace ${r.namespace}?`, yes: "Cancel it",
                 url: `/api/x/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}/cancel`, body: {}}),
  rerun: r => ({label: "Rerun", ask: `Run ${r.name} again (a new execution with the same spec) in namespace ${r.namespace}?`,
                yes: "Rerun", url: `/api/x/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}/rerun`, body: {}}),
  pause: q => ({label: q.paused ? "Resume" : "Pause", ask: `${q.paused ? "Resume" : "Pause"} queue ${q.name} in namespace ${q.namespace}?`,
                yes: q.paused ? "Resume" : "Pause", url: `/api/q/${encodeURIComponent(q.namespace)}/${encodeURIComponent(q.name)}/pause`,
                body: {paused: !q.paused}}),
};
function actionButton(action, r) {
  if (!may(r.namespace, action)) return null;
  const a = ACTIONS[action](r);
  return h("button", {type: "button", className: "act" + (action === "cancel" ? " danger" : ""), text: a.label,
    "data-action": action, "aria-label": `${a.label} ${r.name}`, onclick: () => confirmAndDo(a)});
}
function confirmAndDo(a) {
  const dlg = $("confirm");
  $("confirm-text").textContent = a.ask; $("confirm-yes").textContent = a.yes;
  dlg.onclose = async () => {
    if (dlg.returnValue !== "yes") return;
    let msg;
    try {
      const resp = await fetch(a.url, {method: "POST", headers: {"Content-Type": "application/json", "X-Sluice-Action": "1"},
                                       body: JSON.stringify(a.body)});
      const d = await resp.json();
      msg = d.message || d.error || resp.statusText;
    } catch (e) { msg = "request failed: " + e; }
    $("toast").textContent = msg;
  };
  dlg.returnValue = ""; dlg.showModal();
}
function envList(q) {
  if (!q.environments.length) return null;
  return h("ul", {className: "envs", "data-testid": "environments"}, ...q.environments.map(e => h("li", {"data-env": e.name},
    h("span", {text: e.name}), e.known
      ? h("span", {className: "muted", text: ` ${e.inUse}/${e.concurrency} in use` + (e.waiting ? `, ${e.waiting} waiting` : "") +
          (e.holders.length ? "; held by " : "")}) : h("span", {className: "muted", text: " (status not visible)"}),
    e.known && e.holders.length ? h("span", {"data-testid": "holders", text: e.holders.join(", ")}) : null)));
}
function failureList(r) {
  if (!r.failures || !r.failures.length) return null;
  return h("ul", {className: "failures", "data-testid": "failures"}, ...r.failures.map(f =>
    h("li", {title: f.error || "", text: "✗ " + f.test + (f.error ? ": " + f.error.slice(0, 120) : "")})));
}

function renderOverview() {
  const multi = snap.scope === "*";
  const qn = r => multi ? `${r.namespace}/${r.queue}` : r.queue;
  fill("queues", snap.queues.map(q => h("div", {className: "card", "data-queue": q.name, "data-testid": "queue"},
    h("strong", {text: multi ? `${q.namespace}/${q.name}` : q.name}), " ",
    q.paused ? h("span", {className: "badge", text: "paused", "data-testid": "paused"}) : h("span", {className: "muted", text: "admitting"}),
    q.exists ? null : h("span", {className: "muted", text: " (no TestQueue)"}),
    bar("running", q.running, q.runningCapacity, "running-bar"),
    bar("queued", q.queued, q.queuedCapacity, "queued-bar"),
    h("div", {className: "muted", text: `wait p50 ${secs(q.wait.p50)} p95 ${secs(q.wait.p95)} · run p50 ${secs(q.run.p50)} p95 ${secs(q.run.p95)}`}),
    h("div", {"data-testid": "throughput", text: `${q.finishedLastHour} finished in the last hour`}),
    envList(q),
    q.exists ? actionButton("pause", q) : null)));
  fill("waiting", snap.waiting.map(r => h("tr", {"data-name": r.name, "data-queue": r.queue},
    h("td", {text: qn(r)}), h("td", {className: "rank", text: r.rank === null ? "-" : r.rank,
      title: r.writtenPosition && r.writtenPosition !== r.rank ? `status.queuePosition ${r.writtenPosition}` : ""}),
    h("td", {}, xlink(r), r.phase !== "Queued" ? h("span", {className: "muted", text: ` (${r.phase})`}) : null),
    h("td", {className: "wide", text: r.priority}), h("td", {text: age(plus(r.waited))}), h("td", {className: "wide", text: clock(r.eta)}),
    h("td", {className: "wide", text: [r.reason, r.message].filter(Boolean).join(": ")}), h("td", {}, actionButton("cancel", r)))));
  fill("running", snap.running.map(r => h("tr", {"data-name": r.name},
    h("td", {}, xlink(r)), h("td", {className: "wide", text: r.attempt || "-"}), h("td", {text: age(plus(r.elapsed))}),
    h("td", {}, h("progress", {max: Math.max(r.total, 1), value: r.done, "data-done": r.done, "data-total": r.total,
      "aria-label": `progress of ${r.name}`}), ` ${r.total ? r.done + "/" + r.total : "-"}`),
    h("td", {className: r.failed ? "Failed" : "", text: r.failed ? `${r.failed} failed` : "0"}, failureList(r)),
    h("td", {className: "muted wide", text: r.current.slice(0, 80)}), h("td", {}, actionButton("cancel", r)))));
  fill("finished", snap.finished.map(r => h("tr", {"data-name": r.name},
    h("td", {}, xlink(r)), h("td", {className: r.phase, text: r.phase + (r.reason && r.reason !== r.phase ? ` (${r.reason})` : "")}),
    h("td", {className: "wide", text: r.passed ?? "-"}), h("td", {className: "wide", text: r.failedTests ?? "-"}), h("td", {className: "wide", text: secs(r.duration)}),
    h("td", {}, links(r.links)), h("td", {}, actionButton("rerun", r)))));
}

async function renderDetail() {
  const [ns, name] = [decodeURIComponent(route[1]), decodeURIComponent(route[2])];
  const resp = await fetch(`/api/x/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  const d = await resp.json();
  const box = $("detail");
  if (d.error) { box.replaceChildren(h("p", {className: "err", text: d.error})); return; }
  const st = d.status || {}, res = st.results || {}, p = st.progress || {};
  const kv = [["Namespace", d.namespace], ["Queue", d.queue], ["Priority", d.priority], ["Phase", d.phase],
    ["Reason", d.reason], ["Message", d.message], ["Attempt", d.attempt], ["Queue position", st.queuePosition],
    ["Estimated start", st.estimatedStartAt], ["Started", st.startedAt], ["Completed", st.completedAt],
    ["Progress", p.total ? `${p.done}/${p.total}` : null],
    ["Results", st.results ? `${res.passed} passed, ${res.failed} failed, ${res.skipped || 0} skipped` : null]];
  box.replaceChildren(
    h("section", {}, h("h2", {}, "Execution ", h("span", {className: d.phase, text: d.name})),
      h("table", {}, h("tbody", {}, ...kv.filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => h("tr", {}, h("th", {text: k}), h("td", {className: k === "Phase" ? v : "", text: v}))))),
      d.links.length ? h("p", {}, "Artifacts: ", links(d.links)) : null,
      h("p", {"data-testid": "detail-actions"}, TERMINAL.includes(d.phase) ? null : actionButton("cancel", d), " ",
        actionButton("rerun", d))),
    d.shards.length ? h("section", {id: "shards", "data-testid": "shards"}, h("h2", {text: `Reports, one per shard (${d.shards.length})`}),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {text: "Shard"}), h("th", {text: "Report"}), h("th", {text: "JUnit"}))),
        h("tbody", {}, ...d.shards.map(x => h("tr", {"data-shard": x.shard}, h("td", {text: `${x.shard + 1}/${d.shards.length}`}),
          h("td", {}, h("a", {href: x.report, target: "_blank", rel: "noopener", text: "report", "data-label": "report"})),
          h("td", {}, h("a", {href: x.junit, target: "_blank", rel: "noopener", text: "junit", "data-label": "junit"}))))))) : null,
    h("section", {}, h("h2", {text: "Attempts"}), h("table", {"data-testid": "attempts"},
      h("thead", {}, h("tr", {}, ...["#", "Job", "Started", "Completed", "Outcome", "Reason", "Exit", "Message"].map(t => h("th", {text: t})))),
      h("tbody", {}, ...d.attempts.map(a => h("tr", {}, ...[a.attempt, a.jobName, a.startedAt, a.completedAt, a.outcome,
        a.reason, a.exitCode, a.message].map(v => h("td", {text: v ?? "-"}))))))),
    h("section", {}, h("h2", {text: "Events"}), h("table", {"data-testid": "events"},
      h("thead", {}, h("tr", {}, ...["Time", "Type", "Reason", "Message", "Count"].map(t => h("th", {text: t})))),
      h("tbody", {}, ...d.events.map(e => h("tr", {"data-reason": e.reason}, ...[e.time, e.type, e.reason, e.message, e.count]
        .map(v => h("td", {text: v ?? ""}))))))));
}

function onSnapshot(data) {
  snap = JSON.parse(data); got = Date.now();
  $("scope").textContent = snap.scope === "*" ? "all namespaces" : `namespace ${snap.scope}`;
  $("errors").replaceChildren(...snap.errors.map(e => h("p", {text: e})));
  $("notes").replaceChildren(...snap.notes.map(e => h("p", {text: e})));
  if (!route) { renderOverview(); return; }
  const [ns, name] = [decodeURIComponent(route[1]), decodeURIComponent(route[2])];
  const row = [...snap.waiting, ...snap.running, ...snap.finished].find(r => r.namespace === ns && r.name === name);
  const rv = (row ? row.rv : "gone") + JSON.stringify(snap.actions[ns] || []);
  if (rv !== detailRv) { detailRv = rv; renderDetail(); }
  $("live-failures").replaceChildren(row && row.failures ? failureList(row) || "" : "");
}
function followConsole(ns, name) {
  const pre = $("console"), src = new EventSource(`/console/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
  src.addEventListener("line", ev => {
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(JSON.parse(ev.data) + "\n");
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
  src.onopen = () => { $("console-note").textContent = "following the runner's output as it comes"; };
  src.onerror = () => {
    if (src.readyState === EventSource.CLOSED) $("console-note").textContent =
      "no live console here (the dashboard needs SLUICE_REDIS_URL); a finished run's console is under Artifacts";
  };
}
if (route) {
  $("overview").hidden = true; $("detail").hidden = false; $("live-box").hidden = false;
  document.title = `${decodeURIComponent(route[2])} · Sluice`;
  followConsole(decodeURIComponent(route[1]), decodeURIComponent(route[2]));
}
const source = new EventSource("/events");
source.addEventListener("snapshot", ev => onSnapshot(ev.data));
source.onopen = () => { $("live").textContent = "live"; $("live").className = ""; };
source.onerror = () => { $("live").textContent = "disconnected, reconnecting…"; $("live").className = "off"; };
setInterval(() => { if (snap && !route) renderOverview(); }, 1000);  // ages only: no request
</script>
</body>
</html>
'''
