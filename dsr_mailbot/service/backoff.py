"""Waiting between retries, and saying so once per outage.

:class:`Backoff` gives exponentially growing delays with full jitter (AWS's
"exponential backoff and jitter"), so that several workers that lost the same
server do not all come back at the same second.  :class:`Outage` logs one line
when a server stops answering and one when it is back, never one per retry:
a night-long IMAP outage is two lines in the journal, not thousands.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from dsr_mailbot.service.health import HealthBoard

log = logging.getLogger("dsr_mailbot")


@dataclass
class Backoff:
    base: float = 1.0
    cap: float = 60.0
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Outages:
    """Which servers are down, shared by the threads of one process, each outage logged once."""

    since: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    board: HealthBoard | None = None  # told of every failure and success, for /healthz and /metrics

    def failed(self, server: str, reason: str) -> None:
        if self.board is not None:
            self.board.failed(server)
        with self.lock:
            if server in self.since:
                return
            self.since[server] = time.monotonic()
        log.warning("%s down: %s; retrying with backoff", server, reason)

    def recovered(self, *servers: str) -> None:
        for server in servers:
            if self.board is not None:
                self.board.succeeded(server)
            with self.lock:
                started = self.since.pop(server, None)
            if started is not None:
                log.warning("%s back after %.0f s", server, time.monotonic() - started)

    def is_down(self, server: str) -> bool:
        with self.lock:
            return server in self.since


def server_of(exc: BaseException) -> str:
    """Which server a temporary failure is about, for :class:`Outages`."""
    from dsr_mailbot.errors import SendUnavailable, SourceUnavailable, StoreUnavailable

    if isinstance(exc, StoreUnavailable):
        return "database"
    if isinstance(exc, SendUnavailable):
        return "SMTP server"
    if isinstance(exc, SourceUnavailable):
        return "mailbox"
    return "worker"
