"""0012: indexes for the monthly report over a large store (issue 21).

At a million requests and five million audit events, two of the report's
queries read the whole table for one month's rows:

- ``requests.received_at``: the month's requests (a tenth of the store, or
  less) are found by their arrival;
- ``audit_events (event, at)``: the erasures done in the month are counted
  among the month's user_erased events alone, not among every event of it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_received_at", "requests", ["received_at"])
    op.create_index("ix_audit_events_event_at", "audit_events", ["event", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_event_at", table_name="audit_events")
    op.drop_index("ix_requests_received_at", table_name="requests")
