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
import hashlib
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from dsr_mailbot import __version__
from dsr_mailbot.config import LANGUAGES
from dsr_mailbot.errors import TemplateError
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
PART_TEMPLATES = ("update_applied", "update_not_understood", "optout_applied", "access_answer", "withdrawal_applied")
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
            "consents": {"processing": self.consents.get("processing", False),
                         "marketing": self.consents.get("marketing", False)},
        }


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (keyed by each template's source, so an edit is seen at once).

    Compiling every template for the start-up check took most of a cron
    run's time; loading them compiled takes a few milliseconds.  Jinja keeps
    them in a private directory under the temporary directory (mode 0700,
    checked); where it cannot, templates are simply compiled every time.
    """
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


class Renderer:
    """Loads and renders reply templates for every outcome and language."""

    def __init__(self, directory: Path | None = None, operator_name: str = "") -> None:
        self.directory = directory or default_templates_dir()
        self.operator_name = operator_name
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            bytecode_cache=_bytecode_cache(),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, outcome: str, language: str, context: Mapping[str, Any]) -> Rendered:
        """The reply text and its subject, the template's first line ``Subject: …``."""
        name = f"{language}/{outcome}.txt"
        values = {"operator_name": self.operator_name, "language": language, **context}
        try:
            text = self.env.get_template(name).render(values)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {name} not found in {self.directory}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name} failed to render: {exc}") from exc
        text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
        if not text.startswith("Subject:"):
            raise TemplateError(f"template {name} must begin with a 'Subject:' line (replies never reuse the sender's)")
        first, _, text = text.partition("\n")
        subject = " ".join(first[len("Subject:"):].split())
        if not subject:
            raise TemplateError(f"template {name} has an empty subject")
        return Rendered(subject, text.strip() + "\n")

    def render_all(self, renders: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Render each (template, language, context); raise on the first failure.

        The start-up check of every cron run: once this very list has passed
        against these very template files, a stamp in the compiled-template
        cache says so, and the next run with the same templates (by path,
        modification time and size) and the same list skips the rendering.
        Any edit of a template, or a new version with other contexts, checks again.
        """
        stamp = self._stamp(renders)
        if stamp is not None and stamp.exists():
            return
        for template, language, context in renders:
            self.render(template, language, context)
        if stamp is not None:
            with suppress(OSError):  # no stamp: the next run checks again
                stamp.touch(mode=0o600)

    def _stamp(self, renders: Sequence[tuple[str, str, Mapping[str, Any]]]) -> Path | None:
        cache = self.env.bytecode_cache
        if not isinstance(cache, jinja2.FileSystemBytecodeCache):
            return None
        digest = hashlib.sha256(repr((__version__, self.operator_name, renders)).encode())
        for path in sorted(self.directory.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
        return Path(cache.directory) / f"dsr-mailbot-checked-{digest.hexdigest()}"

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
        kinds=("update",),
        parts=PART_TEMPLATES,
        changes={"phone": "+77011234567", "surname": "Иванов"},
        unchanged=("email",),
        problems=(("patronymic", "invalid"),),
        erasure_due_at=day,
        expires_at=day,
        token="DSR-1-o-1893456000-0123456789abcdef0123",  # noqa: S106 - a sample confirmation token, not a secret
        new_address="n***@example.kz",
        reason="sample reason",
        reference="42",
        held={"email": "i***@example.kz", "phone": "+77011234567", "surname": "Иванов", "first_name": "",
              "patronymic": ""},
        consents={"processing": True, "marketing": False},
        due_at=day,
        answer="Sample answer.",
        understood={"withdraw": "отзываю согласие", "optout": "отпишите меня"},
        systems=(("Shop database", (HeldRecord("b_user", {"email": "i***@example.kz", "phone": ""}),)),
                 ("Mailing tool", ())),
        asked=("SmartThings", "Shop database", "Mailing tool"),
        destroyed_in=("SmartThings", "Shop database"),
        expunged=True,
        left_in_inbox=1,
    ).as_context("ru", "UTC", day)


def sample_contexts(kind: str) -> list[dict[str, Any]]:
    """Contexts that take every branch of the templates for one intent: everything filled in, and nothing.

    Templates branch on whether there are changes, unchanged fields,
    problems, dates; the full sample takes one side of each ``if``, the
    empty one the other, so a broken branch fails at start-up too.
    """
    full = {**sample_context(), "kinds": [kind]}
    empty = ReplyContent(kinds=(kind,), reference="42").as_context("en", "UTC", datetime(2030, 1, 1, tzinfo=UTC))
    return [full, empty]


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
