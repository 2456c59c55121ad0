"""Stage 3: is this message a data-subject request, of which kind, in which language? (pure)

The privacy policy tells people to mark the subject "Personal data update"
(§6.3) or "Withdrawal of consent to the processing of personal data" (§6.3),
and lets them refuse marketing by writing to support (§4.1).  People write
those markers in English, Russian or Kazakh, after reply and forward
prefixes (Re:, Fwd:, Отв:, Пересл:, Жауап:, …) and bracket tags
([SmartThings], [#123]), in any case.

The markers are data (``markers.toml`` beside this module, one list per
intent and language; an operator adds phrases with ``[classify]
extra_markers_file``), read as an ordered table: the first marker found in
the normalised subject decides the kind and the language.  Withdrawal comes
first, because a withdrawal subject can also mention an update and must not
be read as the weaker request.  Markers match whole words inside the
subject, so "Personal data update – order 1234" is still a request.

Out-of-office answers ("Automatic reply: Re: Personal data update") carry
our own marker back; the loop rules (:mod:`~dsr_mailbot.trust.loops`)
recognise them and record such mail as ``ignored``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from dsr_mailbot.store.models import RequestKind

Language = str  # "ru" | "kk" | "en"


SUBJECT, BODY = "subject", "body"


@dataclass(frozen=True)
class Marker:
    kind: RequestKind
    language: Language
    phrase: str
    place: str = SUBJECT  # where it counts: the subject makes a request; the body adds intents to one


@dataclass(frozen=True)
class Classification:
    kind: RequestKind
    language: Language
    marker: str


class MarkerError(ValueError):
    """A markers file names an unknown intent or language, or is not a list of phrases."""


LANGUAGES = ("en", "ru", "kk")


def _phrases(name: str, kind: str, languages: dict[str, object], place: str) -> list[Marker]:
    markers: list[Marker] = []
    for language, phrases in languages.items():
        if language not in LANGUAGES or not isinstance(phrases, list) or \
                not all(isinstance(p, str) and p.strip() for p in phrases):
            raise MarkerError(f"[{name}] {language}: expected a list of phrases in one of {', '.join(LANGUAGES)}")
        markers += [Marker(RequestKind(kind), language, normalise_text(p), place) for p in phrases]
    return markers


def parse_markers(text: str, known_kinds: frozenset[str] | None = None) -> tuple[Marker, ...]:
    """The markers of a TOML file, in the file's order.

    ``[intent]`` tables of ``language = [phrases]`` mark subjects;
    ``[intent.body]`` tables mark phrases of a request's own words that add
    the intent to it ("…и прошу больше не присылать рекламу").
    """
    kinds = known_kinds if known_kinds is not None else frozenset(k.value for k in RequestKind) - {"confirm"}
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MarkerError(f"not valid TOML ({exc})") from exc
    markers: list[Marker] = []
    for kind, languages in table.items():
        if kind not in kinds or not isinstance(languages, dict):
            raise MarkerError(f"[{kind}]: not an intent ({', '.join(sorted(kinds))})")
        body = languages.pop(BODY, {})
        if not isinstance(body, dict):
            raise MarkerError(f"[{kind}.body]: expected a table of language = [phrases]")
        markers += _phrases(kind, kind, languages, SUBJECT)
        markers += _phrases(f"{kind}.body", kind, body, BODY)
    return tuple(markers)


def shipped_markers() -> tuple[Marker, ...]:
    """The markers shipped in the package (``markers.toml`` beside this module)."""
    return parse_markers((resources.files("dsr_mailbot.reading") / "markers.toml").read_text(encoding="utf-8"))


def with_extra(markers: tuple[Marker, ...], extra: tuple[Marker, ...]) -> tuple[Marker, ...]:
    """Extra phrases join their intent's list, so the intents keep the shipped order."""
    order = list(dict.fromkeys(m.kind for m in markers))
    return tuple(m for kind in order for m in (*markers, *extra) if m.kind is kind) + tuple(
        m for m in extra if m.kind not in order)


_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|отв|ответ|пересл|переслано|fw\.|жауап|қайта жіберу)"
    r"(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：]\s*|\[[^\]]*\]\s*)",
    re.IGNORECASE,
)
_KAZAKH_LETTERS = re.compile(r"[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")
_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")
_LATIN = re.compile(r"[a-zA-Z]")


_PUNCTUATION = re.compile(r"[«»\"“”„'`*_.,;!?()\[\]{}<>]")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower case, ё→е, quotes and punctuation to spaces, runs of white space to one space (linear)."""
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower().replace("ё", "е"))).strip()


_APOSTROPHES = str.maketrans(dict.fromkeys("’‘´`ʼ′", "'"))
_NOT_A_WORD = re.compile(r"[^\w\s-]|_|(?<!\w)-|-(?!\w)")  # any punctuation or symbol; a hyphen only inside a word


def normalise_words(text: str) -> str:
    """People's words as the vocabularies read them: lower case, ё → е, "n't" (any apostrophe) → " not", and every
    punctuation or symbol character a space ("Hi,—No!" is "hi no"), a hyphen inside a word ("кто-то") kept."""
    text = text.lower().replace("ё", "е").translate(_APOSTROPHES).replace("n't", " not")
    return _SPACES.sub(" ", _NOT_A_WORD.sub(" ", text)).strip()


def tables_by_language(table: Mapping[str, object], names: Sequence[str],
                       error: type[ValueError]) -> dict[str, list[str]]:
    """The phrases of each named table, normalised, every language's together (a letter mixes languages).

    Each of :data:`LANGUAGES` must have each table as a non-empty list of
    phrases; ``error`` is raised naming the one that does not.
    """
    found: dict[str, list[str]] = {name: [] for name in names}
    for language in LANGUAGES:
        tables = table.get(language)
        if not isinstance(tables, dict):
            raise error(f"[{language}]: missing")
        for name in names:
            phrases = tables.get(name)
            if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and p for p in phrases):
                raise error(f"[{language}] {name}: expected a list of phrases")
            found[name] += [normalise_words(p) for p in phrases]
    return found


def normalise_subject(subject: str) -> str:
    """:func:`normalise_text` after the reply/forward prefixes and tags are removed."""
    text = subject
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return normalise_text(text)


def _phrase_pattern(phrase: str) -> str:
    return rf"(?<!\w){re.escape(phrase.replace('ё', 'е'))}(?!\w)"


@dataclass(frozen=True)
class MarkerTable:
    """Markers compiled for matching: one pass rules out ordinary mail, then the first marker in order decides.

    Only ``any_marker`` is compiled up front: most runs meet no request, and
    compiling every marker's own pattern was a tenth of a cron run's time.
    ``body``: the phrases that add intents to a request, with their patterns.
    """

    markers: tuple[Marker, ...]
    any_marker: re.Pattern[str]
    body_markers: tuple[Marker, ...] = ()

    @classmethod
    def of(cls, markers: tuple[Marker, ...]) -> MarkerTable:
        subject = tuple(m for m in markers if m.place == SUBJECT)
        return cls(subject, re.compile("|".join(_phrase_pattern(m.phrase) for m in subject)),
                   tuple(m for m in markers if m.place == BODY))

    @cached_property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(_phrase_pattern(m.phrase)) for m in self.markers)

    @cached_property
    def body(self) -> tuple[tuple[Marker, re.Pattern[str]], ...]:
        return tuple((m, re.compile(_phrase_pattern(m.phrase))) for m in self.body_markers)


@cache
def shipped_table() -> MarkerTable:
    """The shipped markers, compiled once."""
    return MarkerTable.of(shipped_markers())


def classify_subject(subject: str, table: MarkerTable | None = None) -> Classification | None:
    """The request a subject marks, or None when it marks none (``table``: the shipped markers by default)."""
    table = table or shipped_table()
    text = normalise_subject(subject)
    if not text or not table.any_marker.search(text):
        return None
    for marker, pattern in zip(table.markers, table.patterns, strict=True):
        if pattern.search(text):
            return Classification(marker.kind, marker.language, marker.phrase)
    return None


def detect_language(text: str, default: Language) -> Language:
    """Kazakh when Kazakh-only letters appear, Russian for other Cyrillic, English for Latin."""
    if _KAZAKH_LETTERS.search(text):
        return "kk"
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if cyrillic and cyrillic >= latin:
        return "ru"
    if latin:
        return "en"
    return default


def request_language(classification: Classification, body: str, default: Language) -> Language:
    """The language to answer in.

    The marker's language decides, except that a request marked with the
    policy's English phrase (copied from the policy page, which is in
    English) but written in Russian or Kazakh is answered in the language of
    its text.
    """
    if classification.language != "en":
        return classification.language
    return detect_language(body, default="en")
