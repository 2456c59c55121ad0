"""One pass over the support mailbox: source → parse → classify → verify → apply → reply → archive.

How the stages connect, top to bottom (:func:`run_once`):

1. **expire** — requests whose confirmation did not come in time are closed,
   with a short notice; users whose erasure date has come are erased.
2. **source** — open the mailbox, read the cursor (UIDVALIDITY, last UID).
   A new UIDVALIDITY restarts the scan from UID 1; messages already handled
   are recognised by Message-ID and not handled again.
3. **archive** (retry) — requests committed earlier whose message has not
   been moved yet are moved now.
4. **scan** — of new messages only the header fields the triage reads
   (:data:`TRIAGE_FIELDS`); the whole header block of the few whose fields
   do not show them to be ordinary.  From the headers alone:
   every ``multipart/report`` (delivery status, feedback/abuse reports, read
   receipts) is automated mail and never a request; a delivery report
   (:mod:`bounces`) is read to see whether it reports one of our replies.
   A reply to one of our challenges carries a token (:mod:`tokens`); a
   request carries a subject marker (:mod:`classify`); a reply to any other
   message of ours (In-Reply-To or References naming it, checked by its
   keyed tag) is a person talking to us and goes to review, never in as a
   new request.  Everything else is ordinary support mail and is never
   fetched whole, flagged or moved.
5. per request or confirmation: the loop rules (:mod:`loops`) decide from
   the headers whether it must stay unanswered (``ignored``); a confirmation
   is checked against its request; a request is fetched whole, **parsed**,
   its text **read** (:mod:`reading`, before any transaction opens), its
   sender **verified**, and it is **applied** or made to wait, with its
   **reply** put into the outbox (:mod:`lifecycle`).  A batch's new
   requests are recorded in one transaction and applied in another, a group
   at a time (:func:`_handle_group`); confirmations and messages seen before
   take a transaction each.
6. the cursor advances past each batch once every message in it is
   committed; then **archive** moves the new request messages (ignored
   ones stay where they are).
7. **send** — the outbox is drained (SMTP or .eml files).

A server that cannot be reached stops the pass: what was committed stays
committed, the rest is picked up by the next run (``temporary_failure``).
**No single message can stop the pass.**  Any other exception while
handling one message puts it into ``review`` with the failing stage and the
exception's class as its reason; when even recording it fails, a minimal
row (its hashed identity, no text) goes to review instead, and when that
fails too, an audit event names its UID and the message stays in the inbox
for a person.  The cursor moves on either way.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Event

from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.errors import DsrMailbotError, StoreConflict
from dsr_mailbot.facts import Reading, read_request
from dsr_mailbot.faults import crash_point
from dsr_mailbot.lifecycle import (
    Arrival,
    Context,
    confirm,
    expire_overdue,
    intake,
    record_ignored,
    record_received,
    set_aside,
)
from dsr_mailbot.mailbox.archive import archive_pending
from dsr_mailbot.mailbox.source import FIELDS_CAP_BYTES, FetchedMessage, HeaderRecord, MailSource
from dsr_mailbot.reading.classify import Classification, MarkerTable, classify_subject, shipped_table
from dsr_mailbot.reading.consent import read_confirmation
from dsr_mailbot.reading.parse import Headers, fast_subject, parse_headers, parse_message
from dsr_mailbot.replies.outbox import queue_reply
from dsr_mailbot.replies.reply import Renderer, ReplyContent
from dsr_mailbot.replies.send import Transport, drain_outbox
from dsr_mailbot.store.acts import Act, delete_expired_acts, record_notice, write_act
from dsr_mailbot.store.database import Store, find_request_by_ref, get_cursor, record_event, save_cursor
from dsr_mailbot.store.erasure import due_user_ids, erase_user, plan_erasure, purge_outbox_row
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    AuditEvent,
    OutboxMessage,
    OutboxState,
    Request,
    RequestKind,
    RequestState,
    User,
    utcnow,
)
from dsr_mailbot.trust.bounces import find_bounced_reply, is_delivery_report, is_report
from dsr_mailbot.trust.loops import loop_reason
from dsr_mailbot.trust.own_mail import our_messages
from dsr_mailbot.trust.tokens import Token, find_token

log = logging.getLogger("dsr_mailbot")
BOUNCE_FETCH_BYTES = 256 * 1024  # a delivery report names the bounced message near its top
CONFIRMATION_FETCH_BYTES = 256 * 1024  # a reply to a challenge says yes or no in its first lines
MAX_ATTEMPTS = 3  # handling a message that killed the worker this many times is not tried again
# New requests are handled in groups of at most this many (one transaction to record them, one to apply them;
# fewer commits, and SQLite's write lock is held for at most a group) ...
GROUP_REQUESTS = 50
# ... and at most this much mail read at once (a request of max_message_bytes comes alone).
GROUP_BYTES = 8 * 1024 * 1024
# The header fields the triage reads (certainly_ordinary and _triage: reports, tokens, markers, replies to us);
# the scan fetches only these, and the whole block of the few messages they do not show to be ordinary.
TRIAGE_FIELDS = ("SUBJECT", "CONTENT-TYPE", "IN-REPLY-TO", "REFERENCES")


# The outbox purpose of the last message to an erased person (purged once sent, see finish_destruction_notices).
DESTRUCTION_NOTICE = "destroyed"


@dataclass
class Services:
    """Everything a pass needs, passed in (never imported as globals)."""

    config: Config
    store: Store
    keyring: Keyring
    renderer: Renderer
    transport: Transport
    clock: Callable[[], datetime] = utcnow
    markers: MarkerTable = field(default_factory=shipped_table)  # with the operator's extra phrases, if any
    # Opens a connection of its own to the watched mailbox (erasure expunges there), or None for no mailbox.
    mailbox: Callable[[], MailSource] | None = None

    def context(self) -> Context:
        return Context(self.config, self.keyring, self.renderer, self.clock())


@dataclass
class RunReport:
    scanned: int = 0
    requests: int = 0
    duplicates: int = 0
    bounces: int = 0
    expired: int = 0
    erased: int = 0
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
        if self.bounces:
            text += f"; {self.bounces} bounce(s) of our replies"
        if self.expired:
            text += f"; {self.expired} expired unconfirmed"
        if self.erased:
            text += f"; {self.erased} user(s) erased"
        if self.temporary_failure:
            text += f"; stopped early: {self.temporary_failure}"
        return text


def run_once(services: Services, source: MailSource) -> RunReport:
    """One pass for cron: expire, process what is new in the mailbox, then send what is queued."""
    report = RunReport()
    try:
        expire_unconfirmed(services, report)
        erase_due(services, report)
        uidvalidity = source.open()
        process_mailbox(services, source, uidvalidity, report)
    except DsrMailbotError as exc:
        if not exc.temporary:
            raise
        report.temporary_failure = str(exc)
        log.info("pass stopped early: %s", exc)
    finally:
        source.close()
    send_queued(services, report)
    finish_erasure(services)
    return report


def expire_unconfirmed(services: Services, report: RunReport) -> None:
    with services.store.transaction() as session:
        report.expired += expire_overdue(services.context(), session)


def erase_due(services: Services, report: RunReport) -> None:
    """Destroy the data of everyone whose erasure date has come, one person at a time, each isolated.

    For each person: read what erasing needs (a short transaction); expunge
    their request messages from ``processed_folder`` and count their ordinary
    mail left in the inbox (the mailbox, outside any transaction); write the
    act of destruction; then, in one transaction, queue the notice of
    destruction and destroy the store's copies.  Every step can run again:
    a crash before the commit leaves the person due, and the next run expunges
    nothing more, writes the same act and erases.  Afterwards the database
    files are made to forget (:meth:`Store.reclaim_erased`), notices sent or
    too old are purged after sending (:func:`finish_erasure`), and expired
    acts deleted.
    """
    now = services.clock()
    with services.store.transaction() as session:
        due = due_user_ids(session, now)
    mailbox = services.mailbox() if services.mailbox is not None and due else None
    try:
        if mailbox is not None:
            mailbox.open()  # one connection for the whole pass; unreachable, the pass waits for the next
        erased = 0
        for user_id in due:
            try:
                erased += _erase_one(services, user_id, mailbox)
            except Exception as exc:  # one person's failure must not keep the others' data
                if isinstance(exc, DsrMailbotError) and exc.temporary:
                    raise
                log.warning("erasure of user %s failed: %s", user_id, type(exc).__name__)
    finally:
        if mailbox is not None:
            mailbox.close()
    report.erased += erased
    if erased:
        services.store.reclaim_erased()
    policy = services.config.policy
    delete_expired_acts(policy.acts_dir, now, policy.act_retention_days)


def finish_erasure(services: Services) -> None:
    """After sending: purge the notices of destruction that went out (or are too old), then reclaim the space."""
    if finish_destruction_notices(services):
        services.store.reclaim_erased()


def _erase_one(services: Services, user_id: int, mailbox: MailSource | None) -> int:
    cfg, store, keyring = services.config, services.store, services.keyring
    with store.transaction() as session:
        user = session.get(User, user_id)
        if user is None:
            return 0
        plan = plan_erasure(session, keyring, user)
    # The transport's copies (file delivery's .eml files) go before the store's: a crash between the two
    # leaves the person due, and the next run forgets again; whatever is written meanwhile goes after the commit.
    services.transport.forget(plan.reply_ids)
    expunged = left_in_inbox = 0
    if mailbox is not None:
        if cfg.policy.expunge_processed_mail:
            expunged = mailbox.expunge_processed(plan.message_ids)
        left_in_inbox = mailbox.count_from(plan.email)
    withdrawal = plan.withdrawal
    act = Act(
        act_id=str(withdrawal.id) if withdrawal is not None else f"u{plan.user_id}",
        made_at=services.clock().isoformat(),
        system_name=cfg.policy.system_name,
        subject_full_name=plan.full_name,
        subject_ref=plan.subject_ref,
        categories=plan.categories,
        reason="withdrawal of consent to the processing of personal data (152-FZ Art. 21 ч.5)",
        request_id=withdrawal.id if withdrawal is not None else None,
        request_received_at=withdrawal.received_at.isoformat() if withdrawal is not None else None,
        method=store.erasure_method + ("; request messages expunged from the mailbox's processed folder"
                                       if cfg.policy.expunge_processed_mail else ""),
        processed_messages_expunged=expunged,
        ordinary_messages_left_in_inbox=left_in_inbox,
        notice="queued" if withdrawal is not None else "none",
    )
    write_act(cfg.policy.acts_dir, act)
    ctx = services.context()
    with store.transaction() as session:
        user = session.exec(select(User).where(User.id == user_id).with_for_update(skip_locked=True)).first()
        if user is None or user.erasure_due_at is None or user.erasure_due_at > ctx.now:
            return 0  # erased by another worker meanwhile, or no longer due
        kept: list[str] = []
        target = session.get(Request, withdrawal.id) if withdrawal is not None else None
        if target is not None:
            # The last message to them: queued before their address goes, purged once sent.
            kept.append(queue_reply(session, config=cfg, keyring=keyring, renderer=services.renderer,
                                    request=target, template="data_destroyed", purpose=DESTRUCTION_NOTICE,
                                    recipient=user.email, content=ReplyContent(), now=ctx.now, for_verified=True))
            session.flush()  # erase_user looks for every reply of theirs, this one included
        scrubbed = erase_user(session, keyring, user, now=ctx.now, keep_outbox=kept, act=act.act_id,
                              expunged=expunged, left_in_inbox=left_in_inbox)
    services.transport.forget(scrubbed)
    return 1


def finish_destruction_notices(services: Services) -> int:
    """Purge the notices of destruction that were sent, or that could not be sent in time; say so in the act.

    The notice is the one copy of the person's address left; it stays only
    until sent, and at most ``confirm_expiry_days`` (then it is dropped).
    """
    now = services.clock()
    limit = timedelta(days=services.config.trust.confirm_expiry_days)
    acts_dir = services.config.policy.acts_dir
    done: list[str] = []
    with services.store.transaction() as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.purpose == DESTRUCTION_NOTICE,
                                                            OutboxMessage.recipient != "erased")).all():
            if row.state == OutboxState.SENT:
                outcome, at = "sent", row.sent_at or now
                purge_outbox_row(row, OutboxState.SENT)
            elif row.state == OutboxState.FAILED or row.created_at + limit <= now:
                outcome, at = "dropped", now
                purge_outbox_row(row, OutboxState.FAILED, "notice of destruction dropped: not sent in time")
            else:
                continue
            record_event(session, f"destruction_notice_{outcome}", request_id=row.request_id, at=now)
            record_notice(acts_dir, str(row.request_id), outcome, at)
            done.append(row.message_id)
    services.transport.forget(done)  # with file delivery, the file was the delivery: it goes with the row
    return len(done)


def send_queued(services: Services, report: RunReport, stop: Event | None = None) -> None:
    drained = drain_outbox(services.store, services.transport, services.config.reply_from, stop=stop,
                           notices_per_minute=services.config.notices_per_minute)
    report.replies_sent += drained.sent
    report.replies_failed += drained.failed
    if drained.unavailable and not report.temporary_failure:
        report.temporary_failure = drained.unavailable
        log.info("replies stay queued: %s", drained.unavailable)


def process_mailbox(services: Services, source: MailSource, uidvalidity: int, report: RunReport,
                    stop: Event | None = None) -> None:
    """Archive what is pending, then handle every new message batch by batch; stop between messages when asked to.

    Each batch is triaged from its header blocks first; then its new requests
    are handled in groups (:func:`_handle_group`) and the rest of the bot's
    mail one message at a time (:func:`_handle`).  The cursor moves past the
    batch once all of it is committed: a crash before that makes the next run
    look at the batch again, where every message already handled is known by
    its Message-ID.
    """
    cfg, store = services.config, services.store
    last_uid = _start_cursor(store, cfg.source_name, uidvalidity)
    report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved
    for scanned in source.scan(last_uid, cfg.limits.fetch_batch_size, TRIAGE_FIELDS):
        batch = _complete_suspects(source, scanned, services.markers)
        candidates: list[_Candidate] = []
        last_seen: int | None = None
        for record in batch:
            if stop is not None and stop.is_set():
                break
            report.scanned += 1
            candidate = _triage_isolated(services, source, record, uidvalidity, report)
            if candidate is not None:
                candidates.append(candidate)
            last_seen = record.uid
        _handle_batch(services, source, candidates, uidvalidity, report)
        if last_seen is not None:
            with store.transaction() as session:
                save_cursor(session, cfg.source_name, uidvalidity, last_seen)
        if stop is not None and stop.is_set():
            break
    report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved


def _complete_suspects(source: MailSource, batch: list[HeaderRecord], markers: MarkerTable) -> list[HeaderRecord]:
    """The batch, with a complete record of each message whose triage fields do not show it to be ordinary.

    Those are few (requests, replies to us, reports, a Subject the byte
    reader is unsure of); one FETCH brings their blocks.  A record left
    incomplete was told ordinary here, or is gone from the mailbox.
    """
    suspects = [record.uid for record in batch if not record.complete and _suspect(record, markers)]
    if not suspects:
        return batch
    complete = source.complete_records(suspects)
    return [complete.get(record.uid, record) for record in batch]


def _suspect(record: HeaderRecord, markers: MarkerTable) -> bool:
    try:
        return len(record.header) >= FIELDS_CAP_BYTES or not certainly_ordinary(record.header, markers)
    except Exception:  # whatever the bytes do to the quick reader, the full triage (isolated) looks at them
        return True


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


@dataclass(frozen=True)
class _Candidate:
    """A message whose header block says it is the bot's business: what the triage found, for its handling."""

    record: HeaderRecord
    headers: Headers
    token: Token | None
    classification: Classification | None
    replied_to: int | None  # the request one of whose messages it answers, by the keyed tag


def _triage_isolated(services: Services, source: MailSource, record: HeaderRecord, uidvalidity: int,
                     report: RunReport) -> _Candidate | None:
    """:func:`_triage`, with whatever one message does to it contained: the pass goes on."""
    try:
        return _triage(services, source, record, report)
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise  # a server is down: stop the pass, retry this message next time
        _unrecordable(services, record, uidvalidity, "triage", exc, report)
        return None


def _triage(services: Services, source: MailSource, record: HeaderRecord, report: RunReport) -> _Candidate | None:
    """Decide from the header block what a message is; None for mail that is not the bot's business."""
    if not record.complete:
        return None  # its triage fields showed it to be ordinary (_complete_suspects), or it is gone
    if certainly_ordinary(record.header, services.markers):
        return None  # ordinary support mail, told from its bytes without parsing the header block whole
    headers = parse_headers(record.header)
    if is_report(headers):
        # Delivery reports, abuse (ARF) reports, read receipts: automated, never answered, never applied.
        if is_delivery_report(headers):
            _note_bounce(services, source, record, headers, report)
        return None
    token = find_token(headers)
    classification = classify_subject(headers.subject, services.markers)
    replied_to = None
    if token is None:
        ours = our_messages(services.keyring, " ".join([headers.in_reply_to or "", *headers.references,
                                                        headers.thread_text]))
        replied_to = ours[-1].request_id if ours else None
    if token is None and classification is None and replied_to is None:
        return None  # ordinary support mail: never touched
    return _Candidate(record, headers, token, classification, replied_to)


def certainly_ordinary(header: bytes, markers: MarkerTable) -> bool:
    """Is this header block surely none of the bot's business?  The same decision as the full triage, sooner.

    Not a report (no ``multipart/report``), no token and no Message-ID of
    ours (both hold "dsr", in the bytes or the decoded Subject), and a
    Subject without a marker: then parsing the block whole could only say
    "ordinary" too.  Anything else, or a block whose Subject the byte
    reader is unsure of, goes the full way.
    """
    lowered = header.lower()
    if b"multipart/report" in lowered or b"dsr" in lowered or _encoded_thread(lowered):
        return False
    subject = fast_subject(header)
    # A token may hide in an encoded Subject ("Подтвердите запрос [DSR-…]" travels as base64).
    return subject is not None and "dsr" not in subject.lower() and classify_subject(subject, markers) is None


def _encoded_thread(lowered: bytes) -> bool:
    """Does In-Reply-To or References hold an encoded word (where base64 may hide one of our IDs)?"""
    if b"=?" not in lowered:
        return False
    for name in (b"in-reply-to:", b"references:"):
        start = 0 if lowered.startswith(name) else lowered.find(b"\n" + name)
        while start >= 0:
            end = start + 1
            while True:  # the header's lines: it goes on while the next line starts with white space
                end = lowered.find(b"\n", end + 1)
                if end < 0 or lowered[end + 1:end + 2] not in (b" ", b"\t"):
                    break
            if b"=?" in lowered[start:end if end >= 0 else len(lowered)]:
                return True
            start = lowered.find(b"\n" + name, start + 1)
    return False


def _unrecordable(services: Services, record: HeaderRecord, uidvalidity: int, stage: str, exc: Exception,
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
            seen = _Seen.of(row)
    except DsrMailbotError as store_exc:
        if store_exc.temporary:
            raise
        with services.store.transaction() as session:
            record_event(session, "message_unrecordable", uid=record.uid, uidvalidity=uidvalidity, stage=stage,
                         error=type(exc).__name__)
        return
    _count(seen, report)


def _note_bounce(services: Services, source: MailSource, record: HeaderRecord, headers: Headers,
                 report: RunReport) -> None:
    fetched = source.fetch(record.uid, BOUNCE_FETCH_BYTES)
    if fetched is None:
        return
    bounced = find_bounced_reply(fetched.data.decode("utf-8", "replace"), services.keyring)
    if bounced is None:
        return  # someone else's bounce: ordinary support mail
    report_ref = services.keyring.digest("dsn", headers.message_id)[:16]
    with services.store.transaction() as session:
        if session.get(Request, bounced.request_id) is None:
            return
        seen = session.exec(select(AuditEvent).where(
            AuditEvent.event == "reply_bounced", AuditEvent.request_id == bounced.request_id)).all()
        if any(e.detail.get("report") == report_ref for e in seen):
            return
        record_event(session, "reply_bounced", request_id=bounced.request_id, purpose=bounced.purpose,
                     status=bounced.status, report=report_ref)
    report.bounces += 1
    log.info("a reply to request %s bounced (%s)", bounced.request_id, bounced.status or "no status")


def _handle_batch(services: Services, source: MailSource, candidates: list[_Candidate], uidvalidity: int,
                  report: RunReport) -> None:
    """A batch's mail for the bot: the new requests recorded together and worked in groups, the rest one at a time.

    The guarantees of handling one message at a time hold.  Every request is
    recorded as received, one attempt counted, before any work on it; each
    message is read before the applying transaction opens; the move comes
    after the commit (:func:`archive_pending`).  Failures are rare, so
    recording and applying are optimistic: when anything in the shared
    transaction fails, it is rolled back and each message is done again
    alone, so that only the failing one is set aside.  A crash leaves the
    requests recorded but not applied as received, and the next run takes
    each of them alone (:func:`_handle`): a poison message uses up only its
    own attempts.  The replies' Message-IDs are keyed on the request, so a
    group never changes them.
    """
    if not candidates:
        return
    recorded = _record_batch(services, candidates, uidvalidity, report)
    started, one_by_one = recorded if recorded is not None else ([], candidates)
    for group in _groups(started, services.config.limits.max_message_bytes):
        try:
            _handle_group(services, source, group, report)
        except Exception as exc:
            if isinstance(exc, DsrMailbotError) and exc.temporary:
                raise
            # Not even setting a request aside could be committed: the group's requests stay received, and
            # the next run takes each alone, as after a crash.
            log.error("a group of %s requests could not be committed (%s); retried next run", len(group),
                      type(exc).__name__)
    for candidate in one_by_one:
        _handle_isolated(services, source, candidate, uidvalidity, report)


@dataclass(frozen=True)
class _Fresh:
    """A request whose Message-ID the store had never seen, recorded as received: what its handling needs."""

    candidate: _Candidate
    classification: Classification  # its kind and language, from its subject or its thread
    seen: _Seen


def _record_batch(services: Services, candidates: list[_Candidate], uidvalidity: int,
                  report: RunReport) -> tuple[list[_Fresh], list[_Candidate]] | None:
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
    fresh: list[_Fresh] = []
    one_by_one: list[_Candidate] = []
    ignored: list[_Seen] = []
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
                row, go_on = _record_new(ctx, session, arrival, candidate.headers, classification.kind,
                                         classification.language)
                if go_on:
                    fresh.append(_Fresh(candidate, classification, _Seen.of(row)))
                else:
                    ignored.append(_Seen.of(row))
    except Exception as exc:
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.info("recording a batch's %s requests failed (%s); each is handled alone", len(candidates),
                 type(exc).__name__)
        return None
    for seen in ignored:
        _count(seen, report)
    return fresh, one_by_one


def _groups(fresh: list[_Fresh], max_message_bytes: int) -> Iterator[list[_Fresh]]:
    """Consecutive requests, at most :data:`GROUP_REQUESTS` and :data:`GROUP_BYTES` of mail to read at once."""
    group: list[_Fresh] = []
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


@dataclass(frozen=True)
class _Read:
    """A recorded request whose message was read whole, outside any transaction: ready to be applied."""

    seen: _Seen
    message_id: str
    headers: Headers
    reading: Reading
    replied_to: int | None


def _handle_group(services: Services, source: MailSource, group: list[_Fresh], report: RunReport) -> None:
    """Recorded new requests, a group at a time: read one by one, then applied in one transaction."""
    read, failed = _read_group(services, source, group)
    outcomes = _apply_group(services, services.context(), read, failed)
    if outcomes is None:
        outcomes = [_apply_alone(services, item) for item in read] + [
            (_set_aside(services, seen, reason), "") for seen, reason in failed]
    for seen, message_id in outcomes:
        crash_point("after_apply_commit", message_id)
        _count(seen, report)


def _read_group(services: Services, source: MailSource,
                group: list[_Fresh]) -> tuple[list[_Read], list[tuple[_Seen, str]]]:
    """Fetch the group's messages in one exchange, then parse and read each; the failures, with their stage."""
    cfg = services.config
    try:
        fetched: dict[int, FetchedMessage] | None = source.fetch_many(
            [item.candidate.record.uid for item in group], cfg.limits.max_message_bytes)
    except DsrMailbotError as exc:
        if exc.temporary:
            raise
        fetched = None  # the shared FETCH was refused: each alone, so that only the culprit is set aside
    read: list[_Read] = []
    failed: list[tuple[_Seen, str]] = []
    for item in group:
        candidate, seen = item.candidate, item.seen
        stage = "fetch"
        try:
            uid = candidate.record.uid
            message = fetched.pop(uid, None) if fetched is not None else source.fetch(uid, cfg.limits.max_message_bytes)
            if message is None:
                continue  # expunged by someone else since the scan; the row stays received for a later copy
            crash_point("after_fetch", candidate.headers.message_id)
            stage = "parse"
            parsed = parse_message(message.data, truncated=message.truncated)
            del message
            stage = "read"
            reading = read_request(cfg, parsed, item.classification, services.markers)
        except Exception as exc:  # one bad message must not stop the others
            if isinstance(exc, DsrMailbotError) and exc.temporary:
                raise
            failed.append((seen, f"{stage}:{type(exc).__name__}"))
        else:
            read.append(_Read(seen, candidate.headers.message_id, parsed.headers, reading, candidate.replied_to))
    return read, failed


def _apply_group(services: Services, ctx: Context, read: list[_Read],
                 failed: list[tuple[_Seen, str]]) -> list[tuple[_Seen, str]] | None:
    """Apply the read requests and set the failed ones aside, all in one transaction.

    Returns each request as it stands after the commit, with its Message-ID;
    or None when anything failed: then nothing was committed, and the caller
    applies each request alone (:func:`_apply_alone`).
    """
    done: list[tuple[_Seen, str]] = []
    try:
        with services.store.transaction() as session:
            # One SELECT for the group's rows, instead of one each.
            ids = [item.seen.id for item in read] + [seen.id for seen, _reason in failed]
            rows = {row.id: row for row in session.exec(select(Request).where(col(Request.id).in_(ids)))
                    if row.state == RequestState.RECEIVED}  # not set aside or decided meanwhile
            for item in read:
                row = rows.get(item.seen.id)
                if row is not None:
                    intake(ctx, session, row, item.headers, item.reading, replied_to=item.replied_to)
                done.append((_Seen.of(row) if row is not None else item.seen, item.message_id))
            for seen, reason in failed:
                row = rows.get(seen.id)
                if row is not None:
                    set_aside(ctx, session, row, reason)
                done.append((_Seen.of(row) if row is not None else seen, ""))
    except Exception as exc:
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.info("applying a group of %s requests failed (%s); each is applied alone", len(read) + len(failed),
                 type(exc).__name__)
        return None
    for seen, reason in failed:
        log.error("request %s could not be handled (%s); set aside for review", seen.id, reason)
    return done


def _apply_alone(services: Services, item: _Read) -> tuple[_Seen, str]:
    """One read request in a transaction of its own; set aside for review when it fails."""
    try:
        with services.store.transaction() as session:
            row = _received(session, item.seen.id)
            if row is None:
                return item.seen, item.message_id
            intake(services.context(), session, row, item.headers, item.reading, replied_to=item.replied_to)
            return _Seen.of(row), item.message_id
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        return _set_aside(services, item.seen, f"intake:{type(exc).__name__}"), item.message_id


def _handle_isolated(services: Services, source: MailSource, candidate: _Candidate, uidvalidity: int,
                     report: RunReport) -> None:
    """:func:`_handle`, with whatever one message does to it contained: the pass goes on."""
    try:
        _handle(services, source, candidate, uidvalidity, report)
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        _unrecordable(services, candidate.record, uidvalidity, "triage", exc, report)


def _handle(services: Services, source: MailSource, candidate: _Candidate, uidvalidity: int,
            report: RunReport) -> None:
    """One message at a time: a confirmation, a message seen before, or one whose group could not be committed."""
    store, cfg = services.store, services.config
    record, headers, token = candidate.record, candidate.headers, candidate.token
    classification, replied_to = candidate.classification, candidate.replied_to
    with store.transaction() as session:
        existing = find_request_by_ref(session, services.keyring.message_ref(headers.message_id))
        existing_id, existing_state = (existing.id, existing.state) if existing else (None, None)
        same_copy = existing is not None and (existing.uidvalidity, existing.uid) == (uidvalidity, record.uid)
        replied_kind = None
        if replied_to is not None:
            parent = session.get(Request, replied_to)
            replied_kind = parent.kind if parent is not None and parent.kind != RequestKind.CONFIRM else None
    if token is None and classification is None and replied_kind is None:
        return  # names a message of ours whose request is gone: ordinary mail
    if existing_id is not None and existing_state != RequestState.RECEIVED:
        if same_copy:
            return  # this very message, seen again after a crash; archive_pending moves it if need be
        if existing_state != RequestState.IGNORED:
            # A redelivered or copied message: handled once already; move the copy out of the way.
            source.archive([record.uid])
            with store.transaction() as session:
                record_event(session, "duplicate_archived", request_id=existing_id, uid=record.uid,
                             uidvalidity=uidvalidity)
        report.duplicates += 1
        return
    ctx = services.context()
    arrival = Arrival(cfg.source_name, uidvalidity, record.uid, record.internaldate or headers.date or ctx.now)
    # A token makes it a confirmation, whatever its subject says; a reply to our message keeps its marker's
    # kind, else the kind of the request we wrote about.
    if token is not None:
        kind: str = RequestKind.CONFIRM
    elif classification is not None:
        kind = classification.kind
    else:
        assert replied_kind is not None
        kind = replied_kind
        classification = Classification(RequestKind(kind), cfg.policy.default_language, "")
    language = classification.language if classification else cfg.policy.default_language
    try:
        seen, go_on = _begin(services, ctx, arrival, headers, kind, language, existing_id)
    except StoreConflict:
        # Another process recorded this Message-ID since we looked: it owns the message.
        log.info("message at uid %s was recorded by another process; skipped", record.uid)
        return
    except Exception as exc:  # e.g. a value the database refuses: the minimal row takes its place
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        _unrecordable(services, record, uidvalidity, "record", exc, report)
        return
    if not go_on:
        _count(seen, report)
        return
    request_id = seen.id
    try:
        if token is not None:
            stage = "fetch"
            fetched = source.fetch(record.uid, CONFIRMATION_FETCH_BYTES)
            if fetched is None:
                return  # expunged by someone else since the scan: nothing was said, nothing is confirmed
            stage = "read"
            reply = parse_message(fetched.data, fetched.truncated)
            consent = read_confirmation(reply.body_text, readable=reply.read_whole)
            stage = "confirm"
            with store.transaction() as session:
                row = _received(session, request_id)
                if row is not None:
                    confirm(ctx, session, row, headers, token, consent)
                    seen = _Seen.of(row)
        else:
            assert classification is not None
            stage = "fetch"
            fetched = source.fetch(record.uid, cfg.limits.max_message_bytes)
            if fetched is None:
                return  # expunged by someone else since the scan; the row stays received for a later copy
            crash_point("after_fetch", headers.message_id)
            stage = "parse"
            parsed = parse_message(fetched.data, truncated=fetched.truncated)
            stage = "read"
            # All sender text is read before the transaction.
            reading = read_request(cfg, parsed, classification, services.markers)
            stage = "intake"
            with store.transaction() as session:
                row = _received(session, request_id)
                if row is not None:
                    intake(ctx, session, row, parsed.headers, reading, replied_to=replied_to)
                    seen = _Seen.of(row)
        crash_point("after_apply_commit", headers.message_id)
    except DsrMailbotError as exc:
        if exc.temporary:
            raise
        seen = _set_aside(services, seen, f"{stage}:{type(exc).__name__}")
    except Exception as exc:  # one bad message must not stop the others
        seen = _set_aside(services, seen, f"{stage}:{type(exc).__name__}")
    _count(seen, report)


@dataclass(frozen=True)
class _Seen:
    """What the run report needs of a request, taken in the transaction that last changed it."""

    id: int
    kind: str
    language: str
    state: str

    @classmethod
    def of(cls, row: Request) -> _Seen:
        assert row.id is not None
        return cls(row.id, row.kind, row.language, row.state)


def _begin(services: Services, ctx: Context, arrival: Arrival, headers: Headers, kind: str, language: str,
           existing_id: int | None) -> tuple[_Seen, bool]:
    """Record the message (or one more attempt at it) before any work on it, in its own transaction.

    Returns the request and whether to work on it: not when the message was
    recorded as ignored, nor when it already made :data:`MAX_ATTEMPTS` attempts
    without finishing — the worker died each time — and was set aside for review.
    """
    with services.store.transaction() as session:
        if existing_id is None:
            new, go_on = _record_new(ctx, session, arrival, headers, kind, language)
            return _Seen.of(new), go_on
        row = session.get(Request, existing_id)
        assert row is not None
        row.uidvalidity, row.uid = arrival.uidvalidity, arrival.uid  # the copy we have now
        if row.attempts >= MAX_ATTEMPTS:
            log.error("request %s stopped the worker %s times; set aside for review", row.id, row.attempts)
            set_aside(ctx, session, row, f"poison: the worker stopped {row.attempts} times while handling it")
            return _Seen.of(row), False
        row.attempts += 1
        return _Seen.of(row), True


def _record_new(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str,
                language: str) -> tuple[Request, bool]:
    """A message never seen before: ignored by the loop rules, or received (its first attempt counted)."""
    reason = loop_reason(headers, ctx.config.policy.operator_addresses)
    if reason is not None:
        return record_ignored(ctx, session, arrival, headers, kind, language, reason), False
    return record_received(ctx, session, arrival, headers, kind, language), True


def _received(session: Session, request_id: int) -> Request | None:
    """The request, if it is still ours to work on (not set aside or decided meanwhile)."""
    row = session.get(Request, request_id)
    return row if row is not None and row.state == RequestState.RECEIVED else None


def _count(seen: _Seen, report: RunReport) -> None:
    report.requests += 1
    report.states[seen.state] += 1
    report.request_ids.append(seen.id)
    log.info("request %s (%s, %s): %s", seen.id, seen.kind, seen.language, seen.state)


def _set_aside(services: Services, seen: _Seen, reason: str) -> _Seen:
    """A message that failed unexpectedly: to review, without a reply; the others go on."""
    log.error("request %s could not be handled (%s); set aside for review", seen.id, reason)
    with services.store.transaction() as session:
        row = session.get(Request, seen.id)
        if row is None:
            return seen
        if row.state == RequestState.RECEIVED:
            set_aside(services.context(), session, row, reason)
        return _Seen.of(row)
