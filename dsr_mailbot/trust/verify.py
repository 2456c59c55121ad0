"""Stage 4: whose request is this, and may it change their data? (pure)

The skeleton's rule: a request may change only the user whose stored
address equals the sender's From address (both normalised to lower case).
An unknown sender gets a reply that nothing is held for their address, and
nothing is created.  Mail without exactly one From address cannot be
answered and goes to review.  (Mail from the operator's own addresses never
gets here: the loop rules in :mod:`loops` record it as ignored.)

Whether a request may change data at once, or must first be confirmed by a
reply from the address on file, is :func:`needs_owner_confirmation`; the
Authentication-Results check is :mod:`authresults`, the confirmation loop
:mod:`lifecycle` and :mod:`tokens`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.models import User


class Verdict(enum.StrEnum):
    KNOWN_USER = "known_user"
    UNKNOWN_SENDER = "unknown_sender"
    NO_SENDER = "no_sender"


@dataclass(frozen=True)
class Identity:
    verdict: Verdict
    sender: str | None
    user: User | None


def identify(headers: Headers, find_user: Callable[[str], User | None]) -> Identity:
    sender = headers.sender
    if sender is None:
        return Identity(Verdict.NO_SENDER, None, None)
    user = find_user(sender)
    if user is None:
        return Identity(Verdict.UNKNOWN_SENDER, sender, None)
    return Identity(Verdict.KNOWN_USER, sender, user)


class Confirmation(enum.StrEnum):
    """How much an intent asks of its sender before it changes anything (declared per intent in the registry)."""

    NEVER = "never"  # harmless if forged: a marketing opt-out only stops advertising
    UNLESS_AUTHENTICATED = "unless_authenticated"  # the [trust] verification setting decides
    ALWAYS = "always"  # whatever the setting: e.g. an answer that e-mails personal data


def needs_owner_confirmation(confirmation: Confirmation, authenticated: bool, verification: str) -> bool:
    """Must the owner confirm by reply before this request changes anything?

    ``never`` (the intent's or ``[trust] verification``) trusts the From
    line, ``always`` confirms everything, and ``auto`` confirms what the
    operator's mail server did not authenticate.
    """
    if confirmation is Confirmation.ALWAYS:
        return True
    if confirmation is Confirmation.NEVER or verification == "never":
        return False
    if verification == "always":
        return True
    return not authenticated
