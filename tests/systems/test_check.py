"""`dsr-mailbot systems check`: each system reached, each table compared with its mapping; 0, 75 or 78."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dsr_mailbot.store.database import make_engine
from tests.servers import free_port
from tests.systems.shop import build_shop, data_map_toml, maildir_config, running_receiver

SECRET = "mailer secret"


@pytest.fixture
def mailer(tmp_path: Path) -> Iterator[str]:
    with running_receiver(tmp_path, SECRET, subscribers=()) as (url, _database):
        yield url


def config(tmp_path: Path, shop_url: str, mailer_url: str, match: str = "EMAIL") -> Path:
    return maildir_config(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}",
                          data_map_toml(shop_url, mailer_url, match=match, url_env="SHOP_URL"))


def check(path: Path, shop_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(path), "systems", "check"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SHOP_URL": shop_url, "MAILER_SECRET": SECRET})


def test_each_system_and_table_is_reported_with_its_index_and_rows(tmp_path: Path, shop: tuple[str, Engine],
                                                                   mailer: str) -> None:
    shop_url, engine = shop
    done = check(config(tmp_path, shop_url, mailer), shop_url)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "SmartThings online shop customer database (builtin): reachable" in lines
    assert "Shop (sql): reachable" in lines and "Mailer (http): reachable" in lines
    b_user = next(line for line in lines if line.startswith("  b_user: found"))
    assert "EMAIL" in b_user and "PERSONAL_PHONE" in b_user and "rows" in b_user
    assert ("match column indexed" in b_user) == (engine.dialect.name in ("mysql", "mariadb"))
    assert any(line.startswith("  warning: newsletter: ADDR has no index") for line in lines)
    assert "sale_order: found; match column -" in done.stdout


def test_a_wrong_column_stops_with_78_naming_system_table_and_column(tmp_path: Path, shop: tuple[str, Engine],
                                                                     mailer: str) -> None:
    shop_url, _engine = shop
    done = check(config(tmp_path, shop_url, mailer, match="E_MAIL"), shop_url)

    assert done.returncode == 78
    assert '"Shop" → table b_user: no column E_MAIL' in done.stderr
    assert shop_url not in done.stderr + done.stdout and "Mailer (http): reachable" in done.stdout


def test_an_unreachable_system_is_75_and_the_others_are_still_checked(tmp_path: Path) -> None:
    shop_url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(shop_url)
    build_shop(engine)
    engine.dispose()
    done = check(config(tmp_path, shop_url, f"http://127.0.0.1:{free_port()}/dsr"), shop_url)

    assert done.returncode == 75
    assert "Mailer (http): cannot be reached" in done.stderr and "Shop (sql): reachable" in done.stdout


def test_without_a_builtin_system_users_import_refuses(tmp_path: Path) -> None:
    shop_url = f"sqlite:///{tmp_path / 'shop.db'}"
    path = config(tmp_path, shop_url, "https://mailer.example/dsr")
    path.write_text(path.read_text(encoding="utf-8").replace('[[systems]]\nkind = "builtin"\n', ""), encoding="utf-8")
    (tmp_path / "users.csv").write_text("email,phone,surname,first_name,patronymic,marketing_consent\n"
                                        "a@example.kz,,,,,true\n", encoding="utf-8")
    env = {**os.environ, "SHOP_URL": shop_url, "MAILER_SECRET": SECRET}

    imported = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(path), "users", "import",
                               str(tmp_path / "users.csv")], capture_output=True, text=True, env=env, check=False)
    assert imported.returncode == 64 and "no builtin system" in imported.stderr


def test_a_system_that_refuses_the_check_is_78_and_the_others_are_still_checked(
        tmp_path: Path, mailer: str) -> None:
    shop_url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(shop_url)
    build_shop(engine)
    engine.dispose()
    path = config(tmp_path, shop_url, mailer)
    done = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(path), "systems", "check"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SHOP_URL": shop_url, "MAILER_SECRET": "not the receiver's secret"})
    assert done.returncode == 78
    assert "Mailer (http): refused the check" in done.stderr and "Shop (sql): reachable" in done.stdout


def test_db_current_with_the_database_down_is_75(tmp_path: Path) -> None:
    (tmp_path / "mail" / "cur").mkdir(parents=True)
    path = tmp_path / "config.toml"
    path.write_text(f'[maildir]\npath = "mail"\n[database]\nurl = "postgresql://nobody@127.0.0.1:{free_port()}/x"\n',
                    encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(path), "db", "current"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 75 and "database unavailable" in done.stderr


def test_a_sqlite_path_with_no_database_is_78_and_no_empty_file_is_left_there(tmp_path: Path, mailer: str) -> None:
    missing = tmp_path / "typo" / "shop.db"
    missing.parent.mkdir()
    done = check(config(tmp_path, f"sqlite:///{missing}", mailer), f"sqlite:///{missing}")
    assert done.returncode == 78 and '"Shop": url: no SQLite database at that path' in done.stderr
    assert not missing.exists() and "Mailer (http): reachable" in done.stdout
