"""Fixtures: real servers, fresh databases, and the shared corpora.

A test that needs a server it cannot find is skipped on a developer's
machine with the reason, and *fails* under ``CI=true``: CI must never pass
by skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from dsr_mailbot.store.database import make_engine
from tests.dns_server import AuthoritativeDns, nsd_binary
from tests.harness import Bot, DaemonProcess, WebProcess
from tests.oauth_servers import OAuthDovecot, OAuthSmtpServer, TokenServer
from tests.oauth_servers import oauth_bot as make_oauth_bot
from tests.servers import Dovecot, ImapAccount, MariaDB, SmtpServer, dovecot_binary, mariadb_binaries

REPO = Path(__file__).resolve().parents[1]
# The shared material sits beside the checkout; DSR_SHARED_DIR points elsewhere when it does not.
SHARED = Path(os.environ.get("DSR_SHARED_DIR", REPO.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def need(reason: str) -> None:
    """Skip locally, fail loudly in CI."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    for started in (DaemonProcess.started, WebProcess.started):
        while started:
            process = started.pop()
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait(timeout=10)
            process.log_file.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        need(f"{SHARED} (the shared corpora) is not present")
    return SHARED


def _dovecot_binary() -> str:
    binary = dovecot_binary()
    if binary is None:
        need("dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        need("the private Dovecot runs as root (mail_uid=mail)")
    assert binary is not None
    return binary


def _started_dovecot() -> Iterator[Dovecot]:
    server = Dovecot(_dovecot_binary())
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    yield from _started_dovecot()


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of its own, for a test that stops and restarts it."""
    yield from _started_dovecot()


@pytest.fixture
def imap_account(dovecot: Dovecot) -> ImapAccount:
    return dovecot.new_account()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _session_token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token_server(_session_token_server: TokenServer) -> TokenServer:
    """An OAuth2 authorization server (tests.oauth_servers), as new for each test."""
    _session_token_server.reset()
    return _session_token_server


@pytest.fixture(scope="session")
def _session_oauth_dovecot(_session_token_server: TokenServer) -> Iterator[OAuthDovecot]:
    server = OAuthDovecot(_dovecot_binary(), _session_token_server)
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def oauth_dovecot(_session_oauth_dovecot: OAuthDovecot, token_server: TokenServer) -> OAuthDovecot:
    """A private Dovecot whose OAuth2 logins are checked by ``token_server``; each test logs in as its own user."""
    return _session_oauth_dovecot


@pytest.fixture
def oauth_smtp(token_server: TokenServer) -> Iterator[OAuthSmtpServer]:
    """An SMTP server that takes mail only after an OAuth2 login ``token_server`` vouches for."""
    server = OAuthSmtpServer(token_server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns_zones() -> Iterator[Callable[[dict[str, str]], AuthoritativeDns]]:
    """Starts a private authoritative DNS server (NSD) for the zones a test gives; stopped after the test."""
    binary = nsd_binary()
    if binary is None:
        need("nsd is not installed (apt-get install nsd)")
    assert binary is not None
    started: list[AuthoritativeDns] = []

    def start(zones: dict[str, str]) -> AuthoritativeDns:
        server = AuthoritativeDns(binary, zones)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def oauth_bot(tmp_path: Path, oauth_dovecot: OAuthDovecot, oauth_smtp: OAuthSmtpServer, token_server: TokenServer,
              sqlite_url: str) -> Bot:
    """A bot whose [imap] and [smtp] log in with OAuth2 (tests.oauth_servers.oauth_bot)."""
    return make_oauth_bot(tmp_path, oauth_dovecot, oauth_smtp, token_server, sqlite_url)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = None
    for url in PG_ADMIN_URLS:
        engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            admin = engine
            admin_url = url
            break
        except Exception:
            engine.dispose()
    if admin is None:
        need("PostgreSQL is not reachable at 127.0.0.1:5432")
    assert admin is not None
    name = f"dsr_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_tables(url: str) -> None:
    """Every table of the run's database dropped: the bot's, and the shops' that the data map tests make."""
    from sqlalchemy import MetaData

    engine = make_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDB]:
    """A private MariaDB for this test run (Debian's mariadb-server), stopped and deleted at the end."""
    binaries = mariadb_binaries()
    if binaries is None:
        need("mariadb-server is not installed (apt-get install mariadb-server)")
    if os.geteuid() != 0:
        need("the private MariaDB runs as root (it switches to the mysql user)")
    assert binaries is not None
    server = MariaDB(*binaries)
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def mariadb_database(mariadb_server: MariaDB) -> str:
    """A database of this run on the private MariaDB, created with the utf8mb4 default an operator would use."""
    return mariadb_server.create_database(f"dsr_test_{secrets.token_hex(4)}")


def fresh_database_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_database" if engine == "postgresql" else "mariadb_database")
    _fresh_tables(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite, PostgreSQL and MariaDB, with empty tables."""
    return fresh_database_url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The shop's own database (tests/systems/shop.py) on each engine: its URL and an engine."""
    from tests.systems.shop import shop_database

    url, engine = shop_database(request.param, request, tmp_path)
    yield url, engine
    engine.dispose()


@pytest.fixture
def sqlite_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The shop's own database on SQLite alone."""
    from tests.systems.shop import shop_database

    url, engine = shop_database("sqlite", request, tmp_path)
    yield url, engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def bot(tmp_path: Path, imap_account: ImapAccount, smtp_server: SmtpServer, sqlite_url: str) -> Iterator[Bot]:
    """The bot configured against a fresh mailbox, the SMTP server and SQLite."""
    harness = Bot(tmp_path, imap_account, smtp_server, sqlite_url)
    yield harness
    harness.close()


@pytest.fixture
def bot_any_db(tmp_path: Path, imap_account: ImapAccount, smtp_server: SmtpServer, db_url: str) -> Iterator[Bot]:
    """As ``bot``, on SQLite, PostgreSQL and MariaDB."""
    harness = Bot(tmp_path, imap_account, smtp_server, db_url)
    yield harness
    harness.close()
