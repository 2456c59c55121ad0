"""A local Maildir as the watched mailbox (the demo; also MTAs that deliver to disk).

Maildir has no UIDs, so this adapter keeps them the way Dovecot does: a
small list file in the Maildir's root (``dsr-mailbot-uidlist``) maps each
message's unique file-name base to a UID, assigned in order of arrival and
never reused; its UIDVALIDITY is fixed when the list is first created.
The messages themselves are only opened for reading: a non-request message
is never renamed (not even from ``new/`` to ``cur/``), so its flags stay as
they were.  Request messages are moved into the Maildir++ subfolder
``.<processed_folder>``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from threading import Event

from dsr_mailbot.config import MaildirConfig
from dsr_mailbot.errors import SourceError, SourceUnavailable
from dsr_mailbot.mailbox.source import FetchedMessage, HeaderRecord
from dsr_mailbot.reading.parse import Headers, header_block, parse_headers

UIDLIST_NAME = "dsr-mailbot-uidlist"
_HEADER_LIMIT = 1024 * 1024


def _key(filename: str) -> str:
    return filename.split(":", 1)[0]


def ensure_maildir(path: Path) -> None:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)


def _headers_at(path: Path) -> Headers | None:
    """The parsed header block of the message in this file; None when it is gone (another client moved it)."""
    try:
        with path.open("rb") as handle:
            return parse_headers(handle.read(_HEADER_LIMIT))
    except FileNotFoundError:
        return None


class MaildirSource:
    def __init__(self, config: MaildirConfig) -> None:
        self.config = config
        self.root = config.path
        self.uidvalidity = 0
        self.next_uid = 1
        self.uids: dict[str, int] = {}
        self.paths: dict[int, Path] = {}

    def open(self) -> int:
        if not (self.root / "cur").is_dir() or not (self.root / "new").is_dir():
            raise SourceError(f"Maildir {self.root}: not a Maildir (no cur/ and new/)")
        list_path = self.root / UIDLIST_NAME
        try:
            state = json.loads(list_path.read_text(encoding="utf-8"))
            self.uidvalidity = int(state["uidvalidity"])
            self.next_uid = int(state["next_uid"])
            self.uids = {str(k): int(v) for k, v in state["uids"].items()}
        except FileNotFoundError:
            self.uidvalidity = int(time.time())
            self.next_uid, self.uids = 1, {}
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"Maildir {self.root}: {UIDLIST_NAME} is damaged") from exc
        except OSError as exc:
            raise SourceUnavailable(f"Maildir {self.root}: {exc.strerror}") from exc
        self._refresh()
        return self.uidvalidity

    def _refresh(self) -> None:
        found: list[tuple[float, str, Path]] = []
        for sub in ("new", "cur"):
            try:
                entries = list(os.scandir(self.root / sub))
            except OSError as exc:
                raise SourceUnavailable(f"Maildir {self.root}: {exc.strerror}") from exc
            for entry in entries:
                if entry.is_file() and not entry.name.startswith("."):
                    found.append((entry.stat().st_mtime, entry.name, Path(entry.path)))
        changed = False
        self.paths = {}
        for _mtime, name, path in sorted(found):
            key = _key(name)
            if key not in self.uids:
                self.uids[key] = self.next_uid
                self.next_uid += 1
                changed = True
            self.paths[self.uids[key]] = path
        if changed or not (self.root / UIDLIST_NAME).exists():
            self._save()

    def _save(self) -> None:
        state = {"uidvalidity": self.uidvalidity, "next_uid": self.next_uid, "uids": self.uids}
        tmp = self.root / f".{UIDLIST_NAME}.tmp"
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self.root / UIDLIST_NAME)

    def scan(self, after_uid: int, batch_size: int,
             fields: Sequence[str] = ()) -> Iterator[list[HeaderRecord]]:
        # Local files: reading the whole header block costs no more than picking fields out of it.
        self._refresh()  # pick up what was delivered since the last scan
        uids = sorted(uid for uid in self.paths if uid > after_uid)
        for start in range(0, len(uids), batch_size):
            found = (self._record(uid) for uid in uids[start : start + batch_size])
            yield [record for record in found if record is not None]

    def complete_records(self, uids: Sequence[int]) -> dict[int, HeaderRecord]:
        found = {uid: self._record(uid) for uid in uids}
        return {uid: record for uid, record in found.items() if record is not None}

    def _record(self, uid: int) -> HeaderRecord | None:
        path = self.paths.get(uid)
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                header = header_block(handle.read(_HEADER_LIMIT))
            stat = path.stat()
        except FileNotFoundError:
            return None
        return HeaderRecord(uid=uid, header=header, size=stat.st_size,
                            internaldate=datetime.fromtimestamp(stat.st_mtime, UTC))

    def search_text(self, uids: Sequence[int], stems: Sequence[str]) -> set[int] | None:
        return None  # no server to search: the pass reads each new message's first 64 KB of text

    def fetch(self, uid: int, max_bytes: int) -> FetchedMessage | None:
        path = self.paths.get(uid)
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except FileNotFoundError:
            return None
        return FetchedMessage(uid=uid, data=data[:max_bytes], truncated=len(data) > max_bytes)

    def fetch_many(self, uids: Sequence[int], max_bytes: int) -> dict[int, FetchedMessage]:
        found = {uid: self.fetch(uid, max_bytes) for uid in uids}
        return {uid: message for uid, message in found.items() if message is not None}

    def archive(self, uids: Sequence[int]) -> None:
        folder = self.root / f".{self.config.processed_folder}"
        ensure_maildir(folder)
        (folder / "maildirfolder").touch()
        for uid in uids:
            path = self.paths.get(uid)
            if path is None or not path.exists():
                continue
            name = path.name if ":" in path.name else f"{path.name}:2,"
            path.replace(folder / "cur" / name)
            del self.paths[uid]

    def find_by_message_id(self, message_id: str) -> list[int]:
        return sorted(uid for uid, path in self.paths.items()
                      if (headers := _headers_at(path)) is not None and headers.message_id == message_id)

    def expunge_processed(self, message_ids: Sequence[str]) -> int:
        wanted = {mid for mid in message_ids if mid}
        folder = self.root / f".{self.config.processed_folder}"
        removed = 0
        for sub in ("cur", "new"):
            if not wanted or not (folder / sub).is_dir():
                continue
            for path in sorted((folder / sub).iterdir()):
                headers = _headers_at(path)
                if headers is None or headers.message_id not in wanted:
                    continue
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue  # gone meanwhile: not ours to count
                removed += 1
        return removed

    def count_from(self, address: str) -> int:
        return sum(1 for path in list(self.paths.values())
                   if (headers := _headers_at(path)) is not None and headers.sender == address)

    def wait_for_change(self, timeout: float, stop: Event, use_idle: bool = True) -> None:
        """Watch the mtimes of new/ and cur/ (a delivery renames a file into new/)."""
        def stamp() -> tuple[float, float]:
            try:
                return (self.root / "new").stat().st_mtime, (self.root / "cur").stat().st_mtime
            except OSError:
                return (0.0, 0.0)

        before, deadline = stamp(), time.monotonic() + timeout
        while not stop.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
            if stamp() != before or time.monotonic() >= deadline:
                return

    def close(self) -> None:
        self.paths = {}

