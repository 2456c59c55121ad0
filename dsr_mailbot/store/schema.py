"""The schema's version: created, upgraded and checked with the Alembic migrations shipped in the package.

- An empty database is created from the models in one step and stamped
  with the newest revision (Alembic's recommended start); a test proves
  that the migrations from 0001 reach exactly the same schema.
- A database of the first release (tables, but no ``alembic_version``:
  ``create_all`` made it) is stamped ``0001`` and upgraded.
- Any other database is upgraded to the newest revision.

Data migrations may need the bot's key (0002 hashes stored Message-IDs), so
the caller passes the keyring.  On SQLite, foreign keys are switched off for
the duration, as Alembic's batch mode (which rebuilds tables) requires.

Every run checks the schema, and only ``db init``/``db upgrade`` change it,
so the check reads ``alembic_version`` with plain SQL against :data:`HEAD`
and Alembic (a tenth of a second to import) is loaded only to upgrade.  A
test keeps :data:`HEAD` equal to the newest migration's revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, inspect, text
from sqlmodel import SQLModel

import dsr_mailbot.store.models  # noqa: F401 - registers the tables on SQLModel.metadata
from dsr_mailbot.store.chain import GENESIS
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import AuditChain

if TYPE_CHECKING:
    from alembic.config import Config

FIRST_RELEASE = "0001"
HEAD = "0012"  # the newest migration's revision (tests/store/test_schema.py keeps them equal)


def _config(connection: Connection | None = None, keyring: Keyring | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "dsr_mailbot.store:migrations")
    config.attributes["connection"] = connection
    config.attributes["keyring"] = keyring
    return config


def head_revision() -> str:
    return HEAD


def migrations_head() -> str | None:
    """The newest revision among the migration scripts (reads them: for the test that checks :data:`HEAD`)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


@dataclass(frozen=True)
class SchemaState:
    tables: bool  # does the database hold the bot's tables at all?
    revision: str | None  # None: no alembic_version (empty, or made by the first release)
    head: str

    @property
    def current(self) -> bool:
        return self.tables and self.revision == self.head


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            if "alembic_version" in tables else None
    return SchemaState(tables="requests" in tables, revision=revision, head=HEAD)


def upgrade(engine: Engine, keyring: Keyring | None = None) -> str:
    """Create or upgrade the schema to the newest revision; return it."""
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, or SQLite ignores it
        try:
            with connection.begin():
                present = set(inspect(connection).get_table_names())
                config = _config(connection, keyring)
                if "requests" not in present:
                    SQLModel.metadata.create_all(connection)
                    # The audit chain's head exists before two workers could both try to create it.
                    connection.execute(insert(AuditChain).values(id=1, last_event_id=0, last_hash=GENESIS))
                    command.stamp(config, HEAD)
                else:
                    if "alembic_version" not in present:
                        command.stamp(config, FIRST_RELEASE)
                    command.upgrade(config, "head")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")
    return head_revision()
