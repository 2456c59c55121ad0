"""Importing users from CSV and exporting them as JSON (the operator's bulk interface).

Import is all-or-nothing: every row is checked first, every problem is
reported with its line number (never with the offending value, which is
personal data), and nothing is written unless the whole file is good.
Import only *creates* users: a row whose e-mail is already in the store is
left alone and counted, so a re-import can never undo a correction or a
withdrawal that a data subject made by e-mail.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dsr_mailbot.reading.extract import normalise_email, normalise_name, normalise_phone
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import Store, all_users, find_user_by_email
from dsr_mailbot.store.models import User, utcnow
from dsr_mailbot.store.suppressions import is_suppressed

CSV_COLUMNS = ("email", "phone", "surname", "first_name", "patronymic", "marketing_consent")
# Where and when the consent was given: the burden of proving it is the operator's (152-FZ Art. 9 ч.3).
OPTIONAL_COLUMNS = ("consent_source", "consent_at")
MAX_SOURCE_CHARS = 200
_TRUE = {"1", "true", "yes", "y", "да", "иә", "on"}
_FALSE = {"", "0", "false", "no", "n", "нет", "жоқ", "off"}


class CsvImportError(Exception):
    """The file was refused; ``problems`` lists ``line N: …`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file; nothing imported")
        self.problems = problems


@dataclass(frozen=True)
class UserRow:
    line: int
    email: str
    phone: str | None
    surname: str | None
    first_name: str | None
    patronymic: str | None
    marketing_consent: bool
    consent_source: str | None = None
    consent_at: datetime | None = None


@dataclass(frozen=True)
class ImportResult:
    created: int
    already_present: int


def read_users_csv(text: str) -> list[UserRow]:
    """Parse and check a users CSV; raise :class:`CsvImportError` listing every bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not set(CSV_COLUMNS) <= set(header) <= set(CSV_COLUMNS + OPTIONAL_COLUMNS) or len(set(header)) != len(header):
        raise CsvImportError([f"line 1: columns must be {','.join(CSV_COLUMNS)} "
                              f"(and optionally {','.join(OPTIONAL_COLUMNS)})"])
    reader.fieldnames = header
    rows: list[UserRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            problems.append(f"line {line}: more fields than columns")
            continue
        values = {k: (v or "").strip() for k, v in raw.items()}
        row_problems: list[str] = []
        email = normalise_email(values["email"]) if values["email"] else None
        if email is None:
            row_problems.append("email: missing or not a valid address")
        elif email in seen:
            row_problems.append(f"email: same address as line {seen[email]}")
        phone = None
        if values["phone"]:
            phone = normalise_phone(values["phone"])
            if phone is None:
                row_problems.append("phone: not a valid phone number")
        names: dict[str, str | None] = {}
        for key in ("surname", "first_name", "patronymic"):
            names[key] = normalise_name(values[key]) if values[key] else None
            if values[key] and names[key] is None:
                row_problems.append(f"{key}: not a name")
        consent = values["marketing_consent"].lower()
        if consent not in _TRUE | _FALSE:
            row_problems.append("marketing_consent: expected true or false")
        source = " ".join(values.get("consent_source", "").split()) or None
        if source is not None and (len(source) > MAX_SOURCE_CHARS or not source.isprintable()):
            row_problems.append(f"consent_source: at most {MAX_SOURCE_CHARS} printable characters")
        given_at = _moment(values.get("consent_at", ""))
        if values.get("consent_at") and given_at is None:
            row_problems.append("consent_at: expected a date like 2025-03-01 or a time like 2025-03-01T10:00:00+05:00")
        if row_problems:
            problems.extend(f"line {line}: {p}" for p in row_problems)
            continue
        assert email is not None
        seen[email] = line
        rows.append(UserRow(line, email, phone, names["surname"], names["first_name"],
                            names["patronymic"], consent in _TRUE, source, given_at))
    if problems:
        raise CsvImportError(problems)
    return rows


def _moment(text: str) -> datetime | None:
    """A date (its start, UTC) or a time (UTC when it has no offset); None for anything else or nothing."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def import_users(store: Store, rows: list[UserRow], actor: str) -> ImportResult:
    created = present = 0
    now = utcnow()
    with store.transaction() as session:
        for row in rows:
            if find_user_by_email(session, row.email) is not None:
                present += 1
                continue
            # An address that opted out before it was on file keeps marketing off, whatever the file says.
            marketing = row.marketing_consent and not is_suppressed(session, row.email)
            session.add(User(
                email=row.email, phone=row.phone, surname=row.surname, first_name=row.first_name,
                patronymic=row.patronymic, marketing_consent=marketing,
                consent_source=row.consent_source, consent_at=row.consent_at, created_at=now, updated_at=now,
            ))
            created += 1
        record_event(session, "users_imported", actor=actor, created=created, already_present=present)
    return ImportResult(created, present)


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
