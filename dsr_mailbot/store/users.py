"""Importing users from CSV and exporting them as JSON (the operator's bulk interface).

Import is all-or-nothing: every row is checked first, every problem is
reported with its line number (never with the offending value, which is
personal data), and nothing is written unless the whole file is good.
Import only *creates* users: a row whose e-mail is already in the store is
left alone and counted, so a re-import can never undo a correction or a
withdrawal that a data subject made by e-mail.

Memory stays flat whatever the file's size.  Pass 1 streams the file, checks
each row and keeps the good ones outside memory (store/checked_rows.py,
which then finds the addresses given on an earlier line); pass 2, only when
every row is good, reads them back and adds the new users a batch at a time,
with one query for the addresses already on file and one for the suppression
list per batch and a bulk insert (store/bulk.py), all in one transaction.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlmodel import SQLModel

from dsr_mailbot.reading.extract import normalise_email, normalise_name, normalise_phone
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.bulk import insert_many, values_present
from dsr_mailbot.store.checked_rows import CheckedRows, UserRow
from dsr_mailbot.store.database import Store, all_users
from dsr_mailbot.store.models import new_user_ref, utcnow
from dsr_mailbot.store.suppressions import suppressed_among

__all__ = ["CheckedRows", "CsvImportError", "ImportResult", "UserRow", "checked_users_csv", "export_users",
           "import_users", "import_users_csv", "read_users_csv"]

CSV_COLUMNS = ("email", "phone", "surname", "first_name", "patronymic", "marketing_consent")
# Where and when the consent was given: the burden of proving it is the operator's (152-FZ Art. 9 ч.3).
OPTIONAL_COLUMNS = ("consent_source", "consent_at")
MAX_SOURCE_CHARS = 200
_TRUE = {"1", "true", "yes", "y", "да", "иә", "on"}
_FALSE = {"", "0", "false", "no", "n", "нет", "жоқ", "off"}
# A file can be wrong on every one of a million lines: the problems are all counted, the first ones listed.
MAX_PROBLEMS_LISTED = 1_000
CHECK_BATCH = 5_000  # rows kept at once
IMPORT_BATCH = 5_000  # rows looked up and inserted at once


class CsvImportError(Exception):
    """The file was refused; ``problems`` lists ``line N: …`` strings, the first of ``count``."""

    def __init__(self, problems: list[str], count: int | None = None) -> None:
        self.count = len(problems) if count is None else count
        super().__init__(f"{self.count} problem(s) in the file; nothing imported")
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    created: int
    already_present: int


@dataclass
class _Problems:
    """The problems found so far: every one counted, the first ``limit`` kept as (line, 1, text)."""

    limit: int = MAX_PROBLEMS_LISTED
    found: list[tuple[int, int, str]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, problems: list[str]) -> None:
        self.count += len(problems)
        room = max(self.limit - len(self.found), 0)
        self.found.extend((line, 1, p) for p in problems[:room])

    def refusal(self, duplicates: Iterable[tuple[int, int]]) -> CsvImportError | None:
        """The file's refusal, these duplicates (line, first line: in line order) among the problems; or None.

        A line's duplicate address comes before its other problems, as the e-mail is the first column checked.
        """
        count = self.count
        repeated: list[tuple[int, int, str]] = []
        for line, first in duplicates:
            count += 1
            if len(repeated) < self.limit:
                repeated.append((line, 0, f"email: same address as line {first}"))
        if not count:
            return None
        merged = heapq.merge(repeated, self.found, key=lambda problem: problem[:2])
        return CsvImportError([f"line {line}: {text}" for line, _, text in itertools.islice(merged, self.limit)],
                              count)


class RowCheck(NamedTuple):
    """One row's checks: its address when that is valid, the row when nothing else is wrong, its problems."""

    line: int
    email: str | None
    row: UserRow | None
    problems: list[str]


def check_row(line: int, values: dict[str, str]) -> RowCheck:
    """Check one row's stripped values (every column present); whether its address came before is not known here."""
    problems: list[str] = []
    email = normalise_email(values["email"]) if values["email"] else None
    if email is None:
        problems.append("email: missing or not a valid address")
    phone = None
    if values["phone"]:
        phone = normalise_phone(values["phone"])
        if phone is None:
            problems.append("phone: not a valid phone number")
    names: dict[str, str | None] = {}
    for key in ("surname", "first_name", "patronymic"):
        names[key] = normalise_name(values[key]) if values[key] else None
        if values[key] and names[key] is None:
            problems.append(f"{key}: not a name")
    consent = values["marketing_consent"].lower()
    if consent not in _TRUE and consent not in _FALSE:
        problems.append("marketing_consent: expected true or false")
    source = " ".join(values.get("consent_source", "").split()) or None
    if source is not None and (len(source) > MAX_SOURCE_CHARS or not source.isprintable()):
        problems.append(f"consent_source: at most {MAX_SOURCE_CHARS} printable characters")
    given_at = _moment(values.get("consent_at", ""))
    if values.get("consent_at") and given_at is None:
        problems.append("consent_at: expected a date like 2025-03-01 or a time like 2025-03-01T10:00:00+05:00")
    if problems or email is None:
        return RowCheck(line, email, None, problems)
    return RowCheck(line, email, UserRow(line, email, phone, names["surname"], names["first_name"],
                                         names["patronymic"], consent in _TRUE, source, given_at), problems)


def _moment(text: str) -> datetime | None:
    """A date (its start, UTC) or a time (UTC when it has no offset); None for anything else or nothing."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_users_csv(lines: Iterable[str], checked: CheckedRows) -> None:
    """Pass 1: check every row of a users CSV and keep the good ones in ``checked``.

    ``lines`` is read once, a line at a time (an open file, with ``newline=""``).  Raises
    :class:`CsvImportError` listing the first problems (all counted) when any row is bad; at once for a header
    that is not the columns, since nothing else can be read.
    """
    lines = iter(lines)
    first = next(lines, "")
    reader = csv.reader(itertools.chain([first.lstrip("\ufeff")], lines))
    header = [h.strip().lower() for h in next(reader, [])]
    if not set(CSV_COLUMNS) <= set(header) <= set(CSV_COLUMNS + OPTIONAL_COLUMNS) or len(set(header)) != len(header):
        raise CsvImportError([f"line 1: columns must be {','.join(CSV_COLUMNS)} "
                              f"(and optionally {','.join(OPTIONAL_COLUMNS)})"])
    problems = _Problems()
    good: list[UserRow] = []
    refused: list[tuple[int, str]] = []
    for fields in reader:
        if not fields:
            continue  # a blank line is no row
        if len(fields) > len(header):
            problems.add(reader.line_num, ["more fields than columns"])
            continue
        fields += [""] * (len(header) - len(fields))
        check = check_row(reader.line_num, {k: v.strip() for k, v in zip(header, fields, strict=True)})
        if check.row is not None:
            good.append(check.row)
        else:
            problems.add(check.line, check.problems)
            if check.email is not None:
                refused.append((check.line, check.email))
        if len(good) + len(refused) >= CHECK_BATCH:
            checked.keep(good, refused)
            good, refused = [], []
    checked.keep(good, refused)
    refusal = problems.refusal(checked.duplicates())
    if refusal is not None:
        raise refusal


@contextmanager
def checked_users_csv(lines: Iterable[str]) -> Iterator[CheckedRows]:
    """Pass 1 over a users CSV: the good rows, kept until the block ends; :class:`CsvImportError` if any is bad."""
    with CheckedRows() as checked:
        check_users_csv(lines, checked)
        yield checked


def read_users_csv(text: str) -> list[UserRow]:
    """Parse and check a small users CSV held in memory (the demo's); :class:`CsvImportError` if any row is bad."""
    with checked_users_csv(io.StringIO(text, newline="")) as checked:
        return list(checked.rows())


def import_users_csv(store: Store, lines: Iterable[str], actor: str) -> ImportResult:
    """Both passes: check every row of the CSV, then, when all are good, add the new users."""
    with checked_users_csv(lines) as checked:
        return import_users(store, checked.rows(), actor)


def import_users(store: Store, rows: Iterable[UserRow], actor: str) -> ImportResult:
    """Pass 2: add the users not on file yet, in one transaction, with the audit event (rows: checked, distinct)."""
    created = present = 0
    now = utcnow()
    table = SQLModel.metadata.tables["users"]
    rows = iter(rows)
    with store.transaction() as session:
        while chunk := list(itertools.islice(rows, IMPORT_BATCH)):
            on_file = values_present(session, table, "email", [r.email for r in chunk])
            new = [r for r in chunk if r.email not in on_file]
            # An address that opted out before it was on file keeps marketing off, whatever the file says.
            suppressed = suppressed_among(session, [r.email for r in new if r.marketing_consent])
            insert_many(session, table, NEW_USER_COLUMNS, [new_user(r, r.email not in suppressed, now) for r in new])
            created += len(new)
            present += len(chunk) - len(new)
        record_event(session, "users_imported", actor=actor, created=created, already_present=present)
    return ImportResult(created, present)


# Every column of a new user's row but its id, in the order of new_user's values.
NEW_USER_COLUMNS = ("ref", "email", "phone", "surname", "first_name", "patronymic", "processing_consent",
                    "marketing_consent", "consent_withdrawn_at", "marketing_opted_out_at", "erasure_due_at",
                    "created_at", "updated_at", "consent_source", "consent_at")


def new_user(row: UserRow, marketing_allowed: bool, now: datetime) -> tuple[Any, ...]:
    """A new user's values (NEW_USER_COLUMNS), filled as the ORM fills a ``User``'s (its reference by
    ``new_user_ref``)."""
    return (new_user_ref(), row.email, row.phone, row.surname, row.first_name, row.patronymic, True,
            row.marketing_consent and marketing_allowed, None, None, None, now, now, row.consent_source,
            row.consent_at)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_users(store: Store) -> list[dict[str, Any]]:
    with store.transaction() as session:
        users = list(all_users(session))
    return [
        {
            "email": u.email,
            "phone": u.phone,
            "surname": u.surname,
            "first_name": u.first_name,
            "patronymic": u.patronymic,
            "marketing_consent": u.marketing_consent,
            "processing_consent": u.processing_consent,
            "consent_withdrawn_at": _iso(u.consent_withdrawn_at),
            "consent_source": u.consent_source,
            "consent_at": _iso(u.consent_at),
            "marketing_opted_out_at": _iso(u.marketing_opted_out_at),
            "erasure_due_at": _iso(u.erasure_due_at),
        }
        for u in users
    ]
