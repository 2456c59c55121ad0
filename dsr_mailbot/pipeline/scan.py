"""The mailbox pass: scan the new messages' header fields, triage them, hand the bot's mail on, move the cursor."""

from __future__ import annotations

import logging
from threading import Event

from sqlmodel import select

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.mailbox.archive import archive_pending
from dsr_mailbot.mailbox.source import FIELDS_CAP_BYTES, HeaderRecord, MailSource
from dsr_mailbot.pipeline.handle import handle_batch
from dsr_mailbot.pipeline.record import Candidate, unrecordable
from dsr_mailbot.pipeline.services import RunReport, Services
from dsr_mailbot.pipeline.unmarked import unmarked_candidates
from dsr_mailbot.reading.classify import MarkerTable, classify_subject
from dsr_mailbot.reading.parse import Headers, fast_subject, parse_headers
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import Store, get_cursor, save_cursor
from dsr_mailbot.store.models import (
    AuditEvent,
    Request,
)
from dsr_mailbot.trust.bounces import find_bounced_reply, is_delivery_report, is_report
from dsr_mailbot.trust.own_mail import our_messages
from dsr_mailbot.trust.tokens import find_token

log = logging.getLogger("dsr_mailbot")


BOUNCE_FETCH_BYTES = 256 * 1024  # a delivery report names the bounced message near its top


# The header fields the triage reads (certainly_ordinary and _triage: reports, tokens, markers, replies to us);
# the scan fetches only these, and the whole block of the few messages they do not show to be ordinary.
TRIAGE_FIELDS = ("SUBJECT", "CONTENT-TYPE", "IN-REPLY-TO", "REFERENCES")


def process_mailbox(services: Services, source: MailSource, uidvalidity: int, report: RunReport,
                    stop: Event | None = None) -> None:
    """Archive what is pending, then handle every new message batch by batch; stop between messages when asked to.

    Each batch is triaged from its header blocks first; then its new requests
    are handled in groups (:func:`~dsr_mailbot.pipeline.handle._handle_group`) and the rest of the bot's
    mail one message at a time (:func:`~dsr_mailbot.pipeline.handle._handle`).  The cursor moves past the
    batch once all of it is committed: a crash before that makes the next run
    look at the batch again, where every message already handled is known by
    its Message-ID.
    """
    cfg, store = services.config, services.store
    last_uid = _start_cursor(store, cfg.source_name, uidvalidity)
    report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved
    for scanned in source.scan(last_uid, cfg.limits.fetch_batch_size, TRIAGE_FIELDS):
        batch = _complete_suspects(source, scanned, services.markers)
        candidates: list[Candidate] = []
        ordinary: list[HeaderRecord] = []
        last_seen: int | None = None
        for record in batch:
            if stop is not None and stop.is_set():
                break
            report.scanned += 1
            candidate = _triage_isolated(services, source, record, uidvalidity, report)
            if candidate is not None:
                candidates.append(candidate)
            else:
                ordinary.append(record)
            last_seen = record.uid
        candidates += _unmarked_isolated(services, source, ordinary)
        handle_batch(services, source, candidates, uidvalidity, report)
        if last_seen is not None:
            with store.transaction() as session:
                save_cursor(session, cfg.source_name, uidvalidity, last_seen)
        if services.on_scanned is not None:
            services.on_scanned(len(batch))
        if stop is not None and stop.is_set():
            break
    report.archived += archive_pending(store, source, cfg.source_name, uidvalidity).moved


def _unmarked_isolated(services: Services, source: MailSource, ordinary: list[HeaderRecord]) -> list[Candidate]:
    """The second look at ordinary mail; a server that refuses the search costs it, not the batch's requests."""
    try:
        return unmarked_candidates(services, source, ordinary)
    except Exception as exc:
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.warning("letters without a marker were not looked for in this batch (%s)", type(exc).__name__)
        return []


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


def _triage_isolated(services: Services, source: MailSource, record: HeaderRecord, uidvalidity: int,
                     report: RunReport) -> Candidate | None:
    """:func:`_triage`, with whatever one message does to it contained: the pass goes on."""
    try:
        return _triage(services, source, record, report)
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise  # a server is down: stop the pass, retry this message next time
        unrecordable(services, record, uidvalidity, "triage", exc, report)
        return None


def _triage(services: Services, source: MailSource, record: HeaderRecord, report: RunReport) -> Candidate | None:
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
    return Candidate(record, headers, token, classification, replied_to)


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
