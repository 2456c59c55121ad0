"""0005: what the operator console (issue 12) reads.

- ``requests.letter_subject`` and ``requests.letter_text``: the subject and
  the person's own words of an open request, so that a reviewer can read
  the letter (a question, above all) without the mailbox.  Personal data,
  cleared when the request closes, like ``reply_address``.
- ``worker_status``: each worker's servers, last pass and counters, written
  by the daemon, so that the console's ``/healthz`` and ``/metrics`` can
  report the daemon from another process.  No personal data.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsr_mailbot.store.models import MYSQL_TABLE, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("letter_subject", sa.String(length=998), nullable=True))
        batch.add_column(sa.Column("letter_text", sa.Text(), nullable=True))
    op.create_table(
        "worker_status",
        sa.Column("worker", sa.String(length=200), primary_key=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table("worker_status")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("letter_text")
        batch.drop_column("letter_subject")
