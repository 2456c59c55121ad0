"""Notices to every user (policy 7.2: the operator tells users of changes to the policy), exactly once each.

``notify --template policy-change --campaign ID`` queues one notice per user
who has not withdrawn consent.  It is a legal notice, not marketing, so the
marketing flag does not matter.  Each notice is in the user's language (that
of their last request, else ``default_language``) and its text is the same
for everyone: it names nobody, so it is rendered once per language.

Exactly once: the notice's Message-ID is derived from the campaign and the
user's ``ref`` (random, never reused: SQLite reuses an erased user's row
id, and a user imported later must still get the campaign) under the bot's
key, and the outbox refuses a second row with the same Message-ID; queueing
again (after a crash, or by mistake) adds only what is missing
(:func:`still_to_queue`), and sending goes through the outbox like every
reply (a row is sent once, and marked sent in its own transaction).  A
campaign half-queued by a version that keyed notices by row id is finished
without sending twice: such a row counts for the user whose address it went
to.  The outbox sends a campaign's notices at most ``[smtp] max_per_minute``
a minute, and checks each user's consent again just before sending
(:func:`notice_refusal`): a notice queued before a withdrawal is not sent.

The Message-ID (``<dsr.n.<tag>@…>``) does not follow the replies'
``<dsr.<request>…>`` form: a notice belongs to no request, so an answer to
it is ordinary support mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.errors import ConfigError
from dsr_mailbot.replies.render import Rendered, Renderer
from dsr_mailbot.replies.reply import ReplyContent, build_message
from dsr_mailbot.store.database import NOTICE_PURPOSE_PREFIX, count_rows, find_user_by_email
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import OutboxMessage, OutboxState, Request, RequestKind, RequestState, User

# Command-line name → template; a notice template names no one (it is rendered once per language).
NOTICE_TEMPLATES = {"policy-change": "policy_change"}
_CAMPAIGN = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass(frozen=True)
class Recipient:
    user_id: int
    ref: str  # the user's never-reused reference: what the notice is keyed by
    email: str
    language: str


def check_campaign(campaign: str) -> str:
    if not _CAMPAIGN.fullmatch(campaign):
        raise ConfigError(f"--campaign: 1 to 40 letters, digits, '.', '_' or '-', got {campaign!r}")
    return campaign


def purpose_of(campaign: str) -> str:
    return f"{NOTICE_PURPOSE_PREFIX}{campaign}"


def notice_message_id(keyring: Keyring, campaign: str, user_ref: str, domain: str) -> str:
    """The same for the same campaign and user, whoever queues it, whenever: the key of exactly once."""
    return f"<dsr.n.{keyring.digest('notice', f'{campaign}:ref:{user_ref}')[:16]}@{domain}>"


def legacy_notice_message_id(keyring: Keyring, campaign: str, user_id: int, domain: str) -> str:
    """The Message-ID a notice had before notices were keyed by ``users.ref`` (by the reusable row id)."""
    tag = keyring.digest("notice", f"{campaign}:{user_id}")[:20]
    return f"<dsr-notice.{campaign}.{tag}@{domain}>"


def recipients(session: Session, default_language: str) -> list[Recipient]:
    """Every user who has not withdrawn consent, with the language of their last request."""
    languages: dict[int, str] = {}
    for user_id, language in session.exec(
        select(Request.user_id, Request.language)
        .where(col(Request.user_id).is_not(None), Request.kind != RequestKind.CONFIRM)
        .order_by(col(Request.id))
    ).all():
        if user_id is not None:
            languages[user_id] = language
    users = session.exec(select(User).where(User.processing_consent == True).order_by(col(User.id))).all()  # noqa: E712
    return [Recipient(u.id, u.ref, u.email, languages.get(u.id, default_language)) for u in users if u.id is not None]


def queued_notices(session: Session, campaign: str) -> dict[str, str]:
    """The campaign's notices queued or sent so far: Message-ID → recipient."""
    return {message_id: recipient for message_id, recipient in session.exec(
        select(OutboxMessage.message_id, OutboxMessage.recipient).where(OutboxMessage.purpose == purpose_of(campaign))
    ).all()}


def still_to_queue(keyring: Keyring, campaign: str, users: Iterable[Recipient], have: dict[str, str],
                   domain: str) -> list[Recipient]:
    """The users who have no notice of the campaign yet (``have``: :func:`queued_notices`).

    A notice of the old form counts only for the address it went to: the
    row id it was keyed by may since belong to someone else.
    """
    return [user for user in users
            if notice_message_id(keyring, campaign, user.ref, domain) not in have
            and have.get(legacy_notice_message_id(keyring, campaign, user.user_id, domain)) != user.email]


@dataclass(frozen=True)
class NoticeCheck:
    """What the last check before a notice goes needs beyond the bot's own users: the data map."""

    keyring: Keyring
    # The data map lists systems besides the bot's own store: a recipient need not be one of its users.
    people_elsewhere: bool


def notice_refusal(session: Session, recipient: str, check: NoticeCheck | None = None) -> str | None:
    """Why a queued notice must not go now (checked just before sending), or None.

    A user of the bot's own store is checked by their consent.  Anyone else
    came from a system of the data map: checked by the bot's own record, a
    withdrawal they made by e-mail (the system itself is not asked again at
    sending time).  Without other systems, someone not in the store was erased.
    """
    user = find_user_by_email(session, recipient)
    if user is not None:
        return None if user.processing_consent else "consent withdrawn"
    if check is None or not check.people_elsewhere:
        return "recipient no longer on file"
    return "consent withdrawn" if withdrew(session, check.keyring.subject_ref(recipient)) else None


def withdrew(session: Session, subject_ref: str) -> bool:
    """Did the person with this subject reference withdraw consent by e-mail (a completed withdrawal)?"""
    asked = session.exec(select(Request.intents).where(Request.subject_ref == subject_ref,
                                                       Request.state == RequestState.COMPLETED)).all()
    return any(RequestKind.WITHDRAW in (intents or []) for intents in asked)


def languages_by_subject(session: Session) -> dict[str, str]:
    """Each person's language, that of their last request, by subject reference (for recipients not in the store)."""
    return dict(session.exec(select(Request.subject_ref, Request.language)
                             .where(Request.kind != RequestKind.CONFIRM).order_by(col(Request.id))).all())


def system_recipient(keyring: Keyring, address: str, language: str) -> Recipient:
    """A recipient found in a system of the data map: keyed by their address under the bot's key."""
    return Recipient(user_id=0, ref=keyring.digest("notice-recipient", address)[:32], email=address,
                     language=language)


def waiting(session: Session, campaign: str) -> int:
    """The campaign's notices still queued."""
    return count_rows(session, OutboxMessage, OutboxMessage.purpose == purpose_of(campaign),
                      OutboxMessage.state == OutboxState.QUEUED)


def queue_notices(session: Session, *, config: Config, keyring: Keyring, renderer: Renderer, campaign: str,
                  template: str, users: Iterable[Recipient], now: datetime) -> int:
    """Queue the campaign's notice for each of ``users`` that does not have it yet; how many were queued."""
    domain = config.reply_domain
    texts: dict[str, Rendered] = {}
    queued = 0
    for user in still_to_queue(keyring, campaign, users, queued_notices(session, campaign), domain):
        message_id = notice_message_id(keyring, campaign, user.ref, domain)
        if user.language not in texts:
            context = ReplyContent().as_context(user.language, config.policy.timezone, now)
            texts[user.language] = renderer.render(template, user.language, context)
        text = texts[user.language]
        data = build_message(
            from_address=config.reply_from, from_name=config.policy.operator_name, to_address=user.email,
            subject=text.subject, body=text.body, message_id=message_id, language=user.language,
            in_reply_to=None, references=(), auto_submitted="auto-generated", now=now,
        )
        session.add(OutboxMessage(request_id=None, purpose=purpose_of(campaign), message_id=message_id,
                                  recipient=user.email, data=data, created_at=now, for_verified=True))
        queued += 1
    return queued
