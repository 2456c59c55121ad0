"""A reply to a challenge confirms only a clear yes or an empty reply; a no anywhere objects; the rest is unclear."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from dsr_mailbot.reading.classify import LANGUAGES
from dsr_mailbot.reading.consent import (
    TABLES,
    ConsentVocabularyError,
    Verdict,
    parse_vocabulary,
    read_confirmation,
    shipped_vocabulary,
)

QUOTED_CHALLENGE = (
    "\n\nOn Mon, 7 Dec 2026 at 10:00, SmartThings <support@smarthings.kz> wrote:\n"
    "> We received a message from your address asking us to withdraw your consent.\n"
    "> If you did not send this request, do nothing: without confirmation nothing changes.\n"
)


@pytest.mark.parametrize("text", [
    # The replies, each of which used to confirm a forged withdrawal.
    "Добрый день!\nНет, я против. Ничего не удаляйте.",
    "Hello,\nNO. I never asked for this.",
    "Hi - please don't do this",
    "Здравствуйте. Я такого не просил, отзывать согласие не надо!",
    # And others: a refusal in any position, in each language.
    "ЖОҚ!", "Нет", "No, I did not send this", "Это не я", "Мен бұл сұрауды жібермедім!",
    "Thanks, but I never sent anything like that",
    "Сәлеметсіз бе! Бұл мен емес, ештеңені өшірмеңіз.",
    "Yes? No! Absolutely not.",
    "Пожалуйста, отмените это",
    "I didn’t ask for it" + QUOTED_CHALLENGE,
    # Past a signature, in the line that starts the history, hidden by punctuation (the attack review).
    "\n\nSent from my iPhone\n\n> On Mon, SmartThings wrote:\n> Reply to confirm\n\nNo, it was not me!",
    "Отправлено с iPhone\n\nНет, это не я!",
    "Отправлено с моего адреса, но это не я. Ничего не удаляйте.",
    "Sent from my account without my permission. I did not send this request!",
    "Yes.\nRegards,\nIvan\n\nP.S. Actually no, I did not send it",
    "Yes\nKind regards\nNot Me",
    "On second thought no, that is not what I wrote",
    "Нет, это не я вам писал:\nСообщение от службы поддержки",
    "Hi,—No!", "Hello, NO…", "Здравствуйте! Нет…", "Please don´t", "Please don‘t delete",
    "Hi\n" + "\n" * 40_000 + "No, it was not me",
])
def test_a_refusal_anywhere_in_the_persons_words_is_a_no(text: str) -> None:
    assert read_confirmation(text).verdict is Verdict.NO


@pytest.mark.parametrize("text", [
    "", "   \n\n", QUOTED_CHALLENGE,  # Reply and Send: the usual way to confirm
    "Здравствуйте!" + QUOTED_CHALLENGE,  # a greeting is not a word about the request
    "Hello,\n\n-- \nIvan Petrov\n+7 701 111 22 33",
    "Sent from my iPhone",
    "Да", "Да, подтверждаю.", "Yes", "YES, I confirm. Thanks!", "Иә", "Иә, растаймын", "ok",
    "Здравствуйте!\nДа, это я.\nСпасибо,\nИван Петров",
    "Добрый день, уважаемая служба поддержки!\nПодтверждаю",
    "Сәлеметсіз бе!\nИә, растаймын.\nРақмет",
    "Yes please" + QUOTED_CHALLENGE,
])
def test_an_empty_reply_or_a_clear_yes_confirms(text: str) -> None:
    assert read_confirmation(text).verdict is Verdict.YES


@pytest.mark.parametrize("text", [
    "Спасибо",  # courtesy alone says neither
    "Hi, delete it",
    "Hello, delete it!",
    "Yes please delete everything and my orders too",
    "Да\nИван",  # a name under a yes, without a closing: a person looks
    "Что это за письмо?",
    "Я уже писал вам вчера по поводу телефона",
    "Иә " * 100,  # a yes is short; this is something else
    # A greeting, then words: not a greeting line (helper's attack review of issue 18).
    "Hi! Why?", "Hello! Wait!", "Hi, Who Are You?", "Здравствуйте! Зачем?", "Сәлеметсіз бе! Неге?",
    "OK\nTHANKS\nWAIT, WHY?",
    # A question is no yes.
    "Yes?", "Sure??", "Proceed?", "Да?",
    "Yeah, right.",
])
def test_anything_else_is_unclear_and_a_person_decides(text: str) -> None:
    reading = read_confirmation(text)
    assert reading.verdict is Verdict.UNCLEAR
    assert reading.own_words.strip()  # kept for the reviewer


def test_a_reply_that_was_not_read_whole_is_never_an_empty_confirming_one() -> None:
    """A scanned objection as an attachment, an image before the text past the fetch limit: not a "yes"."""
    assert read_confirmation("", readable=False).verdict is Verdict.UNCLEAR
    assert read_confirmation(QUOTED_CHALLENGE, readable=False).verdict is Verdict.UNCLEAR
    assert read_confirmation("Нет", readable=False).verdict is Verdict.NO


def test_the_words_kept_for_the_reviewer_are_the_persons_own_without_the_quote() -> None:
    reading = read_confirmation("Это что такое?" + QUOTED_CHALLENGE)
    assert reading.own_words == "Это что такое?"


def test_every_language_has_each_table() -> None:
    table = tomllib.loads((resources.files("dsr_mailbot.reading") / "consent.toml").read_text(encoding="utf-8"))
    for language in LANGUAGES:
        assert all(table[language][name] for name in TABLES), language
    assert shipped_vocabulary().languages == set(LANGUAGES)


def test_a_vocabulary_without_a_table_is_refused() -> None:
    with pytest.raises(ConsentVocabularyError, match=r"\[kk\]"):
        parse_vocabulary("\n".join(f'[{lang}]\n' + "\n".join(f'{n} = ["x"]' for n in TABLES)
                                   for lang in ("en", "ru")))
