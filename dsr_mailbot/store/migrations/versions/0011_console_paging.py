"""0011: indexes for the console's queue and deadlines, a page at a time (issue 21).

With 100,000 open requests the queue and the deadlines page loaded them all.
They now read one page in order (``store/paging.py``), each open state's
slice of an index from the previous page's last row on:

- ``requests (state, received_at, id)``: the queue, oldest first;
- ``requests (state, due_at, id, kind)``: the deadlines, most overdue first,
  and the pages' counts (kind: confirmations are left out without reading
  the table's rows).

``ix_requests_state`` goes: both begin with ``state``, so every query on the
state alone keeps an index, and a request's write updates one index fewer.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_state_received_at_id", "requests", ["state", "received_at", "id"])
    op.create_index("ix_requests_state_due_at_id_kind", "requests", ["state", "due_at", "id", "kind"])
    op.drop_index("ix_requests_state", table_name="requests")


def downgrade() -> None:
    op.create_index("ix_requests_state", "requests", ["state"])
    op.drop_index("ix_requests_state_due_at_id_kind", table_name="requests")
    op.drop_index("ix_requests_state_received_at_id", table_name="requests")
