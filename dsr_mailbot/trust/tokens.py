"""Confirmation tokens: proof that a reply answers one particular challenge (pure).

A token names the request, whom the challenge went to (``o``: the address on
file, the *owner*; ``n``: the *new* address of an e-mail change), and when it
expires, and carries a keyed HMAC over all three, so it cannot be guessed,
moved to another request or extended::

    DSR-<request id>-<o|n>-<expiry, Unix seconds>-<20 hex digits of HMAC-SHA256>

The challenge carries it in its Subject (people see it, and replies keep it)
and, compactly, in its Message-ID (clients put it into In-Reply-To and
References, even when they rewrite the subject)::

    <dsr.<request id>.<o|n>.<expiry in base 36>.<the HMAC's first 16 hex digits>@<domain>>

at most 64 characters with the shop's domain, so that no client folds it
into encoded words when it writes In-Reply-To (Python's ``email`` package
does so past a line's 78 characters).  Challenges sent before that form
carried the whole token in a longer Message-ID; :func:`find_token` still
finds it there, and in In-Reply-To and References that a client wrote as
RFC 2047 encoded words (``Headers.thread_text``): the HMAC makes reading
decoded text safe.  Single use is enforced by the request's state, not
here: once confirmed, the request no longer waits for it.
"""

from __future__ import annotations

import enum
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.keys import Keyring

OWNER, NEW_ADDRESS = "o", "n"
TOKEN = re.compile(r"DSR-(\d{1,12})-([on])-(\d{1,12})-([0-9a-fA-F]{20})")
CHALLENGE_ID = re.compile(r"<dsr\.(\d{1,12})\.([on])\.([0-9a-z]{1,8})\.([0-9a-f]{16})@[^<>\s]{1,255}>")
LAST_EXPIRY = 253_402_300_799  # 9999-12-31T23:59:59Z, the last moment a datetime holds
SHORT_MAC = 16  # hex digits of the HMAC in a challenge's Message-ID: 64 bits, and a forger gets no oracle
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class TokenStatus(enum.StrEnum):
    VALID = "valid"
    TAMPERED = "tampered"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Token:
    request_id: int
    audience: str  # OWNER or NEW_ADDRESS
    expires_at: datetime
    mac: str

    def __str__(self) -> str:
        return f"DSR-{self.request_id}-{self.audience}-{int(self.expires_at.timestamp())}-{self.mac}"


def _mac(keyring: Keyring, request_id: int, audience: str, expires: int) -> str:
    return keyring.digest("confirm-token", f"{request_id}:{audience}:{expires}")[:20]


def make_token(keyring: Keyring, request_id: int, audience: str, expires_at: datetime) -> Token:
    expires = int(expires_at.timestamp())
    mac = _mac(keyring, request_id, audience, expires)
    return Token(request_id, audience, datetime.fromtimestamp(expires, UTC), mac)


def base36(number: int) -> str:
    """``number`` in base 36, as ``int(text, 36)`` reads it back."""
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _DIGITS36[digit] + digits
        if not number:
            return digits


def challenge_message_id(token: Token, domain: str) -> str:
    """The challenge's Message-ID: the token in compact form (see the module's docstring)."""
    expires = base36(int(token.expires_at.timestamp()))
    return f"<dsr.{token.request_id}.{token.audience}.{expires}.{token.mac[:SHORT_MAC]}@{domain}>"


def parse_token(text: str) -> Token | None:
    """The first token in ``text``, in either form (the Subject's, or a challenge's Message-ID), checked or not."""
    for pattern, base in ((TOKEN, 10), (CHALLENGE_ID, 36)):
        match = pattern.search(text)
        if match:
            request_id, audience, expires, mac = match.groups()
            seconds = int(expires, base)
            if seconds > LAST_EXPIRY:  # past what a date can hold: no token of ours
                return None
            return Token(int(request_id), audience, datetime.fromtimestamp(seconds, UTC), mac.lower())
    return None


def find_token(headers: Headers) -> Token | None:
    """The first token in In-Reply-To, References (also as encoded words) or Subject, checked or not."""
    for text in (headers.in_reply_to or "", " ".join(headers.references), headers.thread_text, headers.subject):
        token = parse_token(text)
        if token is not None:
            return token
    return None


def check_token(keyring: Keyring, token: Token, now: datetime) -> TokenStatus:
    expected = _mac(keyring, token.request_id, token.audience, int(token.expires_at.timestamp()))
    if len(token.mac) < SHORT_MAC or not hmac.compare_digest(expected[: len(token.mac)], token.mac):
        return TokenStatus.TAMPERED
    if now >= token.expires_at:
        return TokenStatus.EXPIRED
    return TokenStatus.VALID
