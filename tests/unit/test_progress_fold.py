"""Progress events fold into counts per shard, and shards sum (pure)."""
from sluice.progress.fold import StreamState, summarize

from .builders import T0


def test_shards_sum_and_percent_follow_done_over_total():
    a, b = StreamState(), StreamState()
    a.apply({"type": "start", "total": "4"})
    for outcome in ("passed", "failed", "passed"):
        a.apply({"type": "test", "title": f"t-{outcome}", "outcome": outcome})
    b.apply({"type": "start", "total": "6"})
    b.apply({"type": "test", "title": "b1", "outcome": "skipped"})
    p = summarize([a, b], T0)
    assert (p.total, p.done, p.passed, p.failed, p.skipped, p.percent) == (10, 4, 2, 1, 1, 40)
    assert p.current_test == "b1" and p.updated_at == T0


def test_nothing_heard_is_no_progress_and_junk_is_ignored():
    s = StreamState()
    assert summarize([s], T0) is None
    s.apply({"type": "start", "total": "x"})
    s.apply({"type": "test", "outcome": "exploded"})
    assert summarize([s], T0) is None
    s.apply({"type": "test", "title": "t", "outcome": "passed"})
    s.apply({"type": "end", "total": "1"})
    p = summarize([s], T0)
    assert (p.total, p.done, p.percent, p.current_test) == (1, 1, 100, None)


def test_the_relay_asks_to_be_woken_while_executions_run():
    """A quiet cluster has no watch events to wake the loop: the relay must say when to read again."""
    from sluice.cache.view import ClusterView
    from sluice.progress.relay import ProgressRelay

    from .builders import execution

    view = ClusterView()
    view.upsert_execution(execution("a", status={"phase": "Running", "attempt": 1}))
    spawned = []
    relay = ProgressRelay(object(), lambda key, p: None, lambda coro: spawned.append(coro) or coro.close())
    again = relay.after_pass(view, T0)
    assert again is not None and 0 < (again - T0).total_seconds() <= 5 and len(spawned) == 1
    view.upsert_execution(execution("a", status={"phase": "Succeeded", "attempt": 1}))
    assert relay.after_pass(view, T0) is None  # nothing running: no wake-ups
