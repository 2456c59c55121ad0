"""The extract from the event log that RKN Order 179 requires beside each act of destruction.

The Order asks the extract for a) the subject's full name, b) the
categories destroyed, c) the information system, d) the reason and e) the
date.  The first four come from the act (the store keeps no name); the
extract adds every event of the person's from the audit trail, found by the
keyed reference the act carries (the event's own, or its request's), with
each event's chain hash so it can be checked against ``audit verify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, and_, col, or_, select

from dsr_mailbot.store.acts import Act
from dsr_mailbot.store.models import AuditEvent, Request

MAX_EVENTS = 100_000  # one person's events; far beyond any real history, so an extract is never cut short silently


@dataclass(frozen=True)
class ExtractEvent:
    id: int
    at: str  # ISO 8601, UTC
    event: str
    actor: str
    request_id: int | None
    detail: dict[str, Any]
    chain_hash: str | None


@dataclass(frozen=True)
class LogExtract:
    act: Act
    events: tuple[ExtractEvent, ...]

    @property
    def systems(self) -> tuple[str, ...]:
        """Every information system the data were destroyed in, as the act names them."""
        names = [s.name for s in self.act.systems]
        if self.act.system_name != ", ".join(names):  # the bot's own store took part, under its own name
            names.insert(0, self.act.system_name)
        return tuple(dict.fromkeys(names))

    def as_json(self) -> dict[str, object]:
        act = self.act
        return {
            "act_id": act.act_id, "subject_full_name": act.subject_full_name, "categories": list(act.categories),
            "information_systems": list(self.systems), "reason": act.reason, "destroyed_at": act.made_at,
            "operator": act.as_json()["operator"], "subject_ref": act.subject_ref,
            "events": [vars(e) for e in self.events],
        }

    def lines(self, language: str = "en") -> list[str]:
        t = EXTRACT_LABELS[language]
        act = self.act
        lines = [t["title"].format(id=act.act_id), "",
                 f"a) {t['subject']}: {act.subject_full_name}",
                 f"b) {t['categories']}: {', '.join(act.categories)}",
                 f"c) {t['systems']}: {', '.join(self.systems)}",
                 f"d) {t['reason']}: {act.reason}",
                 f"e) {t['date']}: {act.made_at}", "",
                 f"{t['events']} ({t['ref']} {act.subject_ref}):"]
        for e in self.events:
            request = f" #{e.request_id}" if e.request_id is not None else ""
            detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else ""
            chained = (e.chain_hash or "-")[:16]
            lines.append(f"  {e.id:>6}  {e.at}  {e.event}{request}  {e.actor}  {detail}  [{chained}]")
        return lines


EXTRACT_LABELS = {
    "en": {"title": "EXTRACT FROM THE EVENT LOG OF THE INFORMATION SYSTEM, to act of destruction No. {id}",
           "subject": "Data subject", "categories": "Categories of personal data destroyed",
           "systems": "Information systems", "reason": "Reason for destruction", "date": "Date of destruction",
           "events": "Events", "ref": "audit reference"},
    "ru": {"title": "ВЫПИСКА ИЗ ЖУРНАЛА РЕГИСТРАЦИИ СОБЫТИЙ В ИНФОРМАЦИОННОЙ СИСТЕМЕ к акту об уничтожении № {id}",
           "subject": "ФИО субъекта персональных данных", "categories": "Категории уничтоженных персональных данных",
           "systems": "Информационные системы", "reason": "Причина уничтожения", "date": "Дата уничтожения",
           "events": "События", "ref": "ссылка в журнале"},
}


def load_extract(session: Session, act: Act) -> LogExtract:
    """The act's extract: every event of its person's, oldest first."""
    ref = act.subject_ref
    rows = session.exec(
        select(AuditEvent).join(Request, col(Request.id) == col(AuditEvent.request_id), isouter=True)
        .where(or_(col(AuditEvent.subject_ref) == ref,
                   and_(col(AuditEvent.subject_ref).is_(None), col(Request.subject_ref) == ref)))
        .order_by(col(AuditEvent.id)).limit(MAX_EVENTS)).all()
    return LogExtract(act, tuple(ExtractEvent(e.id or 0, e.at.isoformat(), e.event, e.actor, e.request_id,
                                              dict(e.detail), e.chain_hash) for e in rows))
