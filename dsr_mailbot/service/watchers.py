"""The daemon's mailbox watchers: one mailbox's passes and waits, and several mailboxes watched at once.

One mailbox ([imap] or [maildir]) is watched by the daemon's own watcher
thread, as always.  With ``[[mailboxes]]`` the worker that holds the run
lock (one lock for them all) starts a thread per mailbox, each with its own
connection, IDLE and backoff.  Their passes take turns (one at a time in the
process): the same letter sent to two of the addresses is then recorded
once, by whichever pass meets it first, and found as a copy by the other.

A mailbox that is down is retried with backoff; one whose login is refused
for good (a revoked OAuth2 consent, a changed password) stops alone: logged,
shown down on the board (``/healthz``, ``/metrics``), and tried again after
:data:`REFUSED_RETRY_SECONDS`.  The daemon exits 78 only when no mailbox can
be used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from threading import Event
from typing import Protocol

from dsr_mailbot.config import Config
from dsr_mailbot.config.mailboxes import Mailbox
from dsr_mailbot.errors import ConfigError, DsrMailbotError, MappingError
from dsr_mailbot.mailbox.source import MailSource
from dsr_mailbot.pipeline import RunReport, Services, process_mailbox
from dsr_mailbot.service.app import open_source
from dsr_mailbot.service.backoff import Backoff, Outages, server_of
from dsr_mailbot.service.health import HealthBoard

log = logging.getLogger("dsr_mailbot")
REFUSED_RETRY_SECONDS = 3600  # a mailbox whose login was refused is tried again at most hourly


class WatcherHost(Protocol):
    """What a watcher needs of the daemon."""

    stop: Event
    wake: Event
    reload_requested: Event
    board: HealthBoard
    outages: Outages

    @property
    def config(self) -> Config: ...

    @property
    def services(self) -> Services: ...

    def send_now(self) -> None: ...

    def save_status(self, at_once: bool = False) -> None: ...

    def die(self, exc: BaseException) -> None: ...


def mailbox_server(config: Config, mailbox: Mailbox) -> str:
    """The mailbox's name in the outages log and on the board: "mailbox", or "mailbox <name>" of several."""
    return "mailbox" if len(config.mailbox_list) == 1 else f"mailbox {mailbox.name}"


def board_servers(config: Config) -> dict[str, str]:
    """The board's servers (log name → the name /healthz and /metrics report)."""
    mailboxes = config.mailbox_list
    watched = ({"mailbox": mailboxes[0].kind} if len(mailboxes) == 1 else
               {f"mailbox {m.name}": f"{m.kind}:{m.name}" for m in mailboxes})
    return {**watched, "SMTP server": "smtp" if config.smtp is not None else "files", "database": "database"}


def run_passes(host: WatcherHost, services: Services, source: MailSource, uidvalidity: int, backoff: Backoff,
               server: str, still_ours: Callable[[], bool], turn: threading.Lock) -> None:
    """Pass, send, wait for a change, again: until stop, a reload, or the mailbox is no longer ours."""
    config = services.config
    while not host.stop.is_set():
        if host.reload_requested.is_set():
            return  # reconnect with the new configuration
        if not still_ours():
            return
        report = RunReport()
        with turn:
            started = time.monotonic()
            process_mailbox(services, source, uidvalidity, report, host.stop)
            scanned = time.monotonic()
            backoff.reset()
            if report.requests:
                host.send_now()
        # The pass first: a recovery below writes the record at once, and it must show this pass.
        host.board.pass_done(time.monotonic() - started, scanned - started)
        host.outages.recovered(server, "database", "worker")
        host.save_status()
        source.wait_for_change(config.daemon.poll_interval_seconds, host.wake, config.daemon.idle)
        if not host.stop.is_set():
            host.wake.clear()


class SeveralMailboxes:
    """The watchers of ``[[mailboxes]]`` while this worker holds the run lock."""

    def __init__(self, host: WatcherHost) -> None:
        self.host = host
        self.holding = Event()  # cleared: every watcher returns (stop, reload, the lock lost)
        self.turn = threading.Lock()  # one pass at a time in the process
        self.refused: dict[str, ConfigError] = {}
        self.refused_lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.holding.set()
        for mailbox in self.host.config.mailbox_list:
            thread = threading.Thread(target=self._watch, args=(mailbox,), name=f"mailbox-{mailbox.name}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def end(self) -> None:
        self.holding.clear()
        self.host.wake.set()  # out of IDLE
        for thread in self.threads:
            thread.join(timeout=15)
        self.threads.clear()
        if not self.host.stop.is_set():
            self.host.wake.clear()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.holding.is_set() and not self.host.stop.is_set() and time.monotonic() < deadline:
            self.host.stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))

    def _watch(self, mailbox: Mailbox) -> None:
        host = self.host
        services = host.services.for_mailbox(mailbox)
        server = mailbox_server(host.config, mailbox)
        backoff = Backoff(cap=max(5.0, float(host.config.daemon.poll_interval_seconds)))
        connected_before = False
        while self.holding.is_set() and not host.stop.is_set():
            source = open_source(services.config)
            try:
                uidvalidity = source.open()
                self._usable_again(mailbox, server)
                if connected_before:
                    host.board.reconnected()
                connected_before = True
                run_passes(host, services, source, uidvalidity, backoff, server, self.holding.is_set, self.turn)
                if host.reload_requested.is_set():
                    return
            except MappingError as exc:  # the data map, not this mailbox: every pass would fail alike
                host.die(exc)
                return
            except ConfigError as exc:
                self._refused(mailbox, server, exc)
                self._wait(REFUSED_RETRY_SECONDS)
            except DsrMailbotError as exc:
                if not exc.temporary:
                    host.die(exc)
                    return
                host.outages.failed(server if server_of(exc) == "mailbox" else server_of(exc), str(exc))
                self._wait(backoff.next_delay())
            except Exception as exc:  # a bug must not kill the watcher; it is retried like an outage
                host.outages.failed("worker", f"{type(exc).__name__} in the watcher of mailbox {mailbox.name}")
                self._wait(backoff.next_delay())
            finally:
                source.close()

    def _refused(self, mailbox: Mailbox, server: str, exc: ConfigError) -> None:
        log.error("mailbox %s stopped: %s; tried again in %s min", mailbox.name, exc, REFUSED_RETRY_SECONDS // 60)
        self.host.outages.failed(server, "login refused")
        with self.refused_lock:
            self.refused[mailbox.name] = exc
            every_one = len(self.refused) == len(self.host.config.mailbox_list)
        if every_one:
            self.host.die(exc)  # no mailbox can be used: exit 78

    def _usable_again(self, mailbox: Mailbox, server: str) -> None:
        with self.refused_lock:
            was_refused = self.refused.pop(mailbox.name, None) is not None
        if was_refused:
            log.warning("mailbox %s: login accepted again", mailbox.name)
        self.host.outages.recovered(server)
