"""The tables of the configuration file, one model each (``config.example.toml`` documents every key)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

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
    resolve_secret,
)
from dsr_mailbot.config.oauth2 import OAuth2Config
from dsr_mailbot.reading.classify import Marker, MarkerError, parse_markers

Security = Literal["ssl", "starttls", "none"]
Auth = Literal["password", "oauth2"]
Language = Literal["ru", "kk", "en"]
LANGUAGES: tuple[str, ...] = ("ru", "kk", "en")
DEFAULT_OPERATOR_ADDRESSES = ("support@smarthings.kz", "support@smarththings.kz")


def _default_port(data: Any, ssl_port: int, plain_port: int) -> Any:
    if isinstance(data, dict) and "port" not in data:
        return {**data, "port": ssl_port if data.get("security", "ssl") == "ssl" else plain_port}
    return data


def _login_by(data: Any) -> Any:
    return data.get("auth", "password") if isinstance(data, dict) else "password"


def _sasl_username(auth: str, username: str | None) -> None:
    # XOAUTH2 and OAUTHBEARER separate their fields by ^A: a control character in the name would add fields of its own.
    if auth == "oauth2" and username and not username.isprintable():
        raise KeyProblem("username", 'has a control character, which auth = "oauth2" cannot send')


def _oauth2_matches_auth(auth: str, oauth2: OAuth2Config | None) -> None:
    if auth == "oauth2" and oauth2 is None:
        raise KeyProblem("oauth2", 'missing: auth = "oauth2" needs its table (provider, client_id, token_file)')
    if auth == "password" and oauth2 is not None:
        raise KeyProblem("auth", 'is "password", but an oauth2 table is given: set auth = "oauth2" to use it')


class ImapConfig(Section):
    host: Filled
    port: Positive = 993
    security: Security = "ssl"
    username: Filled
    auth: Auth = "password"
    password: Str | None = Field(default=None, repr=False)
    oauth2: OAuth2Config | None = None
    folder: Filled = "INBOX"
    processed_folder: Filled = "DSR-Processed"
    timeout_seconds: Positive = 60

    @model_validator(mode="before")
    @classmethod
    def _secrets_and_port(cls, data: Any, info: ValidationInfo) -> Any:
        required = _login_by(data) == "password"
        return _default_port(resolve_secret(data, "password", info, required=required), 993, 143)

    @model_validator(mode="after")
    def _oauth2_when_asked(self) -> ImapConfig:
        _oauth2_matches_auth(self.auth, self.oauth2)
        _sasl_username(self.auth, self.username)
        return self


class MaildirConfig(Section):
    path: ConfigPath
    processed_folder: Filled = "DSR-Processed"


class SmtpConfig(Section):
    host: Filled
    port: Positive = 465
    security: Security = "ssl"
    from_address: Filled
    username: Str | None = None
    auth: Auth = "password"
    password: Str | None = Field(default=None, repr=False)
    oauth2: OAuth2Config | None = None
    timeout_seconds: Positive = 30
    # The name in EHLO; unset, smtplib's (the host's FQDN, or its address in brackets when that has no dot).
    helo_name: Filled | None = None
    # Notices to many users (policy 7.2) go out at most this many per minute; replies to requests are not held.
    max_per_minute: Positive = 60

    @model_validator(mode="before")
    @classmethod
    def _secrets_and_port(cls, data: Any, info: ValidationInfo) -> Any:
        required = isinstance(data, dict) and data.get("username") is not None and _login_by(data) == "password"
        return _default_port(resolve_secret(data, "password", info, required=required), 465, 587)

    @model_validator(mode="after")
    def _oauth2_when_asked(self) -> SmtpConfig:
        _oauth2_matches_auth(self.auth, self.oauth2)
        if self.auth == "oauth2" and not self.username:
            raise KeyProblem("username", 'missing: auth = "oauth2" logs in as this mailbox')
        _sasl_username(self.auth, self.username)
        return self


def nameserver_address(server: str) -> tuple[str, int]:
    """``"192.0.2.53"``, ``"127.0.0.1:5353"``, ``"2001:db8::53"``, ``"[2001:db8::53]:53"``, ``"[::1]"``: address and
    port; a ValueError for anything else (a name: dnspython would send to it nowhere and call that a timeout)."""
    host, port = server, "53"
    if server.startswith("["):
        host, bracket, rest = server[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(server)
        port = rest[1:] if rest else "53"
    elif server.count(":") == 1:
        host, port = server.split(":")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(server)
    return str(ipaddress.ip_address(host)), int(port)


def _nameserver(value: str) -> str:
    try:
        nameserver_address(value)
    except ValueError:
        raise KeyProblem(None, f"{value[:60]!r} is not an address (with an optional port: 192.0.2.53:53, "
                               f"[2001:db8::53]:53)") from None
    return value


class CheckConfig(Section):
    """``dsr-mailbot check``: where it asks DNS, and which DKIM key it looks for."""

    # "192.0.2.53", "127.0.0.1:5353", "[2001:db8::53]:53"; none: the system's
    nameservers: tuple[Annotated[Filled, AfterValidator(_nameserver)], ...] = ()
    dkim_selector: Filled | None = None  # the replies' DKIM selector: <selector>._domainkey.<reply domain>


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
