"""Where the person's data live: one connector per system of the data map (``[[systems]]``).

- ``protocol``: the interface every connector answers to, and its typed results;
- ``builtin``: the bot's own store;
- ``sql``: the operator's tables, through SQLAlchemy Core;
- ``http``: an API reached by signed JSON POSTs.

:func:`connect` makes the connector of an entry; the dispatch on ``kind`` is
exhaustive (a new kind without a connector fails the type check).
"""

from __future__ import annotations

from typing import assert_never, overload

from dsr_mailbot.config import Config
from dsr_mailbot.config.datamap import BuiltinSystem, HttpSystem, SqlSystem
from dsr_mailbot.systems.builtin import BuiltinConnector
from dsr_mailbot.systems.http import HttpConnector
from dsr_mailbot.systems.sql import SqlConnector

Connection = BuiltinConnector | SqlConnector | HttpConnector


@overload
def connect(config: Config, system: BuiltinSystem) -> BuiltinConnector: ...
@overload
def connect(config: Config, system: SqlSystem) -> SqlConnector: ...
@overload
def connect(config: Config, system: HttpSystem) -> HttpConnector: ...
@overload
def connect(config: Config, system: BuiltinSystem | SqlSystem | HttpSystem) -> Connection: ...


def connect(config: Config, system: BuiltinSystem | SqlSystem | HttpSystem) -> Connection:
    """The connector of one entry of the data map (connections are opened on first use)."""
    if isinstance(system, BuiltinSystem):
        return BuiltinConnector(config.system_label(system), config.open_store())
    if isinstance(system, SqlSystem):
        return SqlConnector(system.name, system.url, system.tables, read_only=system.read_only)
    if isinstance(system, HttpSystem):
        return HttpConnector(system.name, system.url, system.secret, timeout_seconds=system.timeout_seconds,
                             read_only=system.read_only)
    assert_never(system)
