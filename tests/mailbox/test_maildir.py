"""The Maildir adapter: stable UIDs, untouched non-requests, Maildir++ archive folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsr_mailbot.config import MaildirConfig
from dsr_mailbot.errors import SourceError
from dsr_mailbot.mailbox.maildir import MaildirSource, ensure_maildir
from tests.harness import mail


def deliver(root: Path, name: str, data: bytes, when: int, sub: str = "new") -> Path:
    path = root / sub / name
    path.write_bytes(data)
    os.utime(path, (when, when))
    return path


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "support"
    ensure_maildir(root)
    return root


def test_uids_follow_arrival_and_survive_reopening(maildir: Path) -> None:
    deliver(maildir, "b.host", mail("a@example.kz", "second"), 2000)
    deliver(maildir, "a.host:2,S", mail("a@example.kz", "first"), 1000, sub="cur")
    first = MaildirSource(MaildirConfig(path=maildir))
    validity = first.open()
    assert [r.header.split(b"Subject: ")[1][:6] for b in first.scan(0, 10) for r in b] == [b"first\r", b"second"]

    deliver(maildir, "c.host", mail("a@example.kz", "third"), 3000)
    again = MaildirSource(MaildirConfig(path=maildir))
    assert again.open() == validity
    assert [r.uid for b in again.scan(2, 10) for r in b] == [3]


def test_archive_moves_the_request_and_nothing_else(maildir: Path) -> None:
    other = deliver(maildir, "other.host", mail("a@example.kz", "question"), 1000)
    request = deliver(maildir, "req.host", mail("a@example.kz", "Unsubscribe"), 2000)
    before = other.read_bytes(), other.stat().st_mtime
    source = MaildirSource(MaildirConfig(path=maildir, processed_folder="Done"))
    source.open()

    source.archive([2])
    source.archive([2])

    assert not request.exists()
    assert (maildir / ".Done" / "cur" / "req.host:2,").exists()
    assert (other.read_bytes(), other.stat().st_mtime) == before and other.parent.name == "new"


def test_fetch_caps_the_size(maildir: Path) -> None:
    data = mail("a@example.kz", "big", "x" * 10_000)
    deliver(maildir, "big.host", data, 1000)
    source = MaildirSource(MaildirConfig(path=maildir))
    source.open()
    fetched = source.fetch(1, 4096)
    assert fetched is not None and fetched.truncated and fetched.data == data[:4096]
    assert source.fetch(99, 4096) is None


def test_fetch_many_caps_each_and_leaves_out_what_is_gone(maildir: Path) -> None:
    small, big = mail("a@example.kz", "small"), mail("b@example.kz", "big", "x" * 10_000)
    deliver(maildir, "small.host", small, 1000)
    deliver(maildir, "big.host", big, 1001)
    source = MaildirSource(MaildirConfig(path=maildir))
    source.open()
    fetched = source.fetch_many([1, 2, 99], 4096)
    assert sorted(fetched) == [1, 2]
    assert (fetched[1].data, fetched[1].truncated) == (small, False)
    assert (fetched[2].data, fetched[2].truncated) == (big[:4096], True)


def test_complete_records_are_the_scan_s_records_and_leave_out_what_is_gone(maildir: Path) -> None:
    deliver(maildir, "one.host", mail("a@example.kz", "one"), 1000)
    source = MaildirSource(MaildirConfig(path=maildir))
    source.open()
    [[scanned]] = list(source.scan(0, 10, ("SUBJECT",)))  # a local file: the whole record costs no more
    assert scanned.complete and source.complete_records([1, 99]) == {1: scanned}


def test_not_a_maildir_or_a_damaged_uid_list_is_an_error(tmp_path: Path, maildir: Path) -> None:
    with pytest.raises(SourceError, match="not a Maildir"):
        MaildirSource(MaildirConfig(path=tmp_path / "nothing")).open()
    (maildir / "dsr-mailbot-uidlist").write_text("{broken", encoding="utf-8")
    with pytest.raises(SourceError, match="damaged"):
        MaildirSource(MaildirConfig(path=maildir)).open()
