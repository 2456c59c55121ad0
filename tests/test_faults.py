"""Kill -9 at every stage boundary, and poison messages: every request applied once, answered with one
Message-ID, nothing left in INBOX — on SQLite and on PostgreSQL."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from collections import defaultdict
from email.policy import default as default_policy

import pytest

from dsr_mailbot.faults import ENV, POINTS
from tests.harness import Bot, mail

PEOPLE = [f"user{n}@example.kz" for n in range(3)]


def run_once(bot: Bot, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    return subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(bot.config_path), "run", "--once"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def reply_ids_by_request(bot: Bot) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for message in bot.smtp.messages:
        mid = str(email.message_from_bytes(message.data, policy=default_policy)["Message-ID"])
        found[int(mid.split(".")[1])].add(mid)
    return found


def assert_exactly_once(bot: Bot) -> None:
    requests = bot.requests()
    assert [r.state for r in requests] == ["completed"] * len(PEOPLE)
    completed = [e.request_id for e in bot.events() if e.event == "request_completed"]
    request_ids = sorted(r.id or 0 for r in requests)
    assert sorted(e or 0 for e in completed) == request_ids  # each applied once
    ids = reply_ids_by_request(bot)
    assert sorted(ids) == request_ids
    assert all(len(v) == 1 for v in ids.values())  # one Message-ID per request, even if sent twice
    assert bot.account.snapshot("INBOX") == {}
    for person in PEOPLE:
        user = bot.user(person)
        assert user is not None and not user.marketing_consent


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_9_at_each_stage_boundary(bot_any_db: Bot, point: str) -> None:
    bot = bot_any_db
    for person in PEOPLE:
        bot.add_user(person, marketing_consent=True)
        bot.account.append(mail(person, "Unsubscribe"))

    crashed = run_once(bot, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    finished = run_once(bot)
    assert finished.returncode == 0, finished.stderr
    again = run_once(bot)
    assert again.returncode == 0 and "0 request(s)" in again.stdout
    assert_exactly_once(bot)
    if point == "after_smtp_accept":
        assert len(bot.smtp.messages) == len(PEOPLE) + 1  # the one at-least-once window, same Message-ID


def test_a_poison_message_is_set_aside_after_three_crashes_and_the_others_go_on(bot: Bot) -> None:
    for person in PEOPLE:
        bot.add_user(person, marketing_consent=True)
    bot.account.append(mail(PEOPLE[0], "Unsubscribe"))
    bot.account.append(mail(PEOPLE[1], "Unsubscribe", message_id="<poison-1@client.example>"))
    bot.account.append(mail(PEOPLE[2], "Unsubscribe"))

    codes = [run_once(bot, crash_at="after_fetch:poison").returncode for _ in range(4)]

    assert codes == [-signal.SIGKILL] * 3 + [0]
    first, poison, last = bot.requests()
    assert (first.state, last.state) == ("completed", "completed")
    assert poison.state == "review" and poison.reason is not None and poison.reason.startswith("poison")
    assert poison.attempts == 3
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == [PEOPLE[0], PEOPLE[2]]
    assert bot.account.snapshot("INBOX") == {}  # set aside in review, and out of the shared inbox
    assert [e.event for e in bot.events()].count("duplicate_archived") == 0
