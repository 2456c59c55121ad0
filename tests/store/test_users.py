"""Importing users from CSV (all or nothing) and exporting them."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlmodel import Session, select

from dsr_mailbot.errors import StoreUnavailable
from dsr_mailbot.store import users
from dsr_mailbot.store.bulk import insert_many
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import AuditEvent, User, utcnow
from dsr_mailbot.store.suppressions import suppress
from dsr_mailbot.store.users import (
    NEW_USER_COLUMNS,
    CsvImportError,
    export_users,
    import_users,
    import_users_csv,
    new_user,
    read_users_csv,
)

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


# Streaming: pass 1 checks every row and keeps the good ones outside memory, pass 2 adds them in batches, in one
# transaction.  The batches are made small here so that a few rows span several.


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "CHECK_BATCH", 4)
    monkeypatch.setattr(users, "IMPORT_BATCH", 3)


def _lines(rows: list[str]) -> io.StringIO:
    return io.StringIO(HEADER + "".join(f"{row}\n" for row in rows), newline="")


def test_a_file_larger_than_a_batch_is_imported_whole_in_file_order(store: Store, small_batches: None) -> None:
    rows = [f"u{n}@example.kz,+7701765432{n % 10},Ким,Анна,,{'да' if n % 2 else 'нет'}" for n in range(11)]

    result = import_users_csv(store, _lines(rows), actor="t")

    assert (result.created, result.already_present) == (11, 0)
    exported = export_users(store)  # by id: the order of the file
    assert [u["email"] for u in exported] == [f"u{n}@example.kz" for n in range(11)]
    assert [u["marketing_consent"] for u in exported] == [n % 2 == 1 for n in range(11)]
    with store.transaction() as session:
        refs = session.exec(select(User.ref)).all()
        [event] = session.exec(select(AuditEvent).where(AuditEvent.event == "users_imported")).all()
    assert len(set(refs)) == 11 and all(re.fullmatch(r"[0-9a-f]{32}", ref) for ref in refs)
    assert event.detail == {"created": 11, "already_present": 0}


def test_an_error_on_the_last_line_of_a_many_batch_file_writes_nothing(store: Store, small_batches: None) -> None:
    rows = [f"u{n}@example.kz,,,,,true" for n in range(10)] + ["u10@example.kz,,,,,maybe"]

    with pytest.raises(CsvImportError) as refused:
        import_users_csv(store, _lines(rows), actor="t")

    assert refused.value.problems == ["line 12: marketing_consent: expected true or false"]
    assert export_users(store) == []
    with store.transaction() as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_a_failure_in_a_later_batch_of_the_insert_undoes_the_earlier_ones(
        store: Store, small_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    inserted: list[int] = []

    def failing_on_the_third(session: Session, table: Any, columns: Any, rows: Any) -> None:
        if len(inserted) == 2:
            raise StoreUnavailable("database unavailable (OperationalError)")
        inserted.append(len(rows))
        insert_many(session, table, columns, rows)

    monkeypatch.setattr(users, "insert_many", failing_on_the_third)
    with pytest.raises(StoreUnavailable):
        import_users_csv(store, _lines([f"u{n}@example.kz,,,,,true" for n in range(8)]), actor="t")

    assert inserted == [3, 3] and export_users(store) == []
    with store.transaction() as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_present_and_suppressed_addresses_in_later_batches_behave_as_in_one(store: Store, small_batches: None) -> None:
    import_users_csv(store, _lines(["kept@example.kz,+77011112233,Ким,Анна,,false"]), actor="t")
    with store.transaction() as session:
        suppress(session, "Opted.Out@Example.KZ", utcnow())
    header = HEADER.strip() + ",consent_source,consent_at\n"
    rows = [f"u{n}@example.kz,,,,,true,,2025-03-01T10:00:00+05:00" for n in range(5)]
    # Inserted three at a time: the address on file comes in the second batch, the suppressed one in the third.
    rows.insert(4, "KEPT@example.kz,+77770000000,Other,Name,,true,,")
    rows.append("opted.out@example.kz,,,,,true,form,")

    result = import_users_csv(store, io.StringIO(header + "".join(f"{r}\n" for r in rows), newline=""), actor="t")

    assert (result.created, result.already_present) == (6, 1)
    exported = {u["email"]: u for u in export_users(store)}
    assert (exported["kept@example.kz"]["phone"], exported["kept@example.kz"]["marketing_consent"]) == (
        "+77011112233", False)
    assert exported["opted.out@example.kz"]["marketing_consent"] is False
    assert exported["opted.out@example.kz"]["consent_source"] == "form"
    assert all(exported[f"u{n}@example.kz"]["marketing_consent"] for n in range(5))
    assert exported["u4@example.kz"]["consent_at"] == "2025-03-01T05:00:00+00:00"


def test_an_address_given_in_an_earlier_batch_is_reported_with_its_line(small_batches: None) -> None:
    rows = ([f"u{n}@example.kz,,,,,true" for n in range(6)]
            + ["bad,,,,,true", "U1@Example.KZ,,,,,true", "bad@example.kz,123,,,,true", "bad@example.kz,,,,,true"])

    with pytest.raises(CsvImportError) as refused:
        read_users_csv(_lines(rows).getvalue())

    # A line refused for another reason is no earlier address: line 10's is new to line 11.
    assert refused.value.problems == ["line 8: email: missing or not a valid address",
                                      "line 9: email: same address as line 3",
                                      "line 10: phone: not a valid phone number"]


def test_every_problem_is_counted_and_the_first_thousand_listed() -> None:
    with pytest.raises(CsvImportError) as refused:
        read_users_csv(HEADER + "not-an-address,,,,,maybe\n" * 600)

    assert refused.value.count == 1_200 and len(refused.value.problems) == 1_000
    assert refused.value.problems[-1] == "line 501: marketing_consent: expected true or false"
    assert str(refused.value) == "1200 problem(s) in the file; nothing imported"


def test_the_bulk_insert_fills_every_column_as_the_orm_does() -> None:
    now = utcnow()
    [row] = read_users_csv(HEADER.strip() + ",consent_source,consent_at\n"
                           "a@example.kz,+77011112233,Ким,Анна,,true,form,2025-03-01\n")

    filled = dict(zip(NEW_USER_COLUMNS, new_user(row, marketing_allowed=True, now=now), strict=True))

    orm = User(email=row.email, phone=row.phone, surname=row.surname, first_name=row.first_name,
               patronymic=row.patronymic, marketing_consent=True, consent_source=row.consent_source,
               consent_at=row.consent_at, created_at=now, updated_at=now)
    assert set(filled) == {c.name for c in User.__table__.columns} - {"id"}  # type: ignore[attr-defined]
    assert {k: v for k, v in filled.items() if k != "ref"} == orm.model_dump(exclude={"id", "ref"})
    assert re.fullmatch(r"[0-9a-f]{32}", filled["ref"]) and filled["ref"] != new_user(row, True, now)[0]
    assert new_user(row, marketing_allowed=False, now=now)[7] is False
