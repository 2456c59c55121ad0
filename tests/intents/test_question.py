"""A question about the processing (policy 7.1): acknowledged with a reference and a date, answered by a person."""

from __future__ import annotations

import pytest

from dsr_mailbot.intents.deadlines import due_at
from tests.harness import Bot, mail, message_id_of

IVAN = "ivan.petrov@example.ru"


@pytest.mark.parametrize(("subject", "language", "acknowledged"), [
    ("Вопрос об обработке персональных данных", "ru", "ответит на него до"),
    ("Дербес деректерді өңдеу туралы сұрақ", "kk", "жауап береді"),
    ("Question about personal data", "en", "will answer it by"),
])
def test_a_question_is_acknowledged_then_answered_from_the_cli(
    bot_any_db: Bot, subject: str, language: str, acknowledged: str
) -> None:
    bot = bot_any_db
    bot.add_user(IVAN)
    body = "To whom do you pass my phone?" if language == "en" else "Кому вы передаёте мой телефон?"
    question = mail(IVAN, subject, body)
    bot.account.append(question)

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.state, request.reason, request.language) == (
        "question", "review", "awaiting_answer", language)
    assert request.due_at == due_at("question", request.received_at)  # 3 working days: kz is the stricter
    # The reviewer reads the letter from the store while it is open (the console's request page).
    assert (request.letter_subject, request.letter_text) == (subject, body)
    [ack] = bot.replies()
    text = bot.reply_text(ack)
    assert acknowledged in text and str(request.id) in str(ack["Subject"])
    assert ack["In-Reply-To"] == message_id_of(question)

    answer_file = bot.dir / "answer.txt"
    answer_file.write_text("Мы никому не передаём ваш телефон (п. 6.2 политики).\n", encoding="utf-8")
    approved = bot.cli("requests", "approve", str(request.id))
    answered = bot.cli("requests", "answer", str(request.id), "--file", str(answer_file))

    assert approved.returncode == 64 and "requests answer" in approved.stderr  # a question is answered, not applied
    assert answered.returncode == 0, answered.stderr
    reply = bot.replies()[-1]
    assert reply["To"] == IVAN and reply["In-Reply-To"] == message_id_of(question)
    assert "Мы никому не передаём ваш телефон" in bot.reply_text(reply)
    # Typed by a person: marked and signed as such (RFC 3834 §5), while the acknowledgement was automatic.
    assert (ack["Auto-Submitted"], reply["Auto-Submitted"]) == ("auto-replied", "no")
    assert "automatically" not in bot.reply_text(reply) and "автоматически" not in bot.reply_text(reply)
    assert ("support staff" in bot.reply_text(reply) or "сотрудник" in bot.reply_text(reply)
            or "қызметкері" in bot.reply_text(reply))
    [closed] = bot.requests()
    assert (closed.state, closed.outcome) == ("completed", "question_answer")
    assert (closed.letter_subject, closed.letter_text) == (None, None)  # personal data, gone with the request
    events = [e for e in bot.events() if e.request_id == request.id]
    [completed] = [e for e in events if e.event == "request_completed"]
    assert completed.actor.startswith("cli:") and completed.detail["outcome"] == "question_answer"
    assert not any("никому" in str(e.detail) for e in events)  # the answer's text is not in the audit trail


def test_someone_without_an_account_may_ask_too(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.account.append(mail("stranger@example.org", "Question about the processing of personal data", "Hi"))
    bot.run()
    [request] = bot.requests()
    assert (request.state, request.reason) == ("review", "awaiting_answer")
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["stranger@example.org"]]
