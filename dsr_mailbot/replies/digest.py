"""The daily digest for the operator: what is late and what falls due soon, requests and destructions alike.

The daemon queues it every day at ``[policy] digest_time`` (local time), one
message to each operator address, through the outbox like every reply.  It
lists request numbers, intents, states, review reasons and dates, never an
address, a name or a subject.  Its Message-ID is made from the day, so a
second run on the same day (a restart, two workers) queues nothing more.
Nothing is sent on a day with nothing late or due soon.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.replies.reply import build_message
from dsr_mailbot.shown import shown_time
from dsr_mailbot.store.database import open_requests_due_by
from dsr_mailbot.store.figures import ErasureDue, erasures_due_by
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import OutboxMessage, Request

SOON_WORKING_DAYS = 2


def overdue_line(row: Request, now: datetime, zone: ZoneInfo) -> str:
    """One late or soon-due request as the digest and ``requests overdue`` show it: no personal data."""
    flag = "LATE" if row.due_at < now else "soon"
    reason = f" ({row.reason})" if row.reason else ""
    intents = "+".join(row.intents) or row.kind
    return f"#{row.id:<6} {flag:<4} due {shown_time(row.due_at, zone.key)}  {intents:<9} {row.state}{reason}"


def erasure_line(erasure: ErasureDue, now: datetime, zone: ZoneInfo) -> str:
    """One destruction late or soon due, as the digest and ``requests overdue`` show it: no personal data."""
    flag = "LATE" if erasure.due_at < now else "soon"
    request = f"#{erasure.request_id:<6}" if erasure.request_id is not None else f"{'-':<7}"
    return f"{request} {flag:<4} due {shown_time(erasure.due_at, zone.key)}  erasure   in {erasure.where}"


def digest_text(rows: Sequence[Request], now: datetime, timezone: str,
                erasures: Sequence[ErasureDue] = ()) -> tuple[str, str]:
    """Subject and body of the digest for these requests and destructions (pure)."""
    zone = ZoneInfo(timezone)
    late = [r for r in rows if r.due_at < now] + [e for e in erasures if e.due_at < now]
    day = now.astimezone(zone).date().isoformat()
    subject = f"DSR digest {day}: {len(late)} late, {len(rows) + len(erasures) - len(late)} due soon"
    lines = [f"Open data-subject requests and destructions that are late or due within {SOON_WORKING_DAYS} "
             "working days.", ""]
    lines += [overdue_line(row, now, zone) for row in rows]
    lines += [erasure_line(erasure, now, zone) for erasure in erasures]
    lines += ["", "Details: dsr-mailbot requests show <number>;  the list: dsr-mailbot requests overdue", ""]
    return subject, "\n".join(lines)


def queue_digest(session: Session, config: Config, keyring: Keyring, now: datetime) -> int:
    """Queue today's digest to every operator address; return how many messages were queued."""
    policy = config.policy
    horizon = policy.clock.soon_horizon(now, SOON_WORKING_DAYS)
    rows = list(open_requests_due_by(session, horizon))
    erasures = erasures_due_by(session, horizon, config.builtin_label or config.policy.system_name)
    if not rows and not erasures:
        return 0
    subject, body = digest_text(rows, now, policy.timezone, erasures)
    day = now.astimezone(ZoneInfo(policy.timezone)).date().isoformat()
    domain = config.reply_domain
    queued = 0
    for recipient in policy.operator_addresses:
        tag = keyring.digest("digest", f"{day}:{recipient}")
        message_id = f"<dsr.g.{day.replace('-', '')}.{tag[:16]}@{domain}>"  # at most 64 characters
        before_issue_18 = f"<dsr-digest.{day}.{tag[:20]}@{domain}>"
        if session.exec(select(OutboxMessage).where(
                col(OutboxMessage.message_id).in_([message_id, before_issue_18]))).first() is not None:
            continue  # already queued today
        data = build_message(
            from_address=config.reply_from, from_name=policy.operator_name, to_address=recipient, subject=subject,
            body=body, message_id=message_id, language="en", in_reply_to=None, references=(),
            auto_submitted="auto-generated", now=now,
        )
        session.add(OutboxMessage(request_id=None, purpose="digest", message_id=message_id, recipient=recipient,
                                  data=data, created_at=now, for_verified=True))
        queued += 1
    return queued
