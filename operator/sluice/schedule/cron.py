"""A TestSchedule's cron expression read in its time zone: which times it fires at.

Parsing and stepping are cronsim's (the Debian cron rules, DST included: a time skipped by a
spring-forward runs right after the jump, a time repeated by a fall-back runs once); this
module only adds what CronJob accepts on top (the @hourly-style macros, five fields only, the
time zone from `spec.timeZone`) and says what is wrong in one sentence. It never looks at
executions or the clock: callers pass the times.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {  # CronJob's (robfig/cron's) descriptors
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
COUNT_MISSED_UP_TO = 100  # CronJob's bound too: past it, "more than 100" is all anyone needs


class ScheduleError(ValueError):
    """Why a schedule or time zone cannot be used, as one sentence."""


@dataclass(frozen=True)
class Cron:
    expr: str  # five fields, macros expanded
    zone: tzinfo

    def next_after(self, t: datetime) -> datetime:
        """The first scheduled time strictly after `t` (UTC)."""
        return _utc(next(iter(CronSim(self.expr, t.astimezone(self.zone).replace(microsecond=0)))))

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last scheduled time at or before `t` (UTC), or None if it never fired before."""
        start = t.astimezone(self.zone).replace(microsecond=0) + timedelta(seconds=1)
        try:
            return _utc(next(iter(CronSim(self.expr, start, reverse=True))))
        except StopIteration:
            return None

    def count_between(self, after: datetime, upto: datetime) -> int:
        """How many scheduled times fall in (after, upto], counted up to COUNT_MISSED_UP_TO."""
        n = 0
        for at in CronSim(self.expr, after.astimezone(self.zone).replace(microsecond=0)):
            if _utc(at) > upto or n >= COUNT_MISSED_UP_TO:
                break
            n += 1
        return n


def _utc(t: datetime) -> datetime:
    return t.astimezone(timezone.utc)


def zone(name: str | None) -> tzinfo:
    if not name or name == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f'spec.timeZone "{name}" is not a known IANA time zone (such as Europe/Berlin)') from None


def parse(schedule: str, time_zone: str | None) -> Cron:
    """The Cron of `spec.schedule` in `spec.timeZone`, or ScheduleError saying what to fix."""
    expr = " ".join(schedule.split())
    if expr.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError(f'spec.schedule "{schedule}" names a time zone: set spec.timeZone instead')
    expr = MACROS.get(expr.lower(), expr)
    if expr.startswith("@"):
        raise ScheduleError(f'spec.schedule "{schedule}": unknown macro (use one of {", ".join(MACROS)})')
    if len(expr.split()) != 5:
        raise ScheduleError(f'spec.schedule "{schedule}" must have five fields: minute hour day-of-month month day-of-week')
    tz = zone(time_zone)
    try:
        CronSim(expr, datetime.now(tz))
    except CronSimError as exc:
        raise ScheduleError(f'spec.schedule "{schedule}" is not a valid cron expression: {str(exc).lower()}') from None
    return Cron(expr, tz)
