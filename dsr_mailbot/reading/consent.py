"""Is a reply to a challenge a clear yes? (pure)

A challenge asks the owner to confirm something that may not be undone (a
withdrawal of consent ends in the destruction of their data).  So a reply
carrying a valid token confirms only when the person's own words are

- **empty**, once quotes, the signature and a greeting are removed: hitting
  Reply and Send is the usual way to confirm, as in GNU Mailman; or
- **a clear yes**: nothing but phrases of the ``yes`` table («Да,
  подтверждаю», "Yes, I confirm", «Иә, растаймын»), with courtesy words
  and a closing around them.

A refusal anywhere in the person's own words («Добрый день! Нет, я против»,
"Hi - please don't do this") is a **no**.  Anything else is **unclear**,
and a person decides.  The vocabulary is data (``consent.toml`` beside this
module, one table per language); every step is a split, a comparison of
word tuples or a substring test, linear in the (bounded) text.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dsr_mailbot.reading.body import reply_text
from dsr_mailbot.reading.classify import normalise_words, tables_by_language

MAX_REPLY_CHARS = 256 * 1024  # of the body; a confirmation is a few words
MAX_OWN_WORDS_CHARS = 32 * 1024  # kept for the reviewer
MAX_YES_WORDS = 40  # a clear yes is short: a longer reply is read by a person
MAX_GREETING_WORDS = 6  # "Добрый день, уважаемая служба поддержки!"
MAX_NAME_WORDS = 4  # the lines after a closing: "Иван Петров"
MAX_CLOSING_LINES = 3
TABLES = ("refusal_words", "refusal_phrases", "yes", "greetings", "closings", "courtesy")

Words = tuple[str, ...]


class Verdict(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class ConsentReading:
    verdict: Verdict
    own_words: str  # what the person wrote, quotes and signature removed: shown to a reviewer when unclear


class ConsentVocabularyError(ValueError):
    """The vocabulary file lacks a table, or a table is not a list of phrases."""


@dataclass(frozen=True)
class Vocabulary:
    refusal_words: frozenset[str]
    refusal_phrases: tuple[str, ...]  # normalised, each padded with spaces: matched as whole words
    yes: frozenset[Words]
    greetings: tuple[Words, ...]
    closings: tuple[Words, ...]
    courtesy: frozenset[Words]
    languages: frozenset[str]
    longest_phrase: int


def words_of(text: str) -> Words:
    """Normalised words: lower case, ё → е, "n't" → " not", punctuation gone (linear)."""
    return tuple(normalise_words(text).split())


def parse_vocabulary(text: str) -> Vocabulary:
    table = tomllib.loads(text)
    found = {name: [tuple(phrase.split()) for phrase in phrases]
             for name, phrases in tables_by_language(table, TABLES, ConsentVocabularyError).items()}
    phrases = [p for name in ("yes", "courtesy") for p in found[name]]
    return Vocabulary(
        refusal_words=frozenset(w for p in found["refusal_words"] for w in p),
        refusal_phrases=tuple(f" {' '.join(p)} " for p in found["refusal_phrases"]),
        yes=frozenset(found["yes"]),
        greetings=tuple(found["greetings"]),
        closings=tuple(found["closings"]),
        courtesy=frozenset(found["courtesy"]),
        languages=frozenset(k for k, v in table.items() if isinstance(v, dict)),
        longest_phrase=max(len(p) for p in phrases),
    )


@cache
def shipped_vocabulary() -> Vocabulary:
    return parse_vocabulary((resources.files("dsr_mailbot.reading") / "consent.toml").read_text(encoding="utf-8"))


def _starts_with(words: Words, phrases: tuple[Words, ...]) -> bool:
    return any(words[: len(p)] == p for p in phrases)


def _refuses(words: Words, vocabulary: Vocabulary) -> bool:
    if not vocabulary.refusal_words.isdisjoint(words):
        return True
    padded = f" {' '.join(words)} "
    return any(phrase in padded for phrase in vocabulary.refusal_phrases)


def _is_name(line: str) -> bool:
    """A line that can only be a name under a closing: "Иван Петров", "I. Petrov" (no "?", "!", no shouting)."""
    tokens = line.replace(".", " ").split()
    return 0 < len(tokens) <= MAX_NAME_WORDS and all(
        t.replace("-", "").isalpha() and t[0].isupper() and (len(t) == 1 or any(c.islower() for c in t[1:]))
        for t in tokens)


def _courtesy_line(line: str, phrases: tuple[Words, ...], vocabulary: Vocabulary) -> bool:
    """A line of one of ``phrases`` and courtesy words, nothing more: "Hello,", «Добрый день, уважаемая служба
    поддержки!».  Not "Hi! Why?", "Hi, delete it": a name or anything else after a greeting is read as words."""
    if "?" in line:
        return False
    words = words_of(line)
    for phrase in phrases:
        if words[: len(phrase)] == phrase:
            return all((word,) in vocabulary.courtesy for word in words[len(phrase):])
    return False


def _without_courtesy_lines(lines: list[str], vocabulary: Vocabulary) -> tuple[list[str], list[str]]:
    """The lines without a greeting line first; and those without the closing block at the end too.

    A closing line ("Спасибо,", "Best regards") may be followed by a name on a line or two of its own.
    """
    if lines and _courtesy_line(lines[0], vocabulary.greetings, vocabulary):
        lines = lines[1:]
    for start in range(max(0, len(lines) - MAX_CLOSING_LINES), len(lines)):
        if _courtesy_line(lines[start], vocabulary.closings, vocabulary) and all(
                _is_name(line) for line in lines[start + 1:]):
            return lines, lines[:start]
    return lines, lines


def _only_yes(words: Words, vocabulary: Vocabulary) -> bool:
    """Are ``words`` nothing but yes phrases and courtesy, with at least one yes?  Longest phrase first."""
    if len(words) > MAX_YES_WORDS:
        return False
    said_yes, index = False, 0
    while index < len(words):
        for size in range(min(vocabulary.longest_phrase, len(words) - index), 0, -1):
            phrase = words[index:index + size]
            if phrase in vocabulary.yes or phrase in vocabulary.courtesy:
                said_yes = said_yes or phrase in vocabulary.yes
                index += size
                break
        else:
            return False
    return said_yes


def read_confirmation(body_text: str, vocabulary: Vocabulary | None = None, *,
                      readable: bool = True) -> ConsentReading:
    """A clear yes, a no, or unclear: what a reply to a challenge says (see the module's docstring).

    ``readable``: the whole reply was read as text (not cut at the fetch
    limit, a text part found, no attachment): a reply that says its piece in
    a scan, an image or past the limit is never an empty, confirming one.
    """
    vocabulary = vocabulary or shipped_vocabulary()
    body = body_text[:MAX_REPLY_CHARS]
    # A no is looked for in everything the person may have written: past a signature ("Sent from my iPhone …
    # No, it was not me!"), and in the line that starts the history ("Нет, это не я вам писал:").
    if _refuses(words_of(reply_text(body, through_signatures=True)), vocabulary):
        return ConsentReading(Verdict.NO, reply_text(body)[:MAX_OWN_WORDS_CHARS])
    own = reply_text(body)
    if len(own) > MAX_OWN_WORDS_CHARS or not readable:
        return ConsentReading(Verdict.UNCLEAR, own[:MAX_OWN_WORDS_CHARS])
    lines = [line.strip() for line in own.splitlines() if words_of(line)]
    without_greeting, without_courtesy = _without_courtesy_lines(lines, vocabulary)
    if not without_greeting:
        return ConsentReading(Verdict.YES, own)
    rest = "\n".join(without_courtesy)
    # A question is no yes ("Yes?", "Proceed?"), nor is anything but yes phrases and courtesy.
    clear = "?" not in rest and _only_yes(words_of(rest), vocabulary)
    return ConsentReading(Verdict.YES if clear else Verdict.UNCLEAR, own)
