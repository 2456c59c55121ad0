"""The intents a request's own words add to it, unless a negation in the same clause says the opposite (pure).

A letter whose subject made it a request may ask for more in its text
("…и прошу больше не присылать рекламу"): the ``[intent.body]`` phrases of
``markers.toml``.  A phrase does not count when its clause negates it:

- a negation anywhere **from the clause's start to the phrase** ("I do not
  want to withdraw my consent", «Я не прошу отозвать согласие»);
- or **after the phrase, to the clause's end**, as Kazakh puts it after the
  verb («…қайтарып аламын деп жазған жоқпын»).

A clause ends at ``. ! ? ; :`` and a line break, and a conjunction starts
a new one ("I don't want ads and I withdraw my consent" still withdraws).
A phrase found only in a question is marked so (``in_question``).
Negations, conjunctions and punctuation are data (``negations.toml``, one
table per language).  Quoted text and signatures were removed before.

Linear in the text: each clause is searched once per phrase, and whether a
hit is negated is decided from the clause's first negation before it and
last negation after it, each found once per clause (never a scan of the
text before every hit, which a letter of a thousand hits would make
quadratic).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dsr_mailbot.reading.classify import MarkerTable, normalise_words, shipped_table, tables_by_language
from dsr_mailbot.store.models import RequestKind

TABLES = ("before", "after", "conjunctions")


class NegationsError(ValueError):
    """The negations file lacks a table, or a table is not a list of phrases."""


@dataclass(frozen=True)
class Negations:
    before: tuple[str, ...]  # normalised, each padded with spaces: matched as whole words
    after: tuple[str, ...]
    conjunctions: frozenset[str]
    punctuation: str  # characters that end a clause, beside the line break
    languages: frozenset[str]


@dataclass(frozen=True)
class BodyPhrase:
    kind: RequestKind
    phrase: str  # the phrase that was understood (the marker, normalised): a challenge quotes it
    # Found only in questions ("Can I withdraw my consent later?"): a polite request ("Could you unsubscribe
    # me?") or a question about it; the caller decides what a question may add.
    in_question: bool = False


def parse_negations(text: str) -> Negations:
    table = tomllib.loads(text)
    found = tables_by_language(table, TABLES, NegationsError)
    punctuation = table.get("boundaries", {}).get("punctuation", [])
    if not punctuation or not all(isinstance(p, str) and len(p) == 1 for p in punctuation):
        raise NegationsError("[boundaries] punctuation: expected a list of single characters")
    return Negations(
        before=tuple(f" {p} " for p in found["before"]),
        after=tuple(f" {p} " for p in found["after"]),
        conjunctions=frozenset(found["conjunctions"]),
        punctuation="".join(punctuation),
        languages=frozenset(k for k, v in table.items() if isinstance(v, dict) and k != "boundaries"),
    )


@cache
def shipped_negations() -> Negations:
    return parse_negations((resources.files("dsr_mailbot.reading") / "negations.toml").read_text(encoding="utf-8"))


def clauses(text: str, negations: Negations) -> Iterator[tuple[str, bool]]:
    """The normalised clauses of ``text``, each padded with a space at both ends, and whether its sentence is a
    question ("Withdraw my consent? No way!", «Как отозвать согласие, если понадобится?») (linear)."""
    ends = re.compile(f"([{re.escape(negations.punctuation)}\n])")
    pieces = ends.split(text)
    for index in range(0, len(pieces), 2):
        question = index + 1 < len(pieces) and pieces[index + 1] == "?"
        clause: list[str] = []
        for word in normalise_words(pieces[index]).split():
            if word in negations.conjunctions and clause:
                yield f" {' '.join(clause)} ", question
                clause = []
            elif word not in negations.conjunctions:
                clause.append(word)
        if clause:
            yield f" {' '.join(clause)} ", question


def _first_negation_end(clause: str, negations: Negations) -> int:
    """Where the clause's earliest negation ends (its trailing space), or past the end when there is none."""
    ends = [found + len(n) - 1 for n in negations.before if (found := clause.find(n)) >= 0]
    return min(ends, default=len(clause) + 1)


def _last_negation_start(clause: str, negations: Negations) -> int:
    """Where the clause's last negation of the ``after`` kind starts (its leading space), or -1."""
    return max((clause.rfind(n) for n in negations.after), default=-1)


def body_phrases(own_words: str, table: MarkerTable | None = None,
                 negations: Negations | None = None) -> tuple[BodyPhrase, ...]:
    """The intents the person's own words add, in the table's order, once each, with the phrase understood.

    ``own_words``: the person's text with quotes and signatures removed (a
    quoted "unsubscribe" is someone else's words).
    """
    table = table or shipped_table()
    negations = negations or shipped_negations()
    found: dict[RequestKind, BodyPhrase] = {}
    for clause, question in clauses(own_words, negations):
        first_before_ends = _first_negation_end(clause, negations)
        last_after_starts = _last_negation_start(clause, negations)
        for marker, pattern in table.body:
            if marker.kind in found and not found[marker.kind].in_question:
                continue
            for match in pattern.finditer(clause):
                if first_before_ends <= match.start() or last_after_starts >= match.end():
                    continue  # negated in its clause: before it, or (Kazakh) after it
                if marker.kind not in found or not question:
                    found[marker.kind] = BodyPhrase(marker.kind, marker.phrase, question)
                break
    order: dict[RequestKind, int] = {}
    for index, (marker, _pattern) in enumerate(table.body):
        order.setdefault(marker.kind, index)
    return tuple(found[kind] for kind in sorted(found, key=order.__getitem__))
