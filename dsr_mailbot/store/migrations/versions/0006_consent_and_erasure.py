"""0006: consent means yes (issue 18).

- ``requests.owner_reply``: the owner's reply to a challenge that was
  neither a clear yes nor a no, for the reviewer who decides.  Personal
  data, cleared when the request closes and on erasure.
- ``users.ref``: a random reference of each user, never reused.  A
  campaign's notices are keyed by it: SQLite reuses the row id of a deleted
  (erased) user, and a user imported later must still get the campaign.
  Existing users get one here.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("owner_reply", sa.Text(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=32), nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer()), sa.column("ref", sa.String(length=32)))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(sa.update(users).where(users.c.id == user_id).values(ref=secrets.token_hex(16)))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("ref", existing_type=sa.String(length=32), nullable=False)
        batch.create_index("ix_users_ref", ["ref"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_ref")
        batch.drop_column("ref")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("owner_reply")
