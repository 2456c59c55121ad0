"""SQL systems: the shop's own tables on SQLite, PostgreSQL and MariaDB, found, read, changed and erased exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, select, text

from dsr_mailbot.config.datamap import TableMap
from dsr_mailbot.errors import MappingError, SystemRefused, SystemUnavailable
from dsr_mailbot.store.database import make_engine
from dsr_mailbot.systems.sql import SqlConnector
from dsr_mailbot.systems.sqlexact import unicode_form
from tests.conftest import fresh_database_url
from tests.systems.shop import B_USER, MAPPING, NEWSLETTER, ORDER_ITEM, SALE_ORDER, add_lower_index, build_shop

PAVEL = "pavel.k@example.com"  # the bot's normal form of the stored Pavel.K@Example.com
ANNA = "anna@xn--e1afmkfd.kz"  # anna@пример.kz


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database_url(request.param, request, tmp_path)


@pytest.fixture
def shop(shop_url: str) -> Iterator[Engine]:
    engine = make_engine(shop_url)
    build_shop(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def connector(shop_url: str, shop: Engine) -> Iterator[SqlConnector]:
    connector = SqlConnector("Shop", shop_url, MAPPING)
    yield connector
    connector.close()


def rows(engine: Engine, table: Table) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.ID))]


def test_a_stored_address_is_that_persons_in_the_bots_normal_form_and_no_look_alike_is(
        connector: SqlConnector) -> None:
    assert connector.lookup(PAVEL)
    assert connector.lookup(ANNA)  # stored with its Unicode domain, asked for in IDNA
    assert not connector.lookup("pável.k@example.com ".strip() + "x")
    assert not connector.lookup("nobody@example.com")
    assert unicode_form(ANNA) == "anna@пример.kz" and unicode_form(PAVEL) is None


def test_access_gathers_every_table_that_holds_the_person_labelled(connector: SqlConnector) -> None:
    held = connector.access(PAVEL)
    by_table = {record.label: record.fields for record in held}
    assert by_table["b_user"]["email"] == "Pavel.K@Example.com" and by_table["b_user"]["Login"] == "pavel"
    assert by_table["b_user"]["phone"] == "+77011112233" and by_table["b_user"]["marketing_consent"] in ("yes", "1")
    assert by_table["sale_order"]["Order"] == "10" and by_table["sale_order"]["Amount"] == "129.90"
    assert by_table["sale_basket"] == {"Gift note": "Для Павла"}  # two references away
    assert by_table["newsletter"]["marketing_consent"] in ("yes", "1")
    assert all("pável" not in str(record.fields) and "Other" not in str(record.fields) for record in held)


def test_an_update_sets_every_mapped_column_and_a_new_address_moves_the_match(
        connector: SqlConnector, shop: Engine) -> None:
    done = connector.update(PAVEL, {"phone": "+77015550000", "email": "pavel.new@example.com"}, key="a1")

    assert {t.table: t.updated for t in done.tables} == {"b_user": 1, "sale_order": 1, "newsletter": 1}
    pavel, other, _anna = rows(shop, B_USER)
    assert (pavel["EMAIL"], pavel["PERSONAL_PHONE"]) == ("pavel.new@example.com", "+77015550000")
    assert (other["EMAIL"], other["PERSONAL_PHONE"]) == ("pável.k@example.com", "+77019998877")
    assert rows(shop, SALE_ORDER)[0]["CONTACT_PHONE"] == "+77015550000"
    assert [r["ADDR"] for r in rows(shop, NEWSLETTER)] == ["pavel.new@example.com", "pável.k@example.com"]
    # Again, as after a crash before the bot recorded it: nothing more to do, nothing else touched.
    assert connector.update(PAVEL, {"phone": "+77015550000", "email": "pavel.new@example.com"}, key="a1").updated == 0
    assert connector.lookup("pavel.new@example.com") and not connector.lookup(PAVEL)


def test_an_optout_and_a_withdrawal_turn_off_the_mapped_consents_with_the_engines_false(
        connector: SqlConnector, shop: Engine) -> None:
    assert connector.optout(PAVEL, key="o1").updated == 2  # b_user and the newsletter
    pavel, other, _anna = rows(shop, B_USER)
    assert not pavel["UF_NEWS"] and pavel["UF_AGREED"] and other["UF_NEWS"]
    assert [bool(r["ACTIVE"]) for r in rows(shop, NEWSLETTER)] == [False, True]
    connector.withdraw(PAVEL, key="w1")
    assert not rows(shop, B_USER)[0]["UF_AGREED"] and rows(shop, B_USER)[1]["UF_AGREED"]


def test_erasure_deletes_or_clears_each_table_as_mapped_and_touches_no_one_else(
        connector: SqlConnector, shop: Engine) -> None:
    done = connector.erase(PAVEL, key="e1")

    counts = {t.table: (t.deleted, t.updated, t.cleared) for t in done.tables}
    assert counts == {"b_user": (1, 0, ()), "newsletter": (1, 0, ()),
                      "sale_order": (0, 1, ("CONTACT_EMAIL", "CONTACT_PHONE")), "sale_basket": (0, 1, ("GIFT_NOTE",))}
    assert [r["ID"] for r in rows(shop, B_USER)] == [2, 3]
    kept = rows(shop, SALE_ORDER)[0]  # kept for accounting, its contact gone
    assert (kept["ID"], kept["CONTACT_EMAIL"], kept["CONTACT_PHONE"]) == (10, "", "")
    assert rows(shop, SALE_ORDER)[1]["CONTACT_EMAIL"] == "pável.k@example.com"
    assert [r["GIFT_NOTE"] for r in rows(shop, ORDER_ITEM)] == ["", "other"]
    assert [r["ADDR"] for r in rows(shop, NEWSLETTER)] == ["pável.k@example.com"]
    assert connector.erase(PAVEL, key="e1").tables == ()  # run again: nothing of them is left to find


@pytest.fixture(params=["postgresql", "mariadb"])
def server_shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database_url(request.param, request, tmp_path)


def test_an_erasure_the_database_refuses_is_permanent_and_changes_nothing(server_shop_url: str) -> None:
    engine = make_engine(server_shop_url)
    build_shop(engine)
    # The orders are deleted, but their basket lines (not mapped) still point to them: the foreign key refuses.
    mapping = (MAPPING[0], MAPPING[2].model_copy(update={"erase": "delete"}), MAPPING[3])
    connector = SqlConnector("Shop", server_shop_url, mapping)
    with pytest.raises(SystemRefused, match='"Shop": refused'):
        connector.erase(PAVEL, key="e1")
    assert len(rows(engine, B_USER)) == 3 and len(rows(engine, SALE_ORDER)) == 2  # one transaction, rolled back
    assert len(rows(engine, NEWSLETTER)) == 2
    connector.close()
    engine.dispose()


def test_check_reports_each_table_its_columns_the_match_index_and_rows(connector: SqlConnector,
                                                                      shop: Engine) -> None:
    checks = {c.table: c for c in connector.check()}
    assert set(checks) == {"b_user", "sale_order", "sale_basket", "newsletter"}
    assert "EMAIL" in checks["b_user"].columns and checks["sale_order"].match_indexed is None
    assert checks["b_user"].rows is not None and checks["b_user"].rows >= 0
    if shop.dialect.name in ("mysql", "mariadb"):
        assert checks["b_user"].match_indexed and not checks["b_user"].warnings  # its _ci index serves
    else:
        assert not checks["b_user"].match_indexed and "no index" in checks["b_user"].warnings[0]
        add_lower_index(shop)
        again = SqlConnector("Shop", str(shop.url.render_as_string(hide_password=False)), MAPPING)
        assert {c.table: c for c in again.check()}["b_user"].match_indexed
        again.close()
    assert checks["newsletter"].match_indexed is False  # no index at all on ADDR


@pytest.mark.parametrize(("mapping", "named"), [
    (TableMap(table="b_users", match="EMAIL", erase="delete"), "table b_users: not found"),
    (TableMap(table="b_user", match="E_MAIL", erase="delete"), "table b_user: no column E_MAIL"),
    (TableMap(table="b_user", match="EMAIL", fields={"phone": "PHONE"}, erase="delete"), "no column PHONE"),
    (TableMap(table="b_user", match="EMAIL", erase={"FAX": ""}), "no column FAX"),
])
def test_a_wrong_mapping_is_named_before_anything_is_changed(shop_url: str, shop: Engine, mapping: TableMap,
                                                             named: str) -> None:
    connector = SqlConnector("Shop", shop_url, (mapping,))
    with pytest.raises(MappingError, match=named) as refused:
        connector.erase(PAVEL, key="x")
    assert '"Shop"' in str(refused.value)
    assert len(rows(shop, B_USER)) == 3
    connector.close()


def test_an_unreachable_system_is_temporary_and_its_url_is_never_shown() -> None:
    connector = SqlConnector("Shop", "postgresql://shop:s3cret-pw@127.0.0.1:1/shop", MAPPING)
    with pytest.raises(SystemUnavailable) as down:
        connector.lookup(PAVEL)
    assert down.value.temporary and "s3cret" not in str(down.value) and "127.0.0.1" not in str(down.value)
    connector.close()


def test_a_read_only_system_answers_but_changes_nothing(shop_url: str, shop: Engine) -> None:
    connector = SqlConnector("Shop", shop_url, MAPPING, read_only=True)
    assert connector.lookup(PAVEL) and connector.access(PAVEL)
    with pytest.raises(SystemRefused, match="read_only"):
        connector.erase(PAVEL, key="e")
    assert len(rows(shop, B_USER)) == 3
    connector.close()


# What an attack review found: other people's rows reached through an engine's own equality, or a silent cut.

def make_table(engine: Engine, ddl: str, rows: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(text(ddl))
        for statement in rows:
            conn.execute(text(statement))


def test_a_case_folding_column_without_a_key_changes_only_the_persons_row_on_postgresql(pg_database: str,
                                                                                      request: pytest.FixtureRequest,
                                                                                      tmp_path: Path) -> None:
    url = fresh_database_url("postgresql", request, tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS citext"))
        conn.execute(text("DROP TABLE IF EXISTS news"))
    # The second address is Kate's with a Kelvin sign for the K: citext says equal, the bot's normal form does not.
    make_table(engine, 'CREATE TABLE news ("ADDR" citext, "ACTIVE" boolean)',
               ["INSERT INTO news VALUES ('Kate@example.com', true)",
                "INSERT INTO news VALUES ('\u212aate@example.com', true)"])
    connector = SqlConnector("News", url, (TableMap(table="news", match="ADDR", fields={"marketing_consent": "ACTIVE"},
                                                    erase="delete"),))
    assert connector.optout("kate@example.com", key="o").updated == 1
    assert connector.erase("kate@example.com", key="e").deleted == 1
    with engine.connect() as conn:
        assert conn.execute(text('SELECT "ADDR", "ACTIVE" FROM news')).all() == [("\u212aate@example.com", True)]
    connector.close()
    engine.dispose()


def test_a_via_into_a_text_column_takes_the_key_as_text_not_as_a_number(shop_url: str, shop: Engine) -> None:
    tickets = Table("tickets", MetaData(), Column("ID", Integer, primary_key=True), Column("USER_REF", String(20)))
    tickets.drop(shop, checkfirst=True)
    tickets.create(shop)
    with shop.begin() as conn:
        conn.execute(tickets.insert(), [{"ID": n, "USER_REF": ref}
                                         for n, ref in enumerate(["1", "1.0", " 1", "1abc", "01"], start=1)])
    mapping = (MAPPING[0], TableMap(table="tickets", via="USER_REF -> b_user.ID", access={"ID": "Ticket"},
                                    erase="delete"))
    connector = SqlConnector("Shop", shop_url, mapping)
    assert [r.fields for r in connector.access(PAVEL) if r.label == "tickets"] == [{"Ticket": "1"}]
    assert {t.table: t.deleted for t in connector.erase(PAVEL, key="e").tables}["tickets"] == 1
    assert sorted(str(r["USER_REF"]) for r in rows(shop, tickets)) == [" 1", "01", "1.0", "1abc"]
    connector.close()


def test_more_rows_than_a_person_can_have_are_refused_not_cut(shop_url: str, shop: Engine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dsr_mailbot.systems.sqlexact.MAX_KEYS", 3)
    with shop.begin() as conn:  # signed up to the newsletter again and again: more rows than any person has
        conn.execute(NEWSLETTER.insert(), [{"ID": 10 + n, "ADDR": "PAVEL.K@EXAMPLE.COM", "ACTIVE": True}
                                           for n in range(4)])
    connector = SqlConnector("Shop", shop_url, MAPPING)
    with pytest.raises(SystemRefused, match="more than 3 rows"):
        connector.erase(PAVEL, key="e")
    assert len(rows(shop, B_USER)) == 3
    connector.close()


def test_a_legacy_cp1251_column_is_compared_in_utf8_on_mariadb(mariadb_database: str,
                                                              request: pytest.FixtureRequest,
                                                              tmp_path: Path) -> None:
    url = fresh_database_url("mariadb", request, tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS legacy"))
    make_table(engine, "CREATE TABLE legacy (ADDR varchar(100) CHARACTER SET cp1251, NAME varchar(50)) ",
               ["INSERT INTO legacy VALUES ('anna@пример.kz', 'Анна')",
                "INSERT INTO legacy VALUES ('ANNA@пример.kz', 'x')"])
    connector = SqlConnector("Legacy", url, (TableMap(table="legacy", match="ADDR", fields={"first_name": "NAME"},
                                                      erase="delete"),))
    assert [r.fields for r in connector.access(ANNA)] == [{"first_name": "Анна"}, {"first_name": "x"}]
    assert connector.erase(ANNA, key="e").deleted == 2  # both are hers: the domain is the same, the case too
    connector.close()
    engine.dispose()


def test_a_chain_of_deletions_goes_from_the_farthest_table_in(server_shop_url: str) -> None:
    engine = make_engine(server_shop_url)
    build_shop(engine)
    # The config lists the customer first and the basket (which points to the order) last.
    mapping = (MAPPING[0], MAPPING[2].model_copy(update={"erase": "delete"}),
               MAPPING[1].model_copy(update={"erase": "delete"}), MAPPING[3])
    connector = SqlConnector("Shop", server_shop_url, mapping)
    done = connector.erase(PAVEL, key="e")
    assert [t.table for t in done.tables][:2] == ["sale_basket", "sale_order"]
    assert [r["ID"] for r in rows(engine, SALE_ORDER)] == [11] and [r["ID"] for r in rows(engine, ORDER_ITEM)] == [101]
    connector.close()
    engine.dispose()


def test_check_warns_of_a_reference_to_a_column_that_is_not_unique(shop_url: str, shop: Engine) -> None:
    mapping = (MAPPING[0], TableMap(table="sale_order", via="USER_ID -> b_user.LOGIN", erase="delete"))
    connector = SqlConnector("Shop", shop_url, mapping)
    checks = {c.table: c for c in connector.check()}
    assert checks["sale_order"].warnings == (
        "b_user.LOGIN is neither a primary key nor unique: a USER_ID may name rows of several people",)
    assert not any("neither" in w for w in checks["b_user"].warnings)
    connector.close()
