"""Loading and checking the TOML configuration.

Every key is documented in ``config.example.toml``.  The loader is strict:
an unknown key, a missing required key or a value of the wrong type raises
:class:`~dsr_mailbot.errors.ConfigError` with a message that names the key,
such as ``[imap] port: expected an integer, got 'abc'``.  Relative paths are
resolved against the directory of the configuration file, so a config works
the same from cron (whose working directory is ``$HOME``) and from a shell.

Secrets (the IMAP and SMTP passwords) may be given inline, in a file, or in
an environment variable; they are read here once and never logged.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.errors import ConfigError
from dsr_mailbot.intents.deadlines import (
    DEFAULT_CALENDAR,
    DEFAULT_PROFILES,
    erasure_limit_days,
    profiles,
    supported_calendar,
)
from dsr_mailbot.reading.classify import Marker, MarkerError, parse_markers

if TYPE_CHECKING:
    from dsr_mailbot.store.database import Store

Security = Literal["ssl", "starttls", "none"]
LANGUAGES = ("ru", "kk", "en")
DEFAULT_OPERATOR_ADDRESSES = ("support@smarthings.kz", "support@smarththings.kz")

_T = TypeVar("_T")
_REQUIRED: Any = object()


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    processed_folder: str = "DSR-Processed"
    timeout_seconds: int = 60


@dataclass(frozen=True)
class MaildirConfig:
    path: Path
    processed_folder: str = "DSR-Processed"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    from_address: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: int = 30
    # Notices to many users (policy 7.2) go out at most this many per minute; replies to requests are not held.
    max_per_minute: int = 60


@dataclass(frozen=True)
class FileDeliveryConfig:
    directory: Path


@dataclass(frozen=True)
class PolicyConfig:
    erasure_delay_days: int = 30
    default_language: str = "ru"
    operator_addresses: tuple[str, ...] = DEFAULT_OPERATOR_ADDRESSES
    operator_name: str = "SmartThings LLP"
    timezone: str = "Asia/Almaty"
    # Legal deadline profiles (intents/deadlines.toml); the strictest due date wins.
    deadline_profile: tuple[str, ...] = ("ru-152fz", "kz")
    calendar: str = "KZ"  # whose public holidays and transferred working days count (the holidays package)
    digest_time: tuple[int, int] = (9, 0)  # local (hour, minute) of the daemon's daily digest to the operator
    # Erasure (152-FZ Art. 21 ч.5) and its act of destruction (RKN Order 179).
    expunge_processed_mail: bool = True  # the person's request messages in processed_folder go with their data
    system_name: str = "SmartThings online shop customer database"  # the information system the act names
    acts_dir: Path = Path("acts")  # one file per act, mode 0600, apart from the store
    act_retention_days: int = 1096  # three years, then the erasure job deletes the act


Verification = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class TrustConfig:
    """How far a request's From line is believed (see verify.py and the README)."""

    authserv_id: str | None = None
    verification: Verification = "auto"
    confirm_expiry_days: int = 7
    max_replies_per_sender_per_day: int = 10
    # Received lines the operator's own delivery chain adds above the MX's (e.g. 1 for Dovecot LMTP).
    own_received_lines: int = 0


@dataclass(frozen=True)
class DaemonConfig:
    idle: bool = True  # use IMAP IDLE when the server offers it
    poll_interval_seconds: int = 60  # fallback polling, IDLE renewal, and the outbox retry interval
    # Where `run` serves /healthz and /metrics itself ("host:port"), or None: not served.
    metrics_listen: tuple[str, int] | None = None


@dataclass(frozen=True)
class WebOperator:
    """A person who may log in to the operator console (issue 12): a login, an Argon2 hash, a language."""

    login: str
    password_hash: str = field(repr=False)
    language: str = "ru"


@dataclass(frozen=True)
class WebConfig:
    """The operator console: where it listens (loopback unless told otherwise) and who may log in."""

    host: str = "127.0.0.1"
    port: int = 8080
    operators: tuple[WebOperator, ...] = ()
    # The Host header values the console answers (lower case, without the port): anything else gets 400, so a
    # page on another name (DNS rebinding onto loopback) cannot read it.  Default: the listen host and localhost.
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LimitsConfig:
    max_message_bytes: int = 10 * 1024 * 1024
    fetch_batch_size: int = 200


@dataclass(frozen=True)
class Config:
    """The whole configuration; exactly one of ``imap``/``maildir`` is set."""

    path: Path
    imap: ImapConfig | None
    maildir: MaildirConfig | None
    smtp: SmtpConfig | None
    file_delivery: FileDeliveryConfig | None
    database_url: str
    database_busy_timeout_ms: int
    policy: PolicyConfig
    trust: TrustConfig
    daemon: DaemonConfig
    limits: LimitsConfig
    key_file: Path
    templates_dir: Path | None
    # Subject markers an operator adds to the shipped ones ([classify] extra_markers_file).
    extra_markers: tuple[Marker, ...] = ()
    web: WebConfig = WebConfig()
    secret_key: str | None = field(default=None, repr=False)  # hex; when given, key_file is not used

    @property
    def notices_per_minute(self) -> int | None:
        """The campaign throttle: ``[smtp] max_per_minute``; None when replies are written to files."""
        return self.smtp.max_per_minute if self.smtp is not None else None

    @property
    def reply_domain(self) -> str:
        """The domain of :attr:`reply_from`: the bot's Message-IDs end in it."""
        return self.reply_from.rsplit("@", 1)[-1]

    @property
    def reply_from(self) -> str:
        """The address replies come from: SMTP's ``from_address``, else the first operator one."""
        if self.smtp is not None:
            return self.smtp.from_address
        return self.policy.operator_addresses[0]

    def open_store(self) -> Store:
        """The store this configuration names (the engine connects lazily)."""
        from dsr_mailbot.store.database import Store

        return Store(self.database_url, busy_timeout_ms=self.database_busy_timeout_ms)

    @property
    def source_name(self) -> str:
        """A stable name of the watched mailbox, the key of its cursor in the store."""
        if self.imap is not None:
            return f"imap://{self.imap.username}@{self.imap.host}:{self.imap.port}/{self.imap.folder}"
        assert self.maildir is not None
        return f"maildir://{self.maildir.path}"


class _Section:
    """Reads typed values out of one TOML table and remembers which keys were used."""

    def __init__(self, name: str, table: Mapping[str, Any], base_dir: Path) -> None:
        self.name = name
        self.table = table
        self.base_dir = base_dir
        self.used: set[str] = set()

    def _get(self, key: str, default: Any, kind: type[_T], kind_name: str) -> _T:
        self.used.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                raise ConfigError(f"[{self.name}] {key}: missing (required)")
            return default  # type: ignore[no-any-return]
        value = self.table[key]
        # bool is an int in Python; a port of `true` is still a mistake.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"[{self.name}] {key}: expected {kind_name}, got {value!r}")
        return value

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        value = self._get(key, default, str, "a string")
        if value is not None and default is _REQUIRED and not value.strip():
            raise ConfigError(f"[{self.name}] {key}: must not be empty")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int = 0) -> int:
        value = self._get(key, default, int, "an integer")
        if value < minimum:
            raise ConfigError(f"[{self.name}] {key}: must be at least {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        return self._get(key, default, bool, "true or false")

    def choice(self, key: str, options: tuple[str, ...], default: Any = _REQUIRED) -> str:
        value = self.string(key, default)
        if value not in options:
            raise ConfigError(f"[{self.name}] {key}: must be one of {', '.join(options)}, got {value!r}")
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, list(default), list, "a list of strings")
        if not value or not all(isinstance(item, str) and item.strip() for item in value):
            raise ConfigError(f"[{self.name}] {key}: expected a non-empty list of strings")
        return tuple(value)

    def path(self, key: str, default: Any = _REQUIRED) -> Path:
        return self.base_dir / Path(self.string(key, default)).expanduser()

    def secret(self, key: str, required: bool) -> str | None:
        """A secret given as ``key``, ``key_file`` or ``key_env`` (exactly one of them)."""
        given = [k for k in (key, f"{key}_file", f"{key}_env") if k in self.table]
        self.used.update((key, f"{key}_file", f"{key}_env"))
        if len(given) > 1:
            raise ConfigError(f"[{self.name}] {key}: give only one of {', '.join(given)}")
        if not given:
            if required:
                raise ConfigError(f"[{self.name}] {key}: missing (or {key}_file / {key}_env)")
            return None
        chosen = given[0]
        value = self.table[chosen]
        if not isinstance(value, str) or not value:
            raise ConfigError(f"[{self.name}] {chosen}: expected a non-empty string")
        if chosen.endswith("_file"):
            secret_path = self.base_dir / Path(value).expanduser()
            try:
                return secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"[{self.name}] {chosen}: cannot read {secret_path} ({exc.strerror})"
                ) from exc
        if chosen.endswith("_env"):
            if value not in os.environ:
                raise ConfigError(f"[{self.name}] {chosen}: environment variable {value} is not set")
            return os.environ[value]
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise ConfigError(f"[{self.name}] {unknown[0]}: unknown key")


def _security_port(section: _Section, ssl_port: int, plain_port: int) -> tuple[Security, int]:
    security = section.choice("security", ("ssl", "starttls", "none"), "ssl")
    default_port = ssl_port if security == "ssl" else plain_port
    return security, section.integer("port", default_port, minimum=1)  # type: ignore[return-value]


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: expected a table")
    return value


_KNOWN_SECTIONS = (
    "imap", "maildir", "smtp", "file_delivery", "database",
    "policy", "trust", "daemon", "limits", "secrets", "templates", "classify", "web",
)


def load_config(path: Path) -> Config:
    """Read and check the configuration at ``path``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path} ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Check an already-parsed TOML document; ``path`` anchors relative paths."""
    base_dir = path.resolve().parent
    for name in data:
        if name not in _KNOWN_SECTIONS:
            raise ConfigError(f"[{name}]: unknown section")

    sections: list[_Section] = []

    def section(name: str) -> _Section | None:
        table = _table(data, name)
        if table is None:
            return None
        sec = _Section(name, table, base_dir)
        sections.append(sec)
        return sec

    imap_sec, maildir_sec = section("imap"), section("maildir")
    if (imap_sec is None) == (maildir_sec is None):
        raise ConfigError("[imap] or [maildir]: exactly one mailbox section is required")
    imap = _imap(imap_sec) if imap_sec else None
    maildir = (
        MaildirConfig(
            path=maildir_sec.path("path"),
            processed_folder=maildir_sec.string("processed_folder", "DSR-Processed"),
        )
        if maildir_sec
        else None
    )

    smtp_sec, file_sec = section("smtp"), section("file_delivery")
    if smtp_sec is not None and file_sec is not None:
        raise ConfigError("[smtp] and [file_delivery]: give only one way to deliver replies")
    smtp = _smtp(smtp_sec) if smtp_sec else None
    file_delivery = FileDeliveryConfig(directory=file_sec.path("directory")) if file_sec else None
    if smtp is None and file_delivery is None:
        file_delivery = FileDeliveryConfig(directory=base_dir / "outbox")

    db_sec = section("database") or _Section("database", {}, base_dir)
    database_url = db_sec.string("url", f"sqlite:///{base_dir / 'dsr-mailbot.db'}")
    database_url = _anchor_sqlite_url(database_url, base_dir)
    busy_timeout_ms = db_sec.integer("busy_timeout_ms", 10_000, minimum=1)

    policy_sec = section("policy") or _Section("policy", {}, base_dir)
    policy = PolicyConfig(
        erasure_delay_days=policy_sec.integer("erasure_delay_days", 30),
        default_language=policy_sec.choice("default_language", LANGUAGES, "ru"),
        operator_addresses=_addresses(policy_sec, "operator_addresses", DEFAULT_OPERATOR_ADDRESSES),
        operator_name=policy_sec.string("operator_name", "SmartThings LLP"),
        timezone=_timezone(policy_sec),
        deadline_profile=_deadline_profiles(policy_sec),
        calendar=_calendar(policy_sec),
        digest_time=_clock_time(policy_sec, "digest_time", "09:00"),
        expunge_processed_mail=policy_sec.boolean("expunge_processed_mail", True),
        system_name=policy_sec.string("system_name", PolicyConfig.system_name),
        acts_dir=policy_sec.path("acts_dir", "acts"),
        act_retention_days=policy_sec.integer("act_retention_days", 1096, minimum=1),
    )
    limit = erasure_limit_days(policy.deadline_profile)
    if limit is not None and policy.erasure_delay_days > limit:
        named = ", ".join(policy.deadline_profile)
        raise ConfigError(f"[policy] erasure_delay_days: {policy.erasure_delay_days} is more than the {limit} "
                          f"calendar days the law allows after a withdrawal (profile {named})")

    trust_sec = section("trust") or _Section("trust", {}, base_dir)
    authserv_id = trust_sec.string("authserv_id", None)
    trust = TrustConfig(
        authserv_id=authserv_id.strip().lower() if authserv_id and authserv_id.strip() else None,
        verification=trust_sec.choice("verification", ("auto", "always", "never"), "auto"),  # type: ignore[arg-type]
        confirm_expiry_days=trust_sec.integer("confirm_expiry_days", 7, minimum=1),
        max_replies_per_sender_per_day=trust_sec.integer("max_replies_per_sender_per_day", 10, minimum=1),
        own_received_lines=trust_sec.integer("own_received_lines", 0),
    )

    daemon_sec = section("daemon") or _Section("daemon", {}, base_dir)
    daemon = DaemonConfig(
        idle=daemon_sec.boolean("idle", True),
        # IDLE is renewed every interval: well inside RFC 2177's 29 minutes and NAT timeouts.
        poll_interval_seconds=daemon_sec.integer("poll_interval_seconds", 60, minimum=1),
        metrics_listen=_listen(daemon_sec, "metrics_listen", None),
    )
    if daemon.poll_interval_seconds > 25 * 60:
        raise ConfigError("[daemon] poll_interval_seconds: at most 1500 (IDLE must be renewed within 29 minutes)")

    limits_sec = section("limits") or _Section("limits", {}, base_dir)
    limits = LimitsConfig(
        max_message_bytes=limits_sec.integer("max_message_bytes", 10 * 1024 * 1024, minimum=4096),
        fetch_batch_size=limits_sec.integer("fetch_batch_size", 200, minimum=1),
    )

    secrets_sec = section("secrets") or _Section("secrets", {}, base_dir)
    key_file = secrets_sec.path("key_file", "dsr-mailbot.key")
    secret_key = _secret_key(secrets_sec)

    classify_sec = section("classify") or _Section("classify", {}, base_dir)
    extra_markers: tuple[Marker, ...] = ()
    if "extra_markers_file" in classify_sec.table:
        markers_path = classify_sec.path("extra_markers_file")
        try:
            extra_markers = parse_markers(markers_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"[classify] extra_markers_file: cannot read {markers_path} ({exc.strerror})") from exc
        except (MarkerError, UnicodeDecodeError) as exc:
            raise ConfigError(f"[classify] extra_markers_file: {markers_path}: {exc}") from exc
    classify_sec.used.add("extra_markers_file")

    templates_sec = section("templates") or _Section("templates", {}, base_dir)
    templates_dir = templates_sec.path("directory") if "directory" in templates_sec.table else None
    templates_sec.used.add("directory")

    web_sec = section("web")
    web = _web(web_sec) if web_sec is not None else WebConfig()

    for sec in sections:
        sec.finish()

    return Config(
        path=path,
        imap=imap,
        maildir=maildir,
        smtp=smtp,
        file_delivery=file_delivery,
        database_url=database_url,
        database_busy_timeout_ms=busy_timeout_ms,
        policy=policy,
        trust=trust,
        daemon=daemon,
        limits=limits,
        key_file=key_file,
        templates_dir=templates_dir,
        extra_markers=extra_markers,
        secret_key=secret_key,
        web=web,
    )


ARGON2_PREFIX = "$argon2id$"  # what `dsr-mailbot web hash-password` prints


def _listen(sec: _Section, key: str, default: str | None) -> tuple[str, int] | None:
    listen = sec.string(key, default)
    if listen is None:
        return None
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"[{sec.name}] {key}: expected host:port, like \"127.0.0.1:8080\", got {listen!r}")
    return host.strip("[]"), int(port)


def _web(sec: _Section) -> WebConfig:
    listen = _listen(sec, "listen", "127.0.0.1:8080")
    assert listen is not None
    host, port = listen
    sec.used.add("operators")
    entries = sec.table.get("operators", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError("[[web.operators]]: expected tables with login, password_hash and language")
    operators: list[WebOperator] = []
    for number, entry in enumerate(entries, start=1):
        where = _Section(f"web.operators #{number}", entry, sec.base_dir)
        login = where.string("login")
        password_hash = where.string("password_hash")
        _check_password_hash(login, password_hash)
        language = where.choice("language", LANGUAGES, "ru")
        where.finish()
        if any(o.login == login for o in operators):
            raise ConfigError(f"[[web.operators]] {login}: listed twice")
        operators.append(WebOperator(login, password_hash, language))
    if len({_argon2_cost(o.password_hash) for o in operators}) > 1:
        # An unknown login is checked against a dummy hash of the same cost; with two costs, the time of a
        # refusal would tell which logins exist.
        raise ConfigError("[[web.operators]]: every password_hash must use the same Argon2 parameters; "
                          "make them all with 'dsr-mailbot web hash-password'")
    default_hosts = tuple(dict.fromkeys((host.lower(), "127.0.0.1", "localhost", "::1")))
    hosts = sec.string_list("allowed_hosts", default_hosts)
    return WebConfig(host, port, tuple(operators), tuple(h.strip().lower() for h in hosts))


# RFC 9106 §4: the second recommended option (64 MiB, 3 passes) or the first (2 GiB, 1 pass); weaker is refused.
MIN_MEMORY_KIB, MIN_PASSES, FIRST_OPTION_MEMORY_KIB = 64 * 1024, 3, 2 * 1024 * 1024


def _argon2_cost(password_hash: str) -> tuple[int, int, int]:
    from argon2 import extract_parameters

    parameters = extract_parameters(password_hash)
    return parameters.time_cost, parameters.memory_cost, parameters.parallelism


def _check_password_hash(login: str, password_hash: str) -> None:
    """Argon2id, at least as strong as RFC 9106 recommends; the message never echoes the hash."""
    from argon2 import Type, extract_parameters
    from argon2.exceptions import InvalidHashError

    try:
        parameters = extract_parameters(password_hash) if password_hash.startswith(ARGON2_PREFIX) else None
    except (InvalidHashError, ValueError):
        parameters = None
    if parameters is None or parameters.type is not Type.ID:
        raise ConfigError(f"[[web.operators]] {login}: password_hash is not an Argon2id hash; "
                          "make one with 'dsr-mailbot web hash-password'")
    strong = (parameters.memory_cost >= MIN_MEMORY_KIB and parameters.time_cost >= MIN_PASSES) or \
        parameters.memory_cost >= FIRST_OPTION_MEMORY_KIB
    if not strong:
        raise ConfigError(f"[[web.operators]] {login}: password_hash is too cheap to guess against "
                          f"(m={parameters.memory_cost} KiB, t={parameters.time_cost}); RFC 9106 asks for at least "
                          "m=65536 and t=3, or m=2097152; make one with 'dsr-mailbot web hash-password'")


def _imap(sec: _Section) -> ImapConfig:
    security, port = _security_port(sec, 993, 143)
    password = sec.secret("password", required=True)
    assert password is not None
    return ImapConfig(
        host=sec.string("host"),
        port=port,
        security=security,
        username=sec.string("username"),
        password=password,
        folder=sec.string("folder", "INBOX"),
        processed_folder=sec.string("processed_folder", "DSR-Processed"),
        timeout_seconds=sec.integer("timeout_seconds", 60, minimum=1),
    )


def _smtp(sec: _Section) -> SmtpConfig:
    security, port = _security_port(sec, 465, 587)
    username = sec.string("username", None)
    password = sec.secret("password", required=username is not None)
    return SmtpConfig(
        host=sec.string("host"),
        port=port,
        security=security,
        from_address=sec.string("from_address"),
        username=username,
        password=password,
        timeout_seconds=sec.integer("timeout_seconds", 30, minimum=1),
        max_per_minute=sec.integer("max_per_minute", 60, minimum=1),
    )


def _secret_key(sec: _Section) -> str | None:
    """The key inline (``key``) or from the environment (``key_env``); else the key file is used."""
    given = [k for k in ("key", "key_env") if k in sec.table]
    sec.used.update(("key", "key_env"))
    if len(given) > 1:
        raise ConfigError("[secrets] key: give only one of key, key_env")
    if not given:
        return None
    value = sec.table[given[0]]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[secrets] {given[0]}: expected a non-empty string")
    if given[0] == "key_env":
        if value not in os.environ:
            raise ConfigError(f"[secrets] key_env: environment variable {value} is not set")
        value = os.environ[value]
    try:
        if len(bytes.fromhex(value.strip())) < 16:
            raise ValueError
    except ValueError as exc:
        raise ConfigError(f"[secrets] {given[0]}: expected at least 32 hex digits") from exc
    return value.strip()


def _timezone(sec: _Section) -> str:
    name = sec.string("timezone", "Asia/Almaty")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"[policy] timezone: unknown time zone {name!r}") from exc
    return name


def _deadline_profiles(section: _Section) -> tuple[str, ...]:
    raw = section.table.get("deadline_profile", list(DEFAULT_PROFILES))
    section.used.add("deadline_profile")
    names = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list) else ()
    known = sorted(profiles())
    if not names or not all(isinstance(n, str) and n in known for n in names):
        raise ConfigError(f"[policy] deadline_profile: expected one or a list of {', '.join(known)}, got {raw!r}")
    return names


def _clock_time(section: _Section, key: str, default: str) -> tuple[int, int]:
    value = section.string(key, default)
    hour, _, minute = value.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
        raise ConfigError(f"[{section.name}] {key}: expected a time like \"09:00\", got {value!r}")
    return int(hour), int(minute)


def _calendar(section: _Section) -> str:
    country = section.string("calendar", DEFAULT_CALENDAR).upper()
    # The default needs no look-up (tests/intents/test_deadlines.py checks it), which spares every run the
    # holidays package's registry (a twentieth of a cron run with nothing to do).
    if country != DEFAULT_CALENDAR and not supported_calendar(country):
        raise ConfigError(f"[policy] calendar: {country!r} is not a country code the holidays package knows")
    return country


def _addresses(section: _Section, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses in the normal form the bot compares senders in (see addresses.py)."""
    found: list[str] = []
    for value in section.string_list(key, default):
        address = normalise_address(value.strip())
        if address is None:
            raise ConfigError(f"[{section.name}] {key}: {value!r} is not an e-mail address")
        found.append(address)
    return tuple(found)


def _anchor_sqlite_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to the config file, not to the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base_dir / url[len(prefix):])
    return url
