"""Stage 3b: the fields an update request asks to change (pure).

People write «Поле: значение» lines, in Russian, Kazakh or English, with the
synonyms in :data:`LABELS` (Телефон/Phone/Тел., E-mail/Почта, ФИО/Full
name, Фамилия/Surname, Имя/First name, Отчество/Patronymic, and Kazakh
equivalents), optionally prefixed with "new"/«новый»/«жаңа», and separated
by ``:``, ``=``, a dash between spaces, or an em dash.

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
from dataclasses import dataclass

from dsr_mailbot.addresses import normalise_address

FIELDS = ("email", "phone", "surname", "first_name", "patronymic")

LABELS: dict[str, str] = {}
for _field, _labels in {
    "phone": (
        "телефон", "тел", "номер телефона", "номер", "мобильный", "мобильный телефон", "моб",
        "моб тел", "контактный телефон", "сотовый", "phone", "phone number", "mobile",
        "mobile phone", "tel", "telephone", "cell", "телефон нөмірі", "тел нөмірі",
        "ұялы телефон", "байланыс телефоны", "нөмір",
    ),
    "email": (
        "e-mail", "email", "e mail", "эл почта", "электронная почта", "почта",
        "адрес электронной почты", "емейл", "имейл", "мейл", "e-mail адрес", "email address",
        "e-mail address", "mail", "электрондық пошта", "эл пошта", "пошта", "е-mail",
    ),
    "full_name": (
        "фио", "ф и о", "full name", "name", "полное имя", "аты-жөні", "аты жөні",
        "толық аты-жөні", "толық аты жөні", "тегі аты әкесінің аты",
    ),
    "surname": ("фамилия", "surname", "last name", "family name", "тегі", "тек"),
    "first_name": ("имя", "first name", "given name", "аты", "есімі", "есім"),
    "patronymic": ("отчество", "patronymic", "middle name", "әкесінің аты"),
}.items():
    for _label in _labels:
        LABELS[_label] = _field

# The value is everything after the separator, stripped in Python: "(?P<value>.*?)\s*$" tried every split
# of a run of spaces between two words, quadratic in the run.
_LINE = re.compile(
    r"^\s*(?:[-*•·]\s*|\d{1,2}[.)]\s*)?(?P<label>[^\W\d][\w .\-]{0,40}?)\s*"
    r"(?::|=|—|–|\s-\s)(?P<value>.*)$"
)
MAX_FIELD_LINE_CHARS = 500  # a "Field: value" line is short; longer lines are never read as fields
# "Мой новый телефон", "my new phone": any run of them (labels are at most 40 characters).
_LABEL_PREFIX = re.compile(r"^(?:(?:новый|новая|новое|новые|мой|моя|моё|мое|new|my|жаңа|менің)\s+)+")
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


def normalise_label(label: str) -> str:
    text = label.lower().replace("ё", "е").replace(".", " ").replace("*", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return _LABEL_PREFIX.sub("", text)


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
    found: dict[str, set[str]] = {}
    invalid: set[str] = set()
    for line in text.splitlines():
        if len(line) > MAX_FIELD_LINE_CHARS:
            continue
        match = _LINE.match(line)
        if not match:
            continue
        field = LABELS.get(normalise_label(match["label"]))
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
