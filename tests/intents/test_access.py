"""A request for the personal data held (policy 7.1, 152-FZ Art. 14), end to end on SQLite and PostgreSQL.

It e-mails personal data, so it is always confirmed by reply from the address on file — even when the
operator's MX authenticated the sender, and even under ``verification = "never"`` — and the answer goes
only to that address, with every field and what the policy says about them.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.harness import TRUST, Bot, authenticated, mail, via_mx

IVAN = "ivan.petrov@example.ru"


def challenge_to(bot: Bot, address: str) -> EmailMessage:
    [challenge] = [m for m in bot.replies() if m["To"] == address and "[DSR-" in str(m["Subject"])]
    return challenge


def confirm(bot: Bot, challenge: EmailMessage, sender: str = IVAN) -> None:
    mid = str(challenge["Message-ID"])
    bot.account.append(via_mx(mail(sender, f"Re: {challenge['Subject']}", "Да",
                                   headers={"In-Reply-To": mid, "References": mid})))


@pytest.mark.parametrize(("subject", "language", "marker_text"), [
    ("Запрос персональных данных", "ru", "Согласие на обработку: дано"),
    ("Дербес деректерді сұрау", "kk", "Өңдеуге келісім: берілген"),
    ("Request for personal data", "en", "Consent to processing: given"),
])
@pytest.mark.parametrize("trust", [TRUST, 'verification = "never"'], ids=["auto", "never"])
def test_the_answer_is_sent_only_after_the_owner_confirms_and_holds_every_field(
    bot_any_db: Bot, subject: str, language: str, marker_text: str, trust: str
) -> None:
    bot = bot_any_db
    bot.write_config(trust=trust)
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", first_name="Иван", patronymic="Сергеевич",
                 marketing_consent=False)
    bot.account.append(authenticated(mail(f"Иван <{IVAN}>", subject, "",
                                          headers={"Reply-To": "attacker@evil.example"})))

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.state, request.language) == ("access", "awaiting_confirmation", language)
    challenge = challenge_to(bot, IVAN)  # even authenticated, even under "never": a reply must confirm
    assert len(bot.smtp.messages) == 1 and bot.smtp.messages[0].rcpt_tos == [IVAN]

    confirm(bot, challenge)
    bot.run()

    answers = [m for m in bot.replies() if m["To"] == IVAN and "[DSR-" not in str(m["Subject"])]
    assert len(answers) == 1 and all(m.rcpt_tos == [IVAN] for m in bot.smtp.messages)  # never to Reply-To
    text = bot.reply_text(answers[0])
    for value in (IVAN, "+77011112233", "Петров", "Иван", "Сергеевич", marker_text):
        assert value in text
    assert "6.2" in text and "5.1" in text  # recipients and legal basis, as the policy states them
    assert bot.requests()[0].state == "completed"
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent  # nothing changed


def test_a_forged_access_request_sends_nothing_but_the_challenge_to_the_owner(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST)
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(via_mx(mail(IVAN, "Запрос персональных данных")))  # forged: not authenticated
    bot.run()
    confirm(bot, challenge_to(bot, IVAN), sender="attacker@evil.example")  # the attacker cannot confirm
    bot.run()

    assert all(m.rcpt_tos == [IVAN] for m in bot.smtp.messages) and len(bot.smtp.messages) == 1
    assert "+77011112233" not in bot.smtp.messages[0].data.decode("utf-8", "replace")
    assert bot.requests()[0].state == "review"


OPERATOR_FACTS = '''
operator_address = "050000, Алматы, пр. Абая, 1"
operator_bin = "123456789012"
responsible_person = { name = "Анна Ким", email = "dpo@smarthings.kz" }
data_source = { ru = "вы сами, через формы сайта", en = "you, through the site's forms" }
cross_border = "обезличенные cookies: Google Analytics (США)"
[[policy.processors]]
name = "Mail hosting LLP"
address = "Астана, ул. Кенесары, 2"
purpose = "почтовый хостинг"
country = "Казахстан"
[[policy.processors]]
name = "Relay Ltd"
address = "Dublin, 1 Main St"
purpose = "SMTP relay"
country = "Ireland"
'''


@pytest.mark.parametrize(("subject", "expected"), [
    ("Запрос персональных данных", ("БИН 123456789012", "адрес: 050000, Алматы, пр. Абая, 1",
                                    "Источник данных: вы сами, через формы сайта",
                                    "Трансграничная передача: обезличенные cookies: Google Analytics (США)",
                                    "Mail hosting LLP (почтовый хостинг; Астана, ул. Кенесары, 2, Казахстан); "
                                    "Relay Ltd (SMTP relay; Dublin, 1 Main St, Ireland)",
                                    "в Роскомнадзор", "в уполномоченный орган Республики Казахстан",
                                    "Способы обработки: смешанная обработка",
                                    "Ответственный за организацию обработки персональных данных: Анна Ким, "
                                    "dpo@smarthings.kz")),
    ("Дербес деректерді сұрау", ("БСН 123456789012", "Роскомнадзорға",
                                 "Деректер көзі: вы сами, через формы сайта")),  # no kk text: the one written
    ("Request for personal data", ("BIN 123456789012", "Source of the data: you, through the site's forms",
                                   "to Roskomnadzor", "Person responsible for the processing of personal data")),
])
def test_the_answer_states_what_art_14_requires_from_the_configuration(
        bot_any_db: Bot, subject: str, expected: tuple[str, ...]) -> None:
    """152-FZ Art. 14 ч.7: the operator's address and BIN, methods, source, processors, cross-border transfer,
    the systems covered and the right to complain; signed by the responsible person."""
    bot = bot_any_db
    bot.write_config(extra=OPERATOR_FACTS)
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(mail(IVAN, subject, ""))
    bot.run()
    confirm(bot, challenge_to(bot, IVAN))
    bot.run()

    [answer] = [m for m in bot.replies() if m["To"] == IVAN and "[DSR-" not in str(m["Subject"])]
    text = " ".join(bot.reply_text(answer).split())
    for phrase in expected:
        assert phrase in text
    assert "SmartThings online shop customer database" in text  # the system the answer covers
    assert "не предусмотрена" not in text and "provides for none" not in text
    # Every reply, not only this one, is signed by the responsible person.
    challenge_text = bot.reply_text(challenge_to(bot, IVAN))
    assert "Анна Ким" in challenge_text and "dpo@smarthings.kz" in challenge_text


def test_the_answer_shows_where_and_when_consent_was_given_as_imported(bot_any_db: Bot, tmp_path: Path) -> None:
    """The burden of proving consent is the operator's (152-FZ Art. 9 ч.3): the answer says what is on file."""
    bot = bot_any_db
    users = tmp_path / "users.csv"
    users.write_text("email,phone,surname,first_name,patronymic,marketing_consent,consent_source,consent_at\n"
                     f"{IVAN},+77011112233,,,,true,форма заказа smarththings.kz,2025-03-01T10:00:00+05:00\n",
                     encoding="utf-8")
    imported = bot.cli("users", "import", str(users))
    assert imported.returncode == 0, imported.stderr
    bot.account.append(mail(IVAN, "Запрос персональных данных", ""))
    bot.run()
    confirm(bot, challenge_to(bot, IVAN))
    bot.run()

    [answer] = [m for m in bot.replies() if m["To"] == IVAN and "[DSR-" not in str(m["Subject"])]
    assert "Согласие получено: 01.03.2025, форма заказа smarththings.kz" in bot.reply_text(answer)
    exported = bot.cli("users", "export").stdout
    assert '"consent_source": "форма заказа smarththings.kz"' in exported and "2025-03-01T05:00:00+00:00" in exported
