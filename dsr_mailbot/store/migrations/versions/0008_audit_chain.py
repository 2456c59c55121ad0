"""0008: a tamper-evident audit trail (issue 20).

- ``audit_events.chain_hash``: the SHA-256 of the event before it and of
  this one (store/chain.py).
- ``audit_chain``: the chain's head, one row.

The events already written start the chain: they are hashed here, oldest
first, as they read back, so ``audit verify`` covers the whole trail.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsr_mailbot.store.chain import GENESIS, canonical, link
from dsr_mailbot.store.models import MYSQL_TABLE, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PAGE = 1000


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **MYSQL_TABLE,
    )
    events = sa.table("audit_events", sa.column("id", sa.Integer()), sa.column("at", UTCDateTime()),
                      sa.column("request_id", sa.Integer()), sa.column("subject_ref", sa.String()),
                      sa.column("event", sa.String()), sa.column("actor", sa.String()),
                      sa.column("detail", sa.JSON()), sa.column("chain_hash", sa.String()))
    connection = op.get_bind()
    previous, last_id = GENESIS, 0
    while True:
        page = connection.execute(sa.select(events).where(events.c.id > last_id).order_by(events.c.id)
                                  .limit(PAGE)).all()
        if not page:
            break
        for row in page:
            previous = link(previous, canonical(row.at, row.request_id, row.subject_ref, row.event, row.actor,
                                                row.detail))
            connection.execute(sa.update(events).where(events.c.id == row.id).values(chain_hash=previous))
            last_id = row.id
    chain = sa.table("audit_chain", sa.column("id", sa.Integer()), sa.column("last_event_id", sa.Integer()),
                     sa.column("last_hash", sa.String()))
    connection.execute(sa.insert(chain).values(id=1, last_event_id=last_id, last_hash=previous))


def downgrade() -> None:
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("chain_hash")
