"""0004: indexes for the queries every request runs (issue 11).

Without them three queries grew with the store, and a backlog slowed down
as it was worked off:

- ``requests.archived_at``: each pass looks for handled requests whose
  message is not moved yet;
- ``outbox (recipient, created_at)``: each request counts its person's
  replies of the last day;
- ``outbox.sent_at``: the campaign throttle counts the notices of the last minute;
- ``outbox (state, id)``: the sender takes the oldest queued reply; by the
  primary key alone PostgreSQL walked past every reply already sent.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_archived_at", "requests", ["archived_at"])
    op.create_index("ix_outbox_recipient_created_at", "outbox", ["recipient", "created_at"])
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_id", table_name="outbox")
    op.drop_index("ix_outbox_sent_at", table_name="outbox")
    op.drop_index("ix_outbox_recipient_created_at", table_name="outbox")
    op.drop_index("ix_requests_archived_at", table_name="requests")
