"""When a request must be answered, by law: deadline profiles as data, counted in each law's working days (pure).

The figures live in ``deadlines.toml`` beside this module, one line per
profile and intent, each citing its row in ``../shared/legal-deadlines.md``:

- ``ru-152fz`` (the policy cites 152-FZ): update 7 working days, access and
  questions 10 (+5 with a reasoned notice), withdrawal and opt-out at once,
  destruction within 30 calendar days; counted on the RU calendar;
- ``kz`` (the operator is in Kazakhstan; every KZ figure is UNVERIFIED there),
  counted on the KZ calendar;
- ``gdpr`` (for comparison): one calendar month.

``[policy] deadline_profile`` names one profile or several; the strictest
(earliest) due date wins.  Each profile counts working days on its own law's
calendar (a country code of the ``holidays`` package: public holidays and the
transferred working days, e.g. KZ's observed Mondays), unless ``[policy]
calendar`` names one for all.  ``[policy] calendar_overrides`` adds the days
off and transferred working days of decrees published after the release.
Counting starts the day after receipt, in ``[policy] timezone``; a deadline of
N days ends at the end of its N-th day there.  A confirmation being awaited
pauses nothing.
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
def _shipped() -> Mapping[str, Mapping[str, object]]:
    return tomllib.loads((resources.files("dsr_mailbot.intents") / "deadlines.toml").read_text(encoding="utf-8"))


@cache
def profiles() -> Mapping[str, Mapping[str, Rule]]:
    """Every shipped profile: intent name → its rule."""
    return {
        name: {intent: Rule(**fields) for intent, fields in table.items() if isinstance(fields, dict)}
        for name, table in _shipped().items()
    }


def profile_calendar(name: str) -> str | None:
    """The country whose working days the profile's law counts in; None for a law that counts none (GDPR)."""
    country = _shipped()[name].get("calendar")
    return country if isinstance(country, str) else None


@dataclass(frozen=True)
class WorkCalendar:
    """A country's working days, with the days a later decree moved (``[policy] calendar_overrides``)."""

    country: str
    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day not in self.days_off and bool(_calendar(self.country).is_working_day(day))


Overrides = Mapping[str, WorkCalendar]


class OverridesError(ValueError):
    """A calendar overrides file that cannot be used; the message says where."""


def parse_calendar_overrides(text: str) -> dict[str, WorkCalendar]:
    """``[KZ] days_off = [2027-01-02]  working_days = [2027-01-09]``: per country, TOML dates or "YYYY-MM-DD"."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(str(exc)) from exc
    found: dict[str, WorkCalendar] = {}
    for country, table in data.items():
        code = country.upper()
        if not isinstance(table, dict) or not supported_calendar(code):
            raise OverridesError(f"[{country}]: expected a table named by a country code the holidays package knows")
        unknown = sorted(set(table) - {"days_off", "working_days"})
        if unknown:
            raise OverridesError(f"[{country}]: unknown key {unknown[0]!r} (days_off, working_days)")
        off, working = (_dates(country, key, table.get(key, [])) for key in ("days_off", "working_days"))
        if off & working:
            raise OverridesError(f"[{country}]: {min(off & working)} is both a day off and a working day")
        found[code] = WorkCalendar(code, off, working)
    return found


def _dates(country: str, key: str, values: object) -> frozenset[date]:
    if not isinstance(values, list):
        raise OverridesError(f"[{country}] {key}: expected a list of dates")
    days = set()
    for value in values:
        try:
            days.add(value if isinstance(value, date) and not isinstance(value, datetime)
                     else date.fromisoformat(value) if isinstance(value, str) else None)
        except ValueError:
            raise OverridesError(f"[{country}] {key}: {value!r} is not a date like 2027-01-02") from None
    if None in days:
        raise OverridesError(f"[{country}] {key}: expected dates like 2027-01-02")
    return frozenset(d for d in days if d is not None)


@dataclass(frozen=True)
class Clock:
    """The deadline rules of a configuration: its profiles, their calendars, its time zone."""

    profile_names: tuple[str, ...] = DEFAULT_PROFILES
    timezone: str = "Asia/Almaty"
    calendar: str | None = None  # one country for every profile (an older configuration's [policy] calendar)
    overrides: tuple[WorkCalendar, ...] = ()

    def calendar_name(self, profile: str) -> str | None:
        """The country counting ``profile``'s working days; None for a profile counted in calendar months."""
        return self.calendar or profile_calendar(profile)

    def work_calendar(self, country: str) -> WorkCalendar:
        return next((c for c in self.overrides if c.country == country), WorkCalendar(country))

    @property
    def main_calendar(self) -> str:
        """What "N working days left" and "due soon" count in: the first profile's calendar."""
        return next((c for c in map(self.calendar_name, self.profile_names) if c), DEFAULT_CALENDAR)

    def calendars(self) -> dict[str, str | None]:
        """Each profile → its calendar, as the audit trail records it."""
        return {name: self.calendar_name(name) for name in self.profile_names}

    def due_at(self, kind: str, received_at: datetime, *, extended: bool = False,
               profile_names: Sequence[str] | None = None) -> datetime:
        """The strictest due date of ``kind`` among the profiles (a confirmation is due at once).

        ``extended``: after the one extension each profile allows (a profile
        that allows none keeps its date, and being strictest, it still wins).
        """
        if kind == RequestKind.CONFIRM:
            return received_at
        names = self.profile_names if profile_names is None else profile_names
        dates = [due_by_rule(profiles()[name][kind].extended() if extended else profiles()[name][kind], received_at,
                             self.work_calendar(self.calendar_name(name) or self.main_calendar), self.timezone)
                 for name in names if kind in profiles()[name]]
        if not dates:
            raise KeyError(f"no deadline for {kind!r} in profiles {', '.join(names)}")
        return min(dates)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        return working_days_between(start, end, self.work_calendar(self.main_calendar), self.timezone)

    def soon_horizon(self, now: datetime, working_days: int) -> datetime:
        """"Due within N working days" on any of the profiles' calendars: the farthest, so none is missed."""
        countries = {c for c in map(self.calendar_name, self.profile_names) if c} or {self.main_calendar}
        return max(soon_horizon(now, working_days, self.work_calendar(c), self.timezone) for c in countries)


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


def _work_calendar(country: str | WorkCalendar) -> WorkCalendar:
    return country if isinstance(country, WorkCalendar) else WorkCalendar(country)


def due_by_rule(rule: Rule, received_at: datetime, country: str | WorkCalendar, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    received_day = received_at.astimezone(zone).date()
    if rule.unit == "immediate":
        return received_at
    if rule.unit == "calendar":
        return _end_of(received_day + timedelta(days=rule.count), zone)
    if rule.unit == "months":
        return _end_of(_add_months(received_day, rule.count), zone)
    days = _work_calendar(country)
    day, counted = received_day, 0
    while counted < rule.count:  # the day after receipt is the first that may count
        day += timedelta(days=1)
        counted += days.is_working_day(day)
    return _end_of(day, zone)


def working_days_between(start: datetime, end: datetime, country: str | WorkCalendar, timezone: str) -> int:
    """Working days after ``start``'s day up to and including ``end``'s, in ``timezone``: how deadlines count.

    0 when both fall on the same local day; 1 when ``end`` is on the next working day.
    """
    zone = ZoneInfo(timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days, counted = _work_calendar(country), 0
    while day < last:
        day += timedelta(days=1)
        counted += days.is_working_day(day)
    return counted


def soon_horizon(now: datetime, working_days: int, country: str | WorkCalendar, timezone: str) -> datetime:
    """The end of the ``working_days``-th working day after today, or ``now`` itself for 0: what "due soon" means."""
    return due_by_rule(Rule("working", working_days, "due soon"), now, country, timezone) if working_days else now


def due_at(kind: str, received_at: datetime, profile_names: Sequence[str] = DEFAULT_PROFILES,
           calendar: str | None = None, timezone: str = "Asia/Almaty", *, extended: bool = False) -> datetime:
    """:meth:`Clock.due_at` without overrides: ``calendar`` None counts each profile on its own law's calendar."""
    return Clock(tuple(profile_names), timezone, calendar).due_at(kind, received_at, extended=extended)


def erasure_limit_days(profile_names: Sequence[str]) -> int | None:
    """The strictest calendar-day bound on destruction after a withdrawal, if a profile sets one."""
    bounds = [profiles()[name]["erasure"].count for name in profile_names
              if "erasure" in profiles()[name] and profiles()[name]["erasure"].unit == "calendar"]
    return min(bounds) if bounds else None


def erasure_due_at(received_at: datetime, erasure_delay_days: int) -> datetime:
    return received_at + timedelta(days=erasure_delay_days)


def held_erasure_due_at(kind: str, until: datetime | None, received_at: datetime, max_block_days: int) -> datetime:
    """When data under a hold are destroyed after a withdrawal received at ``received_at``.

    ``block`` (152-FZ Art. 21 ч.6: destruction within the term is impossible): at the hold's end, and at most
    ``max_block_days`` after the withdrawal (six months).  ``retain`` (Art. 9 ч.2: processing goes on under another
    legal ground): at the hold's end, which it must have, however far.
    """
    if kind == "retain":
        if until is None:
            raise ValueError("a retain hold needs its end")
        return until
    cap = received_at + timedelta(days=max_block_days)
    return min(until, cap) if until is not None else cap
