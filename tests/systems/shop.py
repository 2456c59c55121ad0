"""A shop's own database, not shaped like the bot's: customers, orders that keep a contact, a newsletter list.

Made with SQLAlchemy Core on each engine, the way a shop platform would have made it (upper-case columns,
a customer id in the orders, booleans the engine's own way).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Engine, ForeignKey, Index, Integer, MetaData, Numeric, String, Table, text

from dsr_mailbot.config.datamap import TableMap
from dsr_mailbot.store.database import Store, make_engine

METADATA = MetaData()
B_USER = Table(
    "b_user", METADATA,
    Column("ID", Integer, primary_key=True, autoincrement=True),
    Column("LOGIN", String(50)),
    Column("EMAIL", String(255)),
    Column("NAME", String(50)),
    Column("LAST_NAME", String(50)),
    Column("SECOND_NAME", String(50)),
    Column("PERSONAL_PHONE", String(30)),
    Column("UF_NEWS", Boolean),
    Column("UF_AGREED", Boolean),
    Index("ix_b_user_email", "EMAIL"),
)
SALE_ORDER = Table(
    "sale_order", METADATA,
    Column("ID", Integer, primary_key=True, autoincrement=True),
    Column("USER_ID", Integer, ForeignKey("b_user.ID", ondelete="SET NULL")),  # an order outlives its customer
    Column("PRICE", Numeric(10, 2)),
    Column("CONTACT_EMAIL", String(255)),
    Column("CONTACT_PHONE", String(30)),
)
ORDER_ITEM = Table(  # two references away from the customer
    "sale_basket", METADATA,
    Column("ID", Integer, primary_key=True, autoincrement=True),
    Column("ORDER_ID", Integer, ForeignKey("sale_order.ID")),
    Column("GIFT_NOTE", String(200)),
)
NEWSLETTER = Table(
    "newsletter", METADATA,
    Column("ID", Integer, primary_key=True, autoincrement=True),
    Column("ADDR", String(255)),
    Column("ACTIVE", Boolean),
)

MAPPING = (
    TableMap(table="b_user", match="EMAIL", erase="delete",
             fields={"email": "EMAIL", "phone": "PERSONAL_PHONE", "surname": "LAST_NAME", "first_name": "NAME",
                     "patronymic": "SECOND_NAME", "marketing_consent": "UF_NEWS", "processing_consent": "UF_AGREED"},
             access={"LOGIN": "Login"}),
    TableMap(table="sale_basket", via="ORDER_ID -> sale_order.ID", access={"GIFT_NOTE": "Gift note"},
             erase={"GIFT_NOTE": ""}),
    TableMap(table="sale_order", via="USER_ID -> b_user.ID", fields={"phone": "CONTACT_PHONE"},
             access={"ID": "Order", "PRICE": "Amount"}, erase={"CONTACT_EMAIL": "", "CONTACT_PHONE": ""}),
    TableMap(table="newsletter", match="ADDR", fields={"marketing_consent": "ACTIVE"}, erase="delete"),
)


def build_shop(engine: Engine) -> None:
    """Fresh tables with Pavel, a look-alike of him, and Anna (a Unicode domain), each with an order."""
    METADATA.drop_all(engine)
    METADATA.create_all(engine)
    with engine.begin() as conn:
        people = [
            {"ID": 1, "LOGIN": "pavel", "EMAIL": "Pavel.K@Example.com", "NAME": "Павел", "LAST_NAME": "Ким",
             "SECOND_NAME": "Олегович", "PERSONAL_PHONE": "+77011112233", "UF_NEWS": True, "UF_AGREED": True},
            # Another person whose address only a _ci collation confuses with Pavel's.
            {"ID": 2, "LOGIN": "pável", "EMAIL": "pável.k@example.com", "NAME": "Pável", "LAST_NAME": "Other",
             "PERSONAL_PHONE": "+77019998877", "UF_NEWS": True, "UF_AGREED": True},
            {"ID": 3, "LOGIN": "anna", "EMAIL": "anna@пример.kz", "NAME": "Анна", "UF_NEWS": True,
             "UF_AGREED": True},
        ]
        for person in people:  # rows of different keys: one INSERT each
            conn.execute(B_USER.insert(), person)
        conn.execute(SALE_ORDER.insert(), [
            {"ID": 10, "USER_ID": 1, "PRICE": Decimal("129.90"), "CONTACT_EMAIL": "Pavel.K@Example.com",
             "CONTACT_PHONE": "+77011112233"},
            {"ID": 11, "USER_ID": 2, "PRICE": Decimal("5.00"), "CONTACT_EMAIL": "pável.k@example.com",
             "CONTACT_PHONE": "+77019998877"},
        ])
        conn.execute(ORDER_ITEM.insert(), [{"ID": 100, "ORDER_ID": 10, "GIFT_NOTE": "Для Павла"},
                                           {"ID": 101, "ORDER_ID": 11, "GIFT_NOTE": "other"}])
        conn.execute(NEWSLETTER.insert(), [{"ID": 1, "ADDR": "PAVEL.K@example.com", "ACTIVE": True},
                                           {"ID": 2, "ADDR": "pável.k@example.com", "ACTIVE": True}])


def add_lower_index(engine: Engine) -> None:
    """What README tells a PostgreSQL or SQLite operator to add: an index on lower(EMAIL)."""
    with engine.begin() as conn:
        conn.execute(text('CREATE INDEX ix_b_user_email_lower ON b_user (lower("EMAIL"))'))


def shop_database(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Engine]:
    """A shop on a fresh database of this engine ("sqlite", "postgresql", "mariadb"): its URL and an engine."""
    from tests.conftest import fresh_database_url

    (tmp_path / "shop").mkdir(exist_ok=True)
    url = fresh_database_url(engine_name, request, tmp_path / "shop")
    engine = make_engine(url)
    build_shop(engine)
    return url, engine


def maildir_config(tmp_path: Path, db_url: str, more: str) -> Path:
    """The bot on a local Maildir and the store at ``db_url`` (created), with ``more`` configuration (a data map)."""
    (tmp_path / "mail" / "cur").mkdir(parents=True, exist_ok=True)
    store = Store(db_url)
    store.init_schema()
    store.dispose()
    path = tmp_path / "config.toml"
    path.write_text(f'[maildir]\npath = "mail"\n[database]\nurl = "{db_url}"\n{more}', encoding="utf-8")
    return path


REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_receiver(tmp_path: Path, secret: str,
                     subscribers: tuple[tuple[str, str], ...] = (("pavel.k@example.com", "Павел"),
                                                                   ("anna@example.kz", "Анна")),
                     ) -> Iterator[tuple[str, Path]]:
    """The example receiver in contrib/, as a real process on 127.0.0.1: its URL and its SQLite file."""
    from tests.servers import free_port, wait_for_port

    port, database = free_port(), tmp_path / "mailing.db"
    process = subprocess.Popen([sys.executable, str(REPO / "contrib" / "dsr_receiver.py"), "--listen",
                                f"127.0.0.1:{port}", "--db", str(database)],
                               env={**os.environ, "DSR_SECRET": secret})
    try:
        assert wait_for_port(port)
        with sqlite3.connect(database) as db:
            db.executemany("INSERT INTO subscribers (email, name) VALUES (?, ?)", subscribers)
        yield f"http://127.0.0.1:{port}/dsr", database
    finally:
        process.terminate()
        process.wait(timeout=10)


def data_map_toml(shop_url: str, mailer_url: str | None, *, match: str = "EMAIL", builtin: bool = True,
                  url_env: str | None = None) -> str:
    """MAPPING as an operator writes it in the configuration, beside the built-in store and a mailing tool
    (``url_env``: the shop's URL is read from this variable, not written here)."""
    text = '[[systems]]\nkind = "builtin"\n' if builtin else ""
    url = f'url_env = "{url_env}"' if url_env else f'url = "{shop_url}"'
    text += f"""
[[systems]]
kind = "sql"
name = "Shop"
{url}
[[systems.tables]]
table = "b_user"
match = "{match}"
erase = "delete"
access = {{ LOGIN = "Login" }}
[systems.tables.fields]
email = "EMAIL"
phone = "PERSONAL_PHONE"
surname = "LAST_NAME"
first_name = "NAME"
patronymic = "SECOND_NAME"
marketing_consent = "UF_NEWS"
processing_consent = "UF_AGREED"
[[systems.tables]]
table = "sale_basket"
via = "ORDER_ID -> sale_order.ID"
access = {{ GIFT_NOTE = "Gift note" }}
erase = {{ GIFT_NOTE = "" }}
[[systems.tables]]
table = "sale_order"
via = "USER_ID -> b_user.ID"
fields = {{ phone = "CONTACT_PHONE" }}
access = {{ ID = "Order", PRICE = "Amount" }}
erase = {{ CONTACT_EMAIL = "", CONTACT_PHONE = "" }}
[[systems.tables]]
table = "newsletter"
match = "ADDR"
fields = {{ marketing_consent = "ACTIVE" }}
erase = "delete"
"""
    if mailer_url is not None:
        text += f"""
[[systems]]
kind = "http"
name = "Mailer"
url = "{mailer_url}"
secret_env = "MAILER_SECRET"
"""
    return text
