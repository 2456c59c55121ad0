"""Stage 3: is this message a data-subject request, of which kind, in which language? (pure)

The privacy policy tells people to mark the subject "Personal data update"
(§6.3) or "Withdrawal of consent to the processing of personal data" (§6.3),
and lets them refuse marketing by writing to support (§4.1).  People write
those markers in English, Russian or Kazakh, after reply and forward
prefixes (Re:, Fwd:, Отв:, Пересл:, Жауап:, …) and bracket tags
([SmartThings], [#123]), in any case.

:data:`MARKERS` is the policy as an ordered table: the first marker found in
the normalised subject decides the kind and the language.  Withdrawal comes
first, because a withdrawal subject can also mention an update and must not
be read as the weaker request.  Markers match whole words inside the
subject, so "Personal data update – order 1234" is still a request.

Out-of-office answers ("Automatic reply: Re: Personal data update") carry
our own marker back; :func:`is_auto_reply_subject` recognises their prefixes
for the loop rules (:mod:`loops`), which record such mail as ``ignored``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsr_mailbot.store.models import RequestKind

Language = str  # "ru" | "kk" | "en"


@dataclass(frozen=True)
class Marker:
    kind: RequestKind
    language: Language
    phrase: str


@dataclass(frozen=True)
class Classification:
    kind: RequestKind
    language: Language
    marker: str


def _m(kind: RequestKind, language: Language, *phrases: str) -> list[Marker]:
    return [Marker(kind, language, p) for p in phrases]


_W, _U, _O = RequestKind.WITHDRAW, RequestKind.UPDATE, RequestKind.OPTOUT

MARKERS: tuple[Marker, ...] = tuple(
    _m(_W, "en",
       "withdrawal of consent to the processing of personal data",
       "withdrawal of consent to processing of personal data",
       "withdrawal of consent", "withdraw consent", "consent withdrawal")
    + _m(_W, "ru",
         "отзыв согласия на обработку персональных данных",
         "отзыв согласия на обработку персданных",
         "отзыв согласия", "отзываю согласие")
    + _m(_W, "kk",
         "дербес деректерді өңдеуге келісімді кері қайтарып алу",
         "дербес деректерді өңдеуге келісімді қайтарып алу",
         "дербес деректерді өңдеуге берілген келісімді қайтарып алу",
         "келісімді кері қайтарып алу", "келісімді қайтарып алу", "келісімді қайтару")
    + _m(_U, "en", "personal data update", "update of personal data", "update personal data")
    + _m(_U, "ru",
         "обновление персональных данных", "обновление персданных",
         "изменение персональных данных", "обновление личных данных",
         "исправление персональных данных")
    + _m(_U, "kk", "дербес деректерді жаңарту", "дербес деректерді өзгерту", "жеке деректерді жаңарту")
    + _m(_O, "en",
         "unsubscribe", "opt out", "opt-out", "stop marketing", "refuse marketing",
         "refusal of marketing", "no more newsletters")
    + _m(_O, "ru",
         "отписаться", "отписка", "отпишите", "отказ от рассылки", "отказ от рассылок",
         "отказ от рекламы", "отказ от рекламных", "отказ от информационных",
         "отказ от получения рассылки", "отказ от получения рекламы",
         "отказ от получения информационных", "отказ от получения уведомлений")
    + _m(_O, "kk",
         "жазылымнан бас тарту", "таратылымнан бас тарту", "хабарламалардан бас тарту",
         "жарнамадан бас тарту", "жазылымды тоқтату")
)

_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|отв|ответ|пересл|переслано|fw\.|жауап|қайта жіберу)"
    r"(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：]\s*|\[[^\]]*\]\s*)",
    re.IGNORECASE,
)
_AUTO_REPLY_PREFIX = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|out of (the )?office|autoreply|"
    r"auto:|автоответ|автоматический ответ|нет на месте|вне офиса|автожауап)",
    re.IGNORECASE,
)
_KAZAKH_LETTERS = re.compile(r"[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")
_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")
_LATIN = re.compile(r"[a-zA-Z]")


def normalise_subject(subject: str) -> str:
    """Lower case, ё→е, quotes and punctuation to spaces, reply/forward prefixes and tags removed."""
    text = subject
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.lower().replace("ё", "е")
    text = re.sub(r"[«»\"“”„'`*_.,;!?()\[\]{}<>]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def is_auto_reply_subject(subject: str) -> bool:
    return bool(_AUTO_REPLY_PREFIX.match(subject))


def _phrase_pattern(phrase: str) -> str:
    return rf"(?<!\w){re.escape(phrase.replace('ё', 'е'))}(?!\w)"


_MARKER_PATTERNS = tuple(re.compile(_phrase_pattern(m.phrase)) for m in MARKERS)
# One pass over the subject rules out the common case (not a request) before
# the ordered table decides between markers.
_ANY_MARKER = re.compile("|".join(_phrase_pattern(m.phrase) for m in MARKERS))


def classify_subject(subject: str) -> Classification | None:
    """The request a subject marks, or None when it marks none."""
    text = normalise_subject(subject)
    if not text or not _ANY_MARKER.search(text):
        return None
    for marker, pattern in zip(MARKERS, _MARKER_PATTERNS, strict=True):
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
