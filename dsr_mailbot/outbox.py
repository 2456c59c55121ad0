"""Putting replies into the outbox, inside the caller's transaction.

Every message the bot sends goes through :func:`queue_reply`: rendered from
its template, given its deterministic Message-ID (see :mod:`reply`), and
written as an ``outbox`` row beside the change it reports.  :mod:`send`
delivers the rows afterwards.

:func:`replies_in_last_day` is what ``[trust] max_replies_per_sender_per_day``
is measured with: outbox rows to one address in the last 24 hours (a rolling
day, so a burst just before midnight does not double the limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from dsr_mailbot.config import Config
from dsr_mailbot.keys import Keyring
from dsr_mailbot.models import OutboxMessage, Request
from dsr_mailbot.reply import Renderer, ReplyContent, build_message, reply_message_id, reply_subject


def mask_address(address: str) -> str:
    """``i***@example.kz``: enough to recognise one's own address, not to learn someone else's."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def replies_in_last_day(session: Session, recipient: str, now: datetime) -> int:
    count = session.exec(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.recipient == recipient, OutboxMessage.created_at >= now - timedelta(days=1)
        )
    ).one()
    return int(count)


def queue_reply(
    session: Session,
    *,
    config: Config,
    keyring: Keyring,
    renderer: Renderer,
    request: Request,
    template: str,
    purpose: str,
    recipient: str,
    content: ReplyContent,
    now: datetime,
) -> str:
    """Render ``template`` for ``request`` and queue it to ``recipient``; return its Message-ID."""
    assert request.id is not None
    rendered = renderer.render(
        template, request.language, content.as_context(request.language, config.policy.timezone, request.received_at)
    )
    from_address = config.reply_from
    message_id = reply_message_id(keyring, request.id, purpose, from_address.rsplit("@", 1)[-1], content.token or None)
    in_reply_to = request.message_id if not request.message_id.startswith("<sha256-") else None
    data = build_message(
        from_address=from_address,
        from_name=config.policy.operator_name,
        to_address=recipient,
        subject=rendered.subject or reply_subject(request.subject or ""),
        body=rendered.body,
        message_id=message_id,
        language=request.language,
        in_reply_to=in_reply_to,
        references=[in_reply_to] if in_reply_to else [],
        now=now,
    )
    session.add(OutboxMessage(request_id=request.id, purpose=purpose, message_id=message_id,
                              recipient=recipient, data=data, created_at=now))
    return message_id
