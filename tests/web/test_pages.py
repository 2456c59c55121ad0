"""What the console's pages show, decided without HTTP (web/pages.py): masks, deadlines and the weekly chart."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.deadlines import working_days_between
from dsr_mailbot.replies.reply import default_templates_dir
from dsr_mailbot.store.models import Request
from dsr_mailbot.web.pages import CHART_HEIGHT, deadline, mask, weekly_chart

NOW = datetime(2026, 3, 18, 6, 0, tzinfo=UTC)  # a Wednesday; Nauryz (21-23 March 2026) follows


@pytest.mark.parametrize(("field", "value", "masked"), [
    ("sender", "ivan.petrov@example.ru", "i***@example.ru"),
    ("user.email", "anna@example.kz", "a***@example.kz"),
    ("asked.phone", "+7 701 111 22 33", "•••33"),
    ("user.surname", "Петров", "П•••"),
    ("letter", "Кому вы передаёте мой телефон?", "•••"),
    ("subject", "Personal data update: Петров, +7 701 111 22 33", "•••"),
    ("owner_reply", "Иә, бірақ телефонымды да өзгертіңіз", "•••"),
    ("user.patronymic", None, "—"),
])
def test_a_masked_value_is_recognisable_not_readable(field: str, value: str | None, masked: str) -> None:
    assert mask(field, value) == masked


def test_working_days_left_count_holidays_and_overdue_is_marked() -> None:
    policy = PolicyConfig()
    due = datetime(2026, 3, 25, 18, 59, tzinfo=UTC)
    ahead = deadline(due, NOW, policy)
    assert not ahead.overdue and ahead.days_left == working_days_between(NOW, due, "RU", policy.timezone)
    assert ahead.days_left < (due.date() - NOW.date()).days  # the weekend and Nauryz do not count
    today = deadline(NOW + timedelta(hours=2), NOW, policy)
    assert (today.overdue, today.days_left) == (False, 0)
    late = deadline(NOW - timedelta(minutes=1), NOW, policy)
    assert late.overdue


def _received(day: date, *intents: str) -> Request:
    at = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    return Request(message_ref="x", source="s", uidvalidity=1, uid=1, kind=intents[0], intents=list(intents),
                   state="completed", language="ru", received_at=at, due_at=at, subject_ref="-")


def test_the_weekly_chart_has_a_bar_per_week_of_the_month_stacked_by_intent() -> None:
    requests = [_received(date(2026, 3, 2), "update"), _received(date(2026, 3, 3), "update", "optout"),
                _received(date(2026, 3, 18), "withdraw"), _received(date(2026, 3, 31), "question"),
                _received(date(2026, 3, 4), "confirm")]
    chart = weekly_chart(requests, "Asia/Almaty", date(2026, 3, 1), date(2026, 4, 1))
    # 1 March 2026 is a Sunday: its week began on 23 February; 31 March is in the week of 30 March.
    assert chart.weeks == (date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16),
                           date(2026, 3, 23), date(2026, 3, 30))
    assert chart.intents == ("optout", "question", "update", "withdraw")  # confirmations are not requests
    assert chart.counts[(date(2026, 3, 2), "update")] == 2 and chart.counts[(date(2026, 3, 2), "optout")] == 1
    assert chart.most == 3
    tallest = [b for b in chart.bars if b.x == chart.labels[1][0]]
    assert sum(b.height for b in tallest) == CHART_HEIGHT and min(b.y for b in tallest) == 0
    assert len(chart.bars) == 4  # one bar per (week, intent) that has requests: 2 + 1 + 1


def test_a_month_without_requests_draws_empty_weeks() -> None:
    chart = weekly_chart([], "Asia/Almaty", date(2026, 2, 1), date(2026, 3, 1))
    assert chart.bars == () and chart.most == 0 and len(chart.weeks) == 5


def test_every_console_string_is_in_every_language() -> None:
    with (default_templates_dir() / "console" / "strings.toml").open("rb") as handle:
        strings = tomllib.load(handle)
    assert set(strings) == {"en", "ru", "kk"}
    for language in ("ru", "kk"):
        assert set(strings[language]) == set(strings["en"]), language
        for key, text in strings[language].items():
            assert sorted(_fields(text)) == sorted(_fields(strings["en"][key])), (language, key)


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_the_deadlines_page_gives_each_profiles_date_and_counts_the_strictest(sqlite_url: str) -> None:
    from dsr_mailbot.intents.deadlines import due_at
    from dsr_mailbot.store.database import Store
    from dsr_mailbot.web.pages import deadlines

    policy = PolicyConfig()
    now = datetime(2026, 3, 19, 6, 0, tzinfo=UTC)  # Thursday before Nauryz
    store = Store(sqlite_url)
    store.init_schema()
    with store.transaction() as session:
        for n, (kind, received, state) in enumerate([
            ("access", now - timedelta(days=20), "review"),  # late
            ("access", now - timedelta(hours=1), "review"),  # due soon under kz (3 working days)
            ("question", now - timedelta(days=30), "completed"),  # closed: not listed
        ]):
            due = due_at(kind, received, policy.deadline_profile)
            session.add(Request(message_ref=f"r{n}", source="s", uidvalidity=1, uid=n, kind=kind, intents=[kind],
                                state=state, language="ru", received_at=received, due_at=due, subject_ref="-"))
    with store.transaction() as session:
        page = deadlines(session, now, policy, within=5)
    late, soon = page.late, page.soon
    assert (page.late_count, page.soon_count, page.previous, page.next) == (1, 1, None, None)
    assert [r.deadline.overdue for r in late] == [True] and [r.deadline.overdue for r in soon] == [False]
    row = soon[0]
    by_profile = dict(row.by_profile)
    received = now - timedelta(hours=1)
    assert set(by_profile) == {"ru-152fz", "kz"}
    for name, when in by_profile.items():
        assert when == due_at("access", received, [name])
    assert row.deadline.due_at == min(by_profile.values()) == by_profile["kz"]  # the strictest counts
    store.dispose()


def test_a_deadlines_page_splits_its_rows_under_late_and_soon_and_counts_the_whole_store(sqlite_url: str) -> None:
    from dsr_mailbot.store.database import Store
    from dsr_mailbot.store.paging import parse_key
    from dsr_mailbot.web.pages import deadlines

    policy = PolicyConfig()
    now = datetime(2026, 3, 19, 6, 0, tzinfo=UTC)
    store = Store(sqlite_url)
    store.init_schema()
    with store.transaction() as session:  # four late (the latest first by id), four due within hours
        for n, due in enumerate([now - timedelta(hours=h) for h in (1, 4, 2, 3)] +
                                [now + timedelta(hours=h) for h in (3, 1, 4, 2)]):
            session.add(Request(message_ref=f"r{n}", source="s", uidvalidity=1, uid=n, kind="access",
                                intents=["access"], state="review", language="ru", received_at=due - timedelta(days=10),
                                due_at=due, subject_ref="-"))
    pages = []
    with store.transaction() as session:
        pages.append(deadlines(session, now, policy, size=3))
        while pages[-1].next is not None:
            pages.append(deadlines(session, now, policy, size=3, after=parse_key(pages[-1].next)))
    shown = [([r.id for r in p.late], [r.id for r in p.soon]) for p in pages]
    # The most overdue first, then the soonest due: the late ones all come before the soon ones.
    assert shown == [([2, 4, 3], []), ([1], [6, 8]), ([], [5, 7])]
    assert {(p.late_count, p.soon_count) for p in pages} == {(4, 4)}
    assert [p.previous is not None for p in pages] == [False, True, True]
    store.dispose()


def test_the_browsers_languages_are_taken_by_their_weight_then_their_order() -> None:
    from dsr_mailbot.web.login import preferred_languages

    assert preferred_languages("en;q=0.1, kk-KZ;q=0.8, ru") == ["ru", "kk", "en"]
    assert preferred_languages("kk, ru;q=0.9, en;q=0.9") == ["kk", "ru", "en"]
    assert preferred_languages("de;q=0, ru;q=abc, en") == ["en"]  # q=0: not wanted; a bad q counts as 0
    assert preferred_languages("") == []


def test_extend_is_offered_only_where_an_extension_can_be_made(sqlite_url: str) -> None:
    from dsr_mailbot.intents.deadlines import due_at
    from dsr_mailbot.store.audit import record_event
    from dsr_mailbot.store.database import Store
    from dsr_mailbot.web.pages import request_page

    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    store = Store(sqlite_url)
    store.init_schema()
    with store.transaction() as session:
        for n in range(3):
            session.add(Request(message_ref=f"r{n}", source="s", uidvalidity=1, uid=n, kind="access",
                                intents=["access"], state="review", language="ru", received_at=now,
                                due_at=due_at("access", now, ["ru-152fz"]), subject_ref="-",
                                reply_address="ivan@example.kz"))
        session.flush()
        record_event(session, "deadline_extended", request_id=3, at=now)
    ru_only, both = PolicyConfig(deadline_profile=("ru-152fz",)), PolicyConfig()
    with store.transaction() as session:
        offered = request_page(session, 1, now, ru_only)
        kz_allows_none = request_page(session, 1, now, both)  # the strictest date, KZ's, never moves
        past_due = request_page(session, 2, now + timedelta(days=40), ru_only)
        extended_once = request_page(session, 3, now, ru_only)
    assert offered is not None and offered.can_extend
    assert kz_allows_none is not None and not kz_allows_none.can_extend
    assert past_due is not None and not past_due.can_extend
    assert extended_once is not None and not extended_once.can_extend
    store.dispose()


def test_a_field_the_letter_got_wrong_is_listed_as_asked_beside_its_problem(sqlite_url: str) -> None:
    from dsr_mailbot.store.database import Store
    from dsr_mailbot.web.pages import request_page

    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    store = Store(sqlite_url)
    store.init_schema()
    with store.transaction() as session:
        session.add(Request(message_ref="r", source="s", uidvalidity=1, uid=1, kind="update", intents=["update"],
                            state="review", reason="conflicting_values", language="ru", received_at=now,
                            due_at=now + timedelta(days=7), subject_ref="-",
                            intent={"changes": {"surname": "Сидоров"}, "problems": [["phone", "conflict"]]}))
    with store.transaction() as session:
        page = request_page(session, 1, now, PolicyConfig())
    assert page is not None
    assert page.fields_asked == ("phone", "surname") and page.problems == (("phone", "conflict"),)
    store.dispose()
