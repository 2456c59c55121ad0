"""Rendering a reply's text from its template, and the start-up check that every template renders (see reply.py).

Templates are plain-text Jinja2 with ``StrictUndefined``: a template that
uses a name the code does not pass fails at start-up (:meth:`Renderer.check`
renders every outcome in every language with sample values), not in the
middle of a run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from dsr_mailbot import __version__
from dsr_mailbot.config import LANGUAGES, PolicyConfig
from dsr_mailbot.errors import TemplateError
from dsr_mailbot.replies.reply import (
    OUTCOME_TEMPLATES,
    PART_TEMPLATES,
    ReplyContent,
    default_templates_dir,
)
from dsr_mailbot.systems.protocol import HeldRecord


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


@jinja2.pass_context
def _local(context: jinja2.runtime.Context, texts: Mapping[str, str]) -> str:
    """A configured text in the reply's language: its own version, else the one for every language, else any."""
    language = str(context.get("language", ""))
    return texts.get(language) or texts.get("") or next(iter(texts.values()), "")


class Renderer:
    """Loads and renders reply templates for every outcome and language."""

    def __init__(self, directory: Path | None = None, operator_name: str = "",
                 policy: PolicyConfig | None = None) -> None:
        """``policy``: what replies state about the operator (``operator`` in templates: address, BIN, the
        responsible person, methods, source, processors, cross-border transfer); without it, the defaults."""
        self.directory = directory or default_templates_dir()
        self.operator = policy or PolicyConfig(operator_name=operator_name or "-")
        self.operator_name = operator_name or (policy.operator_name if policy else "")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            bytecode_cache=_bytecode_cache(),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["local"] = _local

    def render(self, outcome: str, language: str, context: Mapping[str, Any]) -> Rendered:
        """The reply text and its subject, the template's first line ``Subject: …``."""
        name = f"{language}/{outcome}.txt"
        values = {"operator_name": self.operator_name, "operator": self.operator, "language": language, **context}
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
        digest = hashlib.sha256(repr((__version__, self.operator_name, self.operator, renders)).encode())
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
        hold_ground="an order not yet delivered",
        hold_kind="retain",
        consent_source="order form, smarththings.kz/checkout",
        consent_at=day,
        suppressed=True,
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
