"""The tables of the configuration file, one model each (``config.example.toml`` documents every key)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config.fields import (
    Bool,
    ConfigPath,
    DatabaseUrl,
    Filled,
    KeyProblem,
    Listen,
    NonNegative,
    Positive,
    Section,
    Str,
    StringList,
    resolve_secret,
)
from dsr_mailbot.intents.deadlines import (
    DEFAULT_CALENDAR,
    DEFAULT_PROFILES,
    erasure_limit_days,
    profiles,
    supported_calendar,
)
from dsr_mailbot.reading.classify import Marker, MarkerError, parse_markers

Security = Literal["ssl", "starttls", "none"]
Language = Literal["ru", "kk", "en"]
LANGUAGES: tuple[str, ...] = ("ru", "kk", "en")
DEFAULT_OPERATOR_ADDRESSES = ("support@smarthings.kz", "support@smarththings.kz")


def _default_port(data: Any, ssl_port: int, plain_port: int) -> Any:
    if isinstance(data, dict) and "port" not in data:
        return {**data, "port": ssl_port if data.get("security", "ssl") == "ssl" else plain_port}
    return data


class ImapConfig(Section):
    host: Filled
    port: Positive = 993
    security: Security = "ssl"
    username: Filled
    password: Str = Field(repr=False)
    folder: Filled = "INBOX"
    processed_folder: Filled = "DSR-Processed"
    timeout_seconds: Positive = 60

    @model_validator(mode="before")
    @classmethod
    def _secrets_and_port(cls, data: Any, info: ValidationInfo) -> Any:
        return _default_port(resolve_secret(data, "password", info, required=True), 993, 143)


class MaildirConfig(Section):
    path: ConfigPath
    processed_folder: Filled = "DSR-Processed"


class SmtpConfig(Section):
    host: Filled
    port: Positive = 465
    security: Security = "ssl"
    from_address: Filled
    username: Str | None = None
    password: Str | None = Field(default=None, repr=False)
    timeout_seconds: Positive = 30
    # Notices to many users (policy 7.2) go out at most this many per minute; replies to requests are not held.
    max_per_minute: Positive = 60

    @model_validator(mode="before")
    @classmethod
    def _secrets_and_port(cls, data: Any, info: ValidationInfo) -> Any:
        required = isinstance(data, dict) and data.get("username") is not None
        return _default_port(resolve_secret(data, "password", info, required=required), 465, 587)


class FileDeliveryConfig(Section):
    directory: ConfigPath


class DatabaseConfig(Section):
    # Or url_file / url_env: a server's URL carries its password (percent-encode @ : / in it).
    url: DatabaseUrl = Field(default="sqlite:///dsr-mailbot.db", repr=False, validate_default=True)
    busy_timeout_ms: Positive = 10_000

    @model_validator(mode="before")
    @classmethod
    def _url_secret(cls, data: Any, info: ValidationInfo) -> Any:
        return resolve_secret(data, "url", info, required=False)


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
    calendar: Str = DEFAULT_CALENDAR  # whose public holidays and transferred working days count (holidays)
    digest_time: tuple[int, int] = (9, 0)  # local (hour, minute) of the daemon's daily digest to the operator
    # Erasure (152-FZ Art. 21 ч.5) and its act of destruction (RKN Order 179).
    expunge_processed_mail: Bool = True  # the person's request messages in processed_folder go with their data
    system_name: Filled = "SmartThings online shop customer database"  # the information system the act names
    acts_dir: ConfigPath = Field(default=Path("acts"), validate_default=True)  # one file per act, mode 0600
    act_retention_days: Positive = 1096  # three years, then the erasure job deletes the act

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
    def _known_calendar(cls, value: str) -> str:
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
    def _within_the_law(self) -> PolicyConfig:
        limit = erasure_limit_days(self.deadline_profile)
        if limit is not None and self.erasure_delay_days > limit:
            named = ", ".join(self.deadline_profile)
            raise KeyProblem("erasure_delay_days", f"{self.erasure_delay_days} is more than the {limit} calendar "
                                                   f"days the law allows after a withdrawal (profile {named})")
        return self


Verification = Literal["auto", "always", "never"]


class TrustConfig(Section):
    """How far a request's From line is believed (see verify.py and the README)."""

    authserv_id: Str | None = None
    verification: Verification = "auto"
    confirm_expiry_days: Positive = 7
    max_replies_per_sender_per_day: Positive = 10
    # Received lines the operator's own delivery chain adds above the MX's (e.g. 1 for Dovecot LMTP).
    own_received_lines: NonNegative = 0

    @field_validator("authserv_id")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value and value.strip() else None


class DaemonConfig(Section):
    idle: Bool = True  # use IMAP IDLE when the server offers it
    # Fallback polling, IDLE renewal, and the outbox retry interval.
    poll_interval_seconds: Positive = 60
    # Where `run` serves /healthz and /metrics itself ("host:port"), or None: not served.
    metrics_listen: Listen | None = None

    @field_validator("poll_interval_seconds")
    @classmethod
    def _renews_idle_in_time(cls, value: int) -> int:
        if value > 25 * 60:
            raise KeyProblem(None, "at most 1500 (IDLE must be renewed within 29 minutes)")
        return value


class LimitsConfig(Section):
    max_message_bytes: int = Field(default=10 * 1024 * 1024, ge=4096, strict=True)
    fetch_batch_size: Positive = 200


class SecretsConfig(Section):
    key_file: ConfigPath = Field(default=Path("dsr-mailbot.key"), validate_default=True)
    key: Str | None = Field(default=None, repr=False)  # hex; when given, key_file is not used

    @model_validator(mode="before")
    @classmethod
    def _inline_key(cls, data: Any) -> Any:
        """The key inline (``key``) or from the environment (``key_env``); else the key file is used."""
        if not isinstance(data, dict):
            return data
        if "key" in data and "key_env" in data:
            raise KeyProblem("key", "give only one of key, key_env")
        if "key_env" not in data:
            return data
        name = data["key_env"]
        if not isinstance(name, str) or not name:
            raise KeyProblem("key_env", "expected a non-empty string")
        if name not in os.environ:
            raise KeyProblem("key_env", f"environment variable {name} is not set")
        return {**{k: v for k, v in data.items() if k != "key_env"}, "key": os.environ[name]}

    @field_validator("key")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            if len(bytes.fromhex(value.strip())) < 16:
                raise ValueError
        except ValueError as exc:
            raise KeyProblem(None, "expected at least 32 hex digits") from exc
        return value.strip()


class TemplatesConfig(Section):
    directory: ConfigPath | None = None


class ClassifyConfig(Section):
    """Subject markers an operator adds to the shipped ones (the format of ``reading/markers.toml``)."""

    extra_markers_file: ConfigPath | None = None
    _markers: tuple[Marker, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _read_markers(self) -> ClassifyConfig:
        path = self.extra_markers_file
        if path is not None:
            try:
                self._markers = parse_markers(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise KeyProblem("extra_markers_file", f"cannot read {path} ({exc.strerror})") from exc
            except (MarkerError, UnicodeDecodeError) as exc:
                raise KeyProblem("extra_markers_file", f"{path}: {exc}") from exc
        return self

    @property
    def markers(self) -> tuple[Marker, ...]:
        return self._markers
