"""What a daemon knows about its servers and passes, and the verdict ``/healthz`` gives (pure, but the board's lock).

The daemon keeps a :class:`HealthBoard`: each server's last success and
failure, the last pass and how long its scan took, reconnects of the
mailbox watcher, outages by server.  It serves the board itself on
``[daemon] metrics_listen`` and writes it to ``worker_status`` so that the
console, another process, can report it too (:class:`StatusRecord`, JSON).

:func:`judge` turns a record, the database's own answer and the outbox
depth into the ``/healthz`` answer: healthy when the database answers, a
daemon reported lately, its last pass is recent and none of its servers is
down.  No personal data: server names, times and counts only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from dsr_mailbot.store.models import utcnow

# The servers a daemon talks to, by the names the outages log uses, and by the names /healthz reports.
SERVER_KEYS: Mapping[str, str] = {"mailbox": "imap", "SMTP server": "smtp", "database": "database"}


@dataclass(frozen=True)
class ServerHealth:
    last_success: datetime | None = None
    last_failure: datetime | None = None
    down_since: datetime | None = None  # set while the server is failing

    @property
    def state(self) -> str:
        if self.down_since is not None:
            return "down"
        return "up" if self.last_success is not None else "unknown"


@dataclass(frozen=True)
class StatusRecord:
    """One worker's view, as ``/healthz`` and ``/metrics`` report it."""

    started_at: datetime
    updated_at: datetime
    poll_interval_seconds: int
    servers: Mapping[str, ServerHealth] = field(default_factory=dict)
    last_pass_at: datetime | None = None
    last_pass_seconds: float | None = None
    last_scan_seconds: float | None = None
    passes: int = 0
    idle_reconnects: int = 0
    outages: Mapping[str, int] = field(default_factory=dict)  # outages begun, by server

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {k: plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusRecord:
        def when(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return cls(
            started_at=when(data.get("started_at")) or utcnow(),
            updated_at=when(data.get("updated_at")) or utcnow(),
            poll_interval_seconds=int(data.get("poll_interval_seconds", 60)),
            servers={name: ServerHealth(when(s.get("last_success")), when(s.get("last_failure")),
                                        when(s.get("down_since")))
                     for name, s in dict(data.get("servers", {})).items()},
            last_pass_at=when(data.get("last_pass_at")),
            last_pass_seconds=data.get("last_pass_seconds"),
            last_scan_seconds=data.get("last_scan_seconds"),
            passes=int(data.get("passes", 0)),
            idle_reconnects=int(data.get("idle_reconnects", 0)),
            outages={k: int(v) for k, v in dict(data.get("outages", {})).items()},
        )


class HealthBoard:
    """The daemon's record, updated by its threads (the watcher, the scheduler's jobs).

    ``on_change`` is called (outside the board's lock) when a server goes down or comes up: the daemon
    writes its record at once then, so that another process sees an outage when it begins.
    """

    def __init__(self, poll_interval_seconds: int, server_keys: Mapping[str, str] = SERVER_KEYS,
                 on_change: Callable[[], None] | None = None) -> None:
        now = utcnow()
        self._on_change = on_change
        self._keys = dict(server_keys)
        self._lock = threading.Lock()
        self._record = StatusRecord(started_at=now, updated_at=now, poll_interval_seconds=poll_interval_seconds,
                                    servers={key: ServerHealth() for key in self._keys.values()})

    def _key(self, server: str) -> str | None:
        return self._keys.get(server)

    def failed(self, server: str) -> None:
        key = self._key(server)
        if key is None:
            return  # "worker": a bug, not a server; the log says so
        now = utcnow()
        with self._lock:
            old = self._record.servers.get(key, ServerHealth())
            began = old.down_since is None
            servers = {**self._record.servers, key: replace(old, last_failure=now, down_since=old.down_since or now)}
            outages = {**self._record.outages, key: self._record.outages.get(key, 0) + 1} if began \
                else self._record.outages
            self._record = replace(self._record, servers=servers, outages=outages, updated_at=now)
        if began and self._on_change is not None:
            self._on_change()

    def succeeded(self, server: str) -> None:
        key = self._key(server)
        if key is None:
            return
        now = utcnow()
        with self._lock:
            old = self._record.servers.get(key, ServerHealth())
            servers = {**self._record.servers, key: replace(old, last_success=now, down_since=None)}
            self._record = replace(self._record, servers=servers, updated_at=now)
        if old.state != "up" and self._on_change is not None:
            self._on_change()

    def pass_done(self, pass_seconds: float, scan_seconds: float) -> None:
        now = utcnow()
        with self._lock:
            self._record = replace(self._record, last_pass_at=now, last_pass_seconds=round(pass_seconds, 4),
                                   last_scan_seconds=round(scan_seconds, 4), passes=self._record.passes + 1,
                                   updated_at=now)

    def reconnected(self) -> None:
        with self._lock:
            self._record = replace(self._record, idle_reconnects=self._record.idle_reconnects + 1,
                                   updated_at=utcnow())

    def snapshot(self) -> StatusRecord:
        with self._lock:
            return replace(self._record, updated_at=utcnow())


def watching(records: list[StatusRecord]) -> StatusRecord | None:
    """The record that speaks for the mailbox: the worker with the latest pass (others only send), else the newest."""
    passed = [r for r in records if r.last_pass_at is not None]
    if passed:
        return max(passed, key=lambda r: r.last_pass_at or r.updated_at)
    return max(records, key=lambda r: r.updated_at, default=None)


# The verdict


@dataclass(frozen=True)
class Health:
    healthy: bool
    problems: tuple[str, ...]  # why not, in words for an operator (no personal data)
    body: Mapping[str, Any]


def stale_after(record: StatusRecord) -> timedelta:
    """A pass or a report older than this means the daemon is stuck or gone: three intervals and a minute."""
    return timedelta(seconds=3 * record.poll_interval_seconds + 60)


def judge(record: StatusRecord | None, now: datetime, database_error: str | None, outbox_depth: int | None) -> Health:
    problems: list[str] = []
    if database_error is not None:
        problems.append(f"database: {database_error}")
    if record is None:
        problems.append("no daemon has reported")
    else:
        limit = stale_after(record)
        if now - record.updated_at > limit:
            problems.append("the daemon has not reported lately")
        if record.last_pass_at is None:
            if now - record.started_at > limit:
                problems.append("the daemon has made no pass")
        elif now - record.last_pass_at > limit:
            problems.append("the daemon's last pass is old")
        problems += [f"{name}: down" for name, server in record.servers.items() if server.state == "down"]
    servers: dict[str, Any] = {}
    if record is not None:
        servers = {name: {"state": s.state, "last_success": _iso(s.last_success), "last_failure": _iso(s.last_failure),
                          "down_since": _iso(s.down_since)} for name, s in record.servers.items()}
    if database_error is not None:
        servers["database"] = {**servers.get("database", {}), "state": "down"}
    body = {
        "status": "ok" if not problems else "failing",
        "problems": problems,
        "servers": servers,
        "last_pass_at": _iso(record.last_pass_at) if record else None,
        "last_pass_seconds": record.last_pass_seconds if record else None,
        "daemon_reported_at": _iso(record.updated_at) if record else None,
        "outbox_depth": outbox_depth,
        "checked_at": now.isoformat(),
    }
    return Health(not problems, tuple(problems), body)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
