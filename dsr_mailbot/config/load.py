"""The whole configuration (:class:`Config`), read from TOML and checked by its models; mistakes named by key.

A mistake stops the bot with :class:`~dsr_mailbot.errors.ConfigError`, whose
message names where it is, e.g. ``[imap] port: expected an integer, got
'abc'``, or in an array of tables ``[[web.operators]] #2 "ivan" → language:
must be one of ru, kk, en``.  Secrets and URLs are never echoed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr, ValidationError, model_validator
from pydantic_core import ErrorDetails

from dsr_mailbot.config.datamap import KINDS, BuiltinSystem, HttpSystem, SqlSystem, SystemMap, check_systems
from dsr_mailbot.config.fields import KeyProblem, Section
from dsr_mailbot.config.mailboxes import (
    DEFAULT_NAME,
    MAILBOX_KINDS,
    Mailbox,
    MailboxEntry,
    check_mailboxes,
    mailbox_of,
)
from dsr_mailbot.config.policy import PolicyConfig
from dsr_mailbot.config.sections import (
    CheckConfig,
    ClassifyConfig,
    DaemonConfig,
    DatabaseConfig,
    FileDeliveryConfig,
    ImapConfig,
    LimitsConfig,
    MaildirConfig,
    SecretsConfig,
    SmtpConfig,
    TemplatesConfig,
    TrustConfig,
)
from dsr_mailbot.config.web import WebConfig
from dsr_mailbot.errors import ConfigError
from dsr_mailbot.reading.classify import Marker

if TYPE_CHECKING:
    from dsr_mailbot.store.database import Store

# Tables that may be left out: each then takes its defaults.
OPTIONAL_TABLES = ("database", "policy", "trust", "daemon", "limits", "secrets", "templates", "classify", "web",
                   "check")


class Config(Section):
    """The whole configuration: the mailboxes (``[imap]``, ``[maildir]`` or ``[[mailboxes]]``), one way to
    deliver replies, and the rest."""

    path: Path  # the file it was read from (not a key of it)
    imap: ImapConfig | None = None  # in a view of one mailbox (:meth:`for_mailbox`), that mailbox's
    maildir: MaildirConfig | None = None
    mailboxes: tuple[MailboxEntry, ...] = ()
    smtp: SmtpConfig | None = None
    file_delivery: FileDeliveryConfig | None = None
    database: DatabaseConfig
    policy: PolicyConfig
    trust: TrustConfig
    daemon: DaemonConfig
    limits: LimitsConfig
    secrets: SecretsConfig
    templates: TemplatesConfig
    classify: ClassifyConfig
    web: WebConfig
    check: CheckConfig
    systems: tuple[SystemMap, ...] = ()
    _viewed: Mailbox | None = PrivateAttr(default=None)  # set in a view of one mailbox (for_mailbox)

    @model_validator(mode="before")
    @classmethod
    def _tables(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "mailboxes" in data and ("imap" in data or "maildir" in data):
            raise KeyProblem(None, "[[mailboxes]] and [imap]/[maildir]: give the mailboxes one way, not both")
        if "mailboxes" not in data and ("imap" in data) == ("maildir" in data):
            raise KeyProblem(None, "[imap] or [maildir]: exactly one mailbox section is required "
                                   "(or [[mailboxes]] for several)")
        if "smtp" in data and "file_delivery" in data:
            raise KeyProblem(None, "[smtp] and [file_delivery]: give only one way to deliver replies")
        filled: dict[str, Any] = {name: {} for name in OPTIONAL_TABLES} | data
        if "smtp" not in data and "file_delivery" not in data:
            filled["file_delivery"] = {"directory": "outbox"}  # replies written as .eml files beside the config
        return filled

    @model_validator(mode="after")
    def _mailboxes_apart(self) -> Config:
        check_mailboxes(self.mailbox_list)
        return self

    @model_validator(mode="after")
    def _one_name_per_system(self) -> Config:
        check_systems(self.systems, [self.system_label(system) for system in self.systems], self.database.url)
        named_builtin = any(isinstance(s, BuiltinSystem) and s.name is not None for s in self.systems)
        if named_builtin and "system_name" in self.policy.model_fields_set:
            raise KeyProblem(None, "[policy] system_name and the builtin entry of [[systems]] both name the "
                                   "built-in system: give its name once")
        return self

    @property
    def data_map(self) -> tuple[SystemMap, ...]:
        """The systems where the person's data live; without ``[[systems]]``, the bot's own store alone."""
        return self.systems or (BuiltinSystem(kind="builtin"),)

    @property
    def external_systems(self) -> tuple[SqlSystem | HttpSystem, ...]:
        """The data map's systems other than the bot's own store: those carried out through actions."""
        return tuple(s for s in self.data_map if isinstance(s, SqlSystem | HttpSystem))

    @property
    def builtin_label(self) -> str | None:
        """What the data map calls the bot's own store, or None when the map does not list it."""
        return next((self.system_label(s) for s in self.data_map if isinstance(s, BuiltinSystem)), None)

    def system_label(self, system: SystemMap) -> str:
        """What acts, access answers and the console call a system."""
        if isinstance(system, BuiltinSystem):
            return system.name or self.policy.system_name
        return system.name

    @property
    def database_url(self) -> str:
        return self.database.url

    @property
    def database_busy_timeout_ms(self) -> int:
        return self.database.busy_timeout_ms

    @property
    def key_file(self) -> Path:
        return self.secrets.key_file

    @property
    def secret_key(self) -> str | None:
        """The key in hex when given inline or by environment; then the key file is not used."""
        return self.secrets.key

    @property
    def templates_dir(self) -> Path | None:
        return self.templates.directory

    @property
    def extra_markers(self) -> tuple[Marker, ...]:
        """Subject markers an operator adds to the shipped ones (``[classify] extra_markers_file``)."""
        return self.classify.markers

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
    def mailbox_list(self) -> tuple[Mailbox, ...]:
        """Every watched mailbox (in a view of one too); ``[imap]`` or ``[maildir]`` is one, named ``default``."""
        if self.mailboxes:
            return tuple(mailbox_of(entry) for entry in self.mailboxes)
        return (Mailbox(DEFAULT_NAME, imap=self.imap, maildir=self.maildir),)

    def for_mailbox(self, mailbox: Mailbox) -> Config:
        """This configuration as one mailbox's pass sees it: ``imap``/``maildir`` and ``source_name`` are that
        mailbox's."""
        view = self.model_copy(update={"imap": mailbox.imap, "maildir": mailbox.maildir})
        view._viewed = mailbox
        return view

    @property
    def source_name(self) -> str:
        """The key of the watched mailbox's cursor in the store (in a view of one mailbox, that one's); with
        several, a name of them all, which the run lock takes."""
        if self._viewed is not None:
            return self._viewed.source_name
        names = [mailbox.source_name for mailbox in self.mailbox_list]
        return names[0] if len(names) == 1 else "mailboxes " + " ".join(sorted(names))

    @property
    def mailbox_name(self) -> str:
        """The viewed mailbox's name (``default`` for [imap] or [maildir])."""
        return (self._viewed or self.mailbox_list[0]).name

    def reply_from_for(self, source: str | None) -> str:
        """The From of replies to a request that arrived at ``source``: its mailbox's address, else the default."""
        for mailbox in self.mailbox_list:
            if mailbox.source_name == source and mailbox.reply_from:
                return mailbox.reply_from
        return self.reply_from


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
    known = set(Config.model_fields) - {"path"}
    for name, value in data.items():
        if name not in known:
            raise ConfigError(f"[{name}]: unknown section")
        if not isinstance(value, dict) and not (isinstance(value, list) and value and
                                                all(isinstance(item, dict) for item in value)):
            raise ConfigError(f"[{name}]: expected a table")
    base_dir = path.resolve().parent
    try:
        return Config.model_validate({**data, "path": path}, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(describe(exc.errors()[0], data)) from None


# Keys whose values are never repeated in a message: they may hold a secret.
_SECRET_WORDS = ("password", "secret", "key", "url", "hash", "token")


def describe(error: ErrorDetails, data: Mapping[str, Any]) -> str:
    """One validation error as the operator reads it: where, then what is wrong."""
    loc = list(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyProblem):
        if cause.key is not None:
            loc.append(cause.key)
        where = _where(loc, data)
        return f"{where}: {cause.message}" if where else cause.message
    return f"{_where(loc, data)}: {_what(error, loc)}"


def _where(loc: Sequence[str | int], data: Mapping[str, Any]) -> str:
    """``[imap] port``; ``[[systems]] #2 "Shop" → tables #1 → match``; ``[[web.operators]] #1 "ivan" → login``."""
    if not loc:
        return ""
    first_index = next((i for i, part in enumerate(loc) if isinstance(part, int)), None)
    if first_index is None:
        # The table as the file writes it: [imap.oauth2] token_endpoint, not [imap] oauth2.token_endpoint.
        depth, table = 1, data.get(str(loc[0]))
        while depth < len(loc) - 1 and isinstance(table, Mapping) and isinstance(table.get(str(loc[depth])), Mapping):
            table, depth = table[str(loc[depth])], depth + 1
        head = "[" + ".".join(str(part) for part in loc[:depth]) + "]"
        rest = [str(part) for part in loc[depth:]]
        return f"{head} {'.'.join(rest)}" if rest else head
    table = ".".join(str(part) for part in loc[:first_index])
    number = int(loc[first_index])
    entry: Any = data
    for part in loc[:first_index + 1]:
        entry = entry.get(part) if isinstance(entry, Mapping) else entry[part] \
            if isinstance(entry, list) and isinstance(part, int) and part < len(entry) else None
    label = entry.get("name") or entry.get("login") if isinstance(entry, Mapping) else None
    parts = [f"[[{table}]] #{number + 1}" + (f' "{label}"' if isinstance(label, str) else "")]
    for position, part in enumerate(loc[first_index + 1:]):
        if position == 0 and part in (*KINDS, *MAILBOX_KINDS) and isinstance(entry, Mapping) \
                and entry.get("kind") == part:
            continue  # the tag pydantic adds for a union told apart by `kind`
        if part == "[key]":
            continue
        if isinstance(part, int):
            parts[-1] += f" #{part + 1}"
        else:
            parts.append(str(part))
    return " → ".join(parts)


def _what(error: ErrorDetails, loc: Sequence[str | int]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    key = str(loc[-1]) if loc else ""
    shown = "" if any(word in key for word in _SECRET_WORDS) else f", got {error.get('input')!r}"
    if kind == "missing":
        return "missing (required)"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer{shown}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false{shown}"
    if kind == "string_type":
        return f"expected a string{shown}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected a table"
    if kind in ("list_type", "tuple_type"):
        return "expected a list"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "kind: missing, or not one of builtin, sql, http"
    if kind == "literal_error":
        options = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {options}{shown}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}{shown}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}{shown}"
    return str(error["msg"])
