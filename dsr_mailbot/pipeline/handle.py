"""Handling the bot's new mail: requests in groups (read, then applied in one transaction), the rest one at a time.

The guarantees of one message at a time hold in a group: each message is read
before the applying transaction opens, and when the group's transaction
fails each request is applied again alone, so that only the failing one is
set aside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import col, select

from dsr_mailbot.errors import ConfigError, DsrMailbotError, StoreConflict
from dsr_mailbot.facts import Reading, read_request
from dsr_mailbot.faults import crash_point
from dsr_mailbot.lifecycle import (
    UNMARKED,
    Arrival,
    Context,
    confirm,
    intake,
    set_aside,
)
from dsr_mailbot.mailbox.source import FetchedMessage, MailSource
from dsr_mailbot.pipeline.lookup import check_mappings, look_up
from dsr_mailbot.pipeline.record import (
    Candidate,
    Fresh,
    Seen,
    begin,
    count,
    groups,
    received,
    record_batch,
    set_aside_seen,
    unrecordable,
)
from dsr_mailbot.pipeline.services import RunReport, Services
from dsr_mailbot.reading.classify import Classification
from dsr_mailbot.reading.consent import read_confirmation
from dsr_mailbot.reading.parse import Headers, parse_message
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_request_by_ref
from dsr_mailbot.store.models import (
    Request,
    RequestKind,
    RequestState,
)
from dsr_mailbot.systems.protocol import Presence

log = logging.getLogger("dsr_mailbot")


CONFIRMATION_FETCH_BYTES = 256 * 1024  # a reply to a challenge says yes or no in its first lines


def handle_batch(services: Services, source: MailSource, candidates: list[Candidate], uidvalidity: int,
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
    if not services.mappings_checked:
        # A wrong data map stops the run (exit 78) before a request is recorded: none uses up its attempts on it.
        check_mappings(services)
        services.mappings_checked = True
    recorded = record_batch(services, candidates, uidvalidity, report)
    started, one_by_one = recorded if recorded is not None else ([], candidates)
    for group in groups(started, services.config.limits.max_message_bytes):
        try:
            _handle_group(services, source, group, report)
        except Exception as exc:
            if isinstance(exc, ConfigError) or (isinstance(exc, DsrMailbotError) and exc.temporary):
                raise  # the store is down, or the data map is wrong (exit 78)
            # Not even setting a request aside could be committed: the group's requests stay received, and
            # the next run takes each alone, as after a crash.
            log.error("a group of %s requests could not be committed (%s); retried next run", len(group),
                      type(exc).__name__)
    for candidate in one_by_one:
        handle_isolated(services, source, candidate, uidvalidity, report)


@dataclass(frozen=True)
class _Read:
    """A recorded request whose message was read whole, outside any transaction: ready to be applied."""

    seen: Seen
    message_id: str
    headers: Headers
    reading: Reading
    replied_to: int | None
    presence: Presence  # the sender looked up in the data map's other systems


def _handle_group(services: Services, source: MailSource, group: list[Fresh], report: RunReport) -> None:
    """Recorded new requests, a group at a time: read one by one, then applied in one transaction."""
    read, failed = _read_group(services, source, group)
    outcomes = _apply_group(services, services.context(), read, failed)
    if outcomes is None:
        outcomes = [_apply_alone(services, item) for item in read] + [
            (set_aside_seen(services, seen, reason), "") for seen, reason in failed]
    for seen, message_id in outcomes:
        crash_point("after_apply_commit", message_id)
        count(seen, report)


def _read_group(services: Services, source: MailSource,
                group: list[Fresh]) -> tuple[list[_Read], list[tuple[Seen, str]]]:
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
    failed: list[tuple[Seen, str]] = []
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
            stage = "lookup"
            presence = look_up(services, parsed.headers.sender)
        except Exception as exc:  # one bad message must not stop the others
            if isinstance(exc, ConfigError) or (isinstance(exc, DsrMailbotError) and exc.temporary):
                raise
            failed.append((seen, f"{stage}:{type(exc).__name__}"))
        else:
            read.append(_Read(seen, candidate.headers.message_id, parsed.headers, reading, candidate.replied_to,
                              presence))
    return read, failed


def _apply_group(services: Services, ctx: Context, read: list[_Read],
                 failed: list[tuple[Seen, str]]) -> list[tuple[Seen, str]] | None:
    """Apply the read requests and set the failed ones aside, all in one transaction.

    Returns each request as it stands after the commit, with its Message-ID;
    or None when anything failed: then nothing was committed, and the caller
    applies each request alone (:func:`_apply_alone`).
    """
    done: list[tuple[Seen, str]] = []
    try:
        with services.store.transaction() as session:
            # One SELECT for the group's rows, instead of one each.
            ids = [item.seen.id for item in read] + [seen.id for seen, _reason in failed]
            rows = {row.id: row for row in session.exec(select(Request).where(col(Request.id).in_(ids)))
                    if row.state == RequestState.RECEIVED}  # not set aside or decided meanwhile
            for item in read:
                row = rows.get(item.seen.id)
                if row is not None:
                    intake(ctx, session, row, item.headers, item.reading, replied_to=item.replied_to,
                           presence=item.presence)
                done.append((Seen.of(row) if row is not None else item.seen, item.message_id))
            for seen, reason in failed:
                row = rows.get(seen.id)
                if row is not None:
                    set_aside(ctx, session, row, reason)
                done.append((Seen.of(row) if row is not None else seen, ""))
    except Exception as exc:
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.info("applying a group of %s requests failed (%s); each is applied alone", len(read) + len(failed),
                 type(exc).__name__)
        return None
    for seen, reason in failed:
        log.error("request %s could not be handled (%s); set aside for review", seen.id, reason)
    return done


def _apply_alone(services: Services, item: _Read) -> tuple[Seen, str]:
    """One read request in a transaction of its own; set aside for review when it fails."""
    try:
        with services.store.transaction() as session:
            row = received(session, item.seen.id)
            if row is None:
                return item.seen, item.message_id
            intake(services.context(), session, row, item.headers, item.reading, replied_to=item.replied_to,
                   presence=item.presence)
            return Seen.of(row), item.message_id
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        return set_aside_seen(services, item.seen, f"intake:{type(exc).__name__}"), item.message_id


def handle_isolated(services: Services, source: MailSource, candidate: Candidate, uidvalidity: int,
                     report: RunReport) -> None:
    """:func:`_handle`, with whatever one message does to it contained: the pass goes on."""
    try:
        _handle(services, source, candidate, uidvalidity, report)
    except Exception as exc:  # one bad message must not stop the others
        if isinstance(exc, ConfigError) or (isinstance(exc, DsrMailbotError) and exc.temporary):
            raise
        unrecordable(services, candidate.record, uidvalidity, "triage", exc, report)


def _handle(services: Services, source: MailSource, candidate: Candidate, uidvalidity: int,
            report: RunReport) -> None:
    """One message at a time: a confirmation, a message seen before, or one whose group could not be committed."""
    store, cfg = services.store, services.config
    record, headers, token = candidate.record, candidate.headers, candidate.token
    classification, replied_to = candidate.classification, candidate.replied_to
    with store.transaction() as session:
        existing = find_request_by_ref(session, services.keyring.message_ref(headers.message_id))
        existing_id, existing_state = (existing.id, existing.state) if existing else (None, None)
        # The very message seen again, in this mailbox: the same letter sent to two mailboxes is a copy.
        same_copy = existing is not None and (existing.source, existing.uidvalidity, existing.uid) == (
            cfg.source_name, uidvalidity, record.uid)
        # Found by its own words: the staff's letter too, never moved (nor its copies).
        existing_unmarked = existing is not None and bool((existing.intent or {}).get(UNMARKED))
        replied_kind = None
        if replied_to is not None:
            parent = session.get(Request, replied_to)
            replied_kind = parent.kind if parent is not None and parent.kind != RequestKind.CONFIRM else None
    if token is None and classification is None and replied_kind is None:
        return  # names a message of ours whose request is gone: ordinary mail
    if existing_id is not None and existing_state != RequestState.RECEIVED:
        if same_copy:
            return  # this very message, seen again after a crash; archive_pending moves it if need be
        if existing_state != RequestState.IGNORED and not candidate.unmarked and not existing_unmarked:
            # A redelivered or copied message: handled once already; move the copy out of the way.  Not a letter
            # found by its own words: it may be the staff's, and stays where it is.
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
        seen, go_on = begin(services, ctx, arrival, headers, kind, language, existing_id, candidate.unmarked)
    except StoreConflict:
        # Another process recorded this Message-ID since we looked: it owns the message.
        log.info("message at uid %s was recorded by another process; skipped", record.uid)
        return
    except Exception as exc:  # e.g. a value the database refuses: the minimal row takes its place
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        unrecordable(services, record, uidvalidity, "record", exc, report)
        return
    if not go_on:
        count(seen, report)
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
                row = received(session, request_id)
                if row is not None:
                    confirm(ctx, session, row, headers, token, consent)
                    seen = Seen.of(row)
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
            stage = "lookup"
            presence = look_up(services, parsed.headers.sender)
            stage = "intake"
            with store.transaction() as session:
                row = received(session, request_id)
                if row is not None:
                    intake(ctx, session, row, parsed.headers, reading, replied_to=replied_to, presence=presence)
                    seen = Seen.of(row)
        crash_point("after_apply_commit", headers.message_id)
    except DsrMailbotError as exc:
        if exc.temporary or isinstance(exc, ConfigError):
            raise
        seen = set_aside_seen(services, seen, f"{stage}:{type(exc).__name__}")
    except Exception as exc:  # one bad message must not stop the others
        seen = set_aside_seen(services, seen, f"{stage}:{type(exc).__name__}")
    count(seen, report)
