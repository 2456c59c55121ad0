"""One pass over the support mailbox: source → parse → classify → verify → apply → reply → archive.

How the stages connect, top to bottom (:func:`~dsr_mailbot.pipeline.run.run_once`), and where each job lives:
``run`` (the order), ``actions`` (the data map's actions, after the decision), ``scan`` (the mailbox pass and
the triage), ``record`` (a row per message before any work),
``handle`` (reading and applying), ``erasure`` (at the erasure date), ``services`` (what a pass is given).

1. **expire** — requests whose confirmation did not come in time are closed,
   with a short notice; users whose erasure date has come are erased.
2. **source** — open the mailbox, read the cursor (UIDVALIDITY, last UID).
   A new UIDVALIDITY restarts the scan from UID 1; messages already handled
   are recognised by Message-ID and not handled again.
3. **archive** (retry) — requests committed earlier whose message has not
   been moved yet are moved now.
4. **scan** — of new messages only the header fields the triage reads
   (:data:`TRIAGE_FIELDS`); the whole header block of the few whose fields
   do not show them to be ordinary.  From the headers alone:
   every ``multipart/report`` (delivery status, feedback/abuse reports, read
   receipts) is automated mail and never a request; a delivery report
   (:mod:`bounces`) is read to see whether it reports one of our replies.
   A reply to one of our challenges carries a token (:mod:`tokens`); a
   request carries a subject marker (:mod:`classify`); a reply to any other
   message of ours (In-Reply-To or References naming it, checked by its
   keyed tag) is a person talking to us and goes to review, never in as a
   new request.  Everything else is ordinary support mail and is never
   fetched whole, flagged or moved.
5. per request or confirmation: the loop rules (:mod:`loops`) decide from
   the headers whether it must stay unanswered (``ignored``); a confirmation
   is checked against its request; a request is fetched whole, **parsed**,
   its text **read** (:mod:`reading`, before any transaction opens), its
   sender **verified**, and it is **applied** or made to wait, with its
   **reply** put into the outbox (:mod:`lifecycle`).  A batch's new
   requests are recorded in one transaction and applied in another, a group
   at a time (:func:`~dsr_mailbot.pipeline.handle.handle_group`); confirmations and messages seen before
   take a transaction each.
6. the cursor advances past each batch once every message in it is
   committed; then **archive** moves the new request messages (ignored
   ones stay where they are).
7. **send** — the outbox is drained (SMTP or .eml files).

A server that cannot be reached stops the pass: what was committed stays
committed, the rest is picked up by the next run (``temporary_failure``).
**No single message can stop the pass.**  Any other exception while
handling one message puts it into ``review`` with the failing stage and the
exception's class as its reason; when even recording it fails, a minimal
row (its hashed identity, no text) goes to review instead, and when that
fails too, an audit event names its UID and the message stays in the inbox
for a person.  The cursor moves on either way.
"""

from dsr_mailbot.pipeline.erasure import DESTRUCTION_NOTICE, erase_due, finish_destruction_notices, finish_erasure
from dsr_mailbot.pipeline.lookup import check_mappings
from dsr_mailbot.pipeline.run import carry_out_actions, expire_unconfirmed, run_once, send_queued
from dsr_mailbot.pipeline.scan import TRIAGE_FIELDS, certainly_ordinary, process_mailbox
from dsr_mailbot.pipeline.services import RunReport, Services

__all__ = [
    "DESTRUCTION_NOTICE",
    "TRIAGE_FIELDS",
    "RunReport",
    "Services",
    "carry_out_actions",
    "certainly_ordinary",
    "check_mappings",
    "erase_due",
    "expire_unconfirmed",
    "finish_destruction_notices",
    "finish_erasure",
    "process_mailbox",
    "run_once",
    "send_queued",
]
