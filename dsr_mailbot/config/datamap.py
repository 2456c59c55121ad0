"""``[[systems]]``: the data map, every place where the person's data live, and what each intent does there.

Without ``[[systems]]`` the bot's own store is the one system (``kind =
"builtin"``).  With it, exactly the listed systems are used:

- ``builtin``: the bot's own ``users`` table;
- ``sql``: the operator's existing tables (PostgreSQL, MySQL/MariaDB, SQLite),
  each found by its ``match`` column (the person's e-mail) or ``via`` a
  reference to a table that is (``"USER_ID -> b_user.ID"``; references chain);
- ``http``: an API that takes signed JSON POSTs (see ``systems/http.py``).

Only the shape is checked here; the tables and columns themselves are
checked against the database by reflection (``systems check``, and before a
run's first action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dsr_mailbot.config.fields import (
    Bool,
    DatabaseUrl,
    Filled,
    KeyProblem,
    Positive,
    Section,
    Str,
    resolve_secret,
)

# The bot's fields, as a table's `fields` maps them to columns.
BotField = Literal["email", "phone", "surname", "first_name", "patronymic", "marketing_consent",
                   "processing_consent"]
BOT_FIELDS: tuple[str, ...] = BotField.__args__  # type: ignore[attr-defined]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,63}")
_VIA = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_$]*)\s*->\s*([A-Za-z_][A-Za-z0-9_$]*)\.([A-Za-z_][A-Za-z0-9_$]*)\s*")


def _identifier(value: str) -> str:
    """A table or column name as SQL knows it unquoted: no injection through the data map."""
    if not _IDENTIFIER.fullmatch(value):
        raise KeyProblem(None, f"{value!r} is not a table or column name (letters, digits, _ and $)")
    return value


@dataclass(frozen=True)
class Reference:
    """``via = "USER_ID -> b_user.ID"``: this table's USER_ID holds b_user's ID."""

    column: str
    table: str
    target: str


class TableMap(Section):
    table: Filled
    match: Filled | None = None
    via: Filled | None = None
    fields: dict[BotField, Filled] = Field(default_factory=dict)
    access: dict[Str, Filled] = Field(default_factory=dict)
    erase: Any = None  # "delete", or a table of column = text, integer or true/false (checked below)

    @field_validator("table", "match")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return _identifier(value) if value is not None else None

    @field_validator("fields")
    @classmethod
    def _field_columns(cls, mapping: dict[str, str]) -> dict[str, str]:
        for column in mapping.values():
            _identifier(column)
        return mapping

    @field_validator("access")
    @classmethod
    def _access_columns(cls, mapping: dict[str, str]) -> dict[str, str]:
        for column in mapping:
            _identifier(column)
        return mapping

    @field_validator("erase")
    @classmethod
    def _erase_columns(cls, erase: object) -> str | dict[str, str | int | bool] | None:
        """``"delete"``, or columns to overwrite with text, an integer or true/false (TOML has no null)."""
        if erase is None or erase == "delete":
            return erase
        if not isinstance(erase, dict) or not erase or not all(
                isinstance(v, str | int) and not isinstance(v, float) for v in erase.values()):
            raise KeyProblem(None, 'expected "delete", or a table of column = text, integer or true/false')
        for column in erase:
            _identifier(column)
        return erase

    @field_validator("via")
    @classmethod
    def _reference(cls, via: str | None) -> str | None:
        if via is not None and not _VIA.fullmatch(via):
            raise KeyProblem(None, f'expected "COLUMN -> table.COLUMN", got {via!r}')
        return via

    @model_validator(mode="after")
    def _found_one_way(self) -> TableMap:
        if (self.match is None) == (self.via is None):
            raise KeyProblem("match", "give match (the column of the e-mail) or via (a reference), one of them")
        return self

    @property
    def reference(self) -> Reference | None:
        found = _VIA.fullmatch(self.via) if self.via is not None else None
        return Reference(*found.groups()) if found else None


class _System(Section):
    name: Filled
    read_only: Bool = False
    # How long a request waits for this system before it goes to review, naming it.
    give_up_after_hours: Positive = 24


class BuiltinSystem(Section):
    kind: Literal["builtin"]
    name: Filled | None = None  # or [policy] system_name, not both
    give_up_after_hours: Positive = 24


class SqlSystem(_System):
    kind: Literal["sql"]
    url: DatabaseUrl = Field(repr=False)  # a relative SQLite path is relative to the file, as the store's is
    tables: tuple[TableMap, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _url(cls, data: Any, info: ValidationInfo) -> Any:
        return resolve_secret(data, "url", info, required=True)

    @model_validator(mode="after")
    def _references_resolve(self) -> SqlSystem:
        by_name = {t.table: t for t in self.tables}
        if len(by_name) != len(self.tables):
            raise KeyProblem("tables", "a table is listed twice")
        for number, table in enumerate(self.tables, start=1):
            if not self.read_only and table.erase is None:
                raise KeyProblem(f"tables #{number} → erase",
                                 'missing: "delete", or a table of column = value (or read_only = true)')
            seen = {table.table}
            current = table
            while (reference := current.reference) is not None:
                target = by_name.get(reference.table)
                if target is None:
                    raise KeyProblem(f"tables #{number} → via", f"{reference.table} is not a table of this system")
                if target.table in seen:
                    raise KeyProblem(f"tables #{number} → via", "the references go round in a circle")
                seen.add(target.table)
                current = target
        return self


class HttpSystem(_System):
    kind: Literal["http"]
    url: Str = Field(repr=False)
    secret: Str = Field(repr=False)
    # For the whole exchange; at most a minute, well inside the five-minute lease an action is claimed for.
    timeout_seconds: int = Field(default=10, ge=1, le=60, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "secret" in data:
            raise KeyProblem("secret", "give secret_env or secret_file, not the secret itself")
        return resolve_secret(data, "secret", info, required=True)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        """https, or http to this machine only: the body carries the person's address and data."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
            raise KeyProblem(None, "expected an http(s) URL with a host and no user name or password in it")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise KeyProblem(None, "expected an https:// URL (http:// only to 127.0.0.1, localhost or [::1])")
        return url


SystemMap = Annotated[BuiltinSystem | SqlSystem | HttpSystem, Field(discriminator="kind")]
KINDS = ("builtin", "sql", "http")


def check_systems(systems: tuple[BuiltinSystem | SqlSystem | HttpSystem, ...], labels: list[str],
                  store_url: str) -> None:
    """Across the entries: one builtin at most, every name once, and no SQLite system in the store's own file.

    ``labels``: what each system is called (a builtin without a name: ``[policy] system_name``).

    The store records an action's counts while the system's transaction is open: in one SQLite file the two
    would wait for each other's write lock.
    """
    for system in systems:
        if isinstance(system, SqlSystem) and system.url.startswith("sqlite") and system.url == store_url:
            raise KeyProblem(None, f'"{system.name}": url: the bot\'s own store ([database] url); list the '
                                   'builtin system instead, or keep the shop\'s tables in a file of their own')
    if sum(isinstance(s, BuiltinSystem) for s in systems) > 1:
        raise KeyProblem(None, "the builtin system is listed twice")
    for label in labels:
        if labels.count(label) > 1:
            if any(isinstance(s, BuiltinSystem) for s, other in zip(systems, labels, strict=True) if other == label):
                raise KeyProblem(None, f"[[systems]]: {label!r} names two systems (the builtin one is named by "
                                       "its name, else [policy] system_name); give each its own")
            raise KeyProblem(None, f"{label!r} is listed twice")
