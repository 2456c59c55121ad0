"""Dates and times as a person reads them: in ``[policy] timezone``, the zone named (pure).

The console, the CLI's tables and the demo show every moment so; JSON and
JSONL outputs keep their stable ISO 8601 form with its offset.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def shown_time(moment: datetime | str | None, zone: str, *, with_time: bool = True) -> str:
    """``2026-12-06 19:43 Asia/Almaty`` (``with_time=False``: the local date alone); an ISO text is read first."""
    if moment is None or moment == "":
        return "—"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    local = when.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {zone}" if with_time else f"{local:%Y-%m-%d}"
