"""Requests without a marker, read from the person's own words (pure): opt-outs, possible questions, bulk mail."""

from __future__ import annotations

import pytest

from dsr_mailbot.reading.parse import Headers, parse_headers
from dsr_mailbot.reading.unmarked import is_bulk, parse_unmarked, read_unmarked, shipped_unmarked
from dsr_mailbot.store.models import RequestKind


@pytest.mark.parametrize(("text", "kind", "language"), [
    ("Пожалуйста, не присылайте мне рекламу.", RequestKind.OPTOUT, "ru"),
    ("Здравствуйте!\nУберите меня из рассылки,\nпожалуйста.", RequestKind.OPTOUT, "ru"),
    ("Сәлеметсіз бе! Маған жарнама жібермеңіз.", RequestKind.OPTOUT, "kk"),
    ("Hi, please unsubscribe me. Thanks", RequestKind.OPTOUT, "en"),
    ("Добрый день. Исключите меня из рассылки!", RequestKind.OPTOUT, "ru"),
    ("Мені таратылымнан шығарыңыз, рахмет.", RequestKind.OPTOUT, "kk"),
    ("REMOVE ME FROM THE NEWSLETTER", RequestKind.OPTOUT, "en"),
    # Asked only in a question, without a marker: a person reads it ("Why did you unsubscribe me?" is no opt-out).
    ("Could you remove me from your mailing list?", RequestKind.QUESTION, "en"),
    ("Why did you unsubscribe me? I want to keep getting the newsletter.", RequestKind.QUESTION, "en"),
    ("Зачем вам мои персональные данные?", RequestKind.QUESTION, "ru"),
    ("Менің дербес деректерімді қайдан алдыңыз?", RequestKind.QUESTION, "kk"),
    ("How do you use my personal data?", RequestKind.QUESTION, "en"),
    # Both: the opt-out is carried out; the rest of the letter is the staff's.
    ("Отпишите меня, и скажите, откуда у вас мои персональные данные.", RequestKind.OPTOUT, "ru"),
])
def test_a_letter_asks_in_its_own_words(text: str, kind: RequestKind, language: str) -> None:
    found = read_unmarked(text, "ru")
    assert found is not None and (found.kind, found.language) == (kind, language)


@pytest.mark.parametrize("text", [
    "Я не хочу отписаться от рассылки, она полезная.",  # negated
    "Мен жарнамадан бас тартамын деп жазған жоқпын.",  # negated after the verb, as Kazakh does
    "Где мой заказ? Рекламу вашу я люблю.",  # a stem, no phrase
    "Unsubscribe",  # a bare footer word is not a person asking
    "Не присылайте\n\nмне рекламу",  # a blank line ends the thought
    "",
])
def test_words_that_do_not_ask_are_not_a_request(text: str) -> None:
    assert read_unmarked(text, "ru") is None


def test_a_paragraph_wrapped_by_a_phone_is_one_text() -> None:
    found = read_unmarked("Не присылайте\nмне рекламу,\nпожалуйста", "ru")
    assert found is not None and found.kind == RequestKind.OPTOUT


def headers(block: str) -> Headers:
    return parse_headers(f"From: a@example.kz\r\nSubject: x\r\n{block}\r\n".encode())


def test_mailing_list_and_bulk_mail_is_never_read_as_a_persons_letter() -> None:
    assert is_bulk(headers("List-Id: <news.shop.example>\r\n"))
    assert is_bulk(headers("list-unsubscribe: <mailto:u@x>\r\n"))
    assert is_bulk(headers("Precedence:  Bulk \r\n"))
    assert not is_bulk(headers("Precedence: first-class\r\n"))


def test_the_search_stems_are_short_lower_case_and_the_table_is_checked() -> None:
    stems = shipped_unmarked().stems
    assert {"реклам", "отпис", "дербес", "unsubscribe"} <= set(stems)
    assert all(stem == stem.lower() and len(stem) <= 15 for stem in stems)
    with pytest.raises(ValueError, match="search"):
        parse_unmarked("[optout]\nru = ['x']\n")
    with pytest.raises(ValueError, match="question"):
        parse_unmarked("[search]\nru = ['x']\n[question]\nru = 'not a list'\n")


def test_hostile_text_is_read_in_linear_time_and_never_raises() -> None:
    # A megabyte line, a NUL and a lone surrogate (pytest-timeout, not a timer, catches a blow-up: speed is bench/'s).
    hostile = "не " * 300_000 + "\x00\ud800" + "x" * 1_000_000 + " отпишите меня"
    found = read_unmarked(hostile, "ru")
    assert found is None  # "не" before the phrase in its one clause: negated
    spaced = read_unmarked("\uff4e\uff4f " + "a\n" * 200_000 + "\n\nОтпишите меня", "ru")
    assert spaced is not None and spaced.kind == RequestKind.OPTOUT
