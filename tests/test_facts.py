"""Reading a request's message before its transaction: bounded, linear, and cautious about addresses and refusals."""

from __future__ import annotations

from pathlib import Path

from dsr_mailbot.config import load_config
from dsr_mailbot.facts import named_addresses, read_request
from dsr_mailbot.reading.classify import classify_subject
from dsr_mailbot.reading.parse import parse_message
from tests.harness import authenticated, mail


def test_addresses_named_in_the_text_are_found_with_lookalikes_folded() -> None:
    text = "Прошу удалить anna@example\uff0ekz и <Petr@Example.KZ>, а также mailto:x@y.kz; не ivan@"
    assert named_addresses(text) == ["anna@example.kz", "petr@example.kz", "x@y.kz"]


def test_the_reading_carries_everything_the_decision_needs(tmp_path: Path) -> None:
    config_path = tmp_path / "c.toml"
    config_path.write_text('[maildir]\npath = "m"\n[trust]\nauthserv_id = "mx.smarthings.kz"\n', encoding="utf-8")
    config = load_config(config_path)
    raw = authenticated(mail("ivan@example.ru", "Обновление персональных данных",
                             "Телефон: 8 701 765 43 21\nE-mail: Ivan.New@Example.ru\n"))
    parsed = parse_message(raw)
    classification = classify_subject(parsed.headers.subject)
    assert classification is not None

    reading = read_request(config, parsed, classification)

    assert reading.language == "ru" and reading.sender == "ivan@example.ru" and reading.auth.authenticated
    assert reading.intent.changes == {"phone": "+77017654321", "email": "ivan.new@example.ru"}
    assert reading.named_addresses == frozenset({"ivan.new@example.ru"})
    assert reading.detail["body"] == "plain" and reading.detail["has_message_id"]


def _reading(tmp_path: Path, subject: str, body: str) -> tuple[str, ...]:
    config_path = tmp_path / "c.toml"
    config_path.write_text('[maildir]\npath = "m"\n', encoding="utf-8")
    parsed = parse_message(mail("ivan@example.ru", subject, body))
    classification = classify_subject(parsed.headers.subject)
    assert classification is not None
    reading = read_request(load_config(config_path), parsed, classification)
    return (*reading.intents, *reading.intent.changes)


def test_the_subjects_intent_comes_first_then_those_of_the_persons_own_words(tmp_path: Path) -> None:
    assert _reading(tmp_path, "Unsubscribe", "Please update my phone.\nPhone: 8 701 765 43 21") == (
        "optout", "update", "phone")
    assert _reading(tmp_path, "Отзыв согласия", "Телефон: 8 701 765 43 21") == ("withdraw",)  # no update phrase


def test_quoted_words_and_questions_add_no_intents(tmp_path: Path) -> None:
    quoted = "Спасибо.\n\nВ письме от 1 ноября вы писали:\n> отпишите меня от рассылки\n"
    assert _reading(tmp_path, "Re: Обновление персональных данных", quoted) == ("update",)
    assert _reading(tmp_path, "Вопрос об обработке персональных данных", "Как долго вы храните данные? "
                    "И отпишите меня от рассылки.") == ("question",)  # a person reads a question whole


def test_a_withdrawal_asked_about_is_not_one_asked_for_but_a_polite_opt_out_is(tmp_path: Path) -> None:
    assert _reading(tmp_path, "Personal data update", "Phone: 8 701 765 43 21\nCan I withdraw my consent later?"
                    ) == ("update", "phone")
    assert _reading(tmp_path, "Personal data update", "Phone: 8 701 765 43 21\nCould you unsubscribe me?"
                    ) == ("update", "optout", "phone")
