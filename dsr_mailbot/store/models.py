"""The tables of the store (SQLModel).

- ``users``: the personal data the operator holds (policy §3 and §4.1) and
  the consent state.  This is the only table meant to hold personal data
  beyond what an open request needs to be answered.
- ``requests``: one row per inbound request message, with its lifecycle
  ``state``.  States are stored so that a request can wait (for a
  confirmation, for review) across runs and restarts.
- ``audit_events``: what was done, when and why, linked to a person only
  through ``subject_ref``, a keyed hash of their address.  No addresses,
  names or phone numbers: the ``detail`` JSON holds field *names*, kinds and
  outcomes, never values.
- ``outbox``: replies written in the same transaction as the change they
  report, sent afterwards, so a failed send is retried and never lost.
- ``campaign_notices``: a campaign's notices, queued as references to their
  recipients and written into the outbox as their turn to be sent comes.
- ``system_actions``: each action of a request on each system of the data
  map, written with the decision and carried out afterwards, like the outbox.
- ``mailbox_cursors``: per watched mailbox, its UIDVALIDITY and the last
  UID scanned.
- ``worker_status``: per daemon, its servers' state, last pass and counters
  (for ``/healthz`` and ``/metrics`` served by another process).

Times are stored as UTC and always returned timezone-aware.
"""

# No `from __future__ import annotations` here: SQLModel reads the
# annotations at class creation time.

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, LargeBinary, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# MySQL's and MariaDB's DATETIME keeps whole seconds unless asked for more: keep microseconds, as the others do.
TIMESTAMP = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

# Every table of the bot on MySQL/MariaDB: utf8mb4 whatever the database's default, and a binary collation, so
# that a unique address or reference compares byte for byte as on SQLite and PostgreSQL (a _ci collation folds
# case, accents and trailing spaces). Other engines ignore these keywords.
MYSQL_TABLE: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
# InnoDB indexes at most 3,072 bytes of a key, 768 utf8mb4 characters: longer columns are indexed by a prefix.
MYSQL_KEY_PREFIX = 255


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC, on every backend."""

    impl = TIMESTAMP
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


def as_utc(naive: datetime) -> datetime:
    """A naive UTC time as stored, made aware: the same value as ``naive.replace(tzinfo=UTC)`` in a quarter of its
    time (``replace`` parses keyword arguments), which counts when an export or a report reads millions."""
    return datetime.combine(naive.date(), naive.time(), UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RequestKind(enum.StrEnum):
    UPDATE = "update"
    WITHDRAW = "withdraw"
    OPTOUT = "optout"
    ACCESS = "access"  # what personal data is held (policy 7.1, 152-FZ Art. 14)
    QUESTION = "question"  # any other question about the processing (policy 7.1): answered by a person
    # A reply to one of our confirmation challenges; it points at the request it confirms.
    CONFIRM = "confirm"


class RequestState(enum.StrEnum):
    RECEIVED = "received"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    REVIEW = "review"
    # Decided; waiting for the data map's systems (a lookup that could not be made, or the request's actions):
    # its reply goes out once every system has done its part (pipeline/release.py).
    CARRYING_OUT = "carrying_out"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    IGNORED = "ignored"


FINAL_STATES = frozenset(
    {RequestState.COMPLETED, RequestState.REJECTED, RequestState.EXPIRED, RequestState.IGNORED}
)
OPEN_STATES = tuple(state for state in RequestState if state not in FINAL_STATES)


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def new_user_ref() -> str:
    """A user's reference: random, never reused (``users import`` fills it the same way for its bulk inserts)."""
    return secrets.token_hex(16)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = MYSQL_TABLE

    id: int | None = Field(default=None, primary_key=True)
    # A random reference, never reused (SQLite reuses a deleted row's id): what a campaign's notices are keyed by.
    ref: str = Field(default_factory=new_user_ref, index=True, unique=True, max_length=32)
    email: str = Field(index=True, unique=True, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    surname: str | None = Field(default=None, max_length=100)
    first_name: str | None = Field(default=None, max_length=100)
    patronymic: str | None = Field(default=None, max_length=100)
    processing_consent: bool = True
    marketing_consent: bool = False
    consent_withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    marketing_opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    erasure_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Where and when the consent was given (``users import``): the burden of proving consent is the operator's.
    consent_source: str | None = Field(default=None, max_length=200)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Suppression(SQLModel, table=True):
    """An address that must get no marketing: SHA-256 of its normal form, lower-case hex (what mailing tools use)."""

    __tablename__ = "suppressions"
    __table_args__ = MYSQL_TABLE

    sha256: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class HoldKind(enum.StrEnum):
    BLOCK = "block"  # destruction within the term is impossible (152-FZ Art. 21 ч.6): at most max_block_days
    RETAIN = "retain"  # processing goes on under another legal ground (Art. 9 ч.2), until a date


class Hold(SQLModel, table=True):
    """An operator's hold on a person's data: after a withdrawal they are blocked, not destroyed, until its end.

    Personal data (the address), so it goes with the person's erasure.
    """

    __tablename__ = "holds"
    __table_args__ = MYSQL_TABLE

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)  # the normal form
    kind: str = Field(default=HoldKind.BLOCK, max_length=10)
    ground: str = Field(max_length=500)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=100)


class Request(SQLModel, table=True):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_message_id", "message_id", mysql_length=MYSQL_KEY_PREFIX),
        # The console's queue and deadlines, a page at a time in these orders (store/paging.py, migration 0011);
        # state first, so they serve every query on the state alone too. kind: counted without the table's rows.
        Index("ix_requests_state_received_at_id", "state", "received_at", "id"),
        Index("ix_requests_state_due_at_id_kind", "state", "due_at", "id", "kind"),
        MYSQL_TABLE,
    )

    id: int | None = Field(default=None, primary_key=True)
    # The dedup key: a keyed hash of the inbound Message-ID.  It outlives the person's data; the
    # Message-ID itself (which often holds an address) is kept only while their data is.
    message_ref: str = Field(index=True, unique=True, max_length=64)
    message_id: str | None = Field(default=None, max_length=998)
    source: str = Field(max_length=500)
    uidvalidity: int
    uid: int
    kind: str = Field(max_length=20)  # the primary intent: the subject's
    # Every intent of the letter, the subject's first, then those its own words add.  Names only, so it stays
    # when the request closes (the audit trail shows what was asked).
    intents: list[str] = Field(default_factory=list, sa_type=JSON)
    state: str = Field(max_length=30)  # indexed first in ix_requests_state_*
    outcome: str | None = Field(default=None, max_length=50)
    reason: str | None = Field(default=None, max_length=500)
    language: str = Field(max_length=5)
    # Indexed: the monthly report finds a month's requests by their arrival.
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Indexed: each pass looks for the handled requests whose message is not moved yet (IS NULL).
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    subject_ref: str = Field(max_length=64, index=True)
    # What an open request needs to be finished later (after a confirmation or a
    # review decision): where to answer, the thread to answer in (its References,
    # RFC 5322 §3.6.4), and what was asked.  Personal data (Message-IDs often
    # contain addresses), so all three are cleared when the request closes.
    reply_address: str | None = Field(default=None, max_length=320)
    thread: str | None = Field(default=None, max_length=8000)
    intent: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # The letter as a reviewer reads it: its subject and the person's own words (bounded, quotes cut).
    # Personal data, kept only while the request is open, like the three above.
    letter_subject: str | None = Field(default=None, max_length=998)
    letter_text: str | None = Field(default=None, sa_type=Text)
    # The owner's reply to a challenge that was neither a clear yes nor a no: a person reads it and decides.
    owner_reply: str | None = Field(default=None, sa_type=Text)
    authenticated: bool = False
    # Whose confirmation the request waits for: "o" (the address on file) or "n" (a new address).
    awaiting: str | None = Field(default=None, max_length=1)
    confirm_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    related_request_id: int | None = Field(default=None, index=True)
    # How many times handling this message started; a message that keeps killing
    # the worker is set aside after MAX_ATTEMPTS (see pipeline/record.py).
    attempts: int = 0


# Every column of a request that holds the person's own data or words while it is open: a request that closes
# forgets them (lifecycle), and erasure forgets them on every request of the person, open or not.
PERSONAL_REQUEST_TEXT = ("reply_address", "thread", "letter_subject", "letter_text", "owner_reply")


def forget_personal_text(request: Request) -> None:
    """Clear the person's data an open request kept to be finished (``intent`` holds the values asked)."""
    for name in PERSONAL_REQUEST_TEXT:
        setattr(request, name, None)
    request.intent = {}


def close_request(request: Request, now: datetime) -> None:
    """What a request forgets when it reaches a final state: the person's data, and what it waited for."""
    request.completed_at = now
    forget_personal_text(request)
    request.awaiting = None
    request.confirm_expires_at = None


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    # The monthly report counts the month's erasures (event, then time) among millions of events.
    __table_args__ = (Index("ix_audit_events_event_at", "event", "at"), MYSQL_TABLE)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    request_id: int | None = Field(default=None, index=True)
    subject_ref: str | None = Field(default=None, max_length=64, index=True)
    event: str = Field(max_length=50)
    actor: str = Field(default="bot", max_length=100)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # SHA-256 of the event before it and of this one (store/chain.py): a changed or removed event breaks the chain.
    chain_hash: str | None = Field(default=None, max_length=64)


class AuditChain(SQLModel, table=True):
    """The chain's head: one row, the hash of the last event, moved by every append under its row lock."""

    __tablename__ = "audit_chain"
    __table_args__ = MYSQL_TABLE

    id: int = Field(default=1, primary_key=True)
    last_event_id: int = 0
    last_hash: str = Field(max_length=64)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    # Each request counts its person's replies of the last day (the loop limit): by recipient, then time.
    # The sender takes the oldest queued reply (state, then id): without the pair, PostgreSQL walks every sent row
    # to find it, and a backlog slows down as it is answered.
    __table_args__ = (Index("ix_outbox_recipient_created_at", "recipient", "created_at"),
                      Index("ix_outbox_state_id", "state", "id"), MYSQL_TABLE)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int | None = Field(default=None, foreign_key="requests.id", index=True)
    purpose: str = Field(max_length=50)
    message_id: str = Field(unique=True, max_length=255)
    recipient: str = Field(max_length=320)
    data: bytes = Field(sa_type=LargeBinary)
    state: str = Field(default=OutboxState.QUEUED, index=True, max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Does it answer mail whose sender was verified (authenticated, or confirmed)?  Only such replies
    # count against an authenticated sender's daily limit (see outbox.replies_in_last_day).
    for_verified: bool = False
    # Indexed: the campaign throttle counts the notices sent in the last minute.
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class NoticeState(enum.StrEnum):
    QUEUED = "queued"  # a reference: its message is written when its turn to be sent comes
    WRITTEN = "written"  # its message is in the outbox (or was, from an earlier version or run)
    DROPPED = "dropped"  # its recipient was gone or had withdrawn when its turn came: nothing written, nothing sent
    FAILED = "failed"  # its message could not be written (a template broken since start-up): not retried


class CampaignNotice(SQLModel, table=True):
    """A campaign's notice (policy 7.2) to one recipient, queued as a reference; its message is written at sending.

    ``recipient_key`` is ``u:<users.ref>`` for the bot's own users and
    ``s:<keyed digest of the address>`` for someone found in a system of the
    data map; the campaign reaches each key once.  Only a system's recipient
    has its ``address`` here, and only until the message is written or the
    person is erased.
    """

    __tablename__ = "campaign_notices"
    # The key first: an erasure finds a person's notices by it, whatever the campaign.
    __table_args__ = (UniqueConstraint("recipient_key", "campaign", name="uq_campaign_notices_recipient"),
                      Index("ix_campaign_notices_state_id", "state", "id"), MYSQL_TABLE)

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=40)
    template: str = Field(max_length=40)
    recipient_key: str = Field(max_length=40)
    address: str | None = Field(default=None, max_length=320)
    state: str = Field(default=NoticeState.QUEUED, max_length=10)
    run: str = Field(max_length=16)  # the queueing run: a second copy of an address within one run is no recipient
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ActionState(enum.StrEnum):
    PENDING = "pending"  # to be done at next_try_at (a retry, or an erasure's date)
    DONE = "done"
    FAILED = "failed"  # refused for good, or not done within the system's give_up_after_hours: its request in review
    # An erasure done and written into the act of destruction, its notice queued (until then its payload keeps
    # the address the notice goes to).
    REPORTED = "reported"
    CANCELLED = "cancelled"  # its request was rejected or expired before it ran: never done


def new_action_key() -> str:
    """An action's idempotency key: random, the same on every retry of that action."""
    return f"dsr-{secrets.token_hex(16)}"


class SystemAction(SQLModel, table=True):
    """One action of one request on one system of the data map (``systems/``), done after the decision commits.

    Like the outbox: written in the transaction that decides the request, carried out afterwards, retried
    until done.  ``key`` is its idempotency key, the same on every retry.  ``payload`` (the address and the
    values to set) is the person's data: cleared once the action is done or failed.  ``result`` holds what it
    did (counts per table, for the act of destruction), never values; it is written before the system commits
    (``prepared``), so that a re-run after a crash between the two keeps the first counts.
    """

    __tablename__ = "system_actions"
    __table_args__ = (UniqueConstraint("request_id", "system", "action", name="uq_system_actions_request_action"),
                      Index("ix_system_actions_state_next_try_at", "state", "next_try_at"), MYSQL_TABLE)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="requests.id")
    system: str = Field(max_length=200)
    action: str = Field(max_length=20)
    key: str = Field(default_factory=lambda: new_action_key(), unique=True, max_length=64)
    state: str = Field(default=ActionState.PENDING, max_length=20)
    attempts: int = 0
    # When it first became due (an erasure: its date): the system's give_up_after_hours count from here.
    due_at: datetime = Field(sa_type=UTCDateTime)
    next_try_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The error's class or HTTP status, never its text (which may quote a value or a URL).
    last_error: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class MailboxCursor(SQLModel, table=True):
    __tablename__ = "mailbox_cursors"
    __table_args__ = MYSQL_TABLE

    source: str = Field(primary_key=True, max_length=500)
    uidvalidity: int
    last_uid: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WorkerStatus(SQLModel, table=True):
    """What a daemon last knew of its servers and passes (``service/health.py``), for another process to report.

    ``status`` is a :class:`~dsr_mailbot.service.health.StatusRecord` as JSON: server names, times and
    counters, never personal data.
    """

    __tablename__ = "worker_status"
    __table_args__ = MYSQL_TABLE

    worker: str = Field(primary_key=True, max_length=200)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    status: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
