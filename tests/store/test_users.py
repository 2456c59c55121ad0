"""Importing users from CSV (all or nothing) and exporting them."""

from __future__ import annotations

import pytest

from dsr_mailbot.store.database import Store
from dsr_mailbot.store.users import CsvImportError, export_users, import_users, read_users_csv

HEADER = "email,phone,surname,first_name,patronymic,marketing_consent\n"


def test_good_rows_are_normalised() -> None:
    [row] = read_users_csv("\ufeff" + HEADER + "Ivan@Example.RU,8 701 765 43 21,Петров,Иван,Сергеевич,да\n")
    assert (row.email, row.phone, row.surname, row.marketing_consent) == (
        "ivan@example.ru", "+77017654321", "Петров", True)


def test_every_bad_line_is_reported_by_number_without_its_value() -> None:
    text = HEADER + (
        "ok@example.kz,,,,,false\n"
        "not-an-email,,,,,false\n"
        "b@example.kz,12345,,,,maybe\n"
        "ok@example.kz,,,,,true\n"
        "c@example.kz,,Smith123,,,0\n"
    )
    with pytest.raises(CsvImportError) as caught:
        read_users_csv(text)
    assert caught.value.problems == [
        "line 3: email: missing or not a valid address",
        "line 4: phone: not a valid phone number",
        "line 4: marketing_consent: expected true or false",
        "line 5: email: same address as line 2",
        "line 6: surname: not a name",
    ]
    assert "12345" not in str(caught.value.problems) and "Smith123" not in str(caught.value.problems)


def test_wrong_columns_are_refused() -> None:
    with pytest.raises(CsvImportError, match="problem"):
        read_users_csv("email,phone\na@example.kz,\n")


def test_import_creates_new_users_and_never_changes_existing_ones(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    first = import_users(store, read_users_csv(HEADER + "a@example.kz,+77011112233,Ким,Анна,,true\n"), actor="t")
    rows = read_users_csv(HEADER + "a@example.kz,+77770000000,Other,Name,,true\nb@example.kz,,,,,false\n")
    second = import_users(store, rows, actor="t")
    assert (first.created, first.already_present) == (1, 0)
    assert (second.created, second.already_present) == (1, 1)
    exported = {u["email"]: u for u in export_users(store)}
    assert exported["a@example.kz"]["phone"] == "+77011112233"
    assert exported["b@example.kz"] == {
        "email": "b@example.kz", "phone": None, "surname": None, "first_name": None, "patronymic": None,
        "marketing_consent": False, "processing_consent": True, "consent_withdrawn_at": None,
        "marketing_opted_out_at": None, "erasure_due_at": None, "consent_source": None, "consent_at": None,
    }
    store.dispose()


def test_where_and_when_consent_was_given_may_be_imported_and_is_checked() -> None:
    from datetime import UTC, datetime

    header = "email,phone,surname,first_name,patronymic,marketing_consent,consent_source,consent_at\n"
    rows = read_users_csv(header + "a@example.kz,,,,,true,checkout form  v2,2025-03-01\n"
                                   "b@example.kz,,,,,false,,2025-03-01T10:00:00+05:00\nc@example.kz,,,,,false,,\n")
    assert [(r.consent_source, r.consent_at) for r in rows] == [
        ("checkout form v2", datetime(2025, 3, 1, tzinfo=UTC)),
        (None, datetime(2025, 3, 1, 5, tzinfo=UTC)), (None, None)]
    with pytest.raises(CsvImportError) as refused:
        read_users_csv(header + "a@example.kz,,,,,true,x,1 March\nb@example.kz,,,,,true," + "y" * 201 + ",\n")
    assert refused.value.problems == [
        "line 2: consent_at: expected a date like 2025-03-01 or a time like 2025-03-01T10:00:00+05:00",
        "line 3: consent_source: at most 200 printable characters"]
    with pytest.raises(CsvImportError):
        read_users_csv(HEADER.strip() + ",consent_at,consent_at\n")  # a column twice
