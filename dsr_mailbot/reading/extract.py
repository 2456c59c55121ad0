"""Stage 3b: the fields an update request asks to change (pure).

People write «Поле: значение» lines, in Russian, Kazakh or English, with the
labels of ``labels.toml`` beside this module, one table per language
(Телефон/Phone/Тел., E-mail/Почта, ФИО/Full name, Фамилия/Surname, Имя/First
name, Отчество/Patronymic; Kazakh's possessive forms «телефоным», «поштам»,
«тегім»), optionally prefixed with "my new"/«мой новый»/«менің жаңа», and
separated by ``:``, ``=``, a dash between spaces, or an em dash.

Values are checked and normalised:

- phone → E.164 with the phonenumbers library, national numbers read in the
  Kazakh numbering plan by default (``8 701 …`` and ``+7 (701) …`` both give
  ``+7701…``); an impossible number is a problem, not a change;
- e-mail → validated (syntax only; no DNS) and put in the bot's one normal
  form (:func:`~dsr_mailbot.addresses.normalise_address`: case, IDNA, no
  look-alikes);
- ФИО (full name) → split as surname, first name, patronymic when written in
  Cyrillic (the Russian and Kazakh order); a full name in Latin letters is
  read in the English order: first name [patronymic] surname;
- a field given twice with different values is a conflict and is not changed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dsr_mailbot.addresses import normalise_address

FIELDS = ("email", "phone", "surname", "first_name", "patronymic")

LABEL_TABLES = ("prefixes", "labels", "examples")


class LabelsError(ValueError):
    """The labels file lacks a table, or names a field the bot does not know."""


@dataclass(frozen=True)
class Labels:
    by_label: Mapping[str, str]  # normalised label → field ("full_name" splits into three)
    prefix: re.Pattern[str]  # any run of "my new", «мой новый», «менің жаңа» … at the front of a label
    examples: Mapping[str, Mapping[str, tuple[str, ...]]]  # language → field → lines written in it
    languages: frozenset[str]


def _normalised(label: str) -> str:
    text = label.lower().replace("ё", "е").replace(".", " ").replace("*", " ")
    return " ".join(text.split())


def parse_labels(text: str) -> Labels:
    table = tomllib.loads(text)
    by_label: dict[str, str] = {}
    prefixes: list[str] = []
    examples: dict[str, dict[str, tuple[str, ...]]] = {}
    for language, tables in table.items():
        if not isinstance(tables, dict) or any(name not in tables for name in LABEL_TABLES):
            raise LabelsError(f"[{language}]: needs {', '.join(LABEL_TABLES)}")
        prefixes += [_normalised(p) for p in tables["prefixes"]]
        for field, labels in tables["labels"].items():
            if field not in (*FIELDS, "full_name"):
                raise LabelsError(f"[{language}.labels] {field}: not a field")
            by_label.update({_normalised(label): field for label in labels})
        examples[language] = {field: tuple(lines) for field, lines in tables["examples"].items()}
    words = "|".join(re.escape(p) for p in sorted(set(prefixes), key=len, reverse=True))
    return Labels(by_label, re.compile(rf"^(?:(?:{words})\s+)+"), examples, frozenset(table))


@cache
def shipped_labels() -> Labels:
    return parse_labels((resources.files("dsr_mailbot.reading") / "labels.toml").read_text(encoding="utf-8"))


# The value is everything after the separator, stripped in Python: "(?P<value>.*?)\s*$" tried every split
# of a run of spaces between two words, quadratic in the run.
_LINE = re.compile(
    r"^\s*(?:[-*•·]\s*|\d{1,2}[.)]\s*)?(?P<label>[^\W\d][\w .\-]{0,40}?)\s*"
    r"(?::|=|—|–|\s-\s)(?P<value>.*)$"
)
MAX_FIELD_LINE_CHARS = 500  # a "Field: value" line is short; longer lines are never read as fields
# "Мой новый телефон", "my new phone": any run of them (labels are at most 40 characters).
_NAME_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’\-][^\W\d_])*$")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


@dataclass(frozen=True)
class Problem:
    """Why a field the person wrote was not taken: ``invalid`` or ``conflict``."""

    field: str
    code: str


@dataclass(frozen=True)
class UpdateIntent:
    """Normalised new values by field name, and the problems found."""

    changes: dict[str, str]
    problems: tuple[Problem, ...]

    @property
    def understood(self) -> bool:
        return bool(self.changes)


def normalise_label(label: str, labels: Labels | None = None) -> str:
    return (labels or shipped_labels()).prefix.sub("", _normalised(label))


def normalise_phone(value: str, region: str = "KZ") -> str | None:
    """E.164 form of a phone number, or None when it is not a possible, valid number."""
    import phonenumbers  # only when a request names a phone: a run with nothing new never pays for it

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email  # only when a request names an address

    candidate = value.strip().strip("<>").strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[7:]
    try:
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    # email-validator folds look-alikes (UTS 46 maps a full-width dot to a dot); the bot's own
    # normal form refuses them instead, so the value stored is the one that was written.
    return normalise_address(candidate)


def normalise_name(value: str) -> str | None:
    words = value.split()
    if not words or len(value) > 100 or not all(_NAME_WORD.match(w) for w in words):
        return None
    return " ".join(words)


def split_full_name(value: str) -> dict[str, str] | None:
    """Surname, first name and patronymic of a full name, or None when it cannot be split."""
    name = normalise_name(value)
    if name is None:
        return None
    words = name.split()
    if _CYRILLIC.search(name):
        if len(words) not in (2, 3):
            return None
        keys = ("surname", "first_name", "patronymic")
        return dict(zip(keys, words, strict=False))
    if len(words) == 2:
        return {"first_name": words[0], "surname": words[1]}
    if len(words) == 3:
        return {"first_name": words[0], "patronymic": words[1], "surname": words[2]}
    return None


def _normalise_value(field: str, value: str, phone_region: str) -> dict[str, str] | None:
    if field == "phone":
        phone = normalise_phone(value, phone_region)
        return {"phone": phone} if phone else None
    if field == "email":
        email = normalise_email(value)
        return {"email": email} if email else None
    if field == "full_name":
        return split_full_name(value)
    name = normalise_name(value)
    return {field: name} if name else None


def extract_update(text: str, phone_region: str = "KZ") -> UpdateIntent:
    """The changes an update request's own text asks for."""
    labels = shipped_labels()
    found: dict[str, set[str]] = {}
    invalid: set[str] = set()
    for line in text.splitlines():
        if len(line) > MAX_FIELD_LINE_CHARS:
            continue
        match = _LINE.match(line)
        if not match:
            continue
        field = labels.by_label.get(normalise_label(match["label"], labels))
        value = match["value"].strip()
        if field is None or not value:
            continue
        normalised = _normalise_value(field, value, phone_region)
        if normalised is None:
            invalid.add(field)
            continue
        for key, val in normalised.items():
            found.setdefault(key, set()).add(val)

    changes: dict[str, str] = {}
    problems: list[Problem] = []
    for key in FIELDS:
        values = found.get(key, set())
        if len(values) > 1:
            problems.append(Problem(key, "conflict"))
        elif values:
            changes[key] = next(iter(values))
    for key in (*FIELDS, "full_name"):
        name_given = key == "full_name" and any(k in changes for k in ("surname", "first_name"))
        if key in invalid and key not in changes and not name_given:
            problems.append(Problem(key, "invalid"))
    return UpdateIntent(changes=changes, problems=tuple(problems))
