"""Delivery-status notifications of the bot's own replies (RFC 3464) (pure).

A DSN is recognised by its headers (``multipart/report`` with
``report-type=delivery-status``, read from the raw Content-Type by
:mod:`parse`), so that it is never taken for a request,
even when an MTA copies the original subject into its own ("Undeliverable:
Re: Personal data update").  Its body is then searched for the Message-ID
of one of our replies (``<dsr.<request>.<purpose>.<tag>@…>``, in the
returned headers or message); the tag is checked against the bot's key, so
a forged "bounce" cannot attach itself to a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.own_mail import our_messages

_STATUS = re.compile(r"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)


def is_report(headers: Headers) -> bool:
    """Every ``multipart/report`` (RFC 6522) is automated mail: delivery status (RFC 3464), feedback
    reports (ARF, RFC 5965), read receipts (MDN, RFC 8098), and any report type yet to come."""
    return headers.content_type == "multipart/report"


def is_delivery_report(headers: Headers) -> bool:
    return is_report(headers) and headers.report_type == "delivery-status"


@dataclass(frozen=True)
class BouncedReply:
    request_id: int
    purpose: str
    status: str | None  # the DSN's Status code, e.g. "5.1.1"


def find_bounced_reply(text: str, keyring: Keyring) -> BouncedReply | None:
    """Which of our replies this report is about, if any (verified by its tag)."""
    ours = our_messages(keyring, text)
    if not ours:
        return None
    status = _STATUS.search(text)
    return BouncedReply(ours[0].request_id, ours[0].purpose, status.group(1) if status else None)
