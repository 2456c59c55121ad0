"""Sending the outbox against a real SMTP server: sent once, deferred and retried, or refused for good."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from dsr_mailbot.config import SmtpConfig
from dsr_mailbot.replies.send import drain_outbox
from dsr_mailbot.replies.transports import FileTransport, SmtpTransport
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import AuditEvent, OutboxMessage, utcnow
from tests.servers import SmtpServer, free_port

MESSAGE = b"From: support@smarthings.kz\r\nTo: a@example.kz\r\nMessage-ID: <dsr.1.reply.x@smarthings.kz>\r\n\r\nhi\r\n"


def queue(store: Store, count: int = 1) -> None:
    with store.transaction() as session:
        for n in range(count):
            session.add(OutboxMessage(purpose="reply", message_id=f"<dsr.{n}.reply.x@smarthings.kz>",
                                      recipient=f"user{n}@example.kz", data=MESSAGE))


def rows(store: Store) -> list[OutboxMessage]:
    with store.transaction() as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[arg-type]


def transport(port: int) -> SmtpTransport:
    return SmtpTransport(SmtpConfig(host="127.0.0.1", port=port, security="none", from_address="support@smarthings.kz"))


def test_queued_replies_are_sent_once_over_one_connection(db_url: str, smtp_server: SmtpServer) -> None:
    store = Store(db_url)
    store.init_schema()
    queue(store, 3)

    result = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")
    again = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")

    assert (result.sent, result.failed, result.unavailable) == (3, 0, None)
    assert again.sent == 0
    assert [m.rcpt_tos for m in smtp_server.messages] == [[f"user{n}@example.kz"] for n in range(3)]
    assert all(m.mail_from == "support@smarthings.kz" and m.data.endswith(b"hi\r\n") for m in smtp_server.messages)
    assert {r.state for r in rows(store)} == {"sent"}
    store.dispose()


def test_a_deferral_keeps_the_reply_queued(db_url: str, smtp_server: SmtpServer) -> None:
    store = Store(db_url)
    store.init_schema()
    queue(store)
    smtp_server.handler.data_reply = "451 4.3.0 try again later"

    result = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")

    [row] = rows(store)
    assert result.unavailable is not None and "451" in result.unavailable
    assert (row.state, row.attempts) == ("queued", 1)
    smtp_server.handler.data_reply = None
    assert drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz").sent == 1
    store.dispose()


def test_a_refused_recipient_is_given_up_and_audited(db_url: str, smtp_server: SmtpServer) -> None:
    store = Store(db_url)
    store.init_schema()
    queue(store, 2)
    smtp_server.handler.rcpt_reply = "550 5.1.1 no such user"

    result = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")

    assert (result.sent, result.failed, result.unavailable) == (0, 2, None)
    assert {r.state for r in rows(store)} == {"failed"}
    with store.transaction() as session:
        events = [e.event for e in session.exec(select(AuditEvent))]
    assert events == ["reply_failed", "reply_failed"]
    store.dispose()


def test_an_unreachable_server_stops_the_drain(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.init_schema()
    queue(store, 2)
    result = drain_outbox(store, transport(free_port()), "support@smarthings.kz")
    assert result.sent == 0 and result.unavailable is not None
    assert [r.attempts for r in rows(store)] == [1, 0]
    store.dispose()


def test_file_transport_writes_one_eml_per_message(tmp_path: Path, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.init_schema()
    queue(store)
    result = drain_outbox(store, FileTransport(tmp_path / "out"), "support@smarthings.kz")
    assert result.sent == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["dsr.1.reply.x@smarthings.kz.eml"]
    store.dispose()


def test_one_recipient_deferred_by_the_server_waits_and_holds_up_no_one_else(db_url: str,
                                                                             smtp_server: SmtpServer) -> None:
    store = Store(db_url)
    store.init_schema()
    queue(store, 3)
    smtp_server.handler.rcpt_replies["user0@example.kz"] = "452 4.2.2 mailbox full"

    result = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")

    assert (result.sent, result.failed, result.unavailable) == (2, 0, None)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["user1@example.kz"], ["user2@example.kz"]]
    first = rows(store)[0]
    assert (first.state, first.attempts, first.last_error) == ("queued", 1, "SMTP recipient deferred (452)")

    del smtp_server.handler.rcpt_replies["user0@example.kz"]  # the mailbox has room again
    assert drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz").sent == 1
    store.dispose()


def test_a_recipient_deferred_for_five_days_is_given_up_and_audited(db_url: str, smtp_server: SmtpServer) -> None:
    store = Store(db_url)
    store.init_schema()
    queue(store, 1)
    with store.transaction() as session:
        [row] = session.exec(select(OutboxMessage)).all()
        row.created_at = utcnow() - timedelta(days=5, minutes=1)
    smtp_server.handler.rcpt_replies["user0@example.kz"] = "452 4.2.2 mailbox full"

    result = drain_outbox(store, transport(smtp_server.port), "support@smarthings.kz")

    [row] = rows(store)
    assert (result.failed, row.state, row.last_error) == (
        1, "failed", "SMTP recipient deferred (452), for 5 days: given up")
    with store.transaction() as session:
        assert [e.event for e in session.exec(select(AuditEvent))] == ["reply_failed"]
    store.dispose()
