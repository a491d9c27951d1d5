"""Which caps `sluice queue` shows for a namespace when several releases run side by side
(docs/sharding.md): each leader's Lease says its caps and the namespaces it watches."""
from __future__ import annotations

import pytest

from sluice.api.common import ANNOTATION_QUEUED_CAPACITY, ANNOTATION_RUNNING_CAPACITY, ANNOTATION_WATCHED_NAMESPACES
from sluice.cli.connect import caps_for_namespace


def lease(running: int, queued: int, watched: str | None = None) -> dict[str, str]:
    ann = {ANNOTATION_RUNNING_CAPACITY: str(running), ANNOTATION_QUEUED_CAPACITY: str(queued)}
    if watched is not None:
        ann[ANNOTATION_WATCHED_NAMESPACES] = watched
    return ann


A, B, ALL = lease(3, 50, "a1,a2"), lease(2, 40, "b1,b2"), lease(5, 50, "")
OLD = lease(5, 50)  # an operator from before the annotation: watches all, as far as anyone knows


@pytest.mark.parametrize("leases, namespace, caps", [
    ([ALL], "x", (5, 50)),
    ([OLD], "x", (5, 50)),
    ([OLD], None, (5, 50)),
    ([A, B], "a2", (3, 50)),
    ([A, B], "b1", (2, 40)),
    ([A, B], "elsewhere", None),  # no release runs it
    ([A, B], None, None),  # all namespaces: the releases disagree
    ([A, lease(3, 50, "c1")], None, (3, 50)),  # they agree
    ([A, ALL], "a1", (3, 50)),  # the release that lists it wins over a cluster-wide one
    ([A, ALL], "z", (5, 50)),
    ([{ANNOTATION_RUNNING_CAPACITY: "x"}, B], "b2", (2, 40)),  # an unreadable Lease is skipped
    ([], "a1", None),
], ids=["one-cluster-wide", "old-operator", "old-all", "release-a", "release-b", "unwatched", "all-disagree",
        "all-agree", "listed-wins", "cluster-wide-rest", "unreadable", "no-lease"])
def test_caps_for_namespace(leases, namespace, caps):
    assert caps_for_namespace(leases, namespace) == caps
