"""The notifier's protocol against a real HTTP server on 127.0.0.1: no POST goes out before the
API holds the record announcing it, a record that cannot be written means no POST, and a stop
waits for the POST in flight to be answered and recorded."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiohttp import web

from sluice.api.execution import NotificationRecord
from sluice.cache.view import ClusterView
from sluice.notify.decide import record_of
from sluice.notify.sender import Notifier

from .builders import execution, queue

KEY = ("ns", "x")
LAND_SECONDS = 0.05


class FakeDispatcher:
    """Stands for `Dispatcher`'s notifier entry points: a write shows in the view at once and
    "lands" in the API after LAND_SECONDS (then the view holds the API's version). Differs: no
    watch, no other writers; `lose_writes` makes every write fail (the view goes back)."""

    def __init__(self, view: ClusterView):
        self.view, self.lose_writes = view, False
        self.api: dict[str, NotificationRecord] = {}  # what the API holds, by notification name
        self.writing = 0
        self.events = self
        self.posted_events: list[tuple[str, str]] = []

    def is_leader(self) -> bool:
        return True

    def post_for(self, ns, name, uid, type_, reason, message) -> None:
        self.posted_events.append((reason, message))

    def write_notification(self, key, uid, record: NotificationRecord) -> bool:
        rec = self.view.executions.get(key)
        if rec is None or rec.uid != uid:
            return False
        self._show(key, record.name, record)
        self.writing += 1
        asyncio.get_running_loop().call_later(LAND_SECONDS, self._land, key, record)
        return True

    def _land(self, key, record) -> None:
        self.writing -= 1
        if not self.lose_writes:
            self.api[record.name] = record
        self._show(key, record.name, self.api.get(record.name))

    def _show(self, key, name: str, record: NotificationRecord | None) -> None:
        rec = self.view.executions[key]
        st = rec.status.model_copy(deep=True)
        st.notifications = [r for r in st.notifications if r.name != name] + ([record] if record else [])
        rec.status = st

    def status_settled(self, key) -> bool:
        return self.writing == 0


class Urls:
    def __init__(self, url: str):
        self.url = url

    async def get(self, namespace, ref) -> str:
        return self.url


async def setup(handler):
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    view = ClusterView()
    view.upsert_queue(queue("q", notifications=[{"name": "n", "outcomes": ["Failed"],
                                                 "webhook": {"urlSecretRef": {"name": "s", "key": "url"}}}]))
    now = datetime.now(timezone.utc)
    view.upsert_execution(execution("x", queue="q", status={"phase": "Failed", "reason": "TestsFailed",
                                                            "completedAt": now.isoformat()}))
    port_ = FakeDispatcher(view)
    tasks: list[asyncio.Task] = []
    notifier = Notifier(port_, Urls(f"http://127.0.0.1:{port}/hook"), lambda c: tasks.append(asyncio.ensure_future(c))
                        or tasks[-1])
    notifier.after_pass(view, now)
    return runner, port_, notifier, tasks


async def test_no_post_before_the_api_holds_the_record():
    seen = []

    async def hook(request):
        seen.append((request.headers["Idempotency-Key"], port.api.get("n")))
        return web.Response(text="ok")

    runner, port, notifier, tasks = await setup(hook)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        [(key, held)] = seen
        assert key == "uid-x-Failed-n"
        assert (held.state, held.attempts, held.message, held.key) == ("Pending", 1, None, key)
        done = port.api["n"]
        assert (done.state, done.attempts, done.message) == ("Delivered", 1, "HTTP 200: ok")
        assert record_of(port.view.executions[KEY].status, "n") == done
        assert [r for r, _ in port.posted_events] == ["NotificationSent"]
    finally:
        await notifier.drain(0)
        await runner.cleanup()


async def test_a_record_that_cannot_be_written_means_no_post():
    seen = []

    async def hook(request):
        seen.append(1)
        return web.Response(text="ok")

    runner, port, notifier, tasks = await setup(hook)
    port.lose_writes = True
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        assert seen == [] and port.api == {}
    finally:
        await notifier.drain(0)
        await runner.cleanup()


async def test_a_stop_waits_for_the_post_in_flight_and_records_its_answer():
    arrived = asyncio.Event()

    async def hook(request):
        arrived.set()
        await asyncio.sleep(0.5)
        return web.Response(status=204)

    runner, port, notifier, tasks = await setup(hook)
    try:
        await asyncio.wait_for(arrived.wait(), 5)
        await notifier.drain(5)
        assert (port.api["n"].state, port.api["n"].message) == ("Delivered", "HTTP 204")
    finally:
        await runner.cleanup()
