"""The configuration: every mistake is named by its key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dsr_mailbot.config import DEFAULT_OPERATOR_ADDRESSES, load_config
from dsr_mailbot.config.datamap import SqlSystem
from dsr_mailbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
IMAP = '[imap]\nhost = "imap.example.kz"\nusername = "support"\npassword = "pw"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_every_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_IMAP_PASSWORD", "secret")
    monkeypatch.setenv("DSR_SMTP_PASSWORD", "secret too")
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    config = load_config(write(tmp_path, example))
    assert config.imap is not None and config.imap.password == "secret"
    assert config.smtp is not None
    assert config.policy.operator_addresses == DEFAULT_OPERATOR_ADDRESSES


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, IMAP))
    assert config.imap is not None
    assert (config.imap.port, config.imap.security, config.imap.folder) == (993, "ssl", "INBOX")
    assert config.database_url == f"sqlite:///{tmp_path / 'dsr-mailbot.db'}"
    assert config.policy.erasure_delay_days == 30 and config.policy.default_language == "ru"
    assert config.file_delivery is not None and config.file_delivery.directory == tmp_path / "outbox"
    assert config.key_file == tmp_path / "dsr-mailbot.key"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    config = load_config(write(tmp_path, IMAP + '[database]\nurl = "sqlite:///data/bot.db"\n'))
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'bot.db'}"


def test_password_from_file_and_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "imap.secret").write_text("from-file\n", encoding="utf-8")
    base = '[imap]\nhost = "h"\nusername = "u"\n'
    config = load_config(write(tmp_path, base + 'password_file = "imap.secret"\n'))
    assert config.imap is not None and config.imap.password == "from-file"
    monkeypatch.setenv("IMAP_PW", "from-env")
    config = load_config(write(tmp_path, base + 'password_env = "IMAP_PW"\n'))
    assert config.imap is not None and config.imap.password == "from-env"


def test_passwords_never_appear_in_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, IMAP))
    assert "pw" not in repr(config.imap).replace("password", "")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "[imap] or [maildir]"),
        ('[imap]\nhost = "h"\npassword = "p"\n', "[imap] username: missing"),
        ('[imap]\nhost = "h"\nusername = "u"\n', "[imap] password: missing"),
        (IMAP + "port = 'abc'\n", "[imap] port: expected an integer"),
        (IMAP + "port = true\n", "[imap] port: expected an integer"),
        (IMAP + 'security = "tls"\n', "[imap] security: must be one of"),
        (IMAP + 'hots = "typo"\n', "[imap] hots: unknown key"),
        (IMAP + 'password_env = "X"\n', "[imap] password: give only one of"),
        ('[imap]\nhost = "h"\nusername = "u"\npassword_env = "NO_SUCH_VARIABLE_HERE"\n',
         "[imap] password_env: environment variable NO_SUCH_VARIABLE_HERE is not set"),
        ('[imap]\nhost = "h"\nusername = "u"\npassword_file = "missing.secret"\n', "[imap] password_file: cannot read"),
        (IMAP + '[smtp]\nhost = "h"\n', "[smtp] from_address: missing"),
        (IMAP + '[policy]\ndefault_language = "de"\n', "[policy] default_language: must be one of"),
        (IMAP + "[policy]\nerasure_delay_days = -1\n", "[policy] erasure_delay_days: must be at least 0"),
        (IMAP + "[policy]\noperator_addresses = []\n", "[policy] operator_addresses"),
        (IMAP + '[policy]\ntimezone = "Mars/Olympus"\n', "[policy] timezone"),
        (IMAP + '[policy]\ndeadline_profile = "ccpa"\n', "[policy] deadline_profile"),
        (IMAP + '[policy]\ncalendar = "XX"\n', "[policy] calendar"),
        (IMAP + '[policy]\ndigest_time = "25:00"\n', "[policy] digest_time"),
        (IMAP + '[policy]\ncalendar_overrides = "missing.toml"\n', "[policy] calendar_overrides: cannot read"),
        (IMAP + '[policy]\noperator_bin = "12345"\n', "[policy] operator_bin: a BIN is 12 digits"),
        (IMAP + '[policy]\ndata_source = { de = "x" }\n', "[policy] data_source: expected a text"),
        (IMAP + '[policy]\ncross_border = ""\n', "[policy] cross_border: expected a text"),
        (IMAP + '[policy]\nresponsible_person = { name = "A" }\n', "[policy.responsible_person] email: missing"),
        (IMAP + '[[policy.processors]]\nname = "A"\n', '[[policy.processors]] #1 "A" → address: missing'),
        (IMAP + "[policy]\nerasure_delay_days = 31\n", "more than the 30 calendar days"),
        (IMAP + '[policy]\ndeadline_profile = "kz"\nerasure_delay_days = 31\n', "30 calendar days the law allows"),
        (IMAP + '[datbase]\nurl = "x"\n', "[datbase]: unknown section"),
        (IMAP + '[database]\nurl = "mssql://x"\n', None),
        (IMAP + '[maildir]\npath = "m"\n', "exactly one mailbox section"),
        (IMAP + '[smtp]\nhost = "h"\nfrom_address = "a@b"\n[file_delivery]\ndirectory = "o"\n', "only one way"),
        ("[imap\n", "not valid TOML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, named: str | None) -> None:
    if named is None:  # checked when the store is opened, not when the file is read
        from dsr_mailbot.store.database import Store

        config = load_config(write(tmp_path, text))
        with pytest.raises(ConfigError, match="database"):
            Store(config.database_url)
        return
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert named in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "nope.toml")


def test_every_key_the_loader_reads_is_in_the_example() -> None:
    import re
    from typing import get_args

    from pydantic import BaseModel

    from dsr_mailbot.config import Config

    def model_in(annotation: object) -> type[BaseModel] | None:
        models = (t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, BaseModel))
        return next(models, None)

    keys: set[str] = set()
    tables: set[str] = set()
    for name, field in Config.model_fields.items():
        if name in ("path", "systems"):  # not a key; the data map has its own example (README)
            continue
        if name == "mailboxes":  # [[mailboxes]]: the keys of [imap] / [maildir], and these
            keys.update(("name", "kind", "address", "reply_from"))
            tables.add("mailboxes.oauth2")
            continue
        section = model_in(field.annotation)
        assert section is not None
        for key, inner in section.model_fields.items():
            if str(inner.annotation).startswith("tuple[dsr_mailbot"):
                continue  # [[web.operators]]: an array of tables, in the example as its own block
            if model_in(inner.annotation) is not None:
                tables.add(f"{name}.{key}")  # [imap.oauth2]: a table of its own
            else:
                keys.add(key)
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert len(keys) >= 40
    for key in keys:
        assert re.search(rf"^#?\s*{key}(_file|_env)?\s*=", example, re.MULTILINE), key
    assert tables >= {"imap.oauth2", "smtp.oauth2"}
    for table in tables:  # its own [section.key], or an inline table: key = { … }
        outer, inner_key = table.split(".")
        assert re.search(rf"^#?\s*(\[{outer}\.{inner_key}\]|{inner_key}\s*=)", example, re.MULTILINE), table


def test_commented_alternatives_in_the_example_are_valid(tmp_path: Path) -> None:
    """The [maildir], [file_delivery] and [templates] blocks, uncommented, load too."""
    import re

    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    keep: list[str] = []
    collecting = False
    for line in example.splitlines():
        header = re.match(r"^# (\[(?:maildir|file_delivery|templates)\])", line)
        setting = re.match(r"^# (\w+ = \S+)", line)
        if header:
            keep.append(header.group(1))
            collecting = True
        elif collecting and setting:
            keep.append(setting.group(1))
        else:
            collecting = False
    (tmp_path / "templates").mkdir()
    config = load_config(write(tmp_path, "\n".join(keep) + "\n"))
    assert config.maildir is not None and config.file_delivery is not None
    assert config.templates_dir == tmp_path / "templates"


HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
CHEAP = "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
ARGON2I = "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
FIRST_OPTION = "$argon2id$v=19$m=2097152,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def test_the_console_listens_on_loopback_with_no_operators_unless_told(tmp_path: Path) -> None:
    web = load_config(write(tmp_path, IMAP)).web
    assert (web.host, web.port, web.operators) == ("127.0.0.1", 8080, ())
    assert web.allowed_hosts == ("127.0.0.1", "localhost", "::1")


def test_the_hosts_the_console_answers_default_to_its_listen_address_and_localhost(tmp_path: Path) -> None:
    web = load_config(write(tmp_path, IMAP + '[web]\nlisten = "10.0.0.5:8080"\n')).web
    assert web.allowed_hosts == ("10.0.0.5", "127.0.0.1", "localhost", "::1")
    told = load_config(write(tmp_path, IMAP + '[web]\nallowed_hosts = ["DSR.smarthings.kz", "127.0.0.1"]\n')).web
    assert told.allowed_hosts == ("dsr.smarthings.kz", "127.0.0.1")
    assert load_config(write(tmp_path, IMAP + f'[[web.operators]]\nlogin = "a"\npassword_hash = "{FIRST_OPTION}"\n'
                                              )).web.operators[0].login == "a"  # RFC 9106's first option


def test_console_operators_are_read_with_their_hash_and_language(tmp_path: Path) -> None:
    text = IMAP + f"""
[web]
listen = "0.0.0.0:9000"
[[web.operators]]
login = "aigerim"
password_hash = "{HASH}"
language = "kk"
[[web.operators]]
login = "ivan"
password_hash = "{HASH}"
"""
    web = load_config(write(tmp_path, text)).web
    assert (web.host, web.port) == ("0.0.0.0", 9000)
    assert [(o.login, o.language) for o in web.operators] == [("aigerim", "kk"), ("ivan", "ru")]
    assert HASH not in repr(web)  # a hash stays out of logs and tracebacks


@pytest.mark.parametrize(("entry", "message"), [
    ('login = "a"\npassword_hash = "plain-text-password"', "not an Argon2id hash"),
    (f'login = "a"\npassword_hash = "{HASH}"\nlanguage = "de"', "language: must be one of ru, kk, en"),
    (f'login = "a"\npassword_hash = "{HASH}"\nrole = "admin"', "role: unknown key"),
    (f'password_hash = "{HASH}"', "login: missing"),
    (f'login = "a"\npassword_hash = "{HASH}"\n[[web.operators]]\nlogin = "a"\npassword_hash = "{HASH}"',
     "listed twice"),
    # RFC 9106: at least m=64 MiB and t=3, or m=2 GiB; Argon2id only; one cost for every operator.
    (f'login = "a"\npassword_hash = "{CHEAP}"', "a: password_hash is too cheap"),
    (f'login = "a"\npassword_hash = "{ARGON2I}"', "a: password_hash is not an Argon2id hash"),
    (f'login = "a"\npassword_hash = "{HASH}"\n[[web.operators]]\nlogin = "b"\npassword_hash = "{FIRST_OPTION}"',
     "the same Argon2 parameters"),
])
def test_a_wrong_operator_entry_is_named_and_no_password_is_echoed(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(write(tmp_path, IMAP + "[[web.operators]]\n" + entry + "\n"))
    assert "plain-text-password" not in str(refused.value)


@pytest.mark.parametrize("listen", ["8080", "localhost:", "127.0.0.1:99999", "127.0.0.1:http"])
def test_a_console_address_without_a_port_is_refused(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError, match=r"\[web\] listen: expected host:port"):
        load_config(write(tmp_path, IMAP + f'[web]\nlisten = "{listen}"\n'))


def test_the_daemon_serves_health_and_metrics_only_where_told(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, IMAP)).daemon.metrics_listen is None
    told = load_config(write(tmp_path, IMAP + '[daemon]\nmetrics_listen = "127.0.0.1:9464"\n'))
    assert told.daemon.metrics_listen == ("127.0.0.1", 9464)
    with pytest.raises(ConfigError, match=r"\[daemon\] metrics_listen: expected host:port"):
        load_config(write(tmp_path, IMAP + '[daemon]\nmetrics_listen = "9464"\n'))


# The data map ([[systems]]): its shape is checked on load, each mistake named by entry, table and key.

SHOP = """
[[systems]]
kind = "sql"
name = "Shop"
url = "sqlite:///shop.db"
[[systems.tables]]
table = "b_user"
match = "EMAIL"
fields = { email = "EMAIL", phone = "PERSONAL_PHONE", marketing_consent = "UF_NEWS" }
erase = "delete"
[[systems.tables]]
table = "orders"
via = "USER_ID -> b_user.ID"
access = { ID = "Order", PRICE = "Amount" }
erase = { CONTACT_EMAIL = "", CONTACT_PHONE = "" }
"""


def test_without_systems_the_bots_own_store_is_the_one_system(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, IMAP))
    (only,) = config.data_map
    assert only.kind == "builtin" and config.system_label(only) == config.policy.system_name


def test_a_data_map_is_read_with_its_tables_references_and_erasure(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_SECRET", "s3cret")
    text = IMAP + SHOP + '[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "https://mailer.example/dsr"\n' \
                         'secret_env = "MAILER_SECRET"\n'
    shop, mailer = load_config(write(tmp_path, text)).data_map
    assert shop.kind == "sql" and [t.table for t in shop.tables] == ["b_user", "orders"]
    reference = shop.tables[1].reference
    assert reference is not None
    assert (reference.column, reference.table, reference.target) == ("USER_ID", "b_user", "ID")
    assert shop.tables[1].erase == {"CONTACT_EMAIL": "", "CONTACT_PHONE": ""}
    assert mailer.kind == "http" and mailer.secret == "s3cret" and "s3cret" not in repr(mailer)
    assert "sqlite" not in repr(shop)  # the URL may hold a password


@pytest.mark.parametrize(("change", "named"), [
    (('match = "EMAIL"', 'via = "USER_ID -> nowhere.ID"'), '[[systems]] #1 "Shop" → tables #1 → via: nowhere'),
    (('via = "USER_ID -> b_user.ID"', 'via = "USER_ID"'), '[[systems]] #1 "Shop" → tables #2 → via: expected'),
    (('match = "EMAIL"\n', ""), '[[systems]] #1 "Shop" → tables #1 → match: give match'),
    (('erase = "delete"\n', ""), '[[systems]] #1 "Shop" → tables #1 → erase: missing'),
    (("email = ", "emial = "), '[[systems]] #1 "Shop" → tables #1 → fields → emial: must be one of email'),
    (('table = "b_user"', 'table = "b_user; DROP TABLE x"'), "is not a table or column name"),
    (('kind = "sql"', 'kind = "crm"'), '[[systems]] #1 "Shop"'),
    (('url = "sqlite:///shop.db"', 'url_env = "NO_SUCH_VARIABLE_HERE"'),
     '[[systems]] #1 "Shop" → url_env: environment variable NO_SUCH_VARIABLE_HERE is not set'),
])
def test_a_wrong_data_map_is_named_by_entry_table_and_key(tmp_path: Path, change: tuple[str, str],
                                                          named: str) -> None:
    old, new = change
    assert old in SHOP
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, IMAP + SHOP.replace(old, new, 1)))
    assert named in str(refused.value)


@pytest.mark.parametrize(("extra", "named"), [
    ('[[systems]]\nkind = "builtin"\nname = "Bot"\n[policy]\nsystem_name = "Also the bot"\n', "give its name once"),
    ('[[systems]]\nkind = "builtin"\n[[systems]]\nkind = "builtin"\n', "builtin system is listed twice"),
    ('[[systems]]\nkind = "http"\nname = "Shop"\nurl = "https://x.example"\nsecret_env = "HOME"\n',
     "'Shop' is listed twice"),
    ('[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "https://x.example"\nsecret = "inline"\n',
     "secret: give secret_env or secret_file"),
    # The body carries the person's address: in clear only to this machine.
    ('[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "http://mailer.example/dsr"\nsecret_env = "HOME"\n',
     '"Mailer" → url: expected an https:// URL'),
])
def test_systems_are_named_once_and_secrets_stay_out_of_the_file(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, IMAP + SHOP + extra))
    assert named in str(refused.value) and "inline" not in str(refused.value)


def test_a_sqlite_system_in_the_stores_own_file_is_refused(tmp_path: Path) -> None:
    text = IMAP + '[database]\nurl = "sqlite:///bot.db"\n' + SHOP.replace('url = "sqlite:///shop.db"',
                                                                         'url = "sqlite:///bot.db"')
    with pytest.raises(ConfigError, match='"Shop": url: the bot\'s own store'):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("extra", "named"), [
    # A user name in the URL would make a client reach mailer.example.kz, whatever "127.0.0.1" says before it.
    ('[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "http://127.0.0.1:x@mailer.example.kz/dsr"\n'
     'secret_env = "HOME"\n', "no user name or password in it"),
    ('[[systems]]\nkind = "ldap"\nname = "Directory"\n', '[[systems]] #2 "Directory": kind: missing, or not one of'),
    ('[[systems]]\nkind = "builtin"\n[policy]\nsystem_name = "Shop"\n', "'Shop' names two systems"),
])
def test_what_a_newcomer_got_wrong_is_named(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, IMAP + SHOP + extra))
    assert named in str(refused.value)


def test_an_erasure_value_of_another_type_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = IMAP + SHOP.replace('erase = { CONTACT_EMAIL = "", CONTACT_PHONE = "" }', "erase = { PRICE = 1.5 }")
    with pytest.raises(ConfigError, match="erase: expected \"delete\", or a table of column") as refused:
        load_config(write(tmp_path, text))
    assert "1.5" not in str(refused.value)


def test_the_stores_url_may_come_from_the_environment_like_a_password(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_DATABASE_URL", "mysql://dsr:p%40ss@db.example.kz/dsr")
    config = load_config(write(tmp_path, IMAP + '[database]\nurl_env = "DSR_DATABASE_URL"\n'))
    assert config.database_url == "mysql://dsr:p%40ss@db.example.kz/dsr" and "p%40ss" not in repr(config)


def test_the_readmes_data_map_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Data map"):]
    example = section[section.index("```toml\n") + 8:section.index("\n```", section.index("```toml\n"))]
    monkeypatch.setenv("SHOP_DATABASE_URL", "sqlite:///shop.db")
    monkeypatch.setenv("MAILER_SECRET", "s3cret")
    builtin, shop, mailer = load_config(write(tmp_path, IMAP + example)).data_map
    assert (builtin.kind, mailer.kind) == ("builtin", "http") and isinstance(shop, SqlSystem)
    assert shop.tables[0].fields["processing_consent"] == "UF_AGREED" and shop.tables[0].erase == "delete"


def test_calendar_overrides_are_read_into_the_deadline_clock(tmp_path: Path) -> None:
    (tmp_path / "days.toml").write_text('[kz]\ndays_off = [2027-01-04]\nworking_days = ["2027-01-09"]\n')
    config = load_config(write(tmp_path, IMAP + '[policy]\ncalendar_overrides = "days.toml"\n'))
    [kz] = config.policy.clock.overrides
    assert (kz.country, set(kz.days_off), set(kz.working_days)) == ("KZ", {date(2027, 1, 4)}, {date(2027, 1, 9)})
    assert config.policy.calendar is None and config.policy.clock.calendars() == {"ru-152fz": "RU", "kz": "KZ"}
    (tmp_path / "days.toml").write_text('[KZ]\ndays_off = [2027-01-04]\nworking_days = [2027-01-04]\n')
    with pytest.raises(ConfigError, match=r"\[policy\] calendar_overrides: .*both a day off and a working day"):
        load_config(write(tmp_path, IMAP + '[policy]\ncalendar_overrides = "days.toml"\n'))
    assert load_config(write(tmp_path, IMAP + '[policy]\ncalendar = "kz"\n')).policy.clock.calendars() == {
        "ru-152fz": "KZ", "kz": "KZ"}


OAUTH_IMAP = ('[imap]\nhost = "outlook.office365.com"\nusername = "support@smarthings.kz"\nauth = "oauth2"\n'
              '[imap.oauth2]\nprovider = "microsoft"\nclient_id = "app-id"\ntoken_file = "imap.token"\n')


def test_an_oauth2_mailbox_needs_no_password_and_knows_its_providers_endpoints(tmp_path: Path) -> None:
    imap = load_config(write(tmp_path, OAUTH_IMAP)).imap
    assert imap is not None and imap.password is None and imap.oauth2 is not None
    assert imap.oauth2.token_file == tmp_path / "imap.token"
    assert imap.oauth2.token_url() == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert imap.oauth2.scope_for("imap") == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
    assert imap.oauth2.device_url() is not None


def test_the_client_secret_is_read_from_the_environment_and_never_shown(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_OAUTH_SECRET", "s3cret")
    imap = load_config(write(tmp_path, OAUTH_IMAP + 'client_secret_env = "DSR_OAUTH_SECRET"\n')).imap
    assert imap is not None and imap.oauth2 is not None and imap.oauth2.client_secret == "s3cret"
    assert "s3cret" not in repr(imap)


@pytest.mark.parametrize(("text", "message"), [
    (OAUTH_IMAP.split("[imap.oauth2]")[0], r'\[imap\] oauth2: missing: auth = "oauth2" needs its table'),
    (IMAP + '[imap.oauth2]\nprovider = "google"\nclient_id = "a"\ntoken_file = "t"\n',
     r'\[imap\] auth: is "password", but an oauth2 table is given'),
    (OAUTH_IMAP.replace('"microsoft"', '"generic"'), r"\[imap.oauth2\] token_endpoint: missing"),
    (OAUTH_IMAP + 'token_endpoint = "http://login.example.kz/token"\n',
     r"\[imap.oauth2\] token_endpoint: expected an https:// URL"),
    (OAUTH_IMAP.replace('"microsoft"', '"facebook"'),
     r"\[imap.oauth2\] provider: must be one of microsoft, google, yandex, generic"),
    (OAUTH_IMAP + '[smtp]\nhost = "smtp.office365.com"\nfrom_address = "support@smarthings.kz"\nauth = "oauth2"\n'
                  '[smtp.oauth2]\nprovider = "microsoft"\nclient_id = "a"\ntoken_file = "s"\n',
     r'\[smtp\] username: missing: auth = "oauth2" logs in as this mailbox'),
    # The SASL strings separate their fields by ^A (XOAUTH2, OAUTHBEARER): a username holding one would add fields.
    (OAUTH_IMAP.replace('"support@smarthings.kz"', '"support@smarthings.kz\\u0001auth=Bearer x"'),
     r"\[imap\] username: .*control character"),
    (OAUTH_IMAP + '[smtp]\nhost = "smtp.office365.com"\nfrom_address = "support@smarthings.kz"\nauth = "oauth2"\n'
                  'username = "support@smarthings.kz\\n"\n'
                  '[smtp.oauth2]\nprovider = "microsoft"\nclient_id = "a"\ntoken_file = "s"\n',
     r"\[smtp\] username: .*control character"),
])
def test_oauth2_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def mailbox_entry(name: str, username: str, extra: str = "") -> str:
    return (f'[[mailboxes]]\nname = "{name}"\nkind = "imap"\nhost = "imap.example.kz"\nusername = "{username}"\n'
            f'password = "pw"\n{extra}')


def test_several_mailboxes_each_with_its_own_cursor_and_reply_address(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, mailbox_entry("support", "support@smarthings.kz")
                               + mailbox_entry("typo", "support@smarththings.kz", 'reply_from = "a@smarthings.kz"\n')
                               + '[[mailboxes]]\nname = "local"\nkind = "maildir"\npath = "mail"\n'))
    support, typo, local = config.mailbox_list
    assert (support.reply_from, typo.reply_from, local.reply_from) == ("support@smarthings.kz", "a@smarthings.kz",
                                                                        None)
    assert config.reply_from_for(local.source_name) == config.reply_from  # no address of its own: the default
    assert config.reply_from_for(typo.source_name) == "a@smarthings.kz"
    view = config.for_mailbox(typo)
    assert view.imap is not None and view.imap.username == "support@smarththings.kz"
    assert view.source_name == "imap://support@smarththings.kz@imap.example.kz:993/INBOX"
    assert config.source_name.startswith("mailboxes ")  # the run lock's name covers them all
    assert local.maildir is not None and local.maildir.path == tmp_path / "mail"


@pytest.mark.parametrize(("text", "message"), [
    (mailbox_entry("a", "x@smarthings.kz") + mailbox_entry("a", "y@smarthings.kz"),
     "the name 'a' is given twice"),
    (mailbox_entry("a", "x@smarthings.kz") + mailbox_entry("b", "x@smarthings.kz"),
     '"b": the same account and folder as "a"'),
    (mailbox_entry("a", "x@smarthings.kz", 'address = "not an address"\n'),
     r'\[\[mailboxes\]\] #1 "a" → address: expected an e-mail address'),
    (mailbox_entry("a", "x@smarthings.kz").replace('kind = "imap"', 'kind = "pop3"'), r"\[\[mailboxes\]\] #1"),
    (mailbox_entry("a", "x@smarthings.kz", 'auth = "oauth2"\n[mailboxes.oauth2]\nprovider = "google"\n'),
     r'\[\[mailboxes\]\] #1 "a" → oauth2 → client_id: missing'),
    (IMAP + mailbox_entry("a", "x@smarthings.kz"), "give the mailboxes one way, not both"),
])
def test_mailbox_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("server", "address"), [
    ("192.0.2.53", ("192.0.2.53", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("[2001:db8::53]:53", ("2001:db8::53", 53)), ("[::1]", ("::1", 53)), ("2001:db8::53", ("2001:db8::53", 53)),
])
def test_check_nameservers_are_addresses_with_an_optional_port(tmp_path: Path, server: str,
                                                                address: tuple[str, int]) -> None:
    from dsr_mailbot.deployment.dns import resolver_for

    config = load_config(write(tmp_path, IMAP + f'[check]\nnameservers = ["{server}"]\n'))
    nameserver = resolver_for(config.check.nameservers).nameservers[0]
    assert (nameserver.address, nameserver.port) == address


@pytest.mark.parametrize("server", ["127.0.0.1:abc", "ns1.smarthings.kz", "[::1", "127.0.0.1:70000", "[::1]x"])
def test_a_check_nameserver_that_is_not_an_address_is_named(tmp_path: Path, server: str) -> None:
    # Before the first query: a name (dnspython asks no resolver for it) or a wrong port is a mistake, not an outage.
    with pytest.raises(ConfigError, match=r"check\.nameservers\]* #1: .* is not an address"):
        load_config(write(tmp_path, IMAP + f'[check]\nnameservers = ["{server}"]\n'))


def test_a_configured_endpoint_is_taken_as_written_braces_and_all(tmp_path: Path) -> None:
    imap = load_config(write(tmp_path, OAUTH_IMAP + 'token_endpoint = "https://login.example.kz/{tenant}/token"\n')).imap
    assert imap is not None and imap.oauth2 is not None
    assert imap.oauth2.token_url() == "https://login.example.kz/{tenant}/token"
    assert imap.oauth2.authorization_url() == "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
