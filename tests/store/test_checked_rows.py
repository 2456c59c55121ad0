"""The good rows of a users file, kept outside memory between the check and the insert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from dsr_mailbot.store.checked_rows import CheckedRows, UserRow

EMPTY = UserRow(0, "", None, None, None, None, False)


def _row(line: int, email: str, **values: Any) -> UserRow:
    return replace(EMPTY, line=line, email=email, **values)


def test_rows_come_back_in_file_order_with_their_values() -> None:
    given = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5)))
    rows = [_row(7, "b@example.kz", phone="+77011112233", surname="Ким", first_name="Анна", patronymic="Сергеевна",
                 marketing_consent=True, consent_source="checkout form", consent_at=given),
            _row(2, "a@example.kz")]
    with CheckedRows() as checked:
        checked.keep(rows[:1])
        checked.keep(rows[1:])
        back = list(checked.rows(batch=1))
    assert back == [rows[1], rows[0]]
    assert back[1].consent_at == given.astimezone(UTC) and back[1].marketing_consent is True


def test_the_lines_of_addresses_already_kept_are_found_whatever_the_number_asked() -> None:
    with CheckedRows() as checked:
        checked._per_query = 2  # the build's bound on an IN query's parameters, made small
        checked.keep([_row(n + 2, f"u{n}@example.kz") for n in range(5)])
        found = checked.first_lines(["u4@example.kz", "new@example.kz", "u0@example.kz", "U1@example.kz",
                                     "u2@example.kz"])
    assert found == {"u4@example.kz": 6, "u0@example.kz": 2, "u2@example.kz": 4}  # compared exactly: normal forms
