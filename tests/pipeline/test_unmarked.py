"""Opt-outs and questions in the person's own words, without a subject marker (policy 4.1, 7.1), over IMAP.

The server's own SEARCH finds the candidates among the new messages; the bot's reader decides.  Such a letter
may be meant for the staff as well: it stays in the inbox, unflagged and unmoved, and is handled once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.harness import Bot, mail

IVAN = "ivan.petrov@example.ru"
STRANGER = "someone.new@example.kz"


def inbox(bot: Bot) -> dict[int, tuple[frozenset[bytes], bytes]]:
    return bot.account.snapshot("INBOX")


def test_an_opt_out_in_the_letters_own_words_is_carried_out_answered_and_left_in_the_inbox(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, marketing_consent=True)
    letter = mail(IVAN, "Рассылка", "Здравствуйте!\n\nПожалуйста, не присылайте мне рекламу.\n\nИван")
    bot.account.append(letter)
    bot.account.append(mail(IVAN, "Заказ 1042", "Где мой заказ? Рекламу вашу я люблю."))  # a stem, no phrase
    before = inbox(bot)

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.state, request.language) == ("optout", "completed", "ru")
    user = bot.user(IVAN)
    assert user is not None and not user.marketing_consent
    [answer] = bot.replies()
    assert answer["To"] == IVAN and "не будем их вам отправлять" in " ".join(bot.reply_text(answer).split())
    assert inbox(bot) == before  # both letters where they were, flags and bytes untouched
    bot.run()  # the next pass (and a rescan after a UIDVALIDITY change) knows it by its Message-ID
    assert len(bot.requests()) == 1 and len(bot.replies()) == 1
    bot.account.append(letter)  # a second copy (Cc'd to another alias): known, and left where it is too
    bot.run()
    assert len(bot.requests()) == 1 and len(bot.replies()) == 1 and len(inbox(bot)) == 3


def test_a_phrase_wrapped_by_html_tags_is_found_and_negated_or_quoted_words_are_not(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("anna@example.kz", marketing_consent=True)
    bot.add_user("boris@example.kz", marketing_consent=True)
    bot.account.append(mail(IVAN, "Re: новости", html="<p>Не <b>присылайте</b>\n мне <i>рекламу</i>, пожалуйста</p>"))
    bot.account.append(mail("anna@example.kz", "Вопрос", "Я не хочу отписаться от рассылки, она полезная."))
    bot.account.append(mail("boris@example.kz", "Re: заказ", "Спасибо!\n\n> отпишите меня от рассылки\n> Анна"))
    bot.account.append(mail("news@shop.example", "Newsletter", "Hello!\nUnsubscribe me: click here",
                            headers={"List-Unsubscribe": "<mailto:u@shop.example>", "Precedence": "bulk"}))

    bot.run()

    assert [(r.kind, r.user_id is not None) for r in bot.requests()] == [("optout", True)]
    anna, boris = bot.user("anna@example.kz"), bot.user("boris@example.kz")
    assert anna is not None and anna.marketing_consent and boris is not None and boris.marketing_consent


def test_an_opt_out_from_an_address_no_one_knows_goes_on_the_hashed_suppression_list(
        bot_any_db: Bot, tmp_path: Path) -> None:
    bot = bot_any_db
    bot.account.append(mail(f"Someone <{STRANGER.upper()}>", "Hello", "Please unsubscribe me from your newsletter."))

    bot.run()

    [request] = bot.requests()
    assert (request.state, request.outcome) == ("completed", "suppressed")
    said = " ".join(bot.reply_text(bot.replies()[0]).split())
    assert "do-not-market list" in said and "hold no" not in said
    digest = hashlib.sha256(STRANGER.encode()).hexdigest()
    assert bot.cli("suppressions", "export").stdout.split() == [digest]
    assert bot.cli("suppressions", "check", STRANGER.upper()).returncode == 0
    assert bot.cli("suppressions", "check", "other@example.kz").returncode == 1
    assert bot.cli("suppressions", "check", f"Someone <{STRANGER}>").returncode == 64  # not an answer: a mistake
    # Imported later with marketing on: the list keeps it off.
    users = tmp_path / "users.csv"
    users.write_text(f"email,phone,surname,first_name,patronymic,marketing_consent\n{STRANGER},,,,,true\n",
                     encoding="utf-8")
    assert bot.cli("users", "import", str(users)).returncode == 0
    [exported] = json.loads(bot.cli("users", "export").stdout)
    assert exported["marketing_consent"] is False


def test_a_possible_question_waits_for_a_person_silently_and_can_be_dismissed(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN)
    bot.account.append(mail(IVAN, "Вопрос", "Добрый день! Зачем вам мои персональные данные и откуда они у вас?"))
    before = inbox(bot)

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.state, request.reason) == ("question", "review", "possible_question")
    assert request.due_at > request.received_at  # a question's deadline runs
    assert bot.replies() == [] and inbox(bot) == before  # nothing sent; the letter stays for the staff
    dismissed = bot.cli("requests", "dismiss", str(request.id))
    assert dismissed.returncode == 0, dismissed.stderr
    [closed] = bot.requests()
    assert (closed.state, closed.reason) == ("ignored", "not_a_request") and bot.replies() == []
    again = bot.cli("requests", "dismiss", str(request.id))
    assert again.returncode != 0 and "only a request in review" in again.stderr


def test_a_maildir_has_no_server_search_so_the_first_64_kb_of_each_new_letter_are_read(tmp_path: Path) -> None:
    import io
    import subprocess
    import sys

    from rich.console import Console

    from dsr_mailbot.config import load_config
    from dsr_mailbot.demo import run_demo
    from dsr_mailbot.store.database import Store, all_requests

    run_demo(tmp_path / "demo", Console(file=io.StringIO()))
    config_path = tmp_path / "demo" / "config.toml"
    config = load_config(config_path)
    assert config.maildir is not None
    new = config.maildir.path / "new"
    (new / "1800000001.M1P1.test").write_bytes(mail(STRANGER, "Hello", "Please unsubscribe me."))
    late = "x" * 70_000 + "\n\nPlease unsubscribe me."  # the phrase past the first 64 KB: not looked at
    (new / "1800000002.M2P1.test").write_bytes(mail("late@example.kz", "Photos", late))
    before = sorted(p.name for p in new.iterdir())

    ran = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(config_path), "run", "--once"],
                         capture_output=True, text=True, timeout=120, check=False)

    assert ran.returncode == 0, ran.stderr
    store = Store(config.database_url)
    with store.transaction() as session:
        found = [(r.kind, r.outcome) for r in all_requests(session) if r.kind == "optout" and r.user_id is None]
    store.dispose()
    assert found == [("optout", "suppressed")]  # the stranger's, not the one past 64 KB
    assert sorted(p.name for p in new.iterdir()) == before  # both letters left where they were
