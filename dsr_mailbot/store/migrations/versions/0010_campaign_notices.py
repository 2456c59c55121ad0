"""0010: a campaign's notices queued as references (issue 21).

- ``campaign_notices``: one row per recipient of a campaign, written by one
  ``INSERT … SELECT`` for the bot's own users; each notice's message is
  written into the outbox when its turn to be sent comes.  Notices an
  earlier version queued in the outbox stay there and are sent as they are.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsr_mailbot.store.models import MYSQL_TABLE, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=40), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("recipient_key", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("run", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipient_key", "campaign", name="uq_campaign_notices_recipient"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_campaign_notices_state_id", "campaign_notices", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_notices_state_id", table_name="campaign_notices")
    op.drop_table("campaign_notices")
