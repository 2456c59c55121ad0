"""Stage 6: the reply a person gets, rendered from ``templates/<language>/<outcome>.txt``.

Templates are plain-text Jinja2 with ``StrictUndefined``: a template that
uses a name the code does not pass fails at start-up (:meth:`render.Renderer.check`
renders every outcome in every language with sample values), not in the
middle of a run.

Where templates are looked for, first hit wins:

1. ``[templates] directory`` from the configuration (an operator's own copy);
2. ``dsr_mailbot/templates`` inside the installed package (a wheel carries
   the repository's ``templates/`` there);
3. ``templates/`` beside the package (a source checkout or editable install).

Every template begins with its own ``Subject:`` line, fixed per template
and language: the request's reference may appear in it, the sender's words
never do (otherwise anyone could make the shop's address send their text to
anyone on file).  :data:`TEMPLATES` says, per template, whether the message
answers mail from its recipient: such replies are threaded (In-Reply-To, and
References as RFC 5322 §3.6.4 asks: the parent's References, then the
parent's Message-ID) and marked ``Auto-Submitted: auto-replied``; notices
that answer nothing their recipient sent (an expiry notice, the challenge to
a new address, the notice to an old address) are ``auto-generated`` and
stand alone (RFC 3834 §5).  All carry ``X-DSR-Mailbot`` so the bot
recognises its own mail coming back.  A Message-ID is derived from the
request and the reply's purpose, so a reply re-sent after a crash is the
same message, and :func:`our_message` recognises it by its keyed tag.

Headers are written here, not by the standard library's folder, which
writes RFC 2047 words of 76 characters (RFC 2047 §2 allows 75).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dsr_mailbot.systems.protocol import HeldRecord
from dsr_mailbot.trust.own_mail import LOOP_MARKER_HEADER


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    answers_recipient: bool  # a reply to mail from its recipient (threaded, auto-replied), or a notice
    # Its text is typed by a member of staff (an answer, a rejection's or an extension's reason): marked
    # "Auto-Submitted: no" (RFC 3834 §5: originated by a person) and signed by the support team, not "sent
    # automatically".
    written_by_staff: bool = False


TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec("update_applied", answers_recipient=True),
    TemplateSpec("update_not_understood", answers_recipient=True),
    TemplateSpec("withdrawal_applied", answers_recipient=True),
    TemplateSpec("withdrawal_blocked", answers_recipient=True),  # a hold: blocked, or kept on another ground
    TemplateSpec("optout_applied", answers_recipient=True),
    TemplateSpec("unknown_sender", answers_recipient=True),
    TemplateSpec("challenge", answers_recipient=True),
    TemplateSpec("request_rejected", answers_recipient=True, written_by_staff=True),
    TemplateSpec("access_answer", answers_recipient=True),
    TemplateSpec("question_acknowledged", answers_recipient=True),
    TemplateSpec("question_answer", answers_recipient=True, written_by_staff=True),
    TemplateSpec("several_applied", answers_recipient=True),
    TemplateSpec("deadline_extended", answers_recipient=True, written_by_staff=True),
    TemplateSpec("challenge_new_address", answers_recipient=False),
    TemplateSpec("confirmation_expired", answers_recipient=False),
    TemplateSpec("email_changed_notice", answers_recipient=False),
    TemplateSpec("data_destroyed", answers_recipient=False),  # after erasure: nothing of theirs is left to thread to
)
TEMPLATE_SPECS = {spec.name: spec for spec in TEMPLATES}
OUTCOME_TEMPLATES = tuple(spec.name for spec in TEMPLATES)
# The outcomes whose text is a part (``templates/<language>/parts/<outcome>.txt``): the outcome's own reply
# wraps its part, and "several_applied" wraps the parts of every intent of a letter, in one reply.
PART_TEMPLATES = ("update_applied", "update_not_understood", "optout_applied", "access_answer", "withdrawal_applied",
                  "withdrawal_blocked")
MAX_WORD_BYTES = 42  # UTF-8 bytes per encoded word: 56 base64 characters, 68 with =?utf-8?b?…?=

_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def default_templates_dir() -> Path:
    packaged = resources.files("dsr_mailbot") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


def format_date(value: date | datetime, language: str) -> str:
    if language == "en":
        return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"
    return value.strftime("%d.%m.%Y")


@dataclass(frozen=True)
class ReplyContent:
    """Everything a template may show; what a reply does not need stays empty."""

    kinds: tuple[str, ...] = ()  # the request's intents (a challenge lists what it confirms)
    parts: tuple[str, ...] = ()  # "several_applied": the outcome of each intent, in the order carried out
    changes: dict[str, str] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    erasure_due_at: datetime | None = None
    expires_at: datetime | None = None
    token: str = ""
    new_address: str = ""
    reason: str = ""
    reference: str = ""  # the request's number, the one thing of the request a subject may show
    held: dict[str, str] = field(default_factory=dict)  # an access answer: every field held, by name
    consents: dict[str, bool] = field(default_factory=dict)  # an access answer: processing, marketing
    due_at: datetime | None = None  # when the request will be answered (a question's acknowledgement)
    answer: str = ""  # an operator's answer to a question, as they wrote it
    # A challenge: the intents the letter's own words added, each with the phrase understood (quoted to the owner).
    understood: dict[str, str] = field(default_factory=dict)
    # An access answer over the data map: what each other system holds, by system name, and every system asked.
    systems: tuple[tuple[str, tuple[HeldRecord, ...]], ...] = ()
    asked: tuple[str, ...] = ()
    destroyed_in: tuple[str, ...] = ()  # the notice of destruction: every system where data were destroyed
    expunged: bool = False  # the notice of destruction: their request messages were expunged from the mailbox
    left_in_inbox: int = 0  # the notice of destruction: their ordinary letters still in the inbox (staff's to keep)
    hold_ground: str = ""  # a withdrawal under a hold: the ground the data are kept on, as the operator wrote it
    hold_kind: str = ""  # block | retain
    consent_source: str = ""  # an access answer: where the consent was given (users import)
    consent_at: datetime | None = None  # and when
    suppressed: bool = False  # an opt-out from an address no system knows: put on the suppression list

    def as_context(self, language: str, timezone: str, received_at: datetime) -> dict[str, Any]:
        zone = ZoneInfo(timezone)

        def day(value: datetime | None) -> str:
            return format_date(value.astimezone(zone), language) if value else ""

        return {
            "kinds": list(self.kinds),
            "parts": list(self.parts),
            "changes": dict(self.changes),
            "unchanged": list(self.unchanged),
            "problems": [{"field": f, "code": c} for f, c in self.problems],
            "erasure_date": day(self.erasure_due_at),
            "expiry_date": day(self.expires_at),
            "received_date": day(received_at),
            "token": self.token,
            "new_address": self.new_address,
            "reason": self.reason,
            "reference": self.reference,
            "due_date": day(self.due_at),
            "answer": self.answer,
            "understood": dict(self.understood),
            "held": dict(self.held),
            "systems": [{"name": name, "records": [{"label": r.label, "fields": dict(r.fields)} for r in records]}
                        for name, records in self.systems],
            "asked": list(self.asked),
            "destroyed_in": list(self.destroyed_in),
            "expunged": self.expunged,
            "left_in_inbox": self.left_in_inbox,
            "hold_ground": self.hold_ground,
            "hold_kind": self.hold_kind,
            "consent_source": self.consent_source,
            "consent_date": day(self.consent_at),
            "suppressed": self.suppressed,
            "consents": {"processing": self.consents.get("processing", False),
                         "marketing": self.consents.get("marketing", False)},
        }


def encoded_words(text: str, max_bytes: int = MAX_WORD_BYTES) -> list[str]:
    """``text`` as RFC 2047 B-encoded words of at most 75 characters, never splitting a character.

    A word ends after a space where it can, with the space inside it: decoders
    drop the white space between encoded words (RFC 2047 §6.2), and a few
    add a space there instead, which then falls between two words, never
    inside one.
    """
    chunks: list[bytes] = []
    chunk = b""
    last_space = -1
    for char in text:
        encoded = char.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > max_bytes:
            cut = last_space + 1 if last_space > 0 else len(chunk)
            chunks.append(chunk[:cut])
            chunk = chunk[cut:]
            last_space = -1
        chunk += encoded
        if char == " ":
            last_space = len(chunk) - 1
    if chunk:
        chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


def header_text(text: str) -> str:
    """An unstructured header value: plain ASCII folded at spaces (lines of at most 78), else encoded words."""
    words = text.split()
    if " ".join(words).isascii() and "=?" not in text and all(len(w) <= 60 for w in words):
        lines: list[str] = []
        for word in words:
            if lines and len(lines[-1]) + 1 + len(word) <= 60:
                lines[-1] += " " + word
            else:
                lines.append(word)
        return "\r\n ".join(lines)
    return "\r\n ".join(encoded_words(" ".join(words)))


def mailbox_header(display_name: str, address: str) -> str:
    """``Name <address>``: an ASCII name quoted as RFC 5322 needs (a comma stays inside it), else encoded words."""
    name = " ".join(display_name.split())
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        return str(Address(display_name=name, addr_spec=address))
    return "\r\n ".join(encoded_words(name)) + f"\r\n <{address}>"


def auto_submitted(spec: TemplateSpec, threaded: bool) -> str:
    """The Auto-Submitted value (RFC 3834 §5) of a message of this template, threaded to its recipient's or not."""
    if spec.written_by_staff:
        return "no"
    return "auto-replied" if threaded else "auto-generated"


def thread_references(parent_id: str | None, parent_references: Sequence[str]) -> list[str]:
    """References of a reply (RFC 5322 §3.6.4): the parent's References, then the parent's own Message-ID."""
    if not parent_id:
        return []
    return [*[r for r in parent_references if r != parent_id], parent_id]


def build_message(
    *,
    from_address: str,
    from_name: str,
    to_address: str,
    subject: str,
    body: str,
    message_id: str,
    language: str,
    in_reply_to: str | None,
    references: Sequence[str],
    auto_submitted: str,
    now: datetime,
) -> bytes:
    """The reply as bytes ready for SMTP: CRLF, 7-bit headers unless the recipient's local part is not ASCII."""
    content = EmailMessage(policy=SMTP)
    content.set_content(body, charset="utf-8", cte="quoted-printable")
    lines = [
        f"From: {mailbox_header(from_name, from_address)}",
        f"To: {to_address}",  # already in the normal form; UTF-8 only for an SMTPUTF8 recipient
        f"Subject: {header_text(subject)}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
        lines.append("References: " + "\r\n ".join(references or [in_reply_to]))
    lines += [
        f"Auto-Submitted: {auto_submitted}",
        "X-Auto-Response-Suppress: All",
        f"{LOOP_MARKER_HEADER}: reply",
        "MIME-Version: 1.0",
        f"Content-Language: {language}",
    ]
    for name in ("Content-Type", "Content-Transfer-Encoding"):
        lines.append(f"{name}: {content[name]}")
    payload = str(content.get_payload()).replace("\r\n", "\n").replace("\n", "\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n" + payload).encode("utf-8")
