"""Mutated real-world mail through full passes, against Dovecot, the SMTP server, SQLite and PostgreSQL.

``DSR_FUZZ_CASES`` (default 150 per database, so 300 in CI) and
``DSR_FUZZ_SEED`` set the run; ``bench/fuzz.py`` runs many more.  Whatever
the mail is:

- the pass never stops (no exception, no "stopped early"), and a second
  pass finds nothing left to do;
- every message that did not become a request stays byte for byte and flag
  for flag as it was;
- nothing is applied without authentication: no user's data or processing
  consent changes (every message arrives through the MX without a trusted
  Authentication-Results; what the sender wrote lies below its line).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzzing import corpus_messages, mutated
from tests.harness import TRUST, Bot, via_mx

CASES = int(os.environ.get("DSR_FUZZ_CASES", "150"))
SEED = int(os.environ.get("DSR_FUZZ_SEED", "20261126"))
BATCH = 75
USERS = ["ivan@example.ru", "anna@example.kz", "иван@пример.рф"]


def append_all(bot: Bot, messages: list[bytes]) -> None:
    for data in messages:
        try:
            bot.account.append(data)
        except Exception:
            # IMAP literals cannot carry NUL; the server refusing a message is not the bot's input.
            bot.account.append(data.replace(b"\x00", b" "))


@pytest.mark.timeout(900)
def test_mutated_corpus_mail_never_stops_the_bot_or_changes_anything_unverified(
    bot_any_db: Bot, shared_dir: Path
) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST)
    for address in USERS:
        bot.add_user(address, phone="+77011112233", surname="Петров", marketing_consent=False)
    users_before = {address: bot.user(address) for address in USERS}
    corpus = corpus_messages(shared_dir / "corpora")
    unmutated = bool(os.environ.get("DSR_FUZZ_UNMUTATED"))  # bench/fuzz.py's reference run
    cases = mutated(corpus, SEED + (0 if "sqlite" in bot.db_url else 1), CASES, USERS, mutate=not unmutated)

    for start in range(0, len(cases), BATCH):
        append_all(bot, [via_mx(data) for data in cases[start : start + BATCH]])
        before = bot.account.snapshot()

        report = bot.run()
        again = bot.run()

        assert report.temporary_failure is None and again.temporary_failure is None
        assert again.scanned == 0 and again.requests == 0
        taken = {r.uid for r in bot.requests() if r.state not in ("ignored", "received")}
        taken |= {e.detail["uid"] for e in bot.events() if e.event == "duplicate_archived"}  # copies of requests
        after = bot.account.snapshot()
        for uid, (flags, data) in before.items():
            if uid not in taken:
                assert after.get(uid) == (flags, data), f"ordinary message at uid {uid} was changed"
        crashed = [r.reason for r in bot.requests() if r.reason and ":" in r.reason and r.reason[0].islower()
                   and r.reason.split(":")[1][:1].isupper()]
        assert not crashed, f"set aside after an unexpected exception: {crashed}"  # isolated, but still a bug
        for address, user in users_before.items():
            now = bot.user(address)
            assert user is not None and now is not None, f"user {address} was erased or replaced"
            assert (now.email, now.phone, now.surname, now.processing_consent) == (
                user.email, user.phone, user.surname, user.processing_consent)
