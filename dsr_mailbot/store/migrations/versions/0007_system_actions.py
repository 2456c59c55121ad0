"""0007: the data map's actions (issue 19).

- ``system_actions``: one row per action of a request on a system of the
  data map (``[[systems]]``), written in the transaction that decides the
  request and carried out afterwards, retried until done, like the outbox.
  Its ``payload`` (the address and the values to set) is cleared once done.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsr_mailbot.store.models import MYSQL_TABLE, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("next_try_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "system", "action", name="uq_system_actions_request_action"),
        sa.UniqueConstraint("key"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_system_actions_state_next_try_at", "system_actions", ["state", "next_try_at"])


def downgrade() -> None:
    op.drop_table("system_actions")
