"""Requests without a subject marker, in the person's own words (policy 4.1, 7.1): opt-outs and questions (pure).

The policy lets a person refuse marketing "by sending a letter" and ask for
"any clarifications", with no subject prescribed.  So a letter whose subject
carries no marker may still be one:

- an opt-out phrase of the person's own words (quotes and signatures removed,
  with the negation rules) makes it an opt-out request: harmless when forged,
  due at once by law, so it is carried out and answered;
- a phrase about their own personal data makes it a possible question, for
  a person to answer or dismiss.

Mailing-list and bulk mail (``List-Id``, ``List-Unsubscribe``, ``Precedence:
bulk``) is never read this way: its footers are full of such words, and its
sender is not a data subject writing to support.  The phrases and the search
stems are data (``unmarked.toml``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dsr_mailbot.reading.classify import (
    BODY,
    Classification,
    Language,
    Marker,
    MarkerError,
    MarkerTable,
    detect_language,
    normalise_text,
    shipped_table,
)
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.reading.phrases import body_phrases
from dsr_mailbot.store.models import RequestKind

BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
# A Maildir has no server to search: its new messages are searched in their first 64 KB of text.
MAILDIR_SEARCH_BYTES = 64 * 1024


@dataclass(frozen=True)
class UnmarkedTable:
    stems: tuple[str, ...]  # lower-case, what the server's SEARCH looks for
    phrases: MarkerTable  # opt-out and question phrases, as body markers


def parse_unmarked(text: str, optout_body: Sequence[Marker] = ()) -> UnmarkedTable:
    data = tomllib.loads(text)
    stems = tuple(dict.fromkeys(s.strip().lower() for phrases in data.get("search", {}).values()
                                for s in phrases if isinstance(s, str) and s.strip()))
    if not stems:
        raise MarkerError("[search]: expected stems by language")
    markers: list[Marker] = list(optout_body)
    for table, kind in (("optout", RequestKind.OPTOUT), ("question", RequestKind.QUESTION)):
        for language, phrases in data.get(table, {}).items():
            if not isinstance(phrases, list) or not all(isinstance(p, str) and p.strip() for p in phrases):
                raise MarkerError(f"[{table}] {language}: expected a list of phrases")
            markers += [Marker(kind, language, normalise_text(p), BODY) for p in phrases]
    return UnmarkedTable(stems, MarkerTable(markers=(), any_marker=shipped_table().any_marker,
                                            body_markers=tuple(markers)))


@cache
def shipped_unmarked() -> UnmarkedTable:
    text = (resources.files("dsr_mailbot.reading") / "unmarked.toml").read_text(encoding="utf-8")
    optout_body = [m for m in shipped_table().body_markers if m.kind == RequestKind.OPTOUT]
    return parse_unmarked(text, optout_body)


def is_bulk(headers: Headers) -> bool:
    """Mailing-list or bulk mail: never a data subject's own letter."""
    names = {name.lower() for name, _value in headers.items}
    precedence = next((value.strip().lower() for name, value in headers.items if name.lower() == "precedence"), "")
    return bool({"list-id", "list-unsubscribe"} & names) or precedence in BULK_PRECEDENCE


def read_unmarked(own_words: str, default_language: Language,
                  table: UnmarkedTable | None = None) -> Classification | None:
    """What a letter without a marker asks in its own words: an opt-out, a possible question, or nothing."""
    table = table or shipped_unmarked()
    # A phone wraps lines, and HTML's line breaks are the writer's editor's: a paragraph is one text here, so
    # that "не присылайте\nмне рекламу" is one clause (a blank line still ends one).
    paragraphs = "\n\n".join(" ".join(part.split("\n")) for part in own_words.split("\n\n"))
    found = {phrase.kind: phrase for phrase in body_phrases(paragraphs, table.phrases)}
    optout = found.get(RequestKind.OPTOUT)
    language = detect_language(own_words, default_language)
    if optout is not None and not optout.in_question:
        return Classification(RequestKind.OPTOUT, language, optout.phrase)
    # "Why did you unsubscribe me?" is no opt-out: asked only in a question, without a marker, a person reads it.
    asked = found.get(RequestKind.QUESTION) or optout
    return Classification(RequestKind.QUESTION, language, asked.phrase) if asked is not None else None
