"""The dispatcher's intake: watch events into the view, and the loop woken.

Every event of the watch streams (`streams.py`) and of the kopf handlers (`handlers.py`) comes
through one `on_*` handler: executions and Job deletions through `cache.assumptions` (which keeps
the writes still in flight and marks what changed), the other kinds straight into the view; then
the loop is woken. The followers hear of each execution event (`listen`, the hooks). The
subsystems' ways in (`write_progress`, `write_notification`) assume a status through the same
`assume_status` as the planner's writes and hand it to the status writer. A handler runs inside
the watch that brought the event, so it only takes note: a burst of events costs one pass of the
loop, not one decision each.

It never decides (that is the loop's pass, `loop.py`), never calls the API itself (the actuators
and the Event poster do, in their own tasks) and never waits: it updates the view and wakes the loop.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from ..api.execution import NotificationRecord, Progress
from ..cache import assumptions as A
from ..cache.view import ClusterView, Key

if TYPE_CHECKING:
    from ..kube.events import EventPoster
    from ..metrics import Metrics
    from ..planner import Memo
    from .actuators import Actuators

# a priority change the webhook told this long ago (before the watch brought it) is not told again
PRIORITY_EVENT_WINDOW_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Intake:
    """The event half of `loop.Dispatcher`, which sets what it uses in its `__init__`."""

    view: ClusterView
    assumed: A.Assumptions
    memo: Memo
    act: Actuators
    events: EventPoster
    metrics: Metrics | None
    first_seen: dict[Key, datetime]
    wakeup: asyncio.Event
    is_leader: Callable[[], bool]
    execution_listeners: list[Callable[[Key], None]]
    execution_hooks: list[Callable[[str, dict], None]]

    def write_progress(self, key: Key, progress: Progress) -> None:
        """The progress relay's way in: a status with only `progress` changed, through the same
        writer (and the same rules of whose status wins) as the planner's own writes."""
        rec = self.view.executions.get(key)
        if rec is None or rec.status.phase is None:
            return
        st = rec.status.working_copy()
        st.progress = progress
        if A.assume_status(self.view, self.assumed, key, st, None):
            self.act.carry_out(A.Effects(status_writers=[key]))

    def listen(self, listener: Callable[[Key], None]) -> None:
        """`listener(key)` after each watch or list event that changed an execution in the view
        (not after a deletion). It must only take note: it runs inside the watch handler."""
        self.execution_listeners.append(listener)

    def write_notification(self, key: Key, uid: str, record: NotificationRecord) -> bool:
        """The notifier's way in: a status with one `notifications[]` record set (by name), through
        the same writer as the planner's. False when the execution is gone, another object (uid),
        or not ended; True when the record is written or already says the same."""
        rec = self.view.executions.get(key)
        if rec is None or rec.uid != uid or rec.status.phase is None or not rec.status.phase.terminal:
            return False
        records = rec.status.notifications
        old = next((r for r in records if r.name == record.name), None)
        if old is not None and old.model_dump(exclude={"last_attempt_at"}) == record.model_dump(exclude={"last_attempt_at"}):
            return True
        st = rec.status.working_copy()
        st.notifications = [record if r.name == record.name else r for r in records] + ([] if old else [record])
        if A.assume_status(self.view, self.assumed, key, st, None):
            self.act.carry_out(A.Effects(status_writers=[key]))
        return True

    def status_settled(self, key: Key) -> bool:
        """No write of ours is queued or in flight for this execution: its status in the view is
        the API's (what the notifier waits for before it relies on a record)."""
        return not self.assumed.overlays(key)

    # ---- watch events in (from the watch streams and kopf handlers) ----------------------
    def on_execution(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        deleted = event_type == "DELETED"
        changed = A.observe_execution(self.view, self.assumed, deleted, obj)
        if changed and deleted:
            self.first_seen.pop(key, None)
            self.memo.forget(key)
            self.act.forget(key)
        elif changed:
            self.first_seen.setdefault(key, _now())
        self._tell_followers(key, event_type, obj, changed and not deleted)
        self.wake()

    def _answered(self, key: Key, obj: dict) -> None:
        """A status write's answer, folded by the writer: the followers hear of it as of an event
        (the watch's echo of the same version finds it known and is skipped)."""
        self._tell_followers(key, "MODIFIED", obj, key in self.view.executions)

    def _tell_followers(self, key: Key, event_type: str, obj: dict, changed: bool) -> None:
        """Listeners (`listen`) hear of a change to an execution the view holds; hooks of every event."""
        if changed:
            for listener in self.execution_listeners:
                listener(key)
        for hook in self.execution_hooks:
            hook(event_type, obj)

    def on_job(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            A.observe_job_deleted(self.view, self.assumed, key)
        else:
            before = self.view.jobs.get(key)
            self.view.upsert_job(obj)
            after = self.view.jobs.get(key)
            if self.metrics and before is not None and before.occupies and after is not None and not after.occupies:
                self.metrics.slot_freed(time.monotonic())
        self.wake()

    def on_queue(self, event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        if event_type == "DELETED":
            self.view.delete_queue(meta.get("namespace", ""), meta.get("name", ""))
        else:
            self.view.upsert_queue(obj)
        self.wake()

    def on_environment(self, event_type: str, obj: dict) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if event_type == "DELETED":
            self.view.delete_environment(name)
        else:
            self.view.upsert_environment(obj)
        self.wake()

    def on_namespace(self, event_type: str, obj: dict) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if event_type == "DELETED":
            self.view.delete_namespace(name)
        else:
            self.view.upsert_namespace(obj)
        self.wake()

    def on_pod(self, event_type: str, obj: dict) -> None:
        """An unstarted runner pod (see cache/pods.py); DELETED also when it started."""
        meta = obj.get("metadata") or {}
        if event_type == "DELETED":
            self.view.delete_pod(meta.get("namespace", ""), meta.get("name", ""))
        else:
            self.view.upsert_pod(obj)
        self.wake()

    def wake(self) -> None:
        self.wakeup.set()

    def announce_priority_changes(self) -> None:
        """An Event for each spec.priority change the view saw (the leader's; a standby forgets them),
        unless the admission webhook just posted one naming who made it."""
        changes = self.view.take_priority_changes()
        if not self.is_leader():
            return
        since = time.monotonic() - PRIORITY_EVENT_WINDOW_SECONDS
        for change in changes:
            kind, reason, message = change.event
            if not self.events.told_since(change.uid, reason, message, since):
                self.events.post_for(change.key[0], change.key[1], change.uid, kind, reason, message)
