"""A store shaped like a year of the bot's work, for ``bench.reporting``: generated row by row, bulk-inserted.

``count`` requests spread evenly over :data:`MONTHS` months (the last,
:data:`REPORTED_MONTH`, holds a tenth of them), shaped as the bot writes
them (see a ``dsr-mailbot demo`` store): kinds and mixed letters, states
with their outcomes and reasons, due dates counted by the deadlines' own
code, closed requests without the person's text, open ones with it; each
request's replies in the outbox (a question's acknowledgement and answer,
a withdrawal's challenge, a few sent late or still queued); each
withdrawal's erasure (done, or pending in the store and a system); and
``events_per_request`` audit events per request (received, read, an
action, the state, the reply sent or the person erased) chained with the
trail's own hash (store/chain.py), the chain's head moved to the last.

Rows are written with the drivers' bulk paths, not the bot's: ``executemany``
in large transactions on SQLite, ``COPY`` on PostgreSQL.  The same rows go
to every sink in one pass (the hashing is most of the generation's time).
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import psycopg

from dsr_mailbot.intents.deadlines import calendar_version, due_at
from dsr_mailbot.store.chain import GENESIS, canonical, link

ZONE = ZoneInfo("Asia/Almaty")  # [policy] timezone's default
FIRST_MONTH = date(2025, 1, 1)
MONTHS = 10
REPORTED_MONTH = "2025-10"  # the last of the months: a tenth of the requests
CHUNK = 5_000  # requests per batch of rows

Row = tuple[Any, ...]

COLUMNS = {
    "users": ("id", "ref", "email", "phone", "surname", "first_name", "patronymic", "processing_consent",
              "marketing_consent", "created_at", "updated_at"),
    "requests": ("id", "message_ref", "message_id", "source", "uidvalidity", "uid", "kind", "intents", "state",
                 "outcome", "reason", "language", "received_at", "due_at", "completed_at", "archived_at",
                 "user_id", "subject_ref", "reply_address", "thread", "intent", "letter_subject", "letter_text",
                 "authenticated", "awaiting", "confirm_expires_at", "related_request_id", "attempts"),
    "outbox": ("id", "request_id", "purpose", "message_id", "recipient", "data", "state", "attempts", "last_error",
               "created_at", "for_verified", "sent_at"),
    "system_actions": ("id", "request_id", "system", "action", "key", "state", "attempts", "due_at", "next_try_at",
                       "created_at", "done_at", "payload", "result"),
    "audit_events": ("id", "at", "request_id", "subject_ref", "event", "actor", "detail", "chain_hash"),
}

KINDS = (("update", 0.34), ("optout", 0.30), ("withdraw", 0.15), ("access", 0.10), ("question", 0.08),
         ("confirm", 0.03))
STATES = (("completed", 0.86), ("rejected", 0.06), ("expired", 0.02), ("ignored", 0.01), ("review", 0.02),
          ("awaiting_confirmation", 0.02), ("carrying_out", 0.01))
OUTCOMES = {"update": "update_applied", "optout": "optout_applied", "withdraw": "withdrawal_applied",
            "access": "access_answered", "question": "question_answered", "confirm": "confirmed"}
REASONS = {"rejected": ("unknown_sender", "no_such_user"), "expired": ("not_confirmed", "confirmation_expired"),
           "ignored": ("not_a_request", "auto_reply"), "review": (None, "names_another_user"),
           "awaiting_confirmation": (None, None), "carrying_out": (None, None)}
CHANGED = {"update": ["phone"], "optout": ["marketing_consent"],
           "withdraw": ["processing_consent", "marketing_consent", "erasure_due_at"]}
# How long answering takes, in seconds: an opt-out at once, an access answer in days.
DELAY = {"update": (5, 3_600), "optout": (1, 60), "withdraw": (600, 86_400), "access": (3_600, 12 * 86_400),
         "question": (3_600, 14 * 86_400), "confirm": (1, 60)}
ERASURE_DAYS = 30


def weighted(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    point, total = rng.random(), 0.0
    for name, share in table:
        total += share
        if point < total:
            return name
    return table[-1][0]


def stamp(moment: datetime | None) -> str | None:
    """A UTC moment as both backends store it (naive UTC), written as text for the bulk paths."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def hexref(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def reply_bytes(size: int, n: int) -> bytes:
    """A reply as the outbox keeps it: a MIME message of ``size`` bytes (1–4 KB in the demo's store)."""
    head = (f"From: SmartThings LLP <support@smarthings.kz>\r\nTo: user{n}@example.kz\r\n"
            f"Subject: =?utf-8?b?0JLQsNGI0Lgg0L/QtdGA0YHQvtC90LDQu9GM0L3Ri9C1?=\r\n"
            f"Message-ID: <dsr.{n}.r@smarthings.kz>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
    body = b"0JfQtNGA0LDQstGB0YLQstGD0LnRgtC1LCDQstCw0YjQuCDQtNCw0L3QvdGL0LUg0L7QsdC90L7QstC70LXQvdGLLg==\r\n"
    return head + body * max(1, (size - len(head)) // len(body))


@dataclass
class Generated:
    """What the store holds, for the bench's summary and checks."""

    requests: int = 0
    in_month: int = 0
    outbox: int = 0
    events: int = 0
    system_actions: int = 0
    users: int = 0
    erasure_pending: list[tuple[int, str]] = field(default_factory=list)  # (user id, due) to set at the end
    head: tuple[int, str] = (0, GENESIS)


class Sink(Protocol):
    def write(self, table: str, rows: Sequence[Row]) -> None: ...

    def finish(self, generated: Generated) -> None: ...


class SqliteSink:
    """``executemany`` in one transaction per batch, on a connection of its own (no foreign key checks).

    No ANALYZE at the end: the bot never runs it, so a real store's planner has no statistics either.
    """

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("PRAGMA cache_size=-1000000")

    def write(self, table: str, rows: Sequence[Row]) -> None:
        columns = COLUMNS[table]
        self.connection.execute("BEGIN")
        self.connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})", rows)
        self.connection.execute("COMMIT")

    def finish(self, generated: Generated) -> None:
        finish_sql(self.connection.cursor(), "?", generated)
        self.connection.close()


class PostgresSink:
    """``COPY … FROM STDIN`` per batch; VACUUM ANALYZE at the end, as autovacuum would leave a settled store."""

    def __init__(self, conninfo: str) -> None:
        self.connection = psycopg.connect(conninfo, autocommit=True)

    def write(self, table: str, rows: Sequence[Row]) -> None:
        with self.connection.cursor() as cursor, \
                cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self, generated: Generated) -> None:
        with self.connection.cursor() as cursor:
            finish_sql(cursor, "%s", generated)
            for table in ("users", "requests", "outbox", "system_actions", "audit_events"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")
            cursor.execute("VACUUM ANALYZE")
        self.connection.close()


def finish_sql(cursor: Any, mark: str, generated: Generated) -> None:
    """Pending erasures on their users, and the chain's head on the last event."""
    cursor.executemany(f"UPDATE users SET erasure_due_at = {mark}, processing_consent = {mark}, "
                       f"marketing_consent = {mark} WHERE id = {mark}",
                       [(due, False, False, user) for user, due in generated.erasure_pending])
    cursor.execute(f"UPDATE audit_chain SET last_event_id = {mark}, last_hash = {mark}", generated.head)


def month_start(index: int) -> datetime:
    year, month = FIRST_MONTH.year + (FIRST_MONTH.month - 1 + index) // 12, (FIRST_MONTH.month - 1 + index) % 12 + 1
    return datetime(year, month, 1, tzinfo=ZONE)


class Generator:
    def __init__(self, count: int, events_per_request: int, seed: int = 21) -> None:
        self.count, self.per_request = count, events_per_request
        self.rng = random.Random(seed)
        self.users = max(1, count // 2)
        self.starts = [month_start(m) for m in range(MONTHS + 1)]
        self.data_end = self.starts[-1].astimezone(UTC)
        self.due_cache: dict[tuple[str, date], datetime | None] = {}
        self.generated = Generated(users=self.users)
        self.previous_hash = GENESIS
        self.last_withdrawal = 0
        self.templates = {size: reply_bytes(size, 0) for size in (900, 1_400, 2_100, 3_000, 4_100)}

    def received(self, n: int) -> datetime:
        """Request ``n``'s arrival: month ``n * MONTHS // count``, evenly spread over its days."""
        month = n * MONTHS // self.count
        first = -(-month * self.count // MONTHS)
        after = -(-(month + 1) * self.count // MONTHS)
        span = self.starts[month + 1] - self.starts[month]
        return (self.starts[month] + span * ((n - first + 0.5) / max(1, after - first))).astimezone(UTC)

    def due(self, kind: str, received: datetime) -> datetime:
        """As the bot counts it; day-count deadlines end with their day, so one count serves every request of it."""
        key = (kind, received.astimezone(ZONE).date())
        if key not in self.due_cache:
            counted = due_at(kind, received)
            self.due_cache[key] = None if counted == received else counted
        return self.due_cache[key] or received

    def users_rows(self) -> Iterator[list[Row]]:
        created = stamp(self.starts[0] - timedelta(days=365))
        for start in range(1, self.users + 1, 20_000):
            yield [(u, hexref("user", u)[:32], f"user{u}@example.kz", f"+7701{u:07d}", "Петров", "Иван",
                    "Сергеевич", True, u % 3 == 0, created, created)
                   for u in range(start, min(self.users + 1, start + 20_000))]

    def batches(self) -> Iterator[dict[str, list[Row]]]:
        outbox_id = action_id = event_id = 0
        for start in range(0, self.count, CHUNK):
            rows: dict[str, list[Row]] = {"requests": [], "outbox": [], "system_actions": [], "audit_events": []}
            for n in range(start, min(self.count, start + CHUNK)):
                request, replies, actions, events = self.request(n)
                rows["requests"].append(request)
                for reply in replies:
                    outbox_id += 1
                    rows["outbox"].append((outbox_id, *reply))
                for action in actions:
                    action_id += 1
                    rows["system_actions"].append((action_id, *action))
                for event in events:
                    event_id += 1
                    rows["audit_events"].append(self.chained(event_id, *event))
            self.generated.outbox, self.generated.system_actions = outbox_id, action_id
            self.generated.events = event_id
            yield rows
        self.generated.requests = self.count
        self.generated.head = (self.generated.events, self.previous_hash)

    def chained(self, event_id: int, at: datetime, request_id: int | None, subject_ref: str | None, name: str,
                actor: str, detail: dict[str, Any]) -> Row:
        self.previous_hash = link(self.previous_hash, canonical(at, request_id, subject_ref, name, actor, detail))
        return (event_id, stamp(at), request_id, subject_ref, name, actor, json.dumps(detail), self.previous_hash)

    def request(self, n: int) -> tuple[Row, list[Row], list[Row], list[tuple[Any, ...]]]:
        rng, request_id = self.rng, n + 1
        kind = weighted(rng, KINDS)
        received = self.received(n)
        if received >= self.starts[-2].astimezone(UTC):
            self.generated.in_month += 1
        recent = self.data_end - received < timedelta(days=20)
        state = weighted(rng, STATES) if recent else weighted(rng, STATES[:4])
        if kind == "confirm":
            state = "completed"
        intents = [] if kind == "confirm" else [kind] + (["optout"] if kind == "update" and n % 9 == 0 else [])
        user = None if state == "rejected" else n * 7_919 % self.users + 1
        subject_ref = hexref("subject", user if user is not None else -n)[:32]
        due = self.due(kind, received)
        final = state in ("completed", "rejected", "expired", "ignored")
        low, high = DELAY[kind]
        completed = received + timedelta(seconds=rng.uniform(low, high)) if final else None
        if completed is not None and completed > self.data_end:
            completed = self.data_end - timedelta(minutes=5)
        outcome, reason = (OUTCOMES[kind], None) if state == "completed" else REASONS[state]
        authenticated = rng.random() < 0.4
        open_text = not final
        erased = kind == "withdraw" and state == "completed" and completed is not None and \
            self.data_end - completed > timedelta(days=ERASURE_DAYS)
        related = self.last_withdrawal if kind == "confirm" else None
        if kind == "withdraw":
            self.last_withdrawal = request_id
        request = (
            request_id, hexref("message", n)[:40], f"<{n}.{hexref('mid', n)[:12]}@mail.example.kz>",
            "imap://mail.smarthings.kz/INBOX", 1_700_000_000, n + 1, kind, json.dumps(intents), state, outcome,
            reason, rng.choice(("ru", "kk", "en")), stamp(received), stamp(due), stamp(completed),
            stamp(completed + timedelta(seconds=30)) if completed is not None and state != "ignored" else None,
            None if erased else user, subject_ref,
            f"user{user}@example.kz" if open_text else None, f"<{n}@mail.example.kz>" if open_text else None,
            json.dumps({"changes": {"phone": "+77017654321"}, "problems": []} if open_text else {}),
            "Обновление персональных данных" if open_text else None,
            "Телефон: 8 701 765 43 21" if open_text else None,
            authenticated, "o" if state == "awaiting_confirmation" else None,
            stamp(received + timedelta(days=3)) if state == "awaiting_confirmation" else None, related, 1)

        replies: list[Row] = []

        def reply(purpose: str, at: datetime) -> None:
            fate = rng.random()
            sent: datetime | None = None  # unsent: refused for good, or still queued
            if fate >= 0.01 and at <= self.data_end - timedelta(hours=1):  # a few sent days late (server down)
                sent = at + (timedelta(days=rng.uniform(1, 3)) if fate > 0.995 else
                             timedelta(seconds=rng.uniform(0.05, 2)))
            failed = sent is None and fate < 0.005
            data = self.templates[rng.choice(tuple(self.templates))]
            replies.append((request_id, purpose, f"<dsr.{request_id}.{purpose[0]}.{hexref('r', n, purpose)[:16]}"
                            "@smarthings.kz>", "erased" if erased else f"user{user or n}@example.kz",
                            b"" if erased else data, "sent" if sent else "failed" if failed else "queued",
                            1 + (sent is None), "SMTPRecipientsRefused" if failed else None, stamp(at),
                            authenticated, stamp(sent)))

        if kind == "question":
            reply("reply", received + timedelta(seconds=1))  # the acknowledgement
        if kind == "withdraw" and not authenticated:
            reply("challenge_o", received + timedelta(seconds=1))
        if completed is not None and state in ("completed", "rejected") and kind != "confirm":
            reply("answer" if kind == "question" else "reply", completed)

        actions: list[Row] = []
        pending_erasure = kind == "withdraw" and state == "completed" and not erased and completed is not None
        if pending_erasure or erased:
            assert completed is not None
            erase_at = completed + timedelta(days=ERASURE_DAYS)
            actions.append((request_id, "shop", "erase", f"dsr-{hexref('key', n)[:32]}",
                            "done" if erased else "pending", 1 if erased else 0, stamp(erase_at), stamp(erase_at),
                            stamp(completed), stamp(erase_at) if erased else None,
                            json.dumps({} if erased else {"email": f"user{user}@example.kz"}),
                            json.dumps({"deleted": {"customers": 1}, "updated": {}} if erased else {})))
            if pending_erasure and user is not None:
                self.generated.erasure_pending.append((user, stamp(erase_at) or ""))

        read_at = received + timedelta(seconds=0.2)
        events: list[tuple[Any, ...]] = [
            (received, request_id, subject_ref, "request_received", "bot", {"kind": kind}),
            (read_at, request_id, subject_ref, "request_read", "bot", {
                "language": request[11], "intents": intents,
                "authentication": "dmarc=pass" if authenticated else "no trusted header",
                "fields": ["phone"] if kind == "update" else [], "problems": [], "body": "plain", "defects": [],
                "truncated": False, "has_message_id": True, "received_at": received.isoformat(),
                "due_at": due.isoformat(), "deadline_profiles": ["ru-152fz", "kz"],
                "calendars": {"ru-152fz": "RU", "kz": "KZ"}, "timezone": "Asia/Almaty",
                "holidays_version": calendar_version()}),
        ]
        if kind == "withdraw" and not authenticated:
            events.append((read_at, request_id, subject_ref, "confirmation_requested", "bot", {"audience": "o"}))
        elif kind == "confirm":
            events.append((received, related, subject_ref, "confirmed", "bot",
                           {"audience": "o", "confirmation_request_id": request_id}))
        else:
            events.append((read_at, request_id, subject_ref, "system_action_done", "bot", {
                "system": "shop", "action": kind, "deleted": {}, "updated": {"customers": 1}, "attempts": 1}))
        detail: dict[str, Any] = {"outcome": outcome, "reason": reason}
        if state == "completed" and kind in CHANGED:
            detail.update(changed=CHANGED[kind], unchanged=[], problems=[])
        events.append((completed or read_at, request_id, subject_ref, f"request_{state}", "bot", detail))
        if erased:
            assert completed is not None
            events.append((completed + timedelta(days=ERASURE_DAYS), None, subject_ref, "user_erased", "bot", {
                "fields": ["email", "phone", "surname", "first_name", "patronymic"], "reason": "consent_withdrawn",
                "requests": 1, "replies": len(replies), "act": f"a{request_id}", "messages_expunged": 1,
                "messages_left_in_inbox": 0}))
        for row in replies:
            if row[5] == "sent":
                events.append((datetime.fromisoformat(row[10]).replace(tzinfo=UTC), request_id, None, "reply_sent",
                               "bot", {"purpose": row[1]}))
        while len(events) < self.per_request:  # operators opening the request's masked fields
            events.append((read_at + timedelta(minutes=len(events)), request_id, subject_ref, "field_revealed",
                           "web:operator", {"field": "letter"}))
        return request, replies, actions, events[:self.per_request]


def fill(sinks: Sequence[Sink], count: int, events_per_request: int) -> Generated:
    """Generate the store once and write every batch to each sink."""
    generator = Generator(count, events_per_request)
    for batch in generator.users_rows():
        for sink in sinks:
            sink.write("users", batch)
    for rows in generator.batches():
        for table, batch in rows.items():
            if batch:
                for sink in sinks:
                    sink.write(table, batch)
    for sink in sinks:
        sink.finish(generator.generated)
    return generator.generated
