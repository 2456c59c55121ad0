"""Delivery-status notifications of the bot's own replies (RFC 3464) (pure).

A DSN is recognised by its headers (``multipart/report`` with
``report-type=delivery-status``), so that it is never taken for a request,
even when an MTA copies the original subject into its own ("Undeliverable:
Re: Personal data update").  Its body is then searched for the Message-ID
of one of our replies (``<dsr.<request>.<purpose>.<tag>@…>``, in the
returned headers or message); the tag is checked against the bot's key, so
a forged "bounce" cannot attach itself to a request.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from dsr_mailbot.keys import Keyring
from dsr_mailbot.parse import Headers
from dsr_mailbot.reply import reply_message_tag

_OUR_ID = re.compile(r"<dsr\.(\d{1,12})\.([a-z_]{1,30})\.([0-9a-f]{20})(?:\.DSR-[\w-]+)?@[^>\s]+>")
_STATUS = re.compile(r"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class BouncedReply:
    request_id: int
    purpose: str
    status: str | None  # the DSN's Status code, e.g. "5.1.1"


def is_delivery_report(headers: Headers) -> bool:
    content_type = " ".join(headers.get("content-type")).lower()
    return "multipart/report" in content_type and "delivery-status" in content_type


def find_bounced_reply(text: str, keyring: Keyring) -> BouncedReply | None:
    """Which of our replies this report is about, if any (verified by its tag)."""
    status = _STATUS.search(text)
    for request_id, purpose, tag in _OUR_ID.findall(text):
        if hmac.compare_digest(reply_message_tag(keyring, int(request_id), purpose), tag):
            return BouncedReply(int(request_id), purpose, status.group(1) if status else None)
    return None
