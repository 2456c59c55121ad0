"""The IMAP adapter against a real Dovecot: reading never changes a message; only archive moves one."""

from __future__ import annotations

from typing import Any

import pytest

from dsr_mailbot.config import ImapConfig
from dsr_mailbot.mailbox.imap import ImapSource
from tests.harness import mail, message_id_of
from tests.servers import ImapAccount


def source_for(account: ImapAccount, processed: str = "Done") -> ImapSource:
    return ImapSource(ImapConfig(host=account.host, port=account.port, security="none",
                                 username=account.username, password=account.password, processed_folder=processed))


def test_scan_reads_headers_in_batches_without_setting_any_flag(imap_account: ImapAccount) -> None:
    for n in range(5):
        imap_account.append(mail("a@example.kz", f"message {n}", "body " * 50))
    before = imap_account.snapshot()
    source = source_for(imap_account)
    uidvalidity = source.open()

    batches = list(source.scan(0, batch_size=2))

    source.close()
    assert uidvalidity == imap_account.uidvalidity()
    assert [len(b) for b in batches] == [2, 2, 1]
    records = [r for b in batches for r in b]
    assert [r.uid for r in records] == sorted(before)
    assert all(r.header.startswith(b"From:") and b"body body" not in r.header for r in records)
    assert all(r.size > 250 and r.internaldate is not None for r in records)
    assert imap_account.snapshot() == before


def test_scan_for_fields_fetches_only_those_and_the_complete_record_on_demand(imap_account: ImapAccount) -> None:
    data = mail("a@example.kz", "Unsubscribe", "body", headers={"In-Reply-To": "<x@shop.kz>", "X-Other": "no"})
    uid = imap_account.append(data)
    before = imap_account.snapshot()
    source = source_for(imap_account)
    source.open()

    [[record]] = list(source.scan(0, 10, ("SUBJECT", "IN-REPLY-TO")))
    complete = source.complete_records([uid, uid + 100])

    source.close()
    assert not record.complete
    assert record.header == b"Subject: Unsubscribe\r\nIn-Reply-To: <x@shop.kz>\r\n\r\n"
    assert list(complete) == [uid]  # the one gone is missing
    whole = complete[uid]
    assert whole.complete and whole.size == len(data) and whole.internaldate is not None
    assert whole.header == data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    assert imap_account.snapshot() == before


def test_a_server_refusing_header_fields_gets_whole_blocks(imap_account: ImapAccount,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Dovecot, behind a client that refuses HEADER.FIELDS as some servers do (BAD)."""
    from imapclient.exceptions import IMAPClientError

    for n in range(3):
        imap_account.append(mail("a@example.kz", f"message {n}"))
    source = source_for(imap_account)
    source.open()
    real_fetch = source.client.fetch
    asked: list[str] = []

    def refusing(messages: list[int], data: list[str]) -> Any:
        asked.append(data[0])
        if "HEADER.FIELDS" in data[0]:
            raise IMAPClientError("FETCH command error: BAD [b'Error in IMAP command FETCH']")
        return real_fetch(messages, data)

    monkeypatch.setattr(source.client, "fetch", refusing)
    batches = list(source.scan(0, 2, ("SUBJECT",)))

    source.close()
    records = [r for b in batches for r in b]
    assert len(records) == 3 and all(r.complete and r.header.startswith(b"From:") for r in records)
    assert asked == ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.65536>", "BODY.PEEK[HEADER]", "BODY.PEEK[HEADER]"]


def test_a_scan_with_nothing_new_costs_the_examine_and_no_search(imap_account: ImapAccount,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    last = imap_account.append(mail("a@example.kz", "seen already"))
    source = source_for(imap_account)
    source.open()
    searches: list[object] = []
    real_search = source.client.search

    def counted(*args: Any, **kwargs: Any) -> Any:
        searches.append(args)
        return real_search(*args, **kwargs)

    monkeypatch.setattr(source.client, "search", counted)

    nothing = [r for b in source.scan(last, 10) for r in b]  # the folder's UIDNEXT says there is nothing above
    newer = imap_account.append(mail("b@example.kz", "arrived since the EXAMINE"))
    source.client.noop()  # the session learns of it, as the daemon does in IDLE
    found = [r.uid for b in source.scan(last, 10) for r in b]  # the EXAMINE's UIDNEXT is used once, then searched

    source.close()
    assert nothing == [] and found == [newer] and len(searches) == 1


def test_scan_after_the_last_uid_finds_nothing(imap_account: ImapAccount) -> None:
    last = imap_account.append(mail("a@example.kz", "only one"))
    source = source_for(imap_account)
    source.open()
    assert [r.uid for b in source.scan(last, 10) for r in b] == []
    assert [r.uid for b in source.scan(last - 1, 10) for r in b] == [last]
    source.close()


def test_fetch_is_a_peek_and_is_capped(imap_account: ImapAccount) -> None:
    data = mail("a@example.kz", "big", "x" * 20_000)
    uid = imap_account.append(data)
    source = source_for(imap_account)
    source.open()

    whole = source.fetch(uid, max_bytes=1_000_000)
    part = source.fetch(uid, max_bytes=5_000)
    missing = source.fetch(uid + 100, max_bytes=5_000)

    source.close()
    assert whole is not None and whole.data == data and not whole.truncated
    assert part is not None and part.truncated and part.data == data[:5_000]
    assert missing is None
    [(flags, _body)] = imap_account.snapshot().values()
    assert b"\\Seen" not in flags


def test_fetch_many_takes_a_group_in_one_exchange_each_capped_and_peeked(imap_account: ImapAccount) -> None:
    small, big = mail("a@example.kz", "small"), mail("b@example.kz", "big", "x" * 20_000)
    first, second = imap_account.append(small), imap_account.append(big)
    source = source_for(imap_account)
    source.open()

    fetched = source.fetch_many([first, second, second + 100], max_bytes=5_000)

    source.close()
    assert sorted(fetched) == [first, second]  # the one that is gone is missing, not an error
    assert fetched[first].data == small and not fetched[first].truncated
    assert fetched[second].data == big[:5_000] and fetched[second].truncated
    assert all(b"\\Seen" not in flags for flags, _body in imap_account.snapshot().values())


@pytest.mark.parametrize("has_move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_archive_moves_only_the_given_messages(imap_account: ImapAccount, has_move: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    keep = imap_account.append(mail("a@example.kz", "keep"), flags=(b"\\Deleted",))
    move = imap_account.append(mail("b@example.kz", "move"))
    source = source_for(imap_account)
    source.open()
    if not has_move:
        real = source.client.has_capability

        def without_move(name: Any) -> bool:
            return False if str(name).upper() == "MOVE" else bool(real(name))

        monkeypatch.setattr(source.client, "has_capability", without_move)

    source.archive([move])
    source.archive([move])  # again, as after a crash before the move was recorded: a no-op

    source.close()
    assert list(imap_account.snapshot("INBOX")) == [keep]  # someone else's \Deleted mail survives
    [(flags, body)] = imap_account.snapshot("Done").values()
    assert b"\\Deleted" not in flags and b"Subject: move" in body
    assert "Done" in imap_account.folders()


def test_find_by_message_id(imap_account: ImapAccount) -> None:
    data = mail("a@example.kz", "x")
    uid = imap_account.append(data)
    imap_account.append(mail("a@example.kz", "y"))
    source = source_for(imap_account)
    source.open()
    assert source.find_by_message_id(message_id_of(data)) == [uid]
    assert source.find_by_message_id("<nothing@here>") == []
    source.close()
