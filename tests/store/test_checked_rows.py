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


def test_a_line_whose_address_a_good_earlier_line_has_is_found_with_that_line() -> None:
    with CheckedRows() as checked:
        checked.keep([_row(2, "a@example.kz"), _row(4, "b@example.kz"), _row(5, "a@example.kz")],
                     refused=[(3, "b@example.kz"), (6, "c@example.kz")])
        checked.keep([_row(7, "c@example.kz"), _row(9, "a@example.kz")], refused=[(8, "b@example.kz")])
        found = list(checked.duplicates())
        kept = [row.line for row in checked.rows(batch=2)]
    # Line 3 came before line 4's good b, and line 6's c was refused: neither is an earlier address.
    assert found == [(5, 2), (8, 4), (9, 2)]
    assert kept == [2, 4, 5, 7, 9]  # the good rows only


def test_addresses_are_compared_exactly_as_their_normal_forms() -> None:
    with CheckedRows() as checked:
        checked.keep([_row(2, "u1@example.kz"), _row(3, "U1@example.kz"), _row(4, "u1@example.kz ")])
        assert list(checked.duplicates()) == []
