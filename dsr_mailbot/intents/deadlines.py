"""When a request must be answered (pure).

This is the first, deliberately simple rule set: calendar days per request
kind, each no later than the strictest deadline in
``../shared/legal-deadlines.md`` §5.1 for that kind, so that counting
calendar days can only make the bot early, never late:

- update (correction): 152-FZ Art. 21 ч.2 gives 7 *working* days; KZ 94-V
  Art. 25 may give 1 working day (unverified).  Due in 1 calendar day.
- withdrawal of consent: the confirmation is due as an update; the data are
  destroyed after ``[policy] erasure_delay_days`` (30 calendar days by
  152-FZ Art. 21 ч.5), recorded on the user as ``erasure_due_at``.
- marketing opt-out: "immediately" (152-FZ Art. 15, 38-FZ Art. 18): due at
  receipt.

Working-day calendars per jurisdiction (production calendars with transfer
tables) replace this module in a later issue; its interface, "kind and
receipt time in, due time out", stays.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dsr_mailbot.store.models import RequestKind

RESPONSE_PERIOD: dict[RequestKind, timedelta] = {
    RequestKind.UPDATE: timedelta(days=1),
    RequestKind.WITHDRAW: timedelta(days=1),
    RequestKind.OPTOUT: timedelta(0),
}


def due_at(kind: RequestKind, received_at: datetime) -> datetime:
    return received_at + RESPONSE_PERIOD[kind]


def erasure_due_at(received_at: datetime, erasure_delay_days: int) -> datetime:
    return received_at + timedelta(days=erasure_delay_days)
