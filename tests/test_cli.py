"""The command-line contract: names, formats and exit codes that scripts outside the repository rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import Bot, mail
from tests.servers import free_port

HEADER = "email,phone,surname,first_name,patronymic,marketing_consent\n"


def test_db_init_import_export(bot: Bot, tmp_path: Path) -> None:
    good = tmp_path / "users.csv"
    good.write_text(HEADER + "ivan@example.ru,8 701 765 43 21,Петров,Иван,Сергеевич,true\n", encoding="utf-8")

    assert bot.cli("db", "init").returncode == 0
    imported = bot.cli("users", "import", str(good))
    exported = bot.cli("users", "export", "--format", "json")

    assert imported.returncode == 0, imported.stderr
    assert "imported 1 user(s)" in imported.stdout
    assert exported.returncode == 0
    [user] = json.loads(exported.stdout)
    assert user["email"] == "ivan@example.ru" and user["phone"] == "+77017654321"
    assert user["marketing_consent"] is True and user["processing_consent"] is True


def test_a_bad_file_is_reported_by_line_and_nothing_is_imported(bot: Bot, tmp_path: Path) -> None:
    bad = tmp_path / "users.csv"
    bad.write_text(HEADER + "a@example.kz,,,,,true\nbroken,,,,,true\nb@example.kz,123,,,,true\n", encoding="utf-8")

    result = bot.cli("users", "import", str(bad))

    assert result.returncode == 65
    assert "line 3: email" in result.stderr and "line 4: phone" in result.stderr
    assert "nothing imported" in result.stderr
    assert json.loads(bot.cli("users", "export", "--format", "json").stdout) == []


def test_a_file_with_more_problems_than_are_listed_says_how_many_more(bot: Bot, tmp_path: Path) -> None:
    bad = tmp_path / "users.csv"
    bad.write_text(HEADER + "a@example.kz,,,,,true\n" + "broken,,,,,true\n" * 1_004, encoding="utf-8")

    result = bot.cli("users", "import", str(bad))

    assert result.returncode == 65
    lines = result.stderr.splitlines()
    assert len(lines) == 1_002 and lines[999] == f"{bad}: line 1002: email: missing or not a valid address"
    assert lines[-2:] == [f"{bad}: and 4 more problem(s), not listed",
                          "dsr-mailbot: 1004 problem(s) in the file; nothing imported"]


def test_run_once_then_requests_list(bot: Bot) -> None:
    bot.add_user("ivan@example.ru", marketing_consent=True)
    bot.account.append(mail("ivan@example.ru", "Отписаться"))

    run = bot.cli("run", "--once")
    listed = bot.cli("requests", "list", "--format", "json")
    table = bot.cli("requests", "list", "--format", "table")

    assert run.returncode == 0, run.stderr
    assert "1 request(s) (1 completed)" in run.stdout
    [row] = json.loads(listed.stdout)
    assert {"id", "kind", "state", "received_at", "due_at", "language", "message_id"} <= set(row)
    assert (row["kind"], row["state"], row["language"]) == ("optout", "completed", "ru")
    assert "optout" in table.stdout
    quiet = bot.cli("run", "--once", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (0, "")


def test_smtp_down_exits_75_with_one_line(bot: Bot) -> None:
    bot.add_user("ivan@example.ru")
    bot.account.append(mail("ivan@example.ru", "Unsubscribe"))
    bot.write_config(smtp_port=free_port())

    result = bot.cli("run", "--once")

    assert result.returncode == 75
    assert result.stderr.count("\n") == 1 and "will retry next run" in result.stderr


def test_imap_unreachable_exits_75(bot: Bot) -> None:
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace(f"port = {bot.account.port}", f"port = {free_port()}"),
        encoding="utf-8",
    )
    result = bot.cli("run", "--once")
    assert result.returncode == 75 and result.stderr.count("\n") == 1, result.stderr


def test_wrong_imap_password_exits_78_naming_the_keys(bot: Bot) -> None:
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace(bot.account.password, "wrong"), encoding="utf-8"
    )
    result = bot.cli("run", "--once")
    assert result.returncode == 78
    assert "[imap] username/password" in result.stderr and "wrong" not in result.stderr


def test_bad_configuration_exits_78_naming_the_key(bot: Bot) -> None:
    bot.write_config(extra="colour = 'blue'\n")
    result = bot.cli("run", "--once")
    assert result.returncode == 78
    assert result.stderr.strip() == "dsr-mailbot: configuration: [policy] colour: unknown key"


def test_uninitialised_database_exits_78(bot: Bot, tmp_path: Path) -> None:
    bot.db_url = f"sqlite:///{tmp_path / 'empty.db'}"
    bot.write_config()
    result = bot.cli("run", "--once")
    assert result.returncode == 78 and "dsr-mailbot db init" in result.stderr



def test_a_second_cron_run_exits_0_while_the_first_holds_the_lock(bot_any_db: Bot) -> None:
    """A file lock beside SQLite, a PostgreSQL advisory lock: either way the second run leaves at once."""
    from dsr_mailbot.service.locks import run_lock_for

    bot = bot_any_db
    bot.add_user("ivan@example.ru", marketing_consent=True)
    bot.account.append(mail("ivan@example.ru", "Unsubscribe"))
    config = bot.config
    lock = run_lock_for(bot.store, config.source_name)
    assert lock.try_acquire()
    try:
        second = bot.cli("run", "--once")
    finally:
        lock.release()
    assert second.returncode == 0 and second.stdout == ""
    assert second.stderr.count("\n") == 1 and "another run holds the mailbox" in second.stderr
    assert bot.requests() == []
    assert bot.cli("run", "--once").returncode == 0 and len(bot.requests()) == 1


def test_requests_overdue_lists_late_and_soon_due_requests_and_exits_1_when_one_is_late(bot: Bot) -> None:
    """Requests appended with an old INTERNALDATE: their clock started then, and runs while they wait."""
    from datetime import timedelta

    from dsr_mailbot.store.models import utcnow

    bot.add_user("ivan@example.ru", phone="+77011112233")
    conflicting = "Телефон: 8 701 765 43 21\nТелефон: 8 701 000 00 00"  # goes to review and stays open
    bot.account.append(mail("ivan@example.ru", "Обновление персональных данных", conflicting),
                       arrived=utcnow() - timedelta(days=20))
    bot.account.append(mail("ivan@example.ru", "Personal data update", conflicting))  # received now
    bot.run()
    late, fresh = bot.requests()
    assert (late.state, fresh.state) == ("review", "review")

    listed = bot.cli("requests", "overdue", "--within", "10", "--format", "json")
    quiet = bot.cli("requests", "overdue", "--within", "0")

    assert listed.returncode == 1, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["late"]) for r in rows] == [(late.id, True), (fresh.id, False)]
    assert rows[0]["due_at"].endswith("+05:00") and "ivan" not in listed.stdout  # local time, no personal data
    assert quiet.returncode == 1 and "1 late, 0 due" in quiet.stdout


def test_audit_export_is_one_json_object_per_line_with_stable_fields_and_no_personal_data(bot_any_db: Bot) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from tests.harness import authenticated

    bot = bot_any_db
    ivan = "ivan.petrov@example.ru"
    bot.add_user(ivan, phone="+77011112233", surname="Петров", first_name="Иван", marketing_consent=True)
    bot.account.append(authenticated(mail(f"Иван Петров <{ivan}>", "Обновление персональных данных",
                                          "Телефон: 8 701 999 88 77\nИ отпишите меня от рассылки.")))
    bot.run()

    exported = bot.cli("audit", "export", "--format", "jsonl")

    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {tuple(sorted(line)) for line in lines} == {
        ("actor", "at", "chain_hash", "detail", "event", "id", "request_id", "subject_ref")}
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert all(datetime.fromisoformat(line["at"]).utcoffset() == timedelta(0) for line in lines)
    names = [line["event"] for line in lines]
    for step in ("request_received", "request_read", "request_completed", "reply_sent"):
        assert step in names
    [read] = [line for line in lines if line["event"] == "request_read"]
    assert read["detail"]["intents"] == ["update", "optout"] and read["subject_ref"] == bot.keyring.subject_ref(ivan)
    [sent] = [line for line in lines if line["event"] == "reply_sent"]
    assert sent["subject_ref"] == read["subject_ref"]  # written without one: the request's person's hash
    for personal in (ivan, "ivan.petrov", "77011112233", "77019998877", "Петров", "Иван"):
        assert personal not in exported.stdout
    # The export carries the chain's hashes: a copy kept apart anchors the trail against a later rewrite.
    hashes = [line["chain_hash"] for line in lines]
    assert len(set(hashes)) == len(hashes) and all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    verified = bot.cli("audit", "verify")
    assert verified.returncode == 0 and f"up to event #{lines[-1]['id']} ({hashes[-1][:16]}" in verified.stdout
    # Whoever rewrites an event in the database is named by the next run of `audit verify`.
    from sqlalchemy import text

    with bot.store.transaction() as session:
        session.execute(text("UPDATE audit_events SET event = 'request_rejected' WHERE id = :id"),
                        {"id": read["id"]})
    broken = bot.cli("audit", "verify")
    assert broken.returncode == 1 and f"audit trail broken at event #{read['id']}" in broken.stderr

    local_now = datetime.now(ZoneInfo(bot.config.policy.timezone))  # --since counts in [policy] timezone
    tomorrow = (local_now + timedelta(days=1)).strftime("%Y-%m-%d")
    assert bot.cli("audit", "export", "--since", tomorrow).stdout == ""
    today = local_now.strftime("%Y-%m-%d")
    assert len(bot.cli("audit", "export", "--since", today).stdout.splitlines()) == len(lines)


def test_web_hash_password_prints_an_argon2id_hash_of_the_line_on_stdin(tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    made = subprocess.run([sys.executable, "-m", "dsr_mailbot", "web", "hash-password"], input="пароль 1\n",
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    empty = subprocess.run([sys.executable, "-m", "dsr_mailbot", "web", "hash-password"], input="\n",
                           capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)

    assert made.returncode == 0 and made.stdout.startswith("$argon2id$")
    assert PasswordHasher().verify(made.stdout.strip(), "пароль 1")
    assert "пароль" not in made.stdout + made.stderr
    assert empty.returncode == 64 and "no password" in empty.stderr  # EX_USAGE, as every usage error


def test_every_file_the_bot_creates_is_private_whatever_the_umask(bot: Bot, tmp_path: Path) -> None:
    """Run from cron with umask 022: the store, its WAL, the replies, the act and the key are still 0600."""
    import os
    import stat

    home = tmp_path / "state"
    home.mkdir()
    config = home / "config.toml"
    config.write_text(f"""
[imap]
host = "127.0.0.1"
port = {bot.account.port}
security = "none"
username = "{bot.account.username}"
password = "{bot.account.password}"

[file_delivery]
directory = "outbox"

[database]
url = "sqlite:///store.db"

[trust]
verification = "never"

[policy]
erasure_delay_days = 0
""", encoding="utf-8")
    users = home / "users.csv"
    users.write_text(HEADER + "ivan@example.ru,8 701 765 43 21,Петров,Иван,Сергеевич,true\n", encoding="utf-8")
    os.chmod(users, 0o600)

    def cron(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(config), *args], cwd=home,
                              capture_output=True, text=True, timeout=120, check=False,
                              preexec_fn=lambda: os.umask(0o022))  # the umask cron gives
        assert done.returncode == 0, done.stderr

    seen: set[str] = set()

    def all_private() -> None:
        for path in (p for p in home.rglob("*") if p.is_file() and p not in (config, users)):
            seen.add(path.relative_to(home).as_posix())
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path.name, oct(path.stat().st_mode))

    cron("db", "init")
    cron("users", "import", str(users))
    all_private()
    bot.account.append(mail("ivan@example.ru", "Отзыв согласия на обработку персональных данных"))
    cron("run", "--once")  # the withdrawal and its reply, written to a file
    all_private()
    cron("run", "--once")  # the erasure, its act; the person's files go
    all_private()

    assert {"store.db", "dsr-mailbot.key", "acts/act-1.json"} <= seen, seen
    assert any(name.startswith("outbox/") for name in seen), seen
    assert not list((home / "outbox").glob("*.eml"))  # erased: his replies are gone from the folder too



def _with_stderr_on_a_terminal(bot: Bot, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal, as an operator at a shell has it: (code, stdout, terminal)."""
    import os
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "dsr_mailbot", "-c", str(bot.config_path), *args],
                               stdout=subprocess.PIPE, stderr=slave, cwd=bot.dir)
    os.close(slave)
    out, _ = process.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return process.returncode, out.decode(), seen.decode("utf-8", "replace")


def test_long_jobs_show_progress_on_a_terminal_and_nothing_elsewhere(bot: Bot, tmp_path: Path) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("email,phone,surname,first_name,patronymic,marketing_consent\n"
                        + "".join(f"u{n}@example.kz,,,,,true\n" for n in range(2000)), encoding="utf-8")
    for n in range(5):
        bot.account.append(mail(f"u{n}@example.kz", "Unsubscribe"))

    code, out, terminal = _with_stderr_on_a_terminal(bot, "users", "import", str(csv_file))
    assert code == 0 and out == "imported 2000 user(s); 0 already present, left unchanged\n"
    assert "checking rows" in terminal and "importing users" in terminal
    code, out, terminal = _with_stderr_on_a_terminal(bot, "run", "--once")
    assert code == 0 and out.startswith("scanned 5 new message(s)") and "messages scanned" in terminal
    code, out, terminal = _with_stderr_on_a_terminal(bot, "audit", "export")
    assert code == 0 and "exporting events" in terminal and "exporting" not in out

    piped = bot.cli("audit", "export")  # cron, a pipe, a log: no progress at all
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == out
