"""What a pass is given (:class:`Services`) and what it reports (:class:`RunReport`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import overload

from dsr_mailbot.config import Config
from dsr_mailbot.config.datamap import HttpSystem, SqlSystem
from dsr_mailbot.config.mailboxes import Mailbox
from dsr_mailbot.lifecycle import (
    Context,
)
from dsr_mailbot.mailbox.source import Expunging
from dsr_mailbot.reading.classify import MarkerTable, shipped_table
from dsr_mailbot.replies.notices import NoticeCheck, NoticeWriter
from dsr_mailbot.replies.render import Renderer
from dsr_mailbot.replies.transports import Transport
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    utcnow,
)
from dsr_mailbot.systems import connect
from dsr_mailbot.systems.http import HttpConnector
from dsr_mailbot.systems.sql import SqlConnector


@dataclass
class Services:
    """Everything a pass needs, passed in (never imported as globals)."""

    config: Config
    store: Store
    keyring: Keyring
    renderer: Renderer
    transport: Transport
    clock: Callable[[], datetime] = utcnow
    markers: MarkerTable = field(default_factory=shipped_table)  # with the operator's extra phrases, if any
    # Opens a connection of its own to every watched mailbox (erasure expunges there), or None for no mailbox.
    mailbox: Callable[[], Expunging] | None = None

    # The data map's connectors, made on first use and kept for the process (their engines pool connections).
    connectors: dict[str, SqlConnector | HttpConnector] = field(default_factory=dict)
    mappings_checked: bool = False  # the SQL systems' tables read and checked once by this process's mailbox pass
    on_scanned: Callable[[int], None] | None = None  # told how many messages each scanned batch held (progress)

    @overload
    def connector(self, system: SqlSystem) -> SqlConnector: ...
    @overload
    def connector(self, system: HttpSystem) -> HttpConnector: ...
    @overload
    def connector(self, system: SqlSystem | HttpSystem) -> SqlConnector | HttpConnector: ...

    def connector(self, system: SqlSystem | HttpSystem) -> SqlConnector | HttpConnector:
        if system.name not in self.connectors:
            self.connectors[system.name] = connect(self.config, system)
        return self.connectors[system.name]

    def close_connectors(self) -> None:
        """Release the systems' connections (a run's end, the daemon's stop)."""
        for connector in self.connectors.values():
            connector.close()
        self.connectors.clear()

    @property
    def notice_check(self) -> NoticeCheck:
        """What decides, just before sending, whether a campaign's notice may still go (the data map too)."""
        return NoticeCheck(self.keyring, people_elsewhere=bool(self.config.external_systems),
                           writer=NoticeWriter(self.config, self.keyring, self.renderer))

    def for_mailbox(self, mailbox: Mailbox) -> Services:
        """These services as one mailbox's pass uses them: the configuration's view of that mailbox (its source
        name, its folders), the rest shared (the store, the systems' connections)."""
        return replace(self, config=self.config.for_mailbox(mailbox))

    def context(self) -> Context:
        return Context(self.config, self.keyring, self.renderer, self.clock())


@dataclass
class RunReport:
    scanned: int = 0
    requests: int = 0
    duplicates: int = 0
    bounces: int = 0
    expired: int = 0
    erased: int = 0
    states: Counter[str] = field(default_factory=Counter)
    request_ids: list[int] = field(default_factory=list)
    archived: int = 0
    replies_sent: int = 0
    replies_failed: int = 0
    actions_done: int = 0  # on the systems of the data map
    actions_failed: int = 0
    released: int = 0  # requests whose systems had all done their part: decided or answered
    erased_in_systems: int = 0  # acts of destruction written for the data map's systems
    temporary_failure: str | None = None
    refused: list[str] = field(default_factory=list)  # mailboxes skipped for a refused login (several only)

    def summary(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.states.items())) or "none"
        text = (
            f"scanned {self.scanned} new message(s); {self.requests} request(s) ({states}); "
            f"{self.duplicates} duplicate(s); {self.archived} archived; "
            f"{self.replies_sent} reply(ies) sent, {self.replies_failed} failed"
        )
        if self.bounces:
            text += f"; {self.bounces} bounce(s) of our replies"
        if self.expired:
            text += f"; {self.expired} expired unconfirmed"
        if self.erased:
            text += f"; {self.erased} user(s) erased"
        if self.actions_done or self.actions_failed:
            text += f"; {self.actions_done} system action(s) done, {self.actions_failed} failed"
        if self.released:
            text += f"; {self.released} request(s) answered after their systems"
        if self.erased_in_systems:
            text += f"; {self.erased_in_systems} erasure(s) in the systems reported"
        if self.temporary_failure:
            text += f"; stopped early: {self.temporary_failure}"
        return text
