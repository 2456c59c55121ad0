"""0003: a letter carries a set of intents (issue 9).

- ``requests.intents``: every intent of the letter (a JSON list of names);
  every earlier request had exactly one, its ``kind`` (a confirmation has none).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KINDS = ("update", "withdraw", "optout", "access", "question")


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("intents", sa.JSON(), nullable=True))
    requests = sa.table("requests", sa.column("kind", sa.String), sa.column("intents", sa.JSON))
    connection = op.get_bind()
    for kind in _KINDS:
        connection.execute(requests.update().where(requests.c.kind == kind).values(intents=[kind]))
    connection.execute(requests.update().where(requests.c.intents.is_(None)).values(intents=[]))
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("intents", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("intents")
