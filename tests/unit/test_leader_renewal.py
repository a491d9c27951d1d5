"""Leader election: a late renewal of a Lease that stayed ours is not a new leadership.

Only taking the Lease from another holder (or creating it) calls `on_start`, which makes the
dispatcher re-list everything: on a loaded machine renewals come late now and then, and a
re-list each time cost more CPU than the dispatching it protected (issue 17).
"""
from __future__ import annotations

import copy

import pytest

import sluice.leader as leader
from sluice.kube.client import ApiError
from sluice.leader import LeaderElector


class FakeLeases:
    """The API's part: one Lease, GET and a resourceVersion-checked PUT."""

    def __init__(self):
        self.lease: dict | None = None
        self.rv = 0

    async def get(self, path):
        if self.lease is None:
            raise ApiError(404, '{"reason": "NotFound"}', "GET", path)
        return copy.deepcopy(self.lease)

    async def create(self, path, body):
        self.rv += 1
        self.lease = dict(copy.deepcopy(body), metadata=dict(body["metadata"], resourceVersion=str(self.rv)))
        return self.lease

    async def request(self, method, path, body):
        assert method == "PUT"
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, '{"reason": "Conflict"}', method, path)
        return await self.create(path, body)


async def test_late_renewal_of_our_own_lease_does_not_start_again():
    kube = FakeLeases()
    me = LeaderElector(kube, "ns", "lease", duration=6, renew_every=2)
    assert await me._try_acquire_or_renew() and me._took_over  # created: a new leadership
    assert await me._try_acquire_or_renew() and not me._took_over  # renewed: still ours
    # another replica takes it over, then we take it back once it expired
    kube.lease["spec"]["holderIdentity"] = "other"
    assert not await me._try_acquire_or_renew()  # its renewal is fresh: live
    me._observed_at -= 60  # and then not renewed for longer than the duration
    assert await me._try_acquire_or_renew() and me._took_over


async def test_run_calls_on_start_only_when_taking_the_lease(monkeypatch):
    """A late renewal of our own Lease only wakes the dispatcher (on_resume), no re-list."""
    clock = [1000.0]
    gaps = iter([2.0, 10.0, 2.0])  # a renewal in time, then one far too late, then in time

    class Done(Exception):
        pass

    async def fake_sleep(_seconds):
        try:
            clock[0] += next(gaps)
        except StopIteration:
            raise Done from None

    monkeypatch.setattr(leader.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(leader.asyncio, "sleep", fake_sleep)
    calls: list[str] = []
    me = LeaderElector(FakeLeases(), "ns", "lease", duration=6, renew_every=2,
                       on_start=lambda: calls.append("start"), on_resume=lambda: calls.append("resume"))
    with pytest.raises(Done):
        await me.run()
    assert calls == ["start", "resume"]
