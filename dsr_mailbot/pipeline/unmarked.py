"""The pass's second look: letters without a marker that ask in their own words (reading/unmarked.py).

Ordinary mail is still never fetched whole.  Among a batch's messages the
triage found ordinary, the server's own search (IMAP ``SEARCH CHARSET UTF-8``
over those UIDs only, for the short stems of ``unmarked.toml``; Dovecot
decodes the bodies for it) finds the few candidates.  Each is then read with
the bot's own reader (quotes removed, HTML to text), which decides: a
substring search misses phrases wrapped across lines or split by tags, and
finds words in quotes and footers.  A Maildir has no server to ask: each new
message's first 64 KB are read instead.  A candidate that fails to read is
left alone: it may be anyone's letter.
"""

from __future__ import annotations

import logging

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.facts import MAX_BODY_CHARS, MAX_OWN_WORDS_CHARS
from dsr_mailbot.mailbox.source import HeaderRecord, MailSource
from dsr_mailbot.pipeline.record import Candidate
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.reading.body import reply_text
from dsr_mailbot.reading.parse import parse_headers, parse_message
from dsr_mailbot.reading.unmarked import MAILDIR_SEARCH_BYTES, is_bulk, read_unmarked, shipped_unmarked
from dsr_mailbot.trust.bounces import is_report

log = logging.getLogger("dsr_mailbot")


def unmarked_candidates(services: Services, source: MailSource, ordinary: list[HeaderRecord]) -> list[Candidate]:
    """The requests among a batch's ordinary messages that ask in their own words, each left where it is."""
    if not ordinary:
        return []
    table = shipped_unmarked()
    uids = [record.uid for record in ordinary]
    hits = source.search_text(uids, table.stems)
    max_bytes = services.config.limits.max_message_bytes
    if hits is None:  # no server search: the first 64 KB of each message's text decide whether to look closer
        hits = {uid for uid in uids if _holds_stem(source, uid, table.stems)}
    if not hits:
        return []
    records = source.complete_records(sorted(hits))
    found: list[Candidate] = []
    for uid in sorted(hits):
        record = records.get(uid)
        if record is None:
            continue  # gone since the scan
        try:
            candidate = _read(services, source, record, max_bytes)
        except Exception as exc:  # one letter must not stop the pass; it may be anyone's, so it is left alone
            if isinstance(exc, DsrMailbotError) and exc.temporary:
                raise
            log.info("an unmarked candidate at uid %s could not be read (%s); left alone", uid, type(exc).__name__)
            continue
        if candidate is not None:
            found.append(candidate)
    return found


def _holds_stem(source: MailSource, uid: int, stems: tuple[str, ...]) -> bool:
    fetched = source.fetch(uid, MAILDIR_SEARCH_BYTES)
    if fetched is None:
        return False
    try:
        text = parse_message(fetched.data, truncated=fetched.truncated).body_text[:MAILDIR_SEARCH_BYTES].lower()
    except Exception:  # unreadable: not a letter anyone could ask in
        return False
    return any(stem in text for stem in stems)


def _read(services: Services, source: MailSource, record: HeaderRecord, max_bytes: int) -> Candidate | None:
    headers = parse_headers(record.header)
    if is_report(headers) or is_bulk(headers):
        return None  # a newsletter's footer, a delivery report: no one asking
    fetched = source.fetch(record.uid, max_bytes)
    if fetched is None:
        return None
    parsed = parse_message(fetched.data, truncated=fetched.truncated)
    own_words = reply_text(parsed.body_text[:MAX_BODY_CHARS])[:MAX_OWN_WORDS_CHARS]
    classification = read_unmarked(own_words, services.config.policy.default_language)
    if classification is None:
        return None
    return Candidate(record, headers, None, classification, None, unmarked=True)
