"""Legal deadlines: profiles as data, each counted on its own law's calendar, the strictest profile wins."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from dsr_mailbot.intents.deadlines import (
    DEFAULT_CALENDAR,
    Clock,
    OverridesError,
    due_at,
    erasure_limit_days,
    parse_calendar_overrides,
    profiles,
    supported_calendar,
)
from dsr_mailbot.store.models import RequestKind

ALMATY = ZoneInfo("Asia/Almaty")
CALENDARS = {"KZ": holidays.country_holidays("KZ"), "RU": holidays.country_holidays("RU")}
OWN_CALENDAR = {"ru-152fz": "RU", "kz": "KZ"}


def received(day: date, hour: int = 15) -> datetime:
    return datetime.combine(day, time(hour), ALMATY).astimezone(UTC)


def nth_working_day_after(day: date, n: int, country: str = "KZ") -> date:
    """Straight from the holidays package: the reference the bot's dates are checked against."""
    while n:
        day += timedelta(days=1)
        n -= CALENDARS[country].is_working_day(day)
    return day


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), ALMATY).astimezone(UTC)


FRIDAY_BEFORE_NAURYZ = date(2026, 3, 20)  # 21–25 March 2026 off in KZ, observed days included
FRIDAY_BEFORE_INDEPENDENCE_DAY = date(2026, 12, 11)


@pytest.mark.parametrize("friday", [FRIDAY_BEFORE_NAURYZ, FRIDAY_BEFORE_INDEPENDENCE_DAY])
@pytest.mark.parametrize(("profile", "kind", "days"), [
    ("ru-152fz", "update", 7), ("ru-152fz", "access", 10), ("ru-152fz", "question", 10),
    ("kz", "update", 1), ("kz", "withdraw", 1), ("kz", "access", 3), ("kz", "question", 3),
])
def test_working_days_skip_holidays_and_weekends_of_the_profiles_own_law(friday: date, profile: str, kind: str,
                                                                           days: int) -> None:
    assert due_at(kind, received(friday), [profile]) == end_of(nth_working_day_after(friday, days,
                                                                                      OWN_CALENDAR[profile]))
    # [policy] calendar, when set, counts every profile on that one country's days, as configurations did before.
    assert due_at(kind, received(friday), [profile], "KZ") == end_of(nth_working_day_after(friday, days, "KZ"))


def test_an_update_under_152fz_counts_russian_working_days_not_kazakh_ones() -> None:
    # Friday 20 March 2026: Nauryz (21–25 March) is no holiday in Russia, so 7 RU working days end on the 31st.
    assert due_at("update", received(FRIDAY_BEFORE_NAURYZ), ["ru-152fz"]) == end_of(date(2026, 3, 31))
    assert due_at("update", received(FRIDAY_BEFORE_NAURYZ), ["ru-152fz"], "KZ") == end_of(date(2026, 4, 3))


def test_the_russian_new_year_days_off_do_not_count_under_152fz() -> None:
    # 1–8 January 2027 are off in Russia; in Kazakhstan only the 1st, 2nd and 7th are.
    before = received(date(2026, 12, 30))
    assert due_at("update", before, ["ru-152fz"]) == end_of(nth_working_day_after(date(2026, 12, 30), 7, "RU"))
    assert due_at("update", before, ["ru-152fz"]) > due_at("update", before, ["ru-152fz"], "KZ")
    assert not CALENDARS["RU"].is_working_day(date(2027, 1, 5)) and CALENDARS["KZ"].is_working_day(date(2027, 1, 5))


def test_each_profile_names_its_calendar_and_gdpr_counts_months() -> None:
    assert Clock().calendars() == {"ru-152fz": "RU", "kz": "KZ"}
    assert Clock(("gdpr", "kz")).calendars() == {"gdpr": None, "kz": "KZ"}
    assert Clock(calendar="KZ").calendars() == {"ru-152fz": "KZ", "kz": "KZ"}
    assert Clock().main_calendar == "RU" and Clock(("gdpr",)).main_calendar == DEFAULT_CALENDAR


def test_overrides_add_decreed_days_off_and_transferred_working_days() -> None:
    overrides = parse_calendar_overrides('[KZ]\ndays_off = [2026-11-27]\nworking_days = ["2026-11-28"]\n')
    clock = Clock(("kz",), overrides=tuple(overrides.values()))
    thursday = received(date(2026, 11, 26))
    # Friday the 27th is now off and Saturday the 28th a working day: one working day ends on Saturday.
    assert clock.due_at("update", thursday) == end_of(date(2026, 11, 28))
    assert Clock(("kz",)).due_at("update", thursday) == end_of(date(2026, 11, 27))
    # Another country's overrides leave this one alone.
    assert Clock(("ru-152fz",), overrides=tuple(overrides.values())).due_at("update", thursday) == \
        due_at("update", thursday, ["ru-152fz"])


@pytest.mark.parametrize(("text", "message"), [
    ("[XX]\ndays_off = [2027-01-02]\n", "country code"),
    ("[KZ]\nholidays = [2027-01-02]\n", "unknown key 'holidays'"),
    ('[KZ]\ndays_off = ["2 January"]\n', "is not a date"),
    ("[KZ]\ndays_off = 2027-01-02\n", "expected a list"),
    ("[KZ]\ndays_off = [3]\n", "expected dates"),
    ("[KZ]\ndays_off = [2027-01-02]\nworking_days = [2027-01-02]\n", "both a day off and a working day"),
    ("[KZ\n", "line 1"),
])
def test_a_wrong_overrides_file_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(OverridesError, match=message):
        parse_calendar_overrides(text)


def test_the_default_calendar_is_one_the_holidays_package_knows_and_others_are_looked_up() -> None:
    # The configuration takes the default without a look-up; this is the look-up it spares.
    assert supported_calendar(DEFAULT_CALENDAR)
    assert supported_calendar("RU") and not supported_calendar("XX")


def test_the_first_working_day_after_nauryz_is_thursday() -> None:
    """Receipt on Friday 20 March 2026: Saturday to Wednesday are off, so one working day ends on the 26th."""
    assert due_at("update", received(FRIDAY_BEFORE_NAURYZ), ["kz"]) == end_of(date(2026, 3, 26))


@pytest.mark.parametrize(("friday", "a_month_later"), [(FRIDAY_BEFORE_NAURYZ, date(2026, 4, 20)),
                                                      (FRIDAY_BEFORE_INDEPENDENCE_DAY, date(2027, 1, 11))])
def test_gdpr_counts_a_calendar_month_and_immediate_is_at_receipt(friday: date, a_month_later: date) -> None:
    assert due_at("access", received(friday), ["gdpr"]) == end_of(a_month_later)
    assert due_at("optout", received(friday), ["ru-152fz", "kz", "gdpr"]) == received(friday)


def test_the_strictest_profile_wins_and_counting_starts_the_next_local_day() -> None:
    late_evening = datetime.combine(date(2026, 11, 26), time(23, 30), ALMATY).astimezone(UTC)  # still the 26th there
    both = due_at("update", late_evening, ["ru-152fz", "kz"])
    assert both == due_at("update", late_evening, ["kz"]) == end_of(date(2026, 11, 27))
    assert due_at("update", late_evening, ["ru-152fz"]) > both
    assert due_at(RequestKind.CONFIRM, late_evening) == late_evening


def test_every_profile_cites_its_source_and_every_intent_has_a_deadline_in_every_profile() -> None:
    for name, rules in profiles().items():
        for intent in ("update", "withdraw", "optout", "access", "question"):
            assert intent in rules, (name, intent)
        assert all("§" in rule.cite for rule in rules.values()), name
    assert erasure_limit_days(["ru-152fz", "kz"]) == 30 and erasure_limit_days(["gdpr"]) is None


def test_a_kz_only_configuration_destroys_within_30_calendar_days_too() -> None:
    # No KZ period is sourced (legal-deadlines.md §2, §5.1): the RU figure, marked UNVERIFIED, bounds it.
    assert erasure_limit_days(["kz"]) == 30
    assert "UNVERIFIED" in profiles()["kz"]["erasure"].cite


@pytest.mark.parametrize("friday", [FRIDAY_BEFORE_NAURYZ, FRIDAY_BEFORE_INDEPENDENCE_DAY])
def test_an_extension_adds_what_each_profile_allows_and_the_strictest_still_wins(friday: date) -> None:
    at = received(friday)
    assert due_at("access", at, ["ru-152fz"], extended=True) == end_of(nth_working_day_after(friday, 15, "RU"))
    assert due_at("question", at, ["ru-152fz"], extended=True) == end_of(nth_working_day_after(friday, 15, "RU"))
    assert due_at("update", at, ["ru-152fz"], extended=True) == due_at("update", at, ["ru-152fz"])  # none allowed
    assert due_at("access", at, ["ru-152fz", "kz"], extended=True) == due_at("access", at, ["kz"])
    three_months = date(friday.year + (friday.month + 2) // 12, (friday.month + 2) % 12 + 1, friday.day)
    assert due_at("access", at, ["gdpr"], extended=True) == end_of(three_months)
    assert due_at("withdraw", at, ["ru-152fz"], extended=True) == at


def test_due_soon_reaches_as_far_as_any_profiles_calendar_and_days_left_count_on_the_first() -> None:
    thursday = received(date(2026, 3, 19))  # Nauryz follows in KZ, not in RU
    clock = Clock()
    assert clock.soon_horizon(thursday, 2) == end_of(date(2026, 3, 26)) == \
        Clock(("kz",)).soon_horizon(thursday, 2) > Clock(("ru-152fz",)).soon_horizon(thursday, 2)
    assert clock.working_days_between(thursday, end_of(date(2026, 3, 26))) == 5  # RU: 20, 23, 24, 25, 26
    assert clock.soon_horizon(thursday, 0) == thursday
