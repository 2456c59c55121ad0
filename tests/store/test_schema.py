"""Schema migrations: the first release's store, with its data, upgrades to exactly the models; outdated is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, select

from dsr_mailbot.errors import ConfigError
from dsr_mailbot.store import schema
from dsr_mailbot.store.audit import chain_head, chained_events, record_event
from dsr_mailbot.store.chain import verify
from dsr_mailbot.store.database import Store, make_engine
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import AuditEvent, MailboxCursor, OutboxMessage, Request, User
from tests.harness import Bot, mail

KEYS = Keyring(b"k" * 32)
WHEN = "2026-11-20 10:00:00"


def first_release_store(url: str) -> None:
    """A store as the first release left it: its tables (migration 0001), its data, no alembic_version."""
    engine = make_engine(url)
    with engine.begin() as connection:
        config = schema._config(connection, KEYS)
        command.upgrade(config, schema.FIRST_RELEASE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(text(
            "INSERT INTO users (id, email, phone, surname, processing_consent, marketing_consent, created_at,"
            f" updated_at) VALUES (1, 'ivan@example.ru', '+77011112233', 'Петров', true, true, '{WHEN}', '{WHEN}')"))
        connection.execute(text(
            "INSERT INTO requests (id, message_id, source, uidvalidity, uid, kind, state, language, received_at,"
            " due_at, user_id, subject_ref, reply_address, subject, intent, authenticated, attempts) VALUES"
            f" (1, '<ivan.petrov.1@example.ru>', 'imap', 7, 3, 'update', 'awaiting_confirmation', 'ru', '{WHEN}',"
            f" '{WHEN}', 1, 'ref', 'ivan@example.ru', 'Обновление персональных данных', '{{}}', false, 1)"))
        connection.execute(text(
            "INSERT INTO outbox (id, request_id, purpose, message_id, recipient, data, state, attempts, created_at)"
            f" VALUES (1, 1, 'challenge_o', '<dsr.1.challenge_o.x@smarthings.kz>', 'ivan@example.ru', :data,"
            f" 'sent', 1, '{WHEN}')"), {"data": b"From: x\r\n\r\nbody"})
        connection.execute(text(
            f"INSERT INTO mailbox_cursors (source, uidvalidity, last_uid, updated_at) VALUES ('imap', 7, 3, '{WHEN}')"))
        connection.execute(text(
            f"INSERT INTO audit_events (at, request_id, subject_ref, event, actor, detail) VALUES ('{WHEN}', 1, 'ref',"
            " 'request_received', 'bot', '{}')"))
    engine.dispose()


def test_the_head_the_bot_checks_against_is_the_newest_migration() -> None:
    assert schema.migrations_head() == schema.HEAD == schema.head_revision()


def test_the_migrations_reach_exactly_the_schema_the_models_describe(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(schema._config(connection, KEYS), "head")
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_a_first_release_store_keeps_its_data_through_the_upgrade(db_url: str) -> None:
    first_release_store(db_url)
    store = Store(db_url)
    with pytest.raises(ConfigError, match="db upgrade"):
        store.check_schema()

    assert store.init_schema(KEYS) == schema.head_revision()

    store.check_schema()
    with store.transaction() as session:
        user = session.exec(select(User)).one()
        request = session.exec(select(Request)).one()
        outbox = session.exec(select(OutboxMessage)).one()
        cursor = session.exec(select(MailboxCursor)).one()
        event = session.exec(select(AuditEvent)).one()
    assert (user.email, user.phone, user.surname) == ("ivan@example.ru", "+77011112233", "Петров")
    assert request.message_id == "<ivan.petrov.1@example.ru>"
    assert request.message_ref == KEYS.message_ref("<ivan.petrov.1@example.ru>")  # the dedup key, made here
    assert (request.state, request.reply_address, request.thread) == ("awaiting_confirmation", "ivan@example.ru", None)
    assert (request.kind, request.intents) == ("update", ["update"])  # one intent each before 0003
    assert request.received_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert (outbox.data, outbox.for_verified) == (b"From: x\r\n\r\nbody", False)
    assert (cursor.uidvalidity, cursor.last_uid) == (7, 3) and event.event == "request_received"
    assert "subject" not in {c["name"] for c in inspect(store.engine).get_columns("requests")}
    # The events written before the chain start it (0008), and the chain goes on from them.
    with store.transaction() as session:
        record_event(session, "request_completed", request_id=1, subject_ref="ref")
    with store.transaction() as session:
        last_id, head = chain_head(session)
        events = list(chained_events(session, 0, last_id))
    assert [e.id for e in events] == [event.id, last_id] and event.chain_hash is not None
    assert verify(events, head) is None
    assert store.init_schema(KEYS) == schema.head_revision()  # again: nothing to do
    store.dispose()


def test_the_data_migration_refuses_to_guess_without_the_key(sqlite_url: str) -> None:
    first_release_store(sqlite_url)
    with pytest.raises(RuntimeError, match="db upgrade"):
        Store(sqlite_url).init_schema(None)


def test_run_on_an_outdated_schema_exits_78_and_says_to_upgrade(bot: Bot, tmp_path: object) -> None:
    url = f"sqlite:///{bot.dir / 'old.db'}"
    first_release_store(url)
    bot.db_url = url
    bot.write_config()
    bot.account.append(mail("ivan@example.ru", "Unsubscribe"))

    refused = bot.cli("run", "--once")
    assert refused.returncode == 78 and "db upgrade" in refused.stderr
    assert bot.account.snapshot()  # nothing was touched

    upgraded = bot.cli("db", "upgrade")
    assert upgraded.returncode == 0 and schema.HEAD in upgraded.stdout
    assert bot.cli("db", "current").stdout.split() == ["current:", schema.HEAD, "head:", schema.HEAD]
    assert bot.cli("run", "--once").returncode == 0
