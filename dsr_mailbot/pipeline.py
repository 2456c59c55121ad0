"""One pass over the support mailbox: source → parse → classify → verify → apply → reply → archive.

How the stages connect, top to bottom (:func:`run_once`):

1. **source** — open the mailbox, read the cursor (UIDVALIDITY, last UID).
   A new UIDVALIDITY restarts the scan from UID 1; requests already handled
   are recognised by Message-ID and not handled again.
2. **archive** (retry) — requests committed earlier whose message has not
   been moved yet are moved now.
3. **scan** — header blocks of new messages only.  :mod:`classify` decides
   from the subject which are requests; nothing else is fetched whole,
   flagged or moved.
4. per request: **parse** the whole message, find the person's own words
   (:mod:`body`), **verify** whose request it is, **apply** it, render the
   **reply** into the outbox — all in one database transaction with the
   request row and its audit events.
5. the cursor advances past each batch once every request in it is
   committed; then **archive** moves the new request messages.
6. **send** — the outbox is drained (SMTP or .eml files).

Outcomes of requests are values (:class:`~dsr_mailbot.apply.Outcome`).  A
server that cannot be reached stops the pass: what was committed stays
committed, the rest is picked up by the next run (``temporary_failure``).
Any other exception while handling one request puts that request into
``review`` with the failing stage as its reason, and the pass goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from dsr_mailbot import apply as apply_stage
from dsr_mailbot.archive import archive_pending
from dsr_mailbot.body import reply_text
from dsr_mailbot.classify import Classification, classify_subject, request_language
from dsr_mailbot.config import Config
from dsr_mailbot.deadlines import due_at
from dsr_mailbot.errors import DsrMailbotError, StoreConflict
from dsr_mailbot.extract import extract_update
from dsr_mailbot.keys import Keyring
from dsr_mailbot.models import FINAL_STATES, OutboxMessage, Request, RequestKind, RequestState, User, utcnow
from dsr_mailbot.parse import Headers, ParsedMessage, parse_headers, parse_message
from dsr_mailbot.reply import Renderer, build_message, format_date, reply_message_id, reply_subject
from dsr_mailbot.send import Transport, drain_outbox
from dsr_mailbot.source import HeaderRecord, MailSource
from dsr_mailbot.store import (
    Store,
    find_request_by_message_id,
    find_user_by_email,
    get_cursor,
    record_event,
    save_cursor,
)
from dsr_mailbot.verify import Identity, Verdict, identify

log = logging.getLogger("dsr_mailbot")


@dataclass
class Services:
    """Everything a pass needs, passed in (never imported as globals)."""

    config: Config
    store: Store
    keyring: Keyring
    renderer: Renderer
    transport: Transport
    clock: Callable[[], datetime] = utcnow


@dataclass
class RunReport:
    scanned: int = 0
    requests: int = 0
    duplicates: int = 0
    states: Counter[str] = field(default_factory=Counter)
    request_ids: list[int] = field(default_factory=list)
    archived: int = 0
    replies_sent: int = 0
    replies_failed: int = 0
    temporary_failure: str | None = None

    def summary(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.states.items())) or "none"
        text = (
            f"scanned {self.scanned} new message(s); {self.requests} request(s) ({states}); "
            f"{self.duplicates} duplicate(s); {self.archived} archived; "
            f"{self.replies_sent} reply(ies) sent, {self.replies_failed} failed"
        )
        if self.temporary_failure:
            text += f"; stopped early: {self.temporary_failure}"
        return text


def run_once(services: Services, source: MailSource) -> RunReport:
    """Process what is new in the mailbox, then send what is queued."""
    report = RunReport()
    cfg, store = services.config, services.store
    try:
        uidvalidity = source.open()
        last_uid = _start_cursor(store, cfg.source_name, uidvalidity)
        report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved
        for batch in source.scan(last_uid, cfg.limits.fetch_batch_size):
            for record in batch:
                report.scanned += 1
                headers = parse_headers(record.header)
                classification = classify_subject(headers.subject)
                if classification is not None:
                    _handle_request(services, source, record, headers, classification, uidvalidity, report)
            if batch:
                with store.transaction() as session:
                    save_cursor(session, cfg.source_name, uidvalidity, batch[-1].uid)
        report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved
    except DsrMailbotError as exc:
        if not exc.temporary:
            raise
        report.temporary_failure = str(exc)
        log.info("pass stopped early: %s", exc)
    finally:
        source.close()
    drained = drain_outbox(store, services.transport, services.config.reply_from)
    report.replies_sent, report.replies_failed = drained.sent, drained.failed
    if drained.unavailable and not report.temporary_failure:
        report.temporary_failure = drained.unavailable
        log.info("replies stay queued: %s", drained.unavailable)
    return report


def _start_cursor(store: Store, source_name: str, uidvalidity: int) -> int:
    with store.transaction() as session:
        cursor = get_cursor(session, source_name)
        if cursor is None:
            save_cursor(session, source_name, uidvalidity, 0)
            return 0
        if cursor.uidvalidity != uidvalidity:
            # Old UIDs mean nothing now: rescan from the start, deduplicating by Message-ID.
            record_event(session, "uidvalidity_changed", old=cursor.uidvalidity, new=uidvalidity)
            save_cursor(session, source_name, uidvalidity, 0)
            log.warning("mailbox UIDVALIDITY changed; rescanning (requests are matched by Message-ID)")
            return 0
        return cursor.last_uid


def _handle_request(
    services: Services,
    source: MailSource,
    record: HeaderRecord,
    headers: Headers,
    classification: Classification,
    uidvalidity: int,
    report: RunReport,
) -> None:
    store = services.store
    with store.transaction() as session:
        existing = find_request_by_message_id(session, headers.message_id)
        existing_id = existing.id if existing else None
    if existing_id is not None:
        # A redelivered or copied request: already handled once; move the copy out of the way.
        source.archive([record.uid])
        with store.transaction() as session:
            record_event(session, "duplicate_archived", request_id=existing_id)
        report.duplicates += 1
        return
    fetched = source.fetch(record.uid, services.config.limits.max_message_bytes)
    if fetched is None:
        return  # expunged by someone else since the scan
    stage = "parse"
    try:
        parsed = parse_message(fetched.data, truncated=fetched.truncated)
        stage = "apply"
        with store.transaction() as session:
            request = _record_and_apply(services, session, record, parsed, classification, uidvalidity)
    except StoreConflict:
        # Another process recorded this Message-ID since we looked: it owns the request.
        log.info("request at uid %s was recorded by another process; skipped", record.uid)
        return
    except DsrMailbotError as exc:
        if exc.temporary:
            raise
        request = _set_aside(services, record, headers, classification, uidvalidity, f"{stage}:{type(exc).__name__}")
    except Exception as exc:  # one bad message must not stop the others
        request = _set_aside(services, record, headers, classification, uidvalidity, f"{stage}:{type(exc).__name__}")
    report.requests += 1
    report.states[request.state] += 1
    assert request.id is not None
    report.request_ids.append(request.id)
    log.info("request %s (%s, %s): %s", request.id, request.kind, request.language, request.state)


def _set_aside(
    services: Services,
    record: HeaderRecord,
    headers: Headers,
    classification: Classification,
    uidvalidity: int,
    reason: str,
) -> Request:
    """Record a request that failed unexpectedly, in ``review``, without a reply."""
    log.error("request could not be handled (uid %s, %s); set aside for review", record.uid, reason)
    now = services.clock()
    received = record.internaldate or now
    with services.store.transaction() as session:
        request = Request(
            message_id=headers.message_id,
            source=services.config.source_name,
            uidvalidity=uidvalidity,
            uid=record.uid,
            kind=classification.kind,
            state=RequestState.REVIEW,
            reason=reason[:500],
            language=classification.language,
            received_at=received,
            due_at=due_at(classification.kind, received),
            subject_ref=_subject_ref(services.keyring, headers.sender),
            reply_address=headers.sender,
        )
        session.add(request)
        session.flush()
        record_event(session, "request_review", request_id=request.id,
                     subject_ref=request.subject_ref, reason=request.reason)
    return request


def _subject_ref(keyring: Keyring, sender: str | None) -> str:
    return keyring.subject_ref(sender) if sender else "-"


def _record_and_apply(
    services: Services,
    session: Session,
    record: HeaderRecord,
    parsed: ParsedMessage,
    classification: Classification,
    uidvalidity: int,
) -> Request:
    cfg, now = services.config, services.clock()
    headers = parsed.headers
    own_words = reply_text(parsed.body_text)
    received = record.internaldate or headers.date or now
    identity = identify(headers, lambda email: find_user_by_email(session, email), cfg.policy.operator_addresses)
    request = Request(
        message_id=headers.message_id,
        source=cfg.source_name,
        uidvalidity=uidvalidity,
        uid=record.uid,
        kind=classification.kind,
        state=RequestState.RECEIVED,
        language=request_language(classification, own_words, cfg.policy.default_language),
        received_at=received,
        due_at=due_at(classification.kind, received),
        user_id=identity.user.id if identity.user else None,
        subject_ref=_subject_ref(services.keyring, identity.sender),
        reply_address=identity.sender,
    )
    session.add(request)
    session.flush()
    record_event(
        session, "request_received", request_id=request.id, subject_ref=request.subject_ref,
        kind=request.kind, language=request.language, body=parsed.body_kind,
        defects=sorted(parsed.defects), truncated=parsed.truncated, has_message_id=headers.has_message_id,
    )
    outcome = _decide(services, session, identity, classification.kind, own_words, received, now)
    request.state = outcome.state
    request.outcome = outcome.template
    request.reason = outcome.reason
    if outcome.state in FINAL_STATES:
        request.completed_at = now
        # A closed request needs no address: the reply, if any, carries its own recipient.
        request.reply_address = None
    record_event(
        session, f"request_{outcome.state}", request_id=request.id, subject_ref=request.subject_ref,
        outcome=outcome.template, reason=outcome.reason, changed=list(outcome.changed_fields),
        unchanged=list(outcome.unchanged_fields),
        problems=[f"{p.field}:{p.code}" for p in outcome.problems],
    )
    if outcome.template and identity.sender:
        recipient = identity.user.email if identity.user else identity.sender
        _queue_reply(services, session, request, outcome, headers, recipient)
    return request


def _decide(
    services: Services,
    session: Session,
    identity: Identity,
    kind: RequestKind,
    own_words: str,
    received: datetime,
    now: datetime,
) -> apply_stage.Outcome:
    if identity.verdict is Verdict.NO_SENDER:
        return apply_stage.Outcome(RequestState.REVIEW, None, reason="no_single_from_address")
    if identity.verdict is Verdict.OWN_ADDRESS:
        return apply_stage.Outcome(RequestState.IGNORED, None, reason="from_operator_address")
    if identity.user is None:
        return apply_stage.unknown_sender()
    user: User = identity.user
    if kind is RequestKind.UPDATE:
        intent = extract_update(own_words)

        def email_taken(email: str) -> bool:
            other = find_user_by_email(session, email)
            return other is not None and other.id != user.id

        return apply_stage.apply_update(user, intent, email_taken, now)
    if kind is RequestKind.WITHDRAW:
        return apply_stage.apply_withdrawal(user, received, services.config.policy.erasure_delay_days, now)
    return apply_stage.apply_optout(user, received, now)


def template_context(outcome: apply_stage.Outcome, language: str, timezone: str) -> dict[str, Any]:
    erasure = outcome.context.get("erasure_due_at")
    return {
        "changes": dict(outcome.context.get("changes", {})),
        "unchanged": list(outcome.unchanged_fields),
        "problems": [{"field": p.field, "code": p.code} for p in outcome.problems],
        "erasure_date": format_date(erasure.astimezone(ZoneInfo(timezone)), language) if erasure else "",
    }


def _queue_reply(
    services: Services,
    session: Session,
    request: Request,
    outcome: apply_stage.Outcome,
    headers: Headers,
    recipient: str,
) -> None:
    assert outcome.template is not None and request.id is not None
    cfg = services.config
    body = services.renderer.render(
        outcome.template, request.language, template_context(outcome, request.language, cfg.policy.timezone)
    )
    from_address = cfg.reply_from
    message_id = reply_message_id(services.keyring, request.id, "reply", from_address.rsplit("@", 1)[-1])
    data = build_message(
        from_address=from_address,
        from_name=cfg.policy.operator_name,
        to_address=recipient,
        subject=reply_subject(headers.subject),
        body=body,
        message_id=message_id,
        language=request.language,
        in_reply_to=headers.message_id if headers.has_message_id else None,
        references=headers.references,
        now=services.clock(),
    )
    session.add(
        OutboxMessage(request_id=request.id, purpose="reply", message_id=message_id,
                      recipient=recipient, data=data)
    )
