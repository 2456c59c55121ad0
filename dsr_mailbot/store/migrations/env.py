"""Alembic's environment: the connection, the target metadata and the keyring come from the caller.

:mod:`dsr_mailbot.store.schema` runs every migration on a connection it
opened itself (``config.attributes["connection"]``), so the database's own
settings (SQLite's pragmas, PostgreSQL's timeouts) apply, and hands data
migrations the bot's keyring (``config.attributes["keyring"]``).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import dsr_mailbot.store.models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
