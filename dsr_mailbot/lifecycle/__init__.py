"""The request lifecycle: every change of a request's state, each inside the caller's transaction.

::

    received ─┬─► completed | rejected           applied, or nothing to apply; answered either way
              ├─► awaiting_confirmation ─┬─► completed       the address on file (and a new address) confirmed
              │                          ├─► review          a "confirmation" came from another address
              │                          └─► expired         nobody confirmed in time; a short notice
              ├─► review ─► completed | rejected             an operator decided (approve / reject)
              └─► ignored                                    auto-replies, bulk mail, loops: never answered

Who may change what (see verify.py and the README, "How requests are
verified"): an opt-out needs no confirmation (harmless if forged); an update
or a withdrawal is applied at once only when ``[trust] verification`` allows
it — ``never``, or ``auto`` with a trusted Authentication-Results pass —
and otherwise waits for the owner's reply to a challenge sent **to the
address on file**.  A change of the e-mail address also waits for a reply
from the new address, and the old address is told once it is done.

Anything that cannot be decided automatically goes to ``review`` with a
reason: conflicting values, a letter naming another user's address, a
confirmation from the wrong address, a sender past the daily reply limit,
a second unverified update while the owner's challenge for one is open.

**One open challenge per user and intent.**  A forger can send any number
of letters in the owner's name; each one sending a challenge would flood
the owner and use up their daily allowance.  While a challenge for the same
user and kind is open, a further unverified withdrawal is closed without a
reply (the open challenge already asks the owner), and a further unverified
update goes to review (its fields may differ, and the owner must confirm
exactly what they saw).  Replies to unverified mail never count against an
authenticated request's daily limit (``for_verified`` in the outbox).

The message's text is read before the transaction opens
(:mod:`~dsr_mailbot.facts`); :func:`intake` then loads what the store knows
into :class:`~dsr_mailbot.decisions.Facts`, the rule chain of
:mod:`~dsr_mailbot.decisions` decides (pure), and the functions here carry
the decision out.

One module per moment: ``base`` (what every change shares), ``receive``
(recording a message), ``intake`` (deciding a new request), ``apply``
(carrying it out, challenges, completion), ``confirm`` (replies to
challenges, expiry), ``operator`` (approve, answer, extend, reject, dismiss).
"""

from dsr_mailbot.lifecycle.apply import complete
from dsr_mailbot.lifecycle.base import UNMARKED, Arrival, Context, pending_intents
from dsr_mailbot.lifecycle.confirm import confirm, expire, expire_overdue
from dsr_mailbot.lifecycle.intake import intake
from dsr_mailbot.lifecycle.operator import DecisionError, answer, approve, dismiss, extend, reject
from dsr_mailbot.lifecycle.receive import record_ignored, record_received, set_aside

__all__ = [
    "UNMARKED",
    "Arrival",
    "Context",
    "DecisionError",
    "answer",
    "approve",
    "complete",
    "confirm",
    "dismiss",
    "expire",
    "expire_overdue",
    "extend",
    "intake",
    "pending_intents",
    "record_ignored",
    "record_received",
    "reject",
    "set_aside",
]
