"""0009: blocking instead of destruction, and where consent came from (issue 20).

- ``holds``: an operator's hold on a person's data (``users hold``): after a
  withdrawal they are blocked, not destroyed, until the hold ends.
- ``users.consent_source``, ``users.consent_at``: from ``users import``.
- ``suppressions``: the SHA-256 of addresses that opted out while no system
  knew them: they get no marketing, even once they are imported.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsr_mailbot.store.models import MYSQL_TABLE, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ground", sa.String(length=500), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_holds_email", "holds", ["email"], unique=True)
    op.create_table(
        "suppressions",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("consent_source", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("consent_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("consent_at")
        batch.drop_column("consent_source")
    op.drop_table("suppressions")
    op.drop_index("ix_holds_email", table_name="holds")
    op.drop_table("holds")
