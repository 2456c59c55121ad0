"""The bot's own messages: their Message-IDs, recognised by a keyed tag, and the loop marker (pure).

Every message the bot sends carries ``X-DSR-Mailbot`` and a Message-ID
derived from the request and the reply's purpose under the bot's key::

    <dsr.<request>.<purpose code>.<tag>@<domain>>       a reply or a notice about a request
    <dsr.<request>.<o|n>.<expiry>.<token HMAC>@<domain>>  a challenge (see tokens.challenge_message_id)

so a reply re-sent after a crash is the same message, and mail that names
one (a bounce, a person's reply, an auto-reply) can be told from a forgery
that copies the pattern: only the bot can make the tag.  A purpose is one
letter (:data:`PURPOSE_CODES`), so that an ID stays within 64 characters
with the shop's domain: longer, Python's ``email`` package (and other
clients) fold it into RFC 2047 encoded words when writing In-Reply-To.

IDs of the first form written before that (``<dsr.<request>.<purpose>.<20
hex>[.<token>]@…>``) are still recognised, so replies to mail sent before
an upgrade keep their thread.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.tokens import CHALLENGE_ID, NEW_ADDRESS, OWNER, TokenStatus, check_token, parse_token

LOOP_MARKER_HEADER = "X-DSR-Mailbot"
CHALLENGE_PURPOSES = {OWNER: "challenge_o", NEW_ADDRESS: "challenge_n"}
# Every purpose of a message about a request, and its letter in the Message-ID; a purpose without one is refused.
PURPOSE_CODES = {
    "reply": "r",  # the answer to a request (or to an operator's decision on it)
    "notice_old_address": "a",  # to the old address, after an e-mail change
    "expired": "x",  # the request was not confirmed in time
    "answer": "q",  # staff's answer to a question
    "extension": "e",  # the reasoned notice of a longer deadline
    "destroyed": "d",  # the last message to an erased person
}
_PURPOSES = {code: purpose for purpose, code in PURPOSE_CODES.items()}
TAG_HEX = 16
_OUR_ID = re.compile(r"<dsr\.(\d{1,12})\.([a-z])\.([0-9a-f]{16})@[^<>\s]{1,255}>")
_OLD_ID = re.compile(r"<dsr\.(\d{1,12})\.([a-z_]{1,30})\.([0-9a-f]{20})(?:\.DSR-[\w-]{1,80})?@[^<>\s]{1,255}>")


def reply_message_tag(keyring: Keyring, request_id: int, purpose: str) -> str:
    return keyring.digest("message-id", f"{request_id}:{purpose}")


def reply_message_id(keyring: Keyring, request_id: int, purpose: str, domain: str) -> str:
    """``<dsr.<request>.<code>.<tag>@domain>``: the same for the same request and purpose."""
    code = PURPOSE_CODES[purpose]
    return f"<dsr.{request_id}.{code}.{reply_message_tag(keyring, request_id, purpose)[:TAG_HEX]}@{domain}>"


@dataclass(frozen=True)
class OurMessage:
    request_id: int
    purpose: str


def our_messages(keyring: Keyring, text: str) -> list[OurMessage]:
    """The bot's own messages named in ``text`` (Message-IDs whose keyed tag checks out; forged ones are not).

    Linear: each pattern is a fixed prefix and bounded classes, and each
    candidate costs one HMAC.
    """
    found: list[tuple[int, OurMessage]] = []  # by where each stands in the text: References are oldest first
    for match in _OUR_ID.finditer(text):
        request_id, code, tag = int(match.group(1)), match.group(2), match.group(3)
        purpose = _PURPOSES.get(code)
        if purpose and hmac.compare_digest(reply_message_tag(keyring, request_id, purpose)[:TAG_HEX], tag):
            found.append((match.start(), OurMessage(request_id, purpose)))
    for match in CHALLENGE_ID.finditer(text):
        token = parse_token(match.group(0))
        # Expired or not, a challenge of ours is ours; only a forged HMAC is not.
        if token is not None and check_token(keyring, token, token.expires_at) is not TokenStatus.TAMPERED:
            found.append((match.start(), OurMessage(token.request_id, CHALLENGE_PURPOSES[token.audience])))
    for match in _OLD_ID.finditer(text):
        request_id, purpose, tag = int(match.group(1)), match.group(2), match.group(3)
        if hmac.compare_digest(reply_message_tag(keyring, request_id, purpose)[:20], tag):
            found.append((match.start(), OurMessage(request_id, purpose)))
    return [message for _, message in sorted(found, key=lambda pair: pair[0])]
