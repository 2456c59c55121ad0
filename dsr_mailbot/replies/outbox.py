"""Putting replies into the outbox, inside the caller's transaction.

Every message the bot sends goes through :func:`queue_reply`: rendered from
its template, given its deterministic Message-ID (see :mod:`reply`), and
written as an ``outbox`` row beside the change it reports.  :mod:`send`
delivers the rows afterwards.

:func:`replies_in_last_day` is what ``[trust] max_replies_per_sender_per_day``
is measured with: outbox rows to one address in the last 24 hours (a rolling
day, so a burst just before midnight does not double the limit), a
campaign's notices (policy 7.2) aside: they answer nothing the person sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.replies.render import Renderer
from dsr_mailbot.replies.reply import TEMPLATE_SPECS, ReplyContent, auto_submitted, build_message, thread_references
from dsr_mailbot.store.database import NOTICE_PURPOSE_PREFIX
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import OutboxMessage, Request
from dsr_mailbot.trust.own_mail import reply_message_id
from dsr_mailbot.trust.tokens import challenge_message_id, parse_token


def mask_address(address: str) -> str:
    """``i***@example.kz``: enough to recognise one's own address, not to learn someone else's."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def replies_in_last_day(session: Session, recipient: str, now: datetime, verified_only: bool = False) -> int:
    """Replies queued to ``recipient`` in the last 24 hours; with ``verified_only``, only answers to verified mail.

    An authenticated request is measured with ``verified_only``: replies that
    answered unauthenticated mail (a stranger can send any amount of it in
    the owner's name) must not use up the owner's own allowance.
    """
    query = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.recipient == recipient, OutboxMessage.created_at >= now - timedelta(days=1),
        # A campaign's notice answers nothing the person sent: it must not use up their allowance.
        col(OutboxMessage.purpose).not_like(f"{NOTICE_PURPOSE_PREFIX}%"),
    )
    if verified_only:
        query = query.where(OutboxMessage.for_verified == True)  # noqa: E712 - SQL, not Python truthiness
    return int(session.exec(query).one())


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
    for_verified: bool = False,
) -> str:
    """Render ``template`` for ``request`` and queue it to ``recipient``; return its Message-ID."""
    assert request.id is not None
    content = replace(content, reference=str(request.id))
    rendered = renderer.render(
        template, request.language, content.as_context(request.language, config.policy.timezone, request.received_at)
    )
    spec = TEMPLATE_SPECS[template]
    from_address = config.reply_from_for(request.source)  # the address of the mailbox it arrived in
    token = parse_token(content.token) if content.token else None
    message_id = (challenge_message_id(token, config.reply_domain) if token is not None
                  else reply_message_id(keyring, request.id, purpose, config.reply_domain))
    parent = request.message_id if request.message_id and not request.message_id.startswith("<sha256-") else None
    # Threaded only to a letter its recipient sent: a message to a new address starts its own thread.
    answers = spec.answers_recipient and recipient == request.reply_address
    in_reply_to = parent if answers else None
    data = build_message(
        from_address=from_address,
        from_name=config.policy.operator_name,
        to_address=recipient,
        subject=rendered.subject,
        body=rendered.body,
        message_id=message_id,
        language=request.language,
        in_reply_to=in_reply_to,
        references=thread_references(in_reply_to, (request.thread or "").split()),
        auto_submitted=auto_submitted(spec, answers),
        now=now,
    )
    session.add(OutboxMessage(request_id=request.id, purpose=purpose, message_id=message_id,
                              recipient=recipient, data=data, created_at=now, for_verified=for_verified))
    return message_id
