"""Stage 2: raw RFC 5322 bytes → :class:`ParsedMessage` (pure; never raises on bad mail).

Two entry points, because the scanner decides from headers alone whether a
message is a request and fetches whole bodies only for requests:

- :func:`parse_headers` reads a header block;
- :func:`parse_message` reads a whole message: the headers, and the text of
  the body (text/plain, else text/html turned into text), skipping
  attachments and forwarded messages.

The message is parsed with mail-parser, which recovers text from some broken
multiparts that the standard library gives up on; mail-parser itself raises
on some real bounces (library-notes 2.7), so the standard library's parser is
the fallback and a parse never fails.

Headers are read in the order RFC 5322 and RFC 2047 set: **parse first,
then decode only what is text.**  Every header is kept as its raw, unfolded
value (8-bit bytes read as UTF-8, RFC 6532, and never as anything that could
become ASCII structure).  Only the Subject is RFC 2047-decoded, here rather
than by either library, because both lose raw 8-bit Cyrillic subjects.  The
From address is parsed from the raw value (:mod:`addresses`), and
``Authentication-Results``, ``Received`` and every other structured header
stay exactly as the servers wrote them: an encoded word inside them is text,
never structure.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Literal

from dsr_mailbot.addresses import sender_address
from dsr_mailbot.reading.body import html_to_text
from dsr_mailbot.reading.decode import clean_text, decode_bytes, decode_header_text

BodyKind = Literal["plain", "html", "none"]
_MSGID = re.compile(r"<[^<>\s]+>")
MAX_MESSAGE_ID_CHARS = 250  # longer ones are stored as their hash (the column and the logs stay bounded)
MAX_MAILPARSER_HEADER_BYTES = 256 * 1024
MAX_REFERENCES = 30  # the newest ones; older history adds nothing to threading
_FOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(frozen=True)
class Headers:
    """What the pipeline needs of a header block.

    ``all`` and ``items`` hold raw, unfolded values: structure is read from
    them, never from decoded text.  ``subject`` is the one decoded header.
    """

    message_id: str
    has_message_id: bool
    subject: str
    from_addresses: tuple[str, ...]
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    content_language: str | None
    all: Mapping[str, tuple[str, ...]] = field(repr=False)
    # Every header in order, top first: where a header stands matters (Authentication-Results).
    items: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    content_type: str = "text/plain"
    report_type: str | None = None  # the report-type parameter of a multipart/report
    # In-Reply-To and References as text, when a client wrote them as RFC 2047 encoded words (Python's email
    # package folds a Message-ID past a line's length that way).  Read only for the bot's own Message-IDs,
    # whose keyed tag makes that safe; never for anything else.
    thread_text: str = ""

    @property
    def sender(self) -> str | None:
        """The one From address, normalised; None when there is none or several."""
        return self.from_addresses[0] if len(self.from_addresses) == 1 else None

    def get(self, name: str) -> tuple[str, ...]:
        return self.all.get(name.lower(), ())


@dataclass(frozen=True)
class ParsedMessage:
    headers: Headers
    body_text: str
    body_kind: BodyKind
    defects: frozenset[str]
    truncated: bool = False
    attachments: int = 0  # attachments and forwarded messages, skipped: their content is never read
    has_text_part: bool = True  # a text/plain or text/html part, even an empty one (Reply and Send)

    @property
    def read_whole(self) -> bool:
        """Was all the person sent read as text: not cut at the fetch limit, a text part found, nothing attached?"""
        return not self.truncated and self.has_text_part and not self.attachments


class _TooBigForMailParser(Exception):
    """The header block is larger than any real request's: parsed by the standard library alone."""


def header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx >= 0:
            return raw[: idx + len(sep)]
    return raw


def raw_header_text(value: object) -> str:
    """A header value as the parser kept it, unfolded, with 8-bit bytes read as UTF-8.

    compat32 keeps 8-bit bytes as surrogate escapes.  They are read as UTF-8
    (RFC 6532), and bytes that are not UTF-8 become U+FFFD: never ASCII, so
    no charset guess can put a ``<``, ``@`` or ``;`` where the sender wrote
    none.  Nothing is RFC 2047-decoded here.
    """
    text = value if isinstance(value, str) else str(value)
    text = _FOLD.sub("", text)
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.strip()


def clean_message_id(value: str | None) -> str | None:
    """The first ``<…>`` of a Message-ID header, if it is one the store can keep as it is."""
    found = _MSGID.search(value or "")
    if not found:
        return None
    message_id = found.group(0)
    if len(message_id) > MAX_MESSAGE_ID_CHARS or clean_text(message_id) != message_id or not message_id.isprintable():
        # Too long, or with controls, NUL or broken characters: identified by its hash instead.
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"<sha256-{digest}@long-id.dsr-mailbot.invalid>"
    return message_id


def _headers_from(msg: Message, raw: bytes) -> Headers:
    raw_values: dict[str, list[str]] = {}
    items: list[tuple[str, str]] = []
    raw_subject: str | None = None  # kept with its 8-bit bytes: decode_header_text reads their charset
    for name, value in msg.raw_items():
        key = str(name).lower()
        if key == "subject" and raw_subject is None:
            raw_subject = value if isinstance(value, str) else str(value)
        text = raw_header_text(value)
        raw_values.setdefault(key, []).append(text)
        items.append((key, text))
    all_headers = {name: tuple(values) for name, values in raw_values.items()}

    def first(name: str) -> str | None:
        values = all_headers.get(name)
        return values[0] if values else None

    cleaned = clean_message_id(first("message-id"))
    if cleaned is not None:
        message_id, has_id = cleaned, True
    else:
        # Without a Message-ID the header block identifies the message; a copy
        # of it in another folder still hashes the same.
        digest = hashlib.sha256(header_block(raw)).hexdigest()[:40]
        message_id, has_id = f"<sha256-{digest}@dsr-mailbot.invalid>", False

    date: datetime | None = None
    raw_date = first("date")
    if raw_date:
        try:
            date = email.utils.parsedate_to_datetime(raw_date)
            date = date.astimezone(UTC) if date.tzinfo else date.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            date = None

    raw_in_reply_to = first("in-reply-to") or ""
    raw_references = " ".join(all_headers.get("references", ()))
    in_reply_to = _message_ids(raw_in_reply_to)
    references = _message_ids(raw_references)
    language = (first("content-language") or "").split(",")[0].strip().lower()[:20] or None
    content_type, report_type = _content_type(msg)
    return Headers(
        message_id=message_id,
        has_message_id=has_id,
        subject=decode_header_text(raw_subject) if raw_subject is not None else "",
        from_addresses=sender_address(all_headers.get("from", ())),
        date=date,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(references[-MAX_REFERENCES:]),
        content_language=language,
        content_type=content_type,
        report_type=report_type,
        thread_text=encoded_thread_text(raw_in_reply_to, raw_references),
        all=all_headers,
        items=tuple(items),
    )


MAX_THREAD_TEXT = 4096  # of each header's raw value: the newest Message-IDs of References stand at its end


def encoded_thread_text(in_reply_to: str, references: str) -> str:
    """The decoded text of In-Reply-To and References, when either holds encoded words; else "" (linear).

    In-Reply-To from its start; References from its end, where its newest
    Message-IDs stand (cut at a space, so that no encoded word is split).
    """
    parts = []
    if "=?" in in_reply_to:
        parts.append(decode_header_text(in_reply_to[:MAX_THREAD_TEXT]))
    if "=?" in references:
        tail = references[-MAX_THREAD_TEXT:]
        if len(references) > MAX_THREAD_TEXT:
            tail = tail[tail.find(" ") + 1:] if " " in tail else ""
        parts.append(decode_header_text(tail))
    return " ".join(parts)


def _message_ids(text: str) -> list[str]:
    """Every ``<…>`` of an In-Reply-To or References value, each as :func:`clean_message_id` keeps it."""
    return [m for m in (clean_message_id(found) for found in _MSGID.findall(text)) if m]


def _content_type(msg: Message) -> tuple[str, str | None]:
    """The top-level content type and, for a report, its report-type (RFC 6522), from the raw header."""
    try:
        content_type = msg.get_content_type()
        report_type = msg.get_param("report-type") if content_type == "multipart/report" else None
    except Exception:  # a malformed Content-Type is read as RFC 2045 says: text/plain
        return "text/plain", None
    if isinstance(report_type, tuple):  # an RFC 2231-encoded parameter
        report_type = report_type[2]
    return content_type, str(report_type).strip().lower()[:100] if report_type else None


_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_LINE_END = re.compile(rb"\r\n|\n")


def fast_subject(raw: bytes) -> str | None:
    """The Subject exactly as :func:`parse_headers` decodes it, read straight from the header bytes; None if unsure.

    Most of a mailbox is not the bot's business, and parsing every header
    block whole to learn so was half of a scan's time.  This reads the one
    header the triage needs (the parser's rules: a header line is a name of
    printable ASCII and a colon, a continuation starts with a space or a
    tab, the value is left-stripped and keeps its folds) and answers None
    for anything it does not read the same way as the parser (a bare CR, a
    ``From `` line, a line that is neither, two Subject lines), so that the
    caller parses those whole.  Tests hold it to the parser on every corpus.
    """
    block = header_block(raw)
    without_crlf = block.replace(b"\r\n", b"")
    if b"\r" in without_crlf or (b"\n" in without_crlf and len(without_crlf) < len(block)):
        return None  # a bare CR, or CRLF and LF mixed
    found: list[bytes] | None = None
    seen = False
    in_subject = False
    for line in _LINE_END.split(block):
        if not line:
            break  # the blank line that ends the header block
        if line[:1] in (b" ", b"\t"):
            if in_subject and found is not None:
                found.append(line)
            continue
        if not _HEADER_LINE.match(line):
            return None
        in_subject = line[:8].lower() == b"subject:"
        if in_subject:
            if seen:
                return None
            seen = True
            found = [line[8:].lstrip(b" \t")]
    if found is None:
        return ""
    # The parser keeps each continuation with the line end before it, and drops the last line end.
    value = b"\r\n".join(found) if b"\r\n" in block else b"\n".join(found)
    return decode_header_text(value.decode("ascii", "surrogateescape"))


def parse_headers(raw: bytes) -> Headers:
    """Read a header block (or a whole message; the body is ignored).  Never raises."""
    header_bytes = header_block(raw)
    try:
        msg = BytesHeaderParser(policy=compat32).parsebytes(header_bytes)
        return _headers_from(msg, header_bytes)
    except Exception:  # whatever the bytes are, the message is still identified, and is nobody's
        digest = hashlib.sha256(header_bytes).hexdigest()[:40]
        return Headers(message_id=f"<sha256-{digest}@dsr-mailbot.invalid>", has_message_id=False, subject="",
                       from_addresses=(), date=None, in_reply_to=None, references=(), content_language=None,
                       all={}, items=())


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or bool(part.get_filename())


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _walk_text_parts(msg: Message) -> tuple[str, str, int, bool]:
    """First non-empty text/plain and text/html outside attachments and forwarded messages, how many parts
    were skipped, and whether there was a text part at all."""
    plain = html = ""
    skipped = 0
    found_text = False
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack[0:0] = [c for c in children if isinstance(c, Message)]
            continue
        if ctype == "message/rfc822" or _is_attachment(part):
            skipped += 1
            continue
        if ctype == "text/plain":
            plain, found_text = plain if plain.strip() else _part_text(part), True
        elif ctype == "text/html":
            html, found_text = html if html.strip() else _part_text(part), True
        else:  # an inline image, a calendar invitation: something the person sent that is not read
            skipped += 1
    return plain, html, skipped, found_text


def parse_message(raw: bytes, truncated: bool = False) -> ParsedMessage:
    """Parse a whole message.  Never raises: broken mail gives what could be read."""
    defects: set[str] = set()
    recovered_plain: list[str] = []
    recovered_html: list[str] = []
    try:
        if len(header_block(raw)) > MAX_MAILPARSER_HEADER_BYTES:
            # mail-parser reads every address header whole (18 µs an address): past this size, the stdlib alone.
            raise _TooBigForMailParser
        import mailparser  # only requests are parsed whole; a pass with nothing new never loads it

        parsed = mailparser.parse_from_bytes(raw)
        msg: Message = parsed.message
        defects.update(str(d) for d in parsed.defects_categories)
        recovered_plain, recovered_html = list(parsed.text_plain), list(parsed.text_html)
    except Exception as exc:  # mail-parser raises on some real-world mail; the stdlib does not
        msg = email.message_from_bytes(raw, policy=compat32)
        defects.add("oversized-headers" if isinstance(exc, _TooBigForMailParser) else "mailparser-failed")
        defects.update(type(d).__name__ for d in msg.defects)
    try:
        plain, html, attachments, has_text_part = _walk_text_parts(msg)
    except Exception:
        plain, html, attachments, has_text_part = "", "", 0, False
        defects.add("body-walk-failed")
    if not plain.strip() and not html.strip():
        plain = "\n".join(recovered_plain)
        html = "\n".join(recovered_html)
    if plain.strip():
        body, kind = plain, "plain"
    elif html.strip():
        body, kind = html_to_text(html), "html"
    else:
        body, kind = "", "none"
    try:
        headers = _headers_from(msg, raw)
    except Exception:
        headers = parse_headers(raw)
        defects.add("header-parse-failed")
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return ParsedMessage(
        headers=headers,
        body_text=body,
        body_kind=kind,  # type: ignore[arg-type]
        defects=frozenset(defects),
        truncated=truncated,
        attachments=attachments,
        has_text_part=has_text_part,
    )
