"""Acts of destruction (RKN Order 179): one file per erasure, kept apart from the store.

At the moment a person's data are destroyed the bot writes an act: the
operator (name, BIN, address) and the person responsible for the processing,
the subject's full name (the Order requires it), the categories held and
destroyed, every information system and table with what was done there, the
reason with the request's reference, the date and the method, how many of
the person's ordinary messages were left in the inbox (not the bot's to
touch; the operator decides), and the people who sign it, each with a
signature line.  It holds no e-mail address and no phone number.

Each version written (made, rewritten after a crash, updated when the notice
is sent) goes into the audit trail as the SHA-256 of its file
(``act_written``), so an act later changed by hand no longer matches.

Acts live in ``[policy] acts_dir``, one JSON file per act, mode 0600, so that
the store itself keeps no trace of the name; each is written atomically
(a temporary file, then a rename), and writing the same act again replaces
it, so an erasure interrupted after its act and before its commit writes the
same act when it runs again.  An act is deleted ``act_retention_days``
after it was made (three years by default).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from dsr_mailbot.errors import ConfigError
from dsr_mailbot.store.audit import record_event

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
class ActSigner:
    name: str
    position: str


@dataclass(frozen=True)
class ActOperator:
    """Who made the act (RKN Order 179): the operator, the person responsible, and those who sign it."""

    name: str = ""
    address: str = ""
    bin: str = ""
    responsible_name: str = ""
    responsible_email: str = ""
    signers: tuple[ActSigner, ...] = ()


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
    operator: ActOperator = ActOperator()  # acts made before issue 20 have none
    # Random: the act's SHA-256 in the audit trail cannot be recomputed from a guessed name and the trail's facts.
    nonce: str = ""

    def as_json(self) -> dict[str, object]:
        return asdict(self)  # tuples become JSON lists

    def as_text(self, language: str = "en") -> str:
        return "\n".join(self.lines(language)) + "\n"

    def lines(self, language: str = "en") -> list[str]:
        """The act as printed, its labels in ``language`` (ru for the regulator, en), its values as recorded."""
        t = ACT_LABELS[language]
        request = t["request"].format(id=self.request_id, at=self.request_received_at) \
            if self.request_id is not None else ""
        notice = f" ({self.notice_at})" if self.notice_at else ""
        return [
            t["title"].format(id=self.act_id),
            f"{t['made']}: {self.made_at}",
            *self._operator_lines(t),
            f"{t['system']}: {self.system_name}",
            f"{t['subject']}: {self.subject_full_name}",
            f"{t['categories']}: {', '.join(self.categories)}",
            f"{t['reason']}: {self.reason}{request}",
            f"{t['method']}: {self.method}",
            f"{t['expunged']}: {self.processed_messages_expunged}",
            f"{t['left']}: {self.ordinary_messages_left_in_inbox}",
            f"{t['notice']}: {self.notice}{notice}",
            *self._systems_lines(t),
            f"{t['audit']}: {self.subject_ref}",
            *self._signature_lines(t),
        ]

    def _operator_lines(self, t: dict[str, str]) -> list[str]:
        who = self.operator
        if not who.name:
            return []
        identity = who.name + (f", {t['bin']} {who.bin}" if who.bin else "")
        lines = [f"{t['operator']}: {identity}; {t['address']}: {who.address or t['no_address']}"]
        if who.responsible_name:
            lines.append(f"{t['responsible']}: {who.responsible_name}, {who.responsible_email}")
        return lines

    def _signature_lines(self, t: dict[str, str]) -> list[str]:
        if not self.operator.signers:
            return []
        return ["", t["signed"], *(f"  {s.position}, {s.name}: ______________________ ({t['signature']})   "
                                   f"{t['date']} ____________" for s in self.operator.signers)]

    def _systems_lines(self, t: dict[str, str]) -> list[str]:
        lines: list[str] = []
        for system in self.systems:
            lines.append(t["system_part"].format(name=system.name, outcome=system.outcome, deleted=system.deleted,
                                                 updated=system.updated))
            for table in system.tables:
                cleared = t["cleared"].format(columns=", ".join(table.cleared)) if table.cleared else ""
                lines.append(t["table_part"].format(table=table.table, deleted=table.deleted, updated=table.updated)
                             + cleared)
        return lines


# The act's labels: Russian for the regulator (RKN Order 179), English as before; values are as recorded.
ACT_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "ACT OF DESTRUCTION OF PERSONAL DATA No. {id}", "made": "Made",
        "operator": "Operator", "bin": "BIN", "address": "address",
        "no_address": "(not set in [policy] operator_address)",
        "responsible": "Responsible for the processing of personal data",
        "system": "Information system", "subject": "Data subject",
        "categories": "Categories of personal data destroyed", "reason": "Reason",
        "request": " (request #{id} received {at})", "method": "Method",
        "expunged": "Request messages expunged from the processed folder",
        "left": "Ordinary messages of the subject left in the inbox",
        "notice": "Notice of destruction to the subject", "audit": "Audit reference",
        "system_part": "System: {name}: {outcome}; rows deleted {deleted}, rows with columns cleared {updated}",
        "table_part": "  table {table}: rows deleted {deleted}, rows updated {updated}",
        "cleared": " (columns cleared: {columns})",
        "signed": "Destruction carried out and the act signed by:", "signature": "signature", "date": "date",
    },
    "ru": {
        "title": "АКТ ОБ УНИЧТОЖЕНИИ ПЕРСОНАЛЬНЫХ ДАННЫХ № {id}", "made": "Составлен",
        "operator": "Оператор", "bin": "БИН", "address": "адрес",
        "no_address": "(не указан в [policy] operator_address)",
        "responsible": "Ответственный за организацию обработки персональных данных",
        "system": "Информационная система", "subject": "Субъект персональных данных",
        "categories": "Категории уничтоженных персональных данных", "reason": "Основание уничтожения",
        "request": " (обращение № {id} получено {at})", "method": "Способ уничтожения",
        "expunged": "Писем-обращений удалено из папки обработанных",
        "left": "Прочих писем субъекта оставлено во входящих",
        "notice": "Уведомление субъекта об уничтожении", "audit": "Ссылка в журнале событий",
        "system_part": "Система: {name}: {outcome}; удалено строк {deleted}, строк с очищенными столбцами {updated}",
        "table_part": "  таблица {table}: удалено строк {deleted}, изменено строк {updated}",
        "cleared": " (очищены столбцы: {columns})",
        "signed": "Уничтожение произвели и акт подписали:", "signature": "подпись", "date": "дата",
    },
}


def act_from_json(data: dict[str, Any]) -> Act:
    """An act as written by :func:`write_act` (older acts have no systems)."""
    fields = dict(data)
    fields["categories"] = tuple(data["categories"])
    operator = data.get("operator") or {}
    fields["operator"] = ActOperator(**{**operator, "signers": tuple(ActSigner(**s)
                                                                    for s in operator.get("signers", ()))})
    fields["systems"] = tuple(
        ActSystem(s["name"], s["outcome"], s.get("deleted", 0), s.get("updated", 0),
                  tuple(ActTable(t["table"], t.get("deleted", 0), t.get("updated", 0), tuple(t.get("cleared", ())))
                        for t in s.get("tables", ())))
        for s in data.get("systems", ()))
    return Act(**fields)


def _path(directory: Path, act_id: str) -> Path:
    return directory / f"{ACT_PREFIX}{act_id}.json"


def act_bytes(act: Act) -> bytes:
    """The act's file, byte for byte: what its SHA-256 in the audit trail covers."""
    return json.dumps(act.as_json(), ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def keep_act(session: Session, directory: Path, act: Act, why: str) -> str:
    """Write the act and record its SHA-256 in the audit trail with the transaction (``why``: made, rewritten,
    systems, notice); return the hash."""
    if not act.nonce:
        act = replace(act, nonce=secrets.token_hex(16))
    data = act_bytes(act)
    _write_file(directory, act.act_id, data)
    digest = hashlib.sha256(data).hexdigest()  # of the very bytes written
    record_event(session, "act_written", request_id=act.request_id, subject_ref=act.subject_ref, act=act.act_id,
                 sha256=digest, version=why)
    return digest


def write_act(directory: Path, act: Act) -> Path:
    """Write (or replace) the act atomically, readable by the bot's user only."""
    return _write_file(directory, act.act_id, act_bytes(act))


def _write_file(directory: Path, act_id: str, data: bytes) -> Path:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = _path(directory, act_id)
        tmp = directory / f".{path.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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


def record_notice(session: Session, directory: Path, act_id: str, notice: str, at: datetime) -> None:
    """Say in the act what became of the notice of destruction (sent, or dropped when it could not be)."""
    act = read_act(directory, act_id)
    if act is not None:
        keep_act(session, directory, replace(act, notice=notice, notice_at=at.isoformat()), "notice")


def delete_expired_acts(directory: Path, now: datetime, retention_days: int) -> int:
    """Delete the acts older than their retention; how many went."""
    deleted = 0
    for act in list_acts(directory):
        if datetime.fromisoformat(act.made_at) + timedelta(days=retention_days) <= now:
            _path(directory, act.act_id).unlink(missing_ok=True)
            deleted += 1
    return deleted
