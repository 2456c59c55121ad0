"""``dsr-mailbot run``: the always-on worker.

Threads, each owning what it uses (an IMAP connection is never shared,
library-notes 1.5):

- the **mailbox watcher** (its own thread, not a scheduler job: it lives as
  long as the process).  It takes the run lock (:mod:`locks`), connects, and
  loops: one pass over new mail, then the replies it produced are sent at
  once (that is what makes a reply arrive about a second after the request),
  then it waits in IMAP IDLE — renewed every ``poll_interval_seconds``, which
  is also the polling fallback when IDLE is off or not offered.  A lost
  connection is retried with backoff and jitter, logged once when it breaks
  and once when it is back.  Without the lock (another worker on the same
  PostgreSQL or MariaDB store has the mailbox) it keeps trying, and takes over when the
  holder dies.
- **monitoring** (``[daemon] metrics_listen``, off by default): uvicorn in a
  thread serves ``/healthz`` and ``/metrics`` from the daemon's
  :class:`~dsr_mailbot.service.health.HealthBoard`.  The board is also
  written to ``worker_status`` after each pass and outbox run, and at once
  when a server goes down or comes back, so that the console reports the
  daemon from its own process.
- **APScheduler** (3.x, in-memory job store, ``max_instances=1``,
  coalescing) runs the periodic jobs: sending the outbox (every worker; this
  is the retry after an SMTP outage), expiring unconfirmed requests, and
  erasing withdrawn users whose date has come.

Signals: SIGTERM and SIGINT finish the message in hand, commit, close the
connections and exit 0 within seconds; SIGHUP reloads the configuration and
the templates (a broken new configuration is logged and the old one kept).
A permanent error — a refused login, a missing folder that cannot be created,
a configuration error — is logged and the process exits non-zero (78 for
configuration, 1 otherwise) so that systemd notices.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from starlette.applications import Starlette

from dsr_mailbot.config import Config, load_config
from dsr_mailbot.errors import ConfigError, DsrMailbotError
from dsr_mailbot.pipeline import (
    RunReport,
    Services,
    carry_out_actions,
    check_mappings,
    erase_due,
    expire_unconfirmed,
    finish_erasure,
    send_queued,
)
from dsr_mailbot.replies.digest import queue_digest
from dsr_mailbot.service.app import build_services, open_source
from dsr_mailbot.service.backoff import Backoff, Outages, server_of
from dsr_mailbot.service.health import HealthBoard
from dsr_mailbot.service.locks import RunLock, run_lock_for
from dsr_mailbot.service.monitoring import monitoring_routes
from dsr_mailbot.service.watchers import SeveralMailboxes, board_servers, run_passes
from dsr_mailbot.store.figures import save_worker_status
from dsr_mailbot.store.models import utcnow

log = logging.getLogger("dsr_mailbot")
EX_OK, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 0, 70, 75, 78


@dataclass
class Daemon:
    config_path: Path
    services: Services
    stop: threading.Event = field(default_factory=threading.Event)
    reload_requested: threading.Event = field(default_factory=threading.Event)
    # Set by every signal: cuts a wait in IDLE short, whether to stop or to reload.
    wake: threading.Event = field(default_factory=threading.Event)
    fatal: BaseException | None = None
    lock: RunLock | None = None
    scheduler: BackgroundScheduler | None = None
    board: HealthBoard = field(init=False)
    outages: Outages = field(init=False)
    _connected_before: bool = False
    _turn: threading.Lock = field(default_factory=threading.Lock)  # one pass at a time (service/watchers.py)
    _status_saved_at: float = 0.0

    def __post_init__(self) -> None:
        self.board = HealthBoard(self.config.daemon.poll_interval_seconds, board_servers(self.config),
                                 on_change=lambda: self.save_status(at_once=True))
        self.outages = Outages(board=self.board)

    @property
    def config(self) -> Config:
        return self.services.config

    def run(self) -> int:
        self.lock = run_lock_for(self.services.store, self.config.source_name)
        if not self.services.store.serves_many_workers and not self.lock.try_acquire():
            # SQLite serves one process: a second worker could only get in the way.
            log.error("another dsr-mailbot holds the %s; exiting", self.lock.description)
            return EX_TEMPFAIL
        try:  # a wrong data map stops the daemon before it changes anything anywhere
            down = check_mappings(self.services)
        except ConfigError as exc:
            self.lock.release()
            log.error("stopped: configuration: %s", exc)
            return EX_CONFIG
        if down:
            log.warning("systems not reachable at start, checked before their first action: %s",
                        ", ".join(sorted(down)))
        self._install_signals()
        scheduler = self.scheduler = self._scheduler()
        scheduler.start()
        watcher = threading.Thread(target=self._watch, name="mailbox-watcher", daemon=True)
        watcher.start()
        monitor = self._serve_monitoring()
        log.info("dsr-mailbot running (idle=%s, poll every %s s)", self.config.daemon.idle,
                 self.config.daemon.poll_interval_seconds)
        while not self.stop.wait(0.5):
            pass
        log.info("stopping")
        watcher.join(timeout=15)
        scheduler.shutdown(wait=True)
        if monitor is not None:
            monitor.should_exit = True
        self.lock.release()
        self.services.close_connectors()
        self.services.store.dispose()
        if isinstance(self.fatal, ConfigError):
            log.error("stopped: configuration: %s", self.fatal)
            return EX_CONFIG
        if self.fatal is not None:
            log.error("stopped: %s", self.fatal)
            return EX_SOFTWARE
        return EX_OK

    # Signals

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.stop.set()
            self.wake.set()

        def reload(signum: int, _frame: FrameType | None) -> None:
            self.reload_requested.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _reload(self) -> None:
        self.reload_requested.clear()
        try:
            config = load_config(self.config_path)
            services = build_services(config, self.services.store)
            down = check_mappings(services)  # a wrong data map is refused, like a wrong key
        except DsrMailbotError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        services.clock = self.services.clock
        self.services = services
        if down:
            log.warning("systems not reachable at reload, checked before their first action: %s",
                        ", ".join(sorted(down)))
        if (self.scheduler is not None and self.scheduler.get_job("systems") is None
                and config.external_systems):
            # A data map added by the reload: its actions are carried out from now on, without a restart.
            self.scheduler.add_job(self._systems, "interval", seconds=config.daemon.poll_interval_seconds,
                                   id="systems", replace_existing=True)
        log.warning("configuration and templates reloaded")

    # The mailbox watcher

    def _watch(self) -> None:
        backoff = Backoff(cap=max(5.0, float(self.config.daemon.poll_interval_seconds)))
        waiting_for_lock_logged = False
        while not self.stop.is_set():
            if self.reload_requested.is_set():
                self._reload()
            assert self.lock is not None
            try:
                if not self.lock.try_acquire():
                    if not waiting_for_lock_logged:
                        log.info("another worker holds the mailbox (%s); sending replies only",
                                 self.lock.description)
                        waiting_for_lock_logged = True
                    self.stop.wait(self.config.daemon.poll_interval_seconds)
                    continue
                waiting_for_lock_logged = False
                if len(self.config.mailbox_list) == 1:
                    self._watch_mailbox(backoff)
                else:
                    self._watch_several()
            except ConfigError as exc:
                self.die(exc)
                return
            except DsrMailbotError as exc:
                if not exc.temporary:
                    self.die(exc)
                    return
                self.outages.failed(server_of(exc), str(exc))
                self.stop.wait(backoff.next_delay())
            except Exception as exc:  # a bug must not kill the watcher; it is retried like an outage
                self.outages.failed("worker", f"{type(exc).__name__} in the mailbox watcher")
                self.stop.wait(backoff.next_delay())

    def _watch_mailbox(self, backoff: Backoff) -> None:
        services = self.services.for_mailbox(self.config.mailbox_list[0])
        source = open_source(services.config)
        try:
            uidvalidity = source.open()
            if self._connected_before:
                self.board.reconnected()
            self._connected_before = True
            run_passes(self, services, source, uidvalidity, backoff, "mailbox", self._still_held, self._turn)
        finally:
            source.close()

    def _still_held(self) -> bool:
        assert self.lock is not None
        if self.lock.still_held():
            return True
        log.warning("lost the mailbox lock; will try to take it again")
        return False

    def _watch_several(self) -> None:
        """[[mailboxes]]: a watcher thread each while this worker holds the lock (service/watchers.py)."""
        watchers = SeveralMailboxes(self)
        watchers.start()
        try:
            while not self.stop.is_set() and not self.reload_requested.is_set() and self._still_held():
                self.stop.wait(1.0)
        finally:
            watchers.end()

    def die(self, exc: BaseException) -> None:
        self.fatal = exc
        self.stop.set()
        self.wake.set()

    # Scheduled jobs

    def _scheduler(self) -> BackgroundScheduler:
        interval = self.config.daemon.poll_interval_seconds
        scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(30, interval)},
            timezone="UTC",
        )
        scheduler.add_job(self.send_now, "interval", seconds=interval, id="outbox", replace_existing=True)
        scheduler.add_job(self._expire, "interval", seconds=interval, id="expiry", replace_existing=True)
        scheduler.add_job(self._erase, "interval", seconds=max(interval, 300), id="erasure", replace_existing=True)
        if self.config.external_systems:
            scheduler.add_job(self._systems, "interval", seconds=interval, id="systems", replace_existing=True)
        hour, minute = self.config.policy.digest_time
        scheduler.add_job(self._digest, "cron", hour=hour, minute=minute, timezone=self.config.policy.timezone,
                          id="digest", replace_existing=True, misfire_grace_time=3600)
        return scheduler

    def send_now(self) -> None:
        report = RunReport()
        try:
            send_queued(self.services, report, self.stop)
            finish_erasure(self.services)  # a sent notice of destruction was the last copy of an address
        except ConfigError as exc:  # a refused SMTP login: every reply would fail the same way
            self.die(exc)
            return
        except DsrMailbotError as exc:
            self.outages.failed(server_of(exc), str(exc))
            return
        except Exception as exc:  # keep the scheduler alive; the next run retries
            self.outages.failed("worker", f"{type(exc).__name__} while sending")
            return
        if report.temporary_failure:
            self.outages.failed("SMTP server", report.temporary_failure)
        else:
            self.outages.recovered("SMTP server", "database")
        self.save_status()

    # Health and metrics

    def save_status(self, at_once: bool = False) -> None:
        """Write the board to ``worker_status`` for the console (another process); never fails the caller.

        At most once a second after passes and outbox runs (a busy mailbox makes many passes); ``at_once``
        when a server went down or came up (the board calls it so).
        """
        if not at_once and time.monotonic() - self._status_saved_at < 1.0:
            return
        self._status_saved_at = time.monotonic()
        record = self.board.snapshot()
        try:
            with self.services.store.transaction() as session:
                save_worker_status(session, self.worker_name, record.updated_at, record.as_json())
        except Exception as exc:  # the database's outage is on the board already, or will be by the next job
            log.debug("status not saved: %s", type(exc).__name__)

    @property
    def worker_name(self) -> str:
        return f"{socket.gethostname()} {self.config.source_name}"[:200]

    def _serve_monitoring(self) -> uvicorn.Server | None:
        """``/healthz`` and ``/metrics`` from the board itself, on ``[daemon] metrics_listen``, in a thread."""
        listen = self.config.daemon.metrics_listen
        if listen is None:
            return None
        routes = monitoring_routes(self.services.store, lambda: [self.board.snapshot()], utcnow)
        server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), host=listen[0], port=listen[1],
                                               log_level="warning", access_log=False, lifespan="off"))
        threading.Thread(target=server.run, name="monitoring", daemon=True).start()
        log.info("serving /healthz and /metrics on %s:%s", *listen)
        return server

    def _expire(self) -> None:
        self._job(lambda: expire_unconfirmed(self.services, RunReport()))

    def _systems(self) -> None:
        """The data map's due actions; a wrong mapping stops the daemon (exit 78), like a refused login."""
        try:
            carry_out_actions(self.services, RunReport(), self.stop)
        except ConfigError as exc:
            self.die(exc)
            return
        except DsrMailbotError as exc:
            self.outages.failed(server_of(exc), str(exc))
        except Exception as exc:  # keep the scheduler alive; the next run retries
            self.outages.failed("worker", f"{type(exc).__name__} in the systems' actions")

    def _erase(self) -> None:
        def erase() -> None:
            report = RunReport()
            erase_due(self.services, report)
            if report.erased:
                log.info("erased %s user(s) whose erasure date had come", report.erased)

        self._job(erase)

    def _digest(self) -> None:
        def digest() -> None:
            with self.services.store.transaction() as session:
                queued = queue_digest(session, self.config, self.services.keyring, self.services.clock())
            if queued:
                log.info("daily digest queued to %s operator address(es)", queued)
                self.send_now()

        self._job(digest)

    def _job(self, work: Callable[[], None]) -> None:
        try:
            work()
            self.outages.recovered("database")
        except DsrMailbotError as exc:
            self.outages.failed(server_of(exc), str(exc))
        except Exception as exc:  # keep the scheduler alive; the next run retries
            self.outages.failed("worker", f"{type(exc).__name__} in a scheduled job")


def run_daemon(config_path: Path, config: Config) -> int:
    services = build_services(config)
    started = time.monotonic()
    code = Daemon(config_path, services).run()
    log.info("exited with %s after %.0f s", code, time.monotonic() - started)
    return code
