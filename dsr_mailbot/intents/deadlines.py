"""When a request must be answered, by law: deadline profiles as data, counted in a country's working days (pure).

The figures live in ``deadlines.toml`` beside this module, one line per
profile and intent, each citing its row in ``../shared/legal-deadlines.md``:

- ``ru-152fz`` (the policy cites 152-FZ): update 7 working days, access and
  questions 10 (+5 with a reasoned notice), withdrawal and opt-out at once,
  destruction within 30 calendar days;
- ``kz`` (the operator is in Kazakhstan; every KZ figure is UNVERIFIED there);
- ``gdpr`` (for comparison): one calendar month.

``[policy] deadline_profile`` names one profile or several; the strictest
(earliest) due date wins.  Working days are those of ``[policy] calendar``
(a country code of the ``holidays`` package: public holidays and the
transferred working days, e.g. KZ's observed Mondays).  Counting starts the
day after receipt, in ``[policy] timezone``; a deadline of N days ends at
the end of its N-th day there.  A confirmation being awaited pauses nothing.
"""

from __future__ import annotations

import calendar as month_calendar
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from dsr_mailbot.store.models import RequestKind

if TYPE_CHECKING:
    import holidays

Unit = Literal["working", "calendar", "months", "immediate"]
DEFAULT_PROFILES = ("ru-152fz", "kz")
DEFAULT_CALENDAR = "KZ"


@dataclass(frozen=True)
class Rule:
    unit: Unit
    count: int
    cite: str
    extension: int = 0  # further working days allowed once, with a reasoned notice
    extension_months: int = 0  # further months allowed once, with a reasoned notice (GDPR Art. 12(3))

    def extended(self) -> Rule:
        """The rule after its one extension; the same rule where the law allows none."""
        if self.unit == "working" and self.extension:
            return Rule(self.unit, self.count + self.extension, self.cite)
        if self.unit == "months" and self.extension_months:
            return Rule(self.unit, self.count + self.extension_months, self.cite)
        return self


@cache
def profiles() -> Mapping[str, Mapping[str, Rule]]:
    """Every shipped profile: intent name → its rule."""
    text = (resources.files("dsr_mailbot.intents") / "deadlines.toml").read_text(encoding="utf-8")
    return {
        name: {intent: Rule(**fields) for intent, fields in rules.items()}
        for name, rules in tomllib.loads(text).items()
    }


@cache
def _calendar(country: str) -> holidays.HolidayBase:
    # Loading a calendar imports every country's module (0.1 s): only when a date is counted.
    import holidays

    return holidays.country_holidays(country)


@cache
def calendar_version() -> str:
    """The ``holidays`` release whose calendars count the working days: the audit trail records it with each date."""
    from importlib.metadata import version

    return version("holidays")


def supported_calendar(country: str) -> bool:
    """Does ``holidays`` know this country?  Read from its registry, without loading any calendar."""
    from holidays.registry import COUNTRIES

    return any(country == codes[1] for codes in COUNTRIES.values())


def _end_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, month_calendar.monthrange(year, month)[1]))


def due_by_rule(rule: Rule, received_at: datetime, country: str, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    received_day = received_at.astimezone(zone).date()
    if rule.unit == "immediate":
        return received_at
    if rule.unit == "calendar":
        return _end_of(received_day + timedelta(days=rule.count), zone)
    if rule.unit == "months":
        return _end_of(_add_months(received_day, rule.count), zone)
    days = _calendar(country)
    day, counted = received_day, 0
    while counted < rule.count:  # the day after receipt is the first that may count
        day += timedelta(days=1)
        counted += days.is_working_day(day)
    return _end_of(day, zone)


def working_days_between(start: datetime, end: datetime, country: str, timezone: str) -> int:
    """Working days after ``start``'s day up to and including ``end``'s, in ``timezone``: how deadlines count.

    0 when both fall on the same local day; 1 when ``end`` is on the next working day.
    """
    zone = ZoneInfo(timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days, counted = _calendar(country), 0
    while day < last:
        day += timedelta(days=1)
        counted += days.is_working_day(day)
    return counted


def soon_horizon(now: datetime, working_days: int, country: str, timezone: str) -> datetime:
    """The end of the ``working_days``-th working day after today, or ``now`` itself for 0: what "due soon" means."""
    return due_by_rule(Rule("working", working_days, "due soon"), now, country, timezone) if working_days else now


def due_at(kind: str, received_at: datetime, profile_names: Sequence[str] = DEFAULT_PROFILES,
           country: str = DEFAULT_CALENDAR, timezone: str = "Asia/Almaty", *, extended: bool = False) -> datetime:
    """The strictest due date of ``kind`` among the profiles (a confirmation is due at once).

    ``extended``: after the one extension each profile allows (a profile
    that allows none keeps its date, and being strictest, it still wins).
    """
    if kind == RequestKind.CONFIRM:
        return received_at
    rules = [profiles()[name][kind] for name in profile_names if kind in profiles()[name]]
    if not rules:
        raise KeyError(f"no deadline for {kind!r} in profiles {', '.join(profile_names)}")
    return min(due_by_rule(rule.extended() if extended else rule, received_at, country, timezone) for rule in rules)


def erasure_limit_days(profile_names: Sequence[str]) -> int | None:
    """The strictest calendar-day bound on destruction after a withdrawal, if a profile sets one."""
    bounds = [profiles()[name]["erasure"].count for name in profile_names
              if "erasure" in profiles()[name] and profiles()[name]["erasure"].unit == "calendar"]
    return min(bounds) if bounds else None


def erasure_due_at(received_at: datetime, erasure_delay_days: int) -> datetime:
    return received_at + timedelta(days=erasure_delay_days)
