"""Reading «Поле: значение» lines of an update request."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from dsr_mailbot.reading.classify import LANGUAGES
from dsr_mailbot.reading.extract import (
    FIELDS,
    LabelsError,
    Problem,
    extract_update,
    normalise_email,
    normalise_phone,
    parse_labels,
    shipped_labels,
    split_full_name,
)


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("8 701 765 43 21", "+77017654321"),
        ("+7 (701) 765-43-21", "+77017654321"),
        ("87017654321", "+77017654321"),
        ("7017654321", "+77017654321"),
        ("+7 916 123-45-67", "+79161234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phones_are_normalised_to_e164_reading_national_numbers_as_kazakh(written: str, e164: str) -> None:
    assert normalise_phone(written) == e164


@pytest.mark.parametrize("written", ["12345", "+7 000 000 00 00", "phone", "8 800", ""])
def test_impossible_phones_are_refused(written: str) -> None:
    assert normalise_phone(written) is None


def test_email_is_validated_and_lower_cased() -> None:
    assert normalise_email("  <Ivan.Petrov@Example.RU> ") == "ivan.petrov@example.ru"
    assert normalise_email("mailto:a@example.kz") == "a@example.kz"
    assert normalise_email("not an address") is None
    assert normalise_email("a@b") is None


def test_full_name_order_depends_on_script() -> None:
    assert split_full_name("Петров Иван Сергеевич") == {
        "surname": "Петров", "first_name": "Иван", "patronymic": "Сергеевич"}
    assert split_full_name("Нұрланова Айгерім") == {"surname": "Нұрланова", "first_name": "Айгерім"}
    assert split_full_name("John Smith") == {"first_name": "John", "surname": "Smith"}
    assert split_full_name("Ivan Sergeevich Petrov") == {
        "first_name": "Ivan", "patronymic": "Sergeevich", "surname": "Petrov"}
    assert split_full_name("Иван") is None
    assert split_full_name("Иванов 123") is None


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ("Телефон: 8 701 765 43 21", {"phone": "+77017654321"}),
        ("Тел.: +7 701 765 43 21", {"phone": "+77017654321"}),
        ("Новый телефон - 8 701 765 43 21", {"phone": "+77017654321"}),
        ("Phone number = +7 701 765 43 21", {"phone": "+77017654321"}),
        ("Телефон нөмірі: 8 701 765 43 21", {"phone": "+77017654321"}),
        ("Мобильный — 8 701 765 43 21", {"phone": "+77017654321"}),
        ("E-mail: New@Example.kz", {"email": "new@example.kz"}),
        ("Эл. почта: new@example.kz", {"email": "new@example.kz"}),
        ("Электрондық пошта: new@example.kz", {"email": "new@example.kz"}),
        ("ФИО: Иванова Анна Петровна",
         {"surname": "Иванова", "first_name": "Анна", "patronymic": "Петровна"}),
        ("Ф.И.О.: Иванова Анна", {"surname": "Иванова", "first_name": "Анна"}),
        ("Full name: Anna Ivanova", {"first_name": "Anna", "surname": "Ivanova"}),
        ("Аты-жөні: Нұрланова Айгерім Серікқызы",
         {"surname": "Нұрланова", "first_name": "Айгерім", "patronymic": "Серікқызы"}),
        ("Фамилия: Иванова\nИмя: Анна\nОтчество: Петровна",
         {"surname": "Иванова", "first_name": "Анна", "patronymic": "Петровна"}),
        ("Surname: Smith\nFirst name: John", {"surname": "Smith", "first_name": "John"}),
        ("Тегі: Нұрланова\nАты: Айгерім\nӘкесінің аты: Серікқызы",
         {"surname": "Нұрланова", "first_name": "Айгерім", "patronymic": "Серікқызы"}),
        ("* Телефон: 8 701 765 43 21\n1. Фамилия: Ким", {"phone": "+77017654321", "surname": "Ким"}),
    ],
)
def test_field_lines_in_three_languages(text: str, changes: dict[str, str]) -> None:
    intent = extract_update(text)
    assert intent.changes == changes
    assert intent.problems == ()


def test_prose_and_unknown_labels_are_ignored() -> None:
    intent = extract_update("Здравствуйте!\nНомер заказа: 1234\nСпасибо: всё отлично\nТелефон:\n")
    assert intent.changes == {} and intent.problems == ()
    assert not intent.understood


def test_invalid_values_are_problems_not_changes() -> None:
    intent = extract_update("Телефон: 12345\nE-mail: nope\nФИО: Иван\nФамилия: Ким")
    assert intent.changes == {"surname": "Ким"}
    assert set(intent.problems) == {Problem("phone", "invalid"), Problem("email", "invalid")}


def test_two_different_values_for_one_field_are_a_conflict() -> None:
    intent = extract_update("Телефон: 8 701 765 43 21\nPhone: +7 702 111 22 33\nИмя: Анна")
    assert intent.changes == {"first_name": "Анна"}
    assert intent.problems == (Problem("phone", "conflict"),)


def test_the_same_value_written_twice_is_not_a_conflict() -> None:
    intent = extract_update("Телефон: 8 701 765 43 21\nPhone: +7 (701) 765-43-21")
    assert intent.changes == {"phone": "+77017654321"} and intent.problems == ()


def test_full_name_and_separate_surname_that_disagree_conflict() -> None:
    intent = extract_update("ФИО: Иванова Анна\nФамилия: Петрова")
    assert intent.changes == {"first_name": "Анна"}
    assert intent.problems == (Problem("surname", "conflict"),)


def test_every_language_has_prefixes_labels_for_every_field_and_examples() -> None:
    labels = shipped_labels()
    assert labels.languages == set(LANGUAGES)
    table = tomllib.loads((resources.files("dsr_mailbot.reading") / "labels.toml").read_text(encoding="utf-8"))
    for language in LANGUAGES:
        assert table[language]["prefixes"], language
        assert set(table[language]["labels"]) == {*FIELDS, "full_name"}, language
        assert set(table[language]["examples"]) == {*FIELDS, "full_name"}, language


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_languages_labels_read_the_examples_written_in_it(language: str) -> None:
    for field, lines in shipped_labels().examples[language].items():
        for line in lines:
            changes = extract_update(line).changes
            expected = {"surname", "first_name"} if field == "full_name" else {field}
            assert expected <= set(changes), (language, line)


@pytest.mark.parametrize("line", ["Менің жаңа телефоным: 8 701 111 22 33", "Жаңа телефон нөмірім: +7 701 111 22 33",
                                  "Менің ұялы нөмірім — 8 (701) 111-22-33"])
def test_kazakh_possessive_labels_are_read(line: str) -> None:
    assert extract_update(line).changes == {"phone": "+77011112233"}


def test_a_labels_file_naming_an_unknown_field_or_lacking_a_table_is_refused() -> None:
    with pytest.raises(LabelsError, match="not a field"):
        parse_labels('[en]\nprefixes = ["my"]\nexamples = {}\n[en.labels]\npassword = ["password"]\n')
    with pytest.raises(LabelsError, match="needs"):
        parse_labels('[en]\nprefixes = ["my"]\n')
