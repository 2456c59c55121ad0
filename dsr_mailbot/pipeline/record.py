"""Recording the bot's mail before any work on it: one row per message, attempts counted, failures contained.

A candidate (a message the triage found to be the bot's business) becomes a
request row in state ``received`` before it is fetched whole; a message that
cannot even be recorded gets a minimal row (its hashed identity) in review,
or at least an audit event (:func:`unrecordable`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlmodel import Session, col, select

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.lifecycle import (
    UNMARKED,
    Arrival,
    Context,
    record_ignored,
    record_received,
    set_aside,
)
from dsr_mailbot.mailbox.source import HeaderRecord
from dsr_mailbot.pipeline.services import RunReport, Services
from dsr_mailbot.reading.classify import Classification
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_request_by_ref
from dsr_mailbot.store.models import (
    Request,
    RequestKind,
    RequestState,
)
from dsr_mailbot.trust.loops import loop_reason
from dsr_mailbot.trust.tokens import Token

log = logging.getLogger("dsr_mailbot")


MAX_ATTEMPTS = 3  # handling a message that killed the worker this many times is not tried again


# New requests are handled in groups of at most this many (one transaction to record them, one to apply them;
# fewer commits, and SQLite's write lock is held for at most a group) ...
GROUP_REQUESTS = 50


# ... and at most this much mail read at once (a request of max_message_bytes comes alone).
GROUP_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Candidate:
    """A message whose header block says it is the bot's business: what the triage found, for its handling."""

    record: HeaderRecord
    headers: Headers
    token: Token | None
    classification: Classification | None
    replied_to: int | None  # the request one of whose messages it answers, by the keyed tag
    # Found by its own words, without a subject marker: it may be a letter for the staff too, so it stays in the
    # inbox, unflagged and unmoved (its row is marked archived), and its Message-ID keeps it from a second handling.
    unmarked: bool = False


@dataclass(frozen=True)
class Seen:
    """What the run report needs of a request, taken in the transaction that last changed it."""

    id: int
    kind: str
    language: str
    state: str

    @classmethod
    def of(cls, row: Request) -> Seen:
        assert row.id is not None
        return cls(row.id, row.kind, row.language, row.state)


@dataclass(frozen=True)
class Fresh:
    """A request whose Message-ID the store had never seen, recorded as received: what its handling needs."""

    candidate: Candidate
    classification: Classification  # its kind and language, from its subject or its thread
    seen: Seen


def record_batch(services: Services, candidates: list[Candidate], uidvalidity: int,
                  report: RunReport) -> tuple[list[Fresh], list[Candidate]] | None:
    """Look the batch's candidates up and record the new requests, all in one transaction.

    Returns the new requests recorded as received (those the loop rules
    ignore are recorded and counted here), and the candidates that take the
    one-at-a-time path, whose checks they need: confirmations, messages seen
    before (a copy, a retry after a crash) and a second copy within the
    batch.  A reply naming a message of ours whose request is gone, with no
    marker of its own, is ordinary mail and is dropped.  None when the
    transaction failed (another process recorded one of them meanwhile, a
    value the database refuses): nothing was recorded, and every candidate
    takes the one-at-a-time path, where such a failure touches only its own
    message.
    """
    cfg, ctx = services.config, services.context()
    refs = [services.keyring.message_ref(c.headers.message_id) for c in candidates]
    parents = {c.replied_to for c in candidates if c.replied_to is not None}
    fresh: list[Fresh] = []
    one_by_one: list[Candidate] = []
    ignored: list[Seen] = []
    try:
        with services.store.transaction() as session:
            known = set(session.exec(select(Request.message_ref).where(col(Request.message_ref).in_(refs))).all())
            parent_kinds: dict[int | None, str] = dict(
                session.exec(select(Request.id, Request.kind).where(col(Request.id).in_(parents))).all()
            ) if parents else {}
            for candidate, ref in zip(candidates, refs, strict=True):
                if candidate.token is not None or ref in known:
                    one_by_one.append(candidate)
                    continue
                classification = candidate.classification
                if classification is None:
                    parent_kind = parent_kinds.get(candidate.replied_to)
                    if parent_kind is None or parent_kind == RequestKind.CONFIRM:
                        continue  # names a message of ours whose request is gone: ordinary mail
                    # A reply to our message keeps the kind of the request we wrote about.
                    classification = Classification(RequestKind(parent_kind), cfg.policy.default_language, "")
                known.add(ref)  # a second copy in this batch is a duplicate of this one
                record = candidate.record
                arrival = Arrival(cfg.source_name, uidvalidity, record.uid,
                                  record.internaldate or candidate.headers.date or ctx.now)
                row, go_on = record_new(ctx, session, arrival, candidate.headers, classification.kind,
                                         classification.language, unmarked=candidate.unmarked)
                if go_on:
                    fresh.append(Fresh(candidate, classification, Seen.of(row)))
                else:
                    ignored.append(Seen.of(row))
    except Exception as exc:
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.info("recording a batch's %s requests failed (%s); each is handled alone", len(candidates),
                 type(exc).__name__)
        return None
    for seen in ignored:
        count(seen, report)
    return fresh, one_by_one


def groups(fresh: list[Fresh], max_message_bytes: int) -> Iterator[list[Fresh]]:
    """Consecutive requests, at most :data:`GROUP_REQUESTS` and :data:`GROUP_BYTES` of mail to read at once."""
    group: list[Fresh] = []
    size = 0
    for item in fresh:
        cost = min(item.candidate.record.size, max_message_bytes)
        if group and (len(group) >= GROUP_REQUESTS or size + cost > GROUP_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        yield group


def begin(services: Services, ctx: Context, arrival: Arrival, headers: Headers, kind: str, language: str,
           existing_id: int | None, unmarked: bool = False) -> tuple[Seen, bool]:
    """Record the message (or one more attempt at it) before any work on it, in its own transaction.

    Returns the request and whether to work on it: not when the message was
    recorded as ignored, nor when it already made :data:`MAX_ATTEMPTS` attempts
    without finishing — the worker died each time — and was set aside for review.
    """
    with services.store.transaction() as session:
        if existing_id is None:
            new, go_on = record_new(ctx, session, arrival, headers, kind, language, unmarked=unmarked)
            return Seen.of(new), go_on
        row = session.get(Request, existing_id)
        assert row is not None
        row.uidvalidity, row.uid = arrival.uidvalidity, arrival.uid  # the copy we have now
        if row.attempts >= MAX_ATTEMPTS:
            log.error("request %s stopped the worker %s times; set aside for review", row.id, row.attempts)
            set_aside(ctx, session, row, f"poison: the worker stopped {row.attempts} times while handling it")
            return Seen.of(row), False
        row.attempts += 1
        return Seen.of(row), True


def record_new(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str,
                language: str, *, unmarked: bool = False) -> tuple[Request, bool]:
    """A message never seen before: ignored by the loop rules, or received (its first attempt counted)."""
    reason = loop_reason(headers, ctx.config.policy.operator_addresses)
    if reason is not None:
        row, go_on = record_ignored(ctx, session, arrival, headers, kind, language, reason), False
    else:
        row, go_on = record_received(ctx, session, arrival, headers, kind, language), True
    if unmarked:
        row.archived_at = ctx.now  # never moved: it may be a letter for the staff as well
        row.intent = {**(row.intent or {}), UNMARKED: True}
        session.add(row)
    return row, go_on


def received(session: Session, request_id: int) -> Request | None:
    """The request, if it is still ours to work on (not set aside or decided meanwhile)."""
    row = session.get(Request, request_id)
    return row if row is not None and row.state == RequestState.RECEIVED else None


def count(seen: Seen, report: RunReport) -> None:
    report.requests += 1
    report.states[seen.state] += 1
    report.request_ids.append(seen.id)
    log.info("request %s (%s, %s): %s", seen.id, seen.kind, seen.language, seen.state)


def set_aside_seen(services: Services, seen: Seen, reason: str) -> Seen:
    """A message that failed unexpectedly: to review, without a reply; the others go on."""
    log.error("request %s could not be handled (%s); set aside for review", seen.id, reason)
    with services.store.transaction() as session:
        row = session.get(Request, seen.id)
        if row is None:
            return seen
        if row.state == RequestState.RECEIVED:
            set_aside(services.context(), session, row, reason)
        return Seen.of(row)


def unrecordable(services: Services, record: HeaderRecord, uidvalidity: int, stage: str, exc: Exception,
                  report: RunReport) -> None:
    """A message that failed before its request was recorded: a minimal row to review, or at least an event.

    The minimal row holds nothing read from the message but its hashed
    identity, so whatever made the first attempt fail cannot make this one
    fail; it goes to review.  A message that failed at triage may not be a
    request at all, and mail that is not a request is never modified: its row
    is marked archived, so the message stays in the inbox, where the review
    row points to it by UID.  One that failed while being recorded is a
    request, and is moved out like any other.
    """
    reason = f"{stage}:{type(exc).__name__}"
    log.error("message at uid %s could not be recorded (%s); set aside for review", record.uid, reason)
    digest = services.keyring.digest("unrecordable", record.header.hex())[:40]
    ctx = services.context()
    try:
        with services.store.transaction() as session:
            message_id = f"<unreadable-{digest}@dsr-mailbot.invalid>"
            message_ref = services.keyring.message_ref(message_id)
            if find_request_by_ref(session, message_ref) is not None:
                return
            row = Request(message_ref=message_ref, message_id=message_id, source=services.config.source_name,
                          uidvalidity=uidvalidity, uid=record.uid, kind=RequestKind.UPDATE, state=RequestState.RECEIVED,
                          language=services.config.policy.default_language, received_at=ctx.now, due_at=ctx.now,
                          subject_ref="-")
            if stage == "triage":
                row.archived_at = ctx.now  # never moved: it may be ordinary mail
            session.add(row)
            session.flush()
            set_aside(ctx, session, row, reason)
            seen = Seen.of(row)
    except DsrMailbotError as store_exc:
        if store_exc.temporary:
            raise
        with services.store.transaction() as session:
            record_event(session, "message_unrecordable", uid=record.uid, uidvalidity=uidvalidity, stage=stage,
                         error=type(exc).__name__)
        return
    count(seen, report)
