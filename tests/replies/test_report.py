"""The monthly report, checked against figures worked out by hand on the KZ calendar of March 2026.

March 2026 in Kazakhstan: 8 March (Sunday) is observed on Monday 9 March; Nauryz takes 21–25 March
(Saturday to Wednesday, observed days included).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from dsr_mailbot.intents.deadlines import due_at, working_days_between
from dsr_mailbot.replies.report import build_report, month_bounds, report_lines
from dsr_mailbot.store.models import Request
from tests.harness import Bot

ALMATY = ZoneInfo("Asia/Almaty")


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ALMATY).astimezone(UTC)


def request(number: int, kind: str, state: str, received: datetime, completed: datetime | None) -> Request:
    return Request(id=number, message_ref=f"r{number}", source="s", uidvalidity=1, uid=number, kind=kind,
                   intents=[kind] if kind != "confirm" else [], state=state, language="ru", received_at=received,
                   due_at=due_at(kind, received), completed_at=completed, subject_ref="x")


MARCH = [
    # Friday before Nauryz, answered Thursday 26th: 1 working day (21–25 off), on time (kz: 1 working day).
    request(1, "update", "completed", local(date(2026, 3, 20), 15), local(date(2026, 3, 26), 10)),
    # An opt-out answered the same day: 0.
    request(2, "optout", "completed", local(date(2026, 3, 2), 9), local(date(2026, 3, 2), 9, 1)),
    # Access on Tuesday 3rd, answered Friday 13th: 4, 5, 6, 10, 11, 12, 13 = 7 (9th observed); late (due the 6th).
    request(3, "access", "completed", local(date(2026, 3, 3), 10), local(date(2026, 3, 13))),
    # A withdrawal still waiting for its owner: due at once, so open and overdue.
    request(4, "withdraw", "awaiting_confirmation", local(date(2026, 3, 11)), None),
    # A question from Monday 30th: due at the end of Thursday 2 April, not overdue on 2 April at noon.
    request(5, "question", "review", local(date(2026, 3, 30)), None),
    # A confirmation is part of its request, not a request.
    request(6, "confirm", "completed", local(date(2026, 3, 12)), local(date(2026, 3, 12))),
    # Ignored mail is counted by state but was never answered.
    request(7, "update", "ignored", local(date(2026, 3, 16)), local(date(2026, 3, 16))),
    # Late on 31 March in Almaty (18:30 UTC), answered 1 April: 1 working day.
    request(8, "update", "completed", local(date(2026, 3, 31), 23, 30), local(date(2026, 4, 1), 11)),
]
NOW = local(date(2026, 4, 2))


def test_the_figures_match_the_ones_worked_out_by_hand() -> None:
    report = build_report("2026-03", MARCH, NOW, erasures_done=2, erasures_pending=1, country="KZ",
                          timezone="Asia/Almaty")

    assert report.by_intent_state == {
        "access": {"completed": 1}, "optout": {"completed": 1}, "question": {"review": 1},
        "update": {"completed": 2, "ignored": 1}, "withdraw": {"awaiting_confirmation": 1},
    }
    assert report.answered == 4  # 1, 2, 3 and 8: 1, 0, 7 and 1 working days
    assert (report.median_working_days, report.worst_working_days) == (1, 7)
    assert report.answered_late == [3] and report.open_overdue == [4]
    assert (report.erasures_done, report.erasures_pending) == (2, 1)
    assert "working days to answer (KZ calendar): median 1, worst 7" in "\n".join(report_lines(report))


@pytest.mark.parametrize(("start", "end", "days"), [
    (local(date(2026, 3, 20)), local(date(2026, 3, 20), 23), 0),
    (local(date(2026, 3, 20)), local(date(2026, 3, 25)), 0),  # only Nauryz days in between
    (local(date(2026, 3, 20)), local(date(2026, 3, 26)), 1),
    (local(date(2026, 3, 6)), local(date(2026, 3, 10)), 1),  # Saturday, Sunday, the observed 9th
])
def test_working_days_are_counted_as_the_deadlines_count_them(start: datetime, end: datetime, days: int) -> None:
    assert working_days_between(start, end, "KZ", "Asia/Almaty") == days


def test_a_month_is_its_local_days() -> None:
    assert month_bounds("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))


def test_the_report_command_reads_the_store(bot: Bot) -> None:
    from tests.harness import mail

    bot.add_user("ivan.petrov@example.ru", marketing_consent=True)
    bot.account.append(mail("ivan.petrov@example.ru", "Unsubscribe"))
    bot.run()
    month = datetime.now(ZoneInfo(bot.config.policy.timezone)).strftime("%Y-%m")

    shown = bot.cli("report", "--month", month, "--format", "json")

    assert shown.returncode == 0, shown.stderr
    figures = json.loads(shown.stdout)
    assert figures["by_intent_state"] == {"optout": {"completed": 1}} and figures["answered"] == 1
    assert figures["worst_working_days_to_answer"] == 0 and figures["answered_late"] == []
    wrong = bot.cli("report", "--month", "2026-13")
    assert wrong.returncode == 64 and "expected YYYY-MM" in wrong.stderr  # EX_USAGE


def test_answered_means_sent_by_the_smtp_server_not_queued() -> None:
    from dsr_mailbot.replies.report import Closing

    closed_on_time = local(date(2026, 3, 20), 15)  # the Friday before Nauryz: due Thursday 26th (kz)
    requests = [
        request(1, "update", "completed", local(date(2026, 3, 20), 14), closed_on_time),
        request(2, "update", "completed", local(date(2026, 3, 20), 14), closed_on_time),
        request(3, "optout", "completed", local(date(2026, 3, 2), 9), local(date(2026, 3, 2), 9)),
    ]
    closing = {
        1: Closing(True, local(date(2026, 3, 27), 9)),  # queued on time, accepted by the server a day late
        2: Closing(True, None),  # still unsent (the server refused it): not answered at all
        # 3: closed without a reply of its own: answered when it closed
    }

    report = build_report("2026-03", requests, NOW, 0, 0, "KZ", "Asia/Almaty", closing)

    assert report.answered == 2 and report.answered_late == [1] and report.open_overdue == [2]
    without = build_report("2026-03", requests, NOW, 0, 0, "KZ", "Asia/Almaty")
    assert without.answered_late == [] and without.answered == 3  # what counting the queueing said


def test_a_questions_answer_is_its_staff_answer_not_its_acknowledgement(bot: Bot) -> None:
    bot.add_user("ivan.petrov@example.ru")
    from tests.harness import mail
    from tests.servers import free_port

    bot.account.append(mail("ivan.petrov@example.ru", "Вопрос об обработке персональных данных", "Кому?"))
    bot.run()
    [question] = bot.requests()
    assert question.id is not None
    month = question.received_at.astimezone(ALMATY).strftime("%Y-%m")

    def answered() -> int:
        done = bot.cli("report", "--month", month, "--format", "json")
        assert done.returncode == 0, done.stderr
        return int(json.loads(done.stdout)["answered"])

    assert answered() == 0  # acknowledged, not answered
    bot.write_config(smtp_port=free_port())  # the SMTP server is down while staff answer
    (bot.dir / "answer.txt").write_text("Никому.", encoding="utf-8")
    bot.cli("requests", "answer", str(question.id), "--file", str(bot.dir / "answer.txt"))
    [closed] = bot.requests()
    assert closed.state == "completed" and answered() == 0  # closed and queued, not yet sent
    bot.write_config()
    bot.run()
    assert answered() == 1
