"""Stage 4: whose request is this, and may it change their data? (pure)

The skeleton's rule: a request may change only the user whose stored
address equals the sender's From address (both normalised to lower case).
An unknown sender gets a reply that nothing is held for their address, and
nothing is created.  Mail without exactly one From address cannot be
answered and goes to review; mail from the operator's own addresses is
never a request (it would make the bot answer itself).

Sender authentication (Authentication-Results, confirmation by reply) is a
later stage of this module; the request lifecycle already stores states so
that a request can wait.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass

from dsr_mailbot.models import User
from dsr_mailbot.parse import Headers


class Verdict(enum.StrEnum):
    KNOWN_USER = "known_user"
    UNKNOWN_SENDER = "unknown_sender"
    NO_SENDER = "no_sender"
    OWN_ADDRESS = "own_address"


@dataclass(frozen=True)
class Identity:
    verdict: Verdict
    sender: str | None
    user: User | None


def identify(
    headers: Headers,
    find_user: Callable[[str], User | None],
    operator_addresses: Collection[str],
) -> Identity:
    sender = headers.sender
    if sender is None:
        return Identity(Verdict.NO_SENDER, None, None)
    if sender in operator_addresses:
        return Identity(Verdict.OWN_ADDRESS, sender, None)
    user = find_user(sender)
    if user is None:
        return Identity(Verdict.UNKNOWN_SENDER, sender, None)
    return Identity(Verdict.KNOWN_USER, sender, user)
