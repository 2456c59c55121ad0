"""Acts of destruction (RKN Order 179): one file per erasure, kept apart from the store.

At the moment a person's data are destroyed the bot writes an act: the
subject's full name (the Order requires it), the categories destroyed, the
information system, the reason with the request's reference, the date and
the method, and how many of the person's ordinary messages were left in the
inbox (not the bot's to touch; the operator decides).  It holds no e-mail
address and no phone number.

Acts live in ``[policy] acts_dir``, one JSON file per act, mode 0600, so that
the store itself keeps no trace of the name; each is written atomically
(a temporary file, then a rename), and writing the same act again replaces
it, so an erasure interrupted after its act and before its commit writes the
same act when it runs again.  An act is deleted ``act_retention_days``
after it was made (three years by default).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dsr_mailbot.errors import ConfigError

ACT_PREFIX = "act-"


@dataclass(frozen=True)
class ActTable:
    """What an erasure did in one table of a system: rows deleted, or rows kept with these columns overwritten."""

    table: str
    deleted: int = 0
    updated: int = 0
    cleared: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActSystem:
    """One system of the data map in the act: what its erasure did, from the counts recorded when it ran."""

    name: str
    outcome: str  # done | failed (refused, or not reachable within its give_up_after_hours)
    deleted: int = 0
    updated: int = 0
    tables: tuple[ActTable, ...] = ()


@dataclass(frozen=True)
class Act:
    act_id: str  # the withdrawal request's number, or u<user id> when none is left
    made_at: str  # ISO 8601, UTC
    system_name: str
    subject_full_name: str
    subject_ref: str  # the keyed hash the audit trail uses: links the act to its events, names no one
    categories: tuple[str, ...]
    reason: str
    request_id: int | None
    request_received_at: str | None
    method: str
    processed_messages_expunged: int
    ordinary_messages_left_in_inbox: int
    notice: str  # queued | sent | dropped | none
    notice_at: str | None = None
    # The data map's other systems (the shop's databases, a mailing tool): each one's part of the erasure.
    systems: tuple[ActSystem, ...] = ()

    def as_json(self) -> dict[str, object]:
        return asdict(self)  # tuples become JSON lists

    def as_text(self) -> str:
        lines = [
            f"ACT OF DESTRUCTION OF PERSONAL DATA No. {self.act_id}",
            f"Made: {self.made_at}",
            f"Information system: {self.system_name}",
            f"Data subject: {self.subject_full_name}",
            f"Categories of personal data destroyed: {', '.join(self.categories)}",
            f"Reason: {self.reason}" + (f" (request #{self.request_id} received {self.request_received_at})"
                                        if self.request_id is not None else ""),
            f"Method: {self.method}",
            f"Request messages expunged from the processed folder: {self.processed_messages_expunged}",
            f"Ordinary messages of the subject left in the inbox: {self.ordinary_messages_left_in_inbox}",
            f"Notice of destruction to the subject: {self.notice}" + (f" ({self.notice_at})" if self.notice_at else ""),
            *self._systems_lines(),
            f"Audit reference: {self.subject_ref}",
        ]
        return "\n".join(lines) + "\n"


    def _systems_lines(self) -> list[str]:
        lines: list[str] = []
        for system in self.systems:
            lines.append(f"System: {system.name}: {system.outcome}; rows deleted {system.deleted}, "
                         f"rows with columns cleared {system.updated}")
            for table in system.tables:
                cleared = f" (columns cleared: {', '.join(table.cleared)})" if table.cleared else ""
                lines.append(f"  table {table.table}: rows deleted {table.deleted}, rows updated {table.updated}"
                             + cleared)
        return lines


def act_from_json(data: dict[str, Any]) -> Act:
    """An act as written by :func:`write_act` (older acts have no systems)."""
    fields = dict(data)
    fields["categories"] = tuple(data["categories"])
    fields["systems"] = tuple(
        ActSystem(s["name"], s["outcome"], s.get("deleted", 0), s.get("updated", 0),
                  tuple(ActTable(t["table"], t.get("deleted", 0), t.get("updated", 0), tuple(t.get("cleared", ())))
                        for t in s.get("tables", ())))
        for s in data.get("systems", ()))
    return Act(**fields)


def _path(directory: Path, act_id: str) -> Path:
    return directory / f"{ACT_PREFIX}{act_id}.json"


def write_act(directory: Path, act: Act) -> Path:
    """Write (or replace) the act atomically, readable by the bot's user only."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = _path(directory, act.act_id)
        tmp = directory / f".{path.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(act.as_json(), handle, ensure_ascii=False, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o600)  # whatever the umask made of it
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"[policy] acts_dir: cannot write acts to {directory} ({exc.strerror})") from exc
    return path


def read_act(directory: Path, act_id: str) -> Act | None:
    try:
        data = json.loads(_path(directory, act_id).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return act_from_json(data)


def list_acts(directory: Path) -> list[Act]:
    if not directory.is_dir():
        return []
    acts = [read_act(directory, p.name[len(ACT_PREFIX):-len(".json")])
            for p in sorted(directory.glob(f"{ACT_PREFIX}*.json"))]
    return sorted((a for a in acts if a is not None), key=lambda a: a.made_at)


def record_notice(directory: Path, act_id: str, notice: str, at: datetime) -> None:
    """Say in the act what became of the notice of destruction (sent, or dropped when it could not be)."""
    act = read_act(directory, act_id)
    if act is not None:
        write_act(directory, replace(act, notice=notice, notice_at=at.isoformat()))


def delete_expired_acts(directory: Path, now: datetime, retention_days: int) -> int:
    """Delete the acts older than their retention; how many went."""
    deleted = 0
    for act in list_acts(directory):
        if datetime.fromisoformat(act.made_at) + timedelta(days=retention_days) <= now:
            _path(directory, act.act_id).unlink(missing_ok=True)
            deleted += 1
    return deleted
