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
the fallback and a parse never fails.  Header text is decoded here, not by
either library, because both lose raw 8-bit Cyrillic subjects.
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

import mailparser

from dsr_mailbot.body import html_to_text
from dsr_mailbot.decode import decode_bytes, decode_header_text

BodyKind = Literal["plain", "html", "none"]
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Headers:
    """The decoded headers the pipeline needs, plus all of them by lower-case name."""

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


def header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx >= 0:
            return raw[: idx + len(sep)]
    return raw


def _headers_from(msg: Message, raw: bytes) -> Headers:
    decoded: dict[str, list[str]] = {}
    items: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        text = decode_header_text(value) if isinstance(value, str) else str(value)
        decoded.setdefault(name.lower(), []).append(text)
        items.append((name.lower(), text))
    all_headers = {name: tuple(values) for name, values in decoded.items()}

    def first(name: str) -> str | None:
        values = all_headers.get(name)
        return values[0] if values else None

    found = _MSGID.findall(first("message-id") or "")
    if found:
        message_id, has_id = found[0], True
    else:
        # Without a Message-ID the header block identifies the message; a copy
        # of it in another folder still hashes the same.
        digest = hashlib.sha256(header_block(raw)).hexdigest()[:40]
        message_id, has_id = f"<sha256-{digest}@dsr-mailbot.invalid>", False

    addresses: list[str] = []
    for _name, addr in email.utils.getaddresses(list(all_headers.get("from", ()))):
        addr = addr.strip().lower()
        if "@" in addr and addr not in addresses:
            addresses.append(addr)

    date: datetime | None = None
    raw_date = first("date")
    if raw_date:
        try:
            date = email.utils.parsedate_to_datetime(raw_date)
            date = date.astimezone(UTC) if date.tzinfo else date.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            date = None

    in_reply_to = _MSGID.findall(first("in-reply-to") or "")
    references = tuple(_MSGID.findall(" ".join(all_headers.get("references", ()))))
    language = (first("content-language") or "").split(",")[0].strip().lower() or None
    return Headers(
        message_id=message_id,
        has_message_id=has_id,
        subject=first("subject") or "",
        from_addresses=tuple(addresses),
        date=date,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=references,
        content_language=language,
        all=all_headers,
        items=tuple(items),
    )


def parse_headers(raw: bytes) -> Headers:
    """Decode a header block (or a whole message; the body is ignored)."""
    header_bytes = header_block(raw)
    msg = BytesHeaderParser(policy=compat32).parsebytes(header_bytes)
    return _headers_from(msg, header_bytes)


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or bool(part.get_filename())


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _walk_text_parts(msg: Message) -> tuple[str, str]:
    """First non-empty text/plain and text/html outside attachments and forwarded messages."""
    plain = html = ""
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
            continue
        if ctype == "text/plain" and not plain.strip():
            plain = _part_text(part)
        elif ctype == "text/html" and not html.strip():
            html = _part_text(part)
    return plain, html


def parse_message(raw: bytes, truncated: bool = False) -> ParsedMessage:
    """Parse a whole message.  Never raises: broken mail gives what could be read."""
    defects: set[str] = set()
    recovered_plain: list[str] = []
    recovered_html: list[str] = []
    try:
        parsed = mailparser.parse_from_bytes(raw)
        msg: Message = parsed.message
        defects.update(str(d) for d in parsed.defects_categories)
        recovered_plain, recovered_html = list(parsed.text_plain), list(parsed.text_html)
    except Exception:  # mail-parser raises on some real-world mail; the stdlib does not
        msg = email.message_from_bytes(raw, policy=compat32)
        defects.add("mailparser-failed")
        defects.update(type(d).__name__ for d in msg.defects)
    try:
        plain, html = _walk_text_parts(msg)
    except Exception:
        plain, html = "", ""
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
    )
