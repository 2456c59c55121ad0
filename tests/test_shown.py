"""Dates and times as a person reads them (dsr_mailbot/shown.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from dsr_mailbot.shown import shown_time


def test_times_a_person_reads_are_in_the_operators_zone_with_the_zone_named() -> None:
    moment = datetime(2026, 3, 20, 18, 30, tzinfo=UTC)
    assert shown_time(moment, "Asia/Almaty") == "2026-03-20 23:30 Asia/Almaty"
    assert shown_time("2026-03-20T18:30:00+00:00", "Europe/Moscow") == "2026-03-20 21:30 Europe/Moscow"
    assert shown_time(moment, "Asia/Almaty", with_time=False) == "2026-03-20"
    assert shown_time(None, "Asia/Almaty") == "—"
