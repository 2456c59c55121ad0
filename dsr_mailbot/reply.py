"""Stage 6: the reply a person gets, rendered from ``templates/<language>/<outcome>.txt``.

Templates are plain-text Jinja2 with ``StrictUndefined``: a template that
uses a name the code does not pass fails at start-up (:meth:`Renderer.check`
renders every outcome in every language with sample values), not in the
middle of a run.

Where templates are looked for, first hit wins:

1. ``[templates] directory`` from the configuration (an operator's own copy);
2. ``dsr_mailbot/templates`` inside the installed package (a wheel carries
   the repository's ``templates/`` there);
3. ``templates/`` beside the package (a source checkout or editable install).

Replies are threaded (In-Reply-To, References), marked
``Auto-Submitted: auto-replied`` (RFC 3834) and carry ``X-DSR-Mailbot`` so
the bot can recognise its own mail coming back.  Their Message-ID is
derived from the request and the reply's purpose, so a reply re-sent after
a crash is the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from dsr_mailbot.config import LANGUAGES
from dsr_mailbot.errors import TemplateError
from dsr_mailbot.keys import Keyring

OUTCOME_TEMPLATES = (
    "update_applied",
    "update_not_understood",
    "withdrawal_applied",
    "optout_applied",
    "unknown_sender",
    "challenge",
    "challenge_new_address",
    "confirmation_expired",
    "email_changed_notice",
    "request_rejected",
)
LOOP_MARKER_HEADER = "X-DSR-Mailbot"

_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def default_templates_dir() -> Path:
    packaged = resources.files("dsr_mailbot") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


def format_date(value: date | datetime, language: str) -> str:
    if language == "en":
        return f"{value.day} {_EN_MONTHS[value.month - 1]} {value.year}"
    return value.strftime("%d.%m.%Y")


@dataclass(frozen=True)
class ReplyContent:
    """Everything a template may show; what a reply does not need stays empty."""

    kind: str = ""
    changes: dict[str, str] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    erasure_due_at: datetime | None = None
    expires_at: datetime | None = None
    token: str = ""
    new_address: str = ""
    reason: str = ""

    def as_context(self, language: str, timezone: str, received_at: datetime) -> dict[str, Any]:
        zone = ZoneInfo(timezone)

        def day(value: datetime | None) -> str:
            return format_date(value.astimezone(zone), language) if value else ""

        return {
            "kind": self.kind,
            "changes": dict(self.changes),
            "unchanged": list(self.unchanged),
            "problems": [{"field": f, "code": c} for f, c in self.problems],
            "erasure_date": day(self.erasure_due_at),
            "expiry_date": day(self.expires_at),
            "received_date": day(received_at),
            "token": self.token,
            "new_address": self.new_address,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Rendered:
    subject: str | None  # None: answer in the thread ("Re: <the request's subject>")
    body: str


class Renderer:
    """Loads and renders reply templates for every outcome and language."""

    def __init__(self, directory: Path | None = None, operator_name: str = "") -> None:
        self.directory = directory or default_templates_dir()
        self.operator_name = operator_name
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, outcome: str, language: str, context: Mapping[str, Any]) -> Rendered:
        """The reply text; a first line ``Subject: …`` in the template sets the subject."""
        name = f"{language}/{outcome}.txt"
        values = {"operator_name": self.operator_name, "language": language, **context}
        try:
            text = self.env.get_template(name).render(values)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {name} not found in {self.directory}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name} failed to render: {exc}") from exc
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        subject = None
        if text.startswith("Subject:"):
            first, _, text = text.partition("\n")
            subject = first[len("Subject:"):].strip()
            text = text.strip() + "\n"
        return Rendered(subject, text)

    def check(self, outcomes: Sequence[str] = OUTCOME_TEMPLATES) -> None:
        """Render every outcome in every language with sample values; raise on the first failure."""
        sample = sample_context()
        for language in LANGUAGES:
            for outcome in outcomes:
                self.render(outcome, language, sample)


def sample_context() -> dict[str, Any]:
    """Sample values for exactly the names replies get (:meth:`ReplyContent.as_context`): the start-up check."""
    day = datetime(2030, 1, 1, tzinfo=UTC)
    return ReplyContent(
        kind="update",
        changes={"phone": "+77011234567", "surname": "Иванов"},
        unchanged=("email",),
        problems=(("patronymic", "invalid"),),
        erasure_due_at=day,
        expires_at=day,
        token="DSR-1-o-1893456000-0123456789abcdef0123",  # noqa: S106 - a sample confirmation token, not a secret
        new_address="n***@example.kz",
        reason="sample reason",
    ).as_context("ru", "UTC", day)


def reply_subject(original: str) -> str:
    subject = " ".join(original.split())
    if re.match(r"^(re|отв|жауап)\s*:", subject, re.IGNORECASE):
        return subject
    return f"Re: {subject}" if subject else "Re:"


def reply_message_tag(keyring: Keyring, request_id: int, purpose: str) -> str:
    return keyring.digest("message-id", f"{request_id}:{purpose}")[:20]


def reply_message_id(keyring: Keyring, request_id: int, purpose: str, domain: str, token: str | None = None) -> str:
    """``<dsr.<request>.<purpose>.<tag>[.<token>]@domain>``: the same for the same request and purpose."""
    tag = reply_message_tag(keyring, request_id, purpose)
    suffix = f".{token}" if token else ""
    return f"<dsr.{request_id}.{purpose}.{tag}{suffix}@{domain}>"


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
    now: datetime,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{from_name} <{from_address}>" if from_name else from_address
    msg["To"] = to_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join([*[r for r in references if r != in_reply_to], in_reply_to])
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_MARKER_HEADER] = "reply"
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    msg["Content-Language"] = language  # after set_content, which clears Content-* headers
    return msg.as_bytes()
