"""``[policy]``: the operator, the law it answers to, how erasure is done (``config.example.toml`` has every key)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config.fields import (
    Bool,
    ConfigPath,
    Filled,
    KeyProblem,
    NonNegative,
    Positive,
    Section,
    Str,
    StringList,
)
from dsr_mailbot.config.sections import DEFAULT_OPERATOR_ADDRESSES, LANGUAGES, Language
from dsr_mailbot.intents.deadlines import (
    DEFAULT_CALENDAR,
    DEFAULT_PROFILES,
    Clock,
    OverridesError,
    WorkCalendar,
    erasure_limit_days,
    parse_calendar_overrides,
    profiles,
    supported_calendar,
)


def _local_text(value: object) -> dict[str, str]:
    """A text as the operator wrote it ("" key: shown in every language), or one per language: ``{ ru = "…" }``."""
    if isinstance(value, str) and value.strip():
        return {"": value.strip()}
    if isinstance(value, dict) and value and all(k in LANGUAGES and isinstance(v, str) and v.strip()
                                                 for k, v in value.items()):
        return {k: v.strip() for k, v in value.items()}
    raise KeyProblem(None, f"expected a text, or a table of texts by language ({', '.join(LANGUAGES)})")


LocalText = Annotated[dict[str, str], BeforeValidator(_local_text)]

# Art. 14 ч.7 of 152-FZ: what an access answer states.  The defaults say what the policy says (3.4, 5.1).
DEFAULT_METHODS = {
    "ru": "смешанная обработка (с использованием средств автоматизации и без): сбор, запись, хранение, уточнение, "
          "использование, удаление и уничтожение",
    "kk": "аралас өңдеу (автоматтандыру құралдарымен және оларсыз): жинау, жазу, сақтау, нақтылау, пайдалану, жою",
    "en": "mixed processing (automated and manual): collection, recording, storage, correction, use, erasure and "
          "destruction",
}
DEFAULT_SOURCE = {
    "ru": "вы сами: данные, отправленные через формы на нашем сайте (п. 5.1 политики)",
    "kk": "сіз өзіңіз: сайтымыздағы формалар арқылы жіберілген деректер (саясаттың 5.1-тармағы)",
    "en": "you: the data you sent through the forms on our website (policy 5.1)",
}
DEFAULT_CROSS_BORDER = {
    "ru": "ваши e-mail, телефон и ФИО за границу не передаются; обезличенные данные посетителей сайта (cookies) "
          "обрабатываются сервисами интернет-статистики Яндекс.Метрика и Google Analytics (п. 3.4 политики), "
          "серверы которых могут находиться за пределами Республики Казахстан",
    "kk": "сіздің e-mail, телефон және аты-жөніңіз шетелге берілмейді; сайт келушілерінің иесіздендірілген "
          "деректері (cookies) Яндекс.Метрика және Google Analytics интернет-статистика қызметтерінде өңделеді "
          "(саясаттың 3.4-тармағы), олардың серверлері Қазақстан Республикасынан тыс болуы мүмкін",
    "en": "your e-mail, phone and name are not transferred abroad; anonymised data about the site's visitors "
          "(cookies) are processed by the web statistics services Yandex Metrica and Google Analytics (policy 3.4), "
          "whose servers may be outside the Republic of Kazakhstan",
}


class Person(Section):
    """The person responsible for the processing of personal data (152-FZ Art. 22.1; KZ 94-V Art. 25)."""

    name: Filled
    email: Filled


class Signer(Section):
    """One of the people an act of destruction names and who sign it (RKN Order 179)."""

    name: Filled
    position: Filled


class Processor(Section):
    """Someone who processes the data on the operator's behalf: the mail hosting, the SMTP relay (Art. 14 ч.7)."""

    name: Filled
    address: Filled
    purpose: Filled
    country: Filled


def _clock_time(value: object) -> tuple[int, int]:
    if isinstance(value, tuple):
        return value
    text = value if isinstance(value, str) else ""
    hour, _, minute = text.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
        raise KeyProblem(None, f"expected a time like \"09:00\", got {value!r}")
    return int(hour), int(minute)


class PolicyConfig(Section):
    erasure_delay_days: NonNegative = 30
    default_language: Language = "ru"
    operator_addresses: StringList = DEFAULT_OPERATOR_ADDRESSES
    operator_name: Filled = "SmartThings LLP"
    timezone: Str = "Asia/Almaty"
    # Legal deadline profiles (intents/deadlines.toml); the strictest due date wins.
    deadline_profile: tuple[str, ...] = DEFAULT_PROFILES
    # Whose public holidays and transferred working days count (holidays): unset, each profile's own law's
    # (deadlines.toml); set, this one country for every profile, as before the profiles had their own.
    calendar: Str | None = None
    calendar_overrides: ConfigPath | None = None  # days off and working days decreed after the release, per country
    digest_time: tuple[int, int] = (9, 0)  # local (hour, minute) of the daemon's daily digest to the operator
    # Erasure (152-FZ Art. 21 ч.5) and its act of destruction (RKN Order 179).
    expunge_processed_mail: Bool = True  # the person's request messages in processed_folder go with their data
    system_name: Filled = "SmartThings online shop customer database"  # the information system the act names
    acts_dir: ConfigPath = Field(default=Path("acts"), validate_default=True)  # one file per act, mode 0600
    act_retention_days: Positive = 1096  # three years, then the erasure job deletes the act
    # A hold's block (152-FZ Art. 21 ч.6) ends at most this many days after the withdrawal: six months.
    max_block_days: Positive = 183
    # Closed requests: their processed-folder copies, and an unknown sender's replies, go after this many days.
    closed_request_retention_days: Positive = 365
    # What the access answer and the act state about the operator (152-FZ Art. 14 ч.7, RKN Order 179).
    operator_address: Str = ""  # the operator's postal address; unset, the answer and the act say so
    operator_bin: Str = ""  # the Kazakh business identification number (БИН), 12 digits
    responsible_person: Person | None = None  # signs the replies; named in the act
    destruction_signers: tuple[Signer, ...] = ()  # named in the act, with a signature line each
    processing_methods: LocalText = Field(default_factory=lambda: dict(DEFAULT_METHODS))
    data_source: LocalText = Field(default_factory=lambda: dict(DEFAULT_SOURCE))
    processors: tuple[Processor, ...] = ()
    cross_border: LocalText = Field(default_factory=lambda: dict(DEFAULT_CROSS_BORDER))
    _deadlines: Clock = PrivateAttr(default_factory=Clock)

    @field_validator("operator_addresses")
    @classmethod
    def _normal_addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        """In the normal form the bot compares senders in (see addresses.py)."""
        found: list[str] = []
        for value in values:
            address = normalise_address(value.strip())
            if address is None:
                raise KeyProblem(None, f"{value!r} is not an e-mail address")
            found.append(address)
        return tuple(found)

    @field_validator("operator_bin")
    @classmethod
    def _bin(cls, value: str) -> str:
        if value and not (len(value.strip()) == 12 and value.strip().isascii() and value.strip().isdigit()):
            raise KeyProblem(None, "a BIN is 12 digits")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise KeyProblem(None, f"unknown time zone {name!r}") from exc
        return name

    @field_validator("deadline_profile", mode="before")
    @classmethod
    def _known_profiles(cls, raw: object) -> tuple[str, ...]:
        names = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list | tuple) else ()
        known = sorted(profiles())
        if not names or not all(isinstance(n, str) and n in known for n in names):
            raise KeyProblem(None, f"expected one or a list of {', '.join(known)}, got {raw!r}")
        return names

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        country = value.upper()
        # The default needs no look-up (tests/intents/test_deadlines.py checks it), which spares every run the
        # holidays package's registry (a twentieth of a cron run with nothing to do).
        if country != DEFAULT_CALENDAR and not supported_calendar(country):
            raise KeyProblem(None, f"{country!r} is not a country code the holidays package knows")
        return country

    @field_validator("digest_time", mode="before")
    @classmethod
    def _clock(cls, value: object) -> tuple[int, int]:
        return _clock_time(value)

    @model_validator(mode="after")
    def _read_overrides(self) -> PolicyConfig:
        overrides: tuple[WorkCalendar, ...] = ()
        if self.calendar_overrides is not None:
            path = self.calendar_overrides
            try:
                overrides = tuple(parse_calendar_overrides(path.read_text(encoding="utf-8")).values())
            except OSError as exc:
                raise KeyProblem("calendar_overrides", f"cannot read {path} ({exc.strerror})") from exc
            except (OverridesError, UnicodeDecodeError) as exc:
                raise KeyProblem("calendar_overrides", f"{path}: {exc}") from exc
        self._deadlines = Clock(self.deadline_profile, self.timezone, self.calendar, overrides)
        return self

    @property
    def clock(self) -> Clock:
        """The deadlines of this configuration: its profiles on their calendars, in its time zone."""
        return self._deadlines

    @model_validator(mode="after")
    def _within_the_law(self) -> PolicyConfig:
        limit = erasure_limit_days(self.deadline_profile)
        if limit is not None and self.erasure_delay_days > limit:
            named = ", ".join(self.deadline_profile)
            raise KeyProblem("erasure_delay_days", f"{self.erasure_delay_days} is more than the {limit} calendar "
                                                   f"days the law allows after a withdrawal (profile {named})")
        return self
