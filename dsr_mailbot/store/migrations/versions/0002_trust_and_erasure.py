"""0002: the security and robustness issue (8).

- ``requests.message_ref``: the dedup key, a keyed hash of the inbound
  Message-ID (filled in here for every row, with the bot's key), so that the
  Message-ID itself can be erased with the person;
- ``requests.message_id`` becomes nullable and is no longer unique;
- ``requests.thread``: the request's References, so that later replies thread;
- ``requests.subject`` goes: replies no longer repeat the sender's subject;
- ``outbox.for_verified``: whether a reply answered verified mail (the daily limit).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from dsr_mailbot.store.models import MYSQL_KEY_PREFIX

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    keyring = op.get_context().config.attributes.get("keyring")  # type: ignore[union-attr]
    if keyring is None:
        raise RuntimeError("migration 0002 needs the bot's key: run it with 'dsr-mailbot db upgrade'")
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("message_ref", AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("thread", AutoString(length=8000), nullable=True))
    requests = sa.table("requests", sa.column("id", sa.Integer), sa.column("message_id", sa.String),
                        sa.column("message_ref", sa.String))
    connection = op.get_bind()
    for row_id, message_id in connection.execute(sa.select(requests.c.id, requests.c.message_id)).all():
        connection.execute(
            requests.update().where(requests.c.id == row_id).values(message_ref=keyring.message_ref(message_id))
        )
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("message_ref", existing_type=AutoString(length=64), nullable=False)
        batch.drop_index("ix_requests_message_id")
        batch.create_index("ix_requests_message_id", ["message_id"], unique=False, mysql_length=MYSQL_KEY_PREFIX)
        batch.create_index("ix_requests_message_ref", ["message_ref"], unique=True)
        batch.alter_column("message_id", existing_type=AutoString(length=998), nullable=True)
        batch.drop_column("subject")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("for_verified", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    raise NotImplementedError("the Message-IDs erased since cannot come back; restore a backup instead")
