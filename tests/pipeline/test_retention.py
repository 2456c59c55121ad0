"""Closed requests are kept no longer than [policy] closed_request_retention_days, on every backend, over IMAP."""

from __future__ import annotations

import email
from datetime import timedelta
from email.policy import default

from dsr_mailbot.store.models import utcnow
from tests.harness import PROCESSED, Bot, mail

IVAN = "ivan.petrov@example.ru"
STRANGER = "stranger@example.org"


def processed(bot: Bot) -> set[str]:
    return {str(email.message_from_bytes(data, policy=default)["Message-ID"])
            for _flags, data in bot.account.snapshot(PROCESSED).values()}


def test_a_closed_requests_copies_go_after_the_retention_and_an_unknown_senders_replies_with_them(
        bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233")
    strangers = mail(STRANGER, "Обновление персональных данных", "Телефон: 8 701 000 00 00")
    bot.account.append(strangers)
    bot.account.append(mail(IVAN, "Обновление персональных данных", "Телефон: 8 701 111 22 33"))
    bot.run()
    unknown, known = sorted(bot.requests(), key=lambda r: r.user_id or 0)
    assert (unknown.user_id, unknown.state, known.state) == (None, "rejected", "completed")
    assert len(processed(bot)) == 2 and {o.recipient for o in bot.outbox()} == {STRANGER, IVAN}

    bot.run(now=utcnow() + timedelta(days=364))  # within the year: nothing goes
    assert len(processed(bot)) == 2 and all(r.message_id for r in bot.requests())

    bot.run(now=utcnow() + timedelta(days=366))

    assert processed(bot) == set()  # both letters left the processed folder
    assert all(r.message_id is None and r.message_ref for r in bot.requests())  # the keyed hash stays
    by_request = {o.request_id: o for o in bot.outbox()}
    assert (by_request[unknown.id].recipient, by_request[unknown.id].data) == ("erased", b"")
    assert by_request[known.id].recipient == IVAN  # a user's replies stay with the user's data
    [applied] = [e for e in bot.events() if e.event == "retention_applied"]
    assert (applied.detail["requests"], applied.detail["messages_expunged"], applied.detail["replies_scrubbed"],
            applied.detail["days"]) == (2, 2, 1, 365)
    assert bot.requests()[0].state in ("rejected", "completed")  # the request's record itself stays

    # The same letter delivered again is still known by its keyed hash: not a new request.
    bot.account.append(strangers)
    bot.run(now=utcnow() + timedelta(days=367))
    assert len(bot.requests()) == 2
