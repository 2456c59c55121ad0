"""Confirmation tokens: proof that a reply answers one particular challenge (pure).

A token names the request, whom the challenge went to (``o``: the address on
file, the *owner*; ``n``: the *new* address of an e-mail change), and when it
expires, and carries a keyed HMAC over all three, so it cannot be guessed,
moved to another request or extended::

    DSR-<request id>-<o|n>-<expiry, Unix seconds>-<20 hex digits of HMAC-SHA256>

The challenge carries it in its Subject (people see it, and replies keep it)
and in its Message-ID (clients put it into In-Reply-To and References, even
when they rewrite the subject).  Single use is enforced by the request's
state, not here: once confirmed, the request no longer waits for it.
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


def find_token(headers: Headers) -> Token | None:
    """The first token in In-Reply-To, References or Subject, checked or not."""
    for text in (headers.in_reply_to or "", " ".join(headers.references), headers.subject):
        match = TOKEN.search(text)
        if match:
            request_id, audience, expires, mac = match.groups()
            return Token(int(request_id), audience, datetime.fromtimestamp(int(expires), UTC), mac.lower())
    return None


def check_token(keyring: Keyring, token: Token, now: datetime) -> TokenStatus:
    expected = _mac(keyring, token.request_id, token.audience, int(token.expires_at.timestamp()))
    if not hmac.compare_digest(expected, token.mac):
        return TokenStatus.TAMPERED
    if now >= token.expires_at:
        return TokenStatus.EXPIRED
    return TokenStatus.VALID
