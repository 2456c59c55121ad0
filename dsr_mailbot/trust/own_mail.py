"""The bot's own messages: their Message-IDs, recognised by a keyed tag, and the loop marker (pure).

Every message the bot sends carries ``X-DSR-Mailbot`` and a Message-ID
derived from the request and the reply's purpose under the bot's key::

    <dsr.<request>.<purpose>.<tag>[.<token>]@<domain>>

so a reply re-sent after a crash is the same message, and mail that names
one (a bounce, a person's reply, an auto-reply) can be told from a forgery
that copies the pattern: only the bot can make the tag.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from dsr_mailbot.store.keys import Keyring

LOOP_MARKER_HEADER = "X-DSR-Mailbot"
_OUR_ID = re.compile(r"<dsr\.(\d{1,12})\.([a-z_]{1,30})\.([0-9a-f]{20})(?:\.DSR-[\w-]{1,80})?@[^<>\s]{1,255}>")


def reply_message_tag(keyring: Keyring, request_id: int, purpose: str) -> str:
    return keyring.digest("message-id", f"{request_id}:{purpose}")[:20]


def reply_message_id(keyring: Keyring, request_id: int, purpose: str, domain: str, token: str | None = None) -> str:
    """``<dsr.<request>.<purpose>.<tag>[.<token>]@domain>``: the same for the same request and purpose."""
    tag = reply_message_tag(keyring, request_id, purpose)
    suffix = f".{token}" if token else ""
    return f"<dsr.{request_id}.{purpose}.{tag}{suffix}@{domain}>"


@dataclass(frozen=True)
class OurMessage:
    request_id: int
    purpose: str


def our_messages(keyring: Keyring, text: str) -> list[OurMessage]:
    """The bot's own messages named in ``text`` (Message-IDs whose keyed tag checks out; forged ones are not)."""
    found: list[OurMessage] = []
    for request_id, purpose, tag in _OUR_ID.findall(text):
        if hmac.compare_digest(reply_message_tag(keyring, int(request_id), purpose), tag):
            found.append(OurMessage(int(request_id), purpose))
    return found
