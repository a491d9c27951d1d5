"""`sluice queue` and `sluice stats`: ordering, capacity line, 80 columns, percentiles (pure)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.cli.queue import queue_blocks, render_queue
from sluice.cli.stats import compute_stats, render_stats
from sluice.cli.text import age, seconds_text, table
from sluice.status.queue_stats import percentile

from .builders import T0, execution, queue, ts


def _queued(name, created, priority="normal", q="default", pos=None, ns="ns"):
    st = {"phase": "Queued", "queuedAt": ts(created)}
    if pos is not None:
        st["queuePosition"] = pos
    return execution(name, created=created, ns=ns, status=st, priority=priority, queue=q)


def _running(name, created, started, shards=1, q="default", attempt=1):
    return execution(name, created=created, queue=q, shards=shards, status={
        "phase": "Running", "queuedAt": ts(created), "startedAt": ts(started), "attempt": attempt,
        "attempts": [{"attempt": attempt, "startedAt": ts(started)}]})


@pytest.mark.parametrize("seconds,text", [
    (None, "-"), (0, "0s"), (59.9, "59s"), (60, "1m"), (252, "4m12s"), (3600, "1h"), (11100, "3h5m"),
    (86400 * 2 + 3600 * 4, "2d4h"), (-3, "0s"),
])
def test_age_is_kubectl_style(seconds, text):
    assert age(seconds) == text


@pytest.mark.parametrize("value,text", [(None, "-"), (0.4213, "0.42s"), (12.34, "12.3s"), (252, "4m12s")])
def test_seconds_text(value, text):
    assert seconds_text(value) == text


def test_table_shortens_the_name_column_to_fit():
    rows = [["1", "x" * 120, "Queued"]]
    lines = table(["POS", "NAME", "PHASE"], rows, width=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].split()[1].endswith("~")


def test_queue_order_is_the_operators_admission_order():
    items = [
        _queued("late-critical", 30, "critical"),
        _queued("early-low", 0, "low"),
        _queued("mid-normal", 10, "normal"),
        _queued("early-normal", 5, "normal"),
        _running("run-b", 0, 20),
        _running("run-a", 0, 10),
        execution("done", status={"phase": "Succeeded"}),
    ]
    [b] = queue_blocks(items, [], T0 + timedelta(seconds=60), namespaces=["ns"], caps=(5, 50))
    assert b.order == ["run-a", "run-b", "late-critical", "early-normal", "mid-normal", "early-low"]
    assert [r[0] for r in b.rows] == ["-", "-", "1", "2", "3", "4"]
    assert b.capacity_line() == "running 2/5, queued 4/50"


def test_aging_from_the_queue_object_promotes_like_the_operator():
    items = [_queued("old-low", 0, "low", q="aging"), _queued("new-high", 50, "high", q="aging")]
    q = queue("aging", runningCapacity=1, queuedCapacity=7, agingSeconds=10, paused=True)
    [b] = queue_blocks(items, [q], T0 + timedelta(seconds=60), only_queue="aging")
    assert b.order == ["old-low", "new-high"]  # low aged 6 classes: rank 0
    assert b.capacity_line() == "running 0/1, queued 2/7, paused"


def test_a_stale_written_position_is_shown_beside_the_computed_one():
    items = [_queued("a", 0, pos=1), _queued("b", 1, pos=5)]
    [b] = queue_blocks(items, [], T0 + timedelta(seconds=5), namespaces=["ns"], caps=(5, 50))
    assert [r[0] for r in b.rows] == ["1", "2(5)"]


def test_shards_count_as_running_slots_and_empty_default_queue_is_shown():
    [b] = queue_blocks([_running("big", 0, 1, shards=4)], [], T0, namespaces=["ns"], caps=(5, 50))
    assert b.running == 4
    [empty] = queue_blocks([], [], T0, namespaces=["ns"], caps=(5, 50))
    assert render_queue([empty], False) == [
        "queue default: running 0/5, queued 0/50 (no TestQueue: operator caps)"]


def test_rendered_queue_fits_80_columns_snapshot():
    items = [_running("release-gate-" + "x" * 60, 0, 3), _queued("sharded", 10, "low"),
             _queued("smoke-node", 2, "high")]
    [b] = queue_blocks(items, [], T0 + timedelta(seconds=45), namespaces=["ns"], caps=(5, 50))
    lines = render_queue([b], show_namespace=True)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0] == "queue default in ns: running 1/5, queued 2/50 (no TestQueue: operator caps)"
    assert lines[1].split() == ["POS", "NAME", "PHASE", "PRIORITY", "ATTEMPT", "WAITED", "RUNNING"]
    assert lines[2].split()[0] == "-" and lines[2].split()[2:] == ["Running", "normal", "1", "3s", "42s"]
    assert lines[3].split() == ["1", "smoke-node", "Queued", "high", "-", "43s", "-"]
    assert lines[4].split() == ["2", "sharded", "Queued", "low", "-", "35s", "-"]


def _finished(name, queued, started, completed, phase="Succeeded", q="default"):
    return execution(name, created=queued, queue=q, status={
        "phase": phase, "queuedAt": ts(queued), "startedAt": ts(started), "completedAt": ts(completed)})


def test_stats_use_the_operators_queue_status_computation():
    items = [_finished(f"s{i}", 0, i, i + 10 * (i + 1)) for i in range(10)]
    items.append(_finished("f", 0, 2, 5, phase="Failed"))
    items.append(_finished("t", 0, 3, 4, phase="TimedOut"))
    items.append(execution("r", status={"phase": "Rejected", "completedAt": ts(0)}))
    items.append(_queued("w", 100))
    now = T0 + timedelta(minutes=30)
    [s] = compute_stats(items, [], now)
    assert (s.admitted, s.succeeded, s.failed, s.timed_out, s.rejected, s.queued) == (12, 10, 2, 1, 1, 1)
    waits = [float(i) for i in range(10)] + [2.0, 3.0]
    runs = [10.0 * (i + 1) for i in range(10)] + [3.0, 1.0]
    # percentiles come from the fixed logarithmic histogram (docs/API.md, History): within 2.5 %
    for got, values in (((s.wait_p50, s.wait_p95), waits), ((s.run_p50, s.run_p95), runs)):
        for value, q in zip(got, (50, 95)):
            assert value == pytest.approx(percentile(values, q), rel=0.025, abs=0.001)
    assert s.finished_last_hour == 12 and s.succeeded_last_hour == 10
    later = compute_stats(items, [], T0 + timedelta(hours=3))[0]
    assert later.finished_last_hour == 0 and later.admitted == 12
    text = render_stats([s], show_namespace=False)
    assert all(len(line) <= 80 for line in text)
    assert text[0] == "queue default: running 0, queued 1"


@pytest.mark.parametrize("values,q,expected", [
    ([], 50, None), ([1.0], 95, 1.0), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 95, 4), (list(range(1, 101)), 95, 95),
])
def test_nearest_rank_percentile(values, q, expected):
    assert percentile([float(v) for v in values], q) == expected


def test_the_default_queue_shows_unknown_caps_when_the_operator_lease_cannot_be_read():
    [b] = queue_blocks([], [], T0, namespaces=["ns"])
    assert b.capacity_line() == "running 0/?, queued 0/?"
