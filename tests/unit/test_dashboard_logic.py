"""The dashboard's pure decisions: throughput, environments per queue, allowed actions, same-origin."""
from datetime import datetime, timedelta, timezone

from sluice.dashboard.actions import same_origin
from sluice.dashboard.model import environment_rows, throughput
from sluice.dashboard.permissions import allowed_actions

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def _tx(name, phase, completed=None, queue=None, envs=(), ns="ns"):
    spec = {"environments": list(envs)}
    if queue:
        spec["queue"] = queue
    st = {"phase": phase}
    if completed is not None:
        st["completedAt"] = (NOW - timedelta(seconds=completed)).isoformat()
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec, "status": st}


def test_throughput_counts_finished_in_the_last_hour_per_queue():
    got = throughput([_tx("a", "Succeeded", 10), _tx("b", "Failed", 3599, queue="q"), _tx("c", "Failed", 3601),
                      _tx("d", "Running"), _tx("e", "Cancelled", 5, ns="other")], NOW)
    assert got == {("ns", "default"): 1, ("ns", "q"): 1, ("other", "default"): 1}


def test_environments_per_queue_with_holders_or_names_only():
    txs = [_tx("a", "Queued", envs=["db", "api"]), _tx("b", "Running", queue="q", envs=["db"])]
    envs = [{"metadata": {"name": "db"}, "spec": {"concurrency": 2},
             "status": {"inUse": 1, "holders": ["ns/b"], "waiting": 1}}]
    got = environment_rows(txs, envs)
    assert got[("ns", "default")] == [{"name": "api", "known": False},
                                      {"name": "db", "known": True, "concurrency": 2, "inUse": 1,
                                       "holders": ["ns/b"], "waiting": 1}]
    assert [e["name"] for e in got[("ns", "q")]] == ["db"]
    assert environment_rows(txs, None)[("ns", "q")] == [{"name": "db", "known": False}]


def test_allowed_actions_and_origin():
    assert allowed_actions({"pause": True, "cancel": True, "rerun": False}) == ["cancel", "pause"]
    assert allowed_actions({}) == []
    assert same_origin(None, "127.0.0.1:8090")
    assert same_origin("http://127.0.0.1:8090", "127.0.0.1:8090")
    assert not same_origin("http://evil.example", "127.0.0.1:8090")
    assert not same_origin("http://127.0.0.1:8090", None)


def test_a_sharded_execution_lists_every_shards_report_and_links_its_page():
    from sluice.dashboard.model import _row_links, shard_reports
    obj = {"metadata": {"namespace": "ns", "name": "wide"}, "spec": {"shards": 3},
           "status": {"artifacts": {"url": "s3://b/p/ns/wide/attempt-1/", "report": "shard-0/report/index.html",
                                    "junit": "shard-0/junit.xml", "console": "shard-0/console.log"}}}
    assert [s["report"] for s in shard_reports(obj)] == [
        f"/artifacts/b/p/ns/wide/attempt-1/shard-{i}/report/index.html" for i in range(3)]
    assert shard_reports(obj)[2]["junit"] == "/artifacts/b/p/ns/wide/attempt-1/shard-2/junit.xml"
    got = [(link["label"], link["href"]) for link in _row_links(obj)]
    assert got == [("reports", "/x/ns/wide#shards"),
                   ("console", "/artifacts/b/p/ns/wide/attempt-1/shard-0/console.log")]
    assert shard_reports({**obj, "spec": {}}) == []


def test_running_rows_show_whichever_of_status_and_live_channel_is_further():
    from sluice.dashboard.model import running_rows
    obj = {"metadata": {"namespace": "ns", "name": "r"}, "spec": {},
           "status": {"phase": "Running", "attempt": 1, "progress": {"done": 3, "total": 10, "failed": 0}}}
    live = {("ns", "r"): {"done": 5, "total": 10, "failed": 1, "failures": [{"test": "t", "error": "boom"}]}}
    [row] = running_rows([obj], NOW, live)
    assert (row["done"], row["total"], row["failed"], row["failures"]) == (5, 10, 1, [{"test": "t", "error": "boom"}])
    [row] = running_rows([obj], NOW, {("ns", "r"): {"done": 1, "total": 0, "failed": 0, "failures": []}})
    assert (row["done"], row["total"]) == (3, 10)


def test_a_local_dashboard_answers_only_to_local_names():
    from sluice.dashboard.server import local_host_header
    assert local_host_header("127.0.0.1:8090") and local_host_header("localhost:8090")
    assert local_host_header("[::1]:8090") and local_host_header("LOCALHOST")
    assert not local_host_header("evil.example:8090") and not local_host_header(None)
    assert not local_host_header("127.0.0.1.evil.example:8090")
