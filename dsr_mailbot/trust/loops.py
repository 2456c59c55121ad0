"""Mail the bot must never answer: auto-replies, bulk mail, bounces, and its own mail coming back (pure).

An auto-responder that answers auto-responders floods two mailboxes, so
every rule here errs towards silence.  The rules are an ordered table
(after GNU Mailman's chains): the first that matches gives the reason,
which is stored with the request (state ``ignored``).  The rules follow
RFC 3834 §2 and the headers real autoresponders send.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from dsr_mailbot.reading.classify import is_auto_reply_subject
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.trust.own_mail import LOOP_MARKER_HEADER

_DAEMON_LOCAL_PART = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"mail[-_.]?daemon|auto[-_.]?(reply|responder)|listserv|majordomo)([+-].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LoopRule:
    reason: str
    applies: Callable[[Headers, Collection[str]], bool]


def _first(headers: Headers, name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _auto_submitted(headers: Headers, _own: Collection[str]) -> bool:
    value = _first(headers, "auto-submitted")
    return value is not None and value.split(";")[0].strip().lower() != "no"


def _bulk_precedence(headers: Headers, _own: Collection[str]) -> bool:
    value = (_first(headers, "precedence") or "").strip().lower()
    return value in {"bulk", "junk", "list"}


def _list_mail(headers: Headers, _own: Collection[str]) -> bool:
    return bool(headers.get("list-id") or headers.get("list-unsubscribe"))


def _autoreply_headers(headers: Headers, _own: Collection[str]) -> bool:
    return any(headers.get(name) for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"))


def _null_return_path(headers: Headers, _own: Collection[str]) -> bool:
    values = headers.get("return-path")
    return bool(values) and values[0].strip() in {"", "<>"}


def _daemon_sender(headers: Headers, _own: Collection[str]) -> bool:
    return any(_DAEMON_LOCAL_PART.match(addr.split("@", 1)[0]) for addr in headers.from_addresses)


def _own_address(headers: Headers, own: Collection[str]) -> bool:
    return any(addr in own for addr in headers.from_addresses)


def _own_loop_marker(headers: Headers, _own: Collection[str]) -> bool:
    return bool(headers.get(LOOP_MARKER_HEADER.lower()))


def _auto_reply_subject(headers: Headers, _own: Collection[str]) -> bool:
    return is_auto_reply_subject(headers.subject)


LOOP_RULES: tuple[LoopRule, ...] = (
    LoopRule("own_loop_marker", _own_loop_marker),
    LoopRule("from_operator_address", _own_address),
    LoopRule("auto_submitted", _auto_submitted),
    LoopRule("autoreply_header", _autoreply_headers),
    LoopRule("bulk_precedence", _bulk_precedence),
    LoopRule("list_mail", _list_mail),
    LoopRule("null_return_path", _null_return_path),
    LoopRule("daemon_sender", _daemon_sender),
    LoopRule("auto_reply_subject", _auto_reply_subject),
)


def loop_reason(headers: Headers, operator_addresses: Collection[str]) -> str | None:
    """Why this message must not be answered, or None when it may be."""
    for rule in LOOP_RULES:
        if rule.applies(headers, operator_addresses):
            return rule.reason
    return None
