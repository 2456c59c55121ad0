"""``dsr-mailbot demo``: the whole job on embedded defaults, in one directory.

Builds a SQLite store with sample users, a local Maildir standing in for the
support mailbox (requests in three languages mixed with ordinary support
mail), and runs the bot:

1. requests that the operator's mail server authenticated (a trusted
   ``Authentication-Results: mx.smarthings.kz; dmarc=pass``) are applied at
   once; an unauthenticated withdrawal waits for confirmation, and the person
   gets a challenge at the address on file;
2. the person replies to the challenge (the demo writes that reply into the
   Maildir), and the next run applies the withdrawal;
3. a third run finds nothing to do.

It prints the requests and their states, the user records after the runs,
the replies (as .eml files, since no SMTP server is configured), and the
ordinary mail left untouched.  The directory doubles as a starting point:
its ``config.toml`` is a working configuration.
"""

from __future__ import annotations

import email
import shutil
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dsr_mailbot.config import load_config
from dsr_mailbot.mailbox.maildir import ensure_maildir
from dsr_mailbot.service.app import run_once_from_config
from dsr_mailbot.shown import shown_time
from dsr_mailbot.store.database import Store, all_requests
from dsr_mailbot.store.models import utcnow
from dsr_mailbot.store.users import export_users, import_users, read_users_csv

MARKER = ".dsr-demo"
SUPPORT = "support@smarthings.kz"

DEMO_CONFIG = """\
# A working configuration for the demo: a local Maildir instead of IMAP,
# replies written as .eml files instead of sent over SMTP, SQLite.
# See config.example.toml in the repository for every key.

[maildir]
path = "mail/support"
processed_folder = "DSR-Processed"

[file_delivery]
directory = "outbox"

[database]
url = "sqlite:///dsr-mailbot.db"

[trust]
authserv_id = "mx.smarthings.kz"
verification = "auto"

[policy]
default_language = "ru"
erasure_delay_days = 30
operator_addresses = ["support@smarthings.kz", "support@smarththings.kz"]
"""

SAMPLE_USERS_CSV = """\
email,phone,surname,first_name,patronymic,marketing_consent
aigerim.n@example.kz,+77011112233,Нурланова,Айгерим,Серикқызы,true
ivan.petrov@example.ru,+79161234567,Петров,Иван,Сергеевич,true
dana.k@example.kz,87055554433,Касымова,Дана,Ержановна,true
john.smith@example.com,+77770001122,Smith,John,,true
olga.s@example.kz,+77012223344,Сидорова,Ольга,Павловна,false
"""


def _message(sender: str, subject: str, body: str, html: bool = False, dmarc: str | None = None,
             in_reply_to: str | None = None, **extra: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    domain = sender.rsplit("@", 1)[-1].rstrip(">")
    if dmarc:
        # What the operator's mail server adds on arrival, above its own Received line.
        msg["Authentication-Results"] = f"mx.smarthings.kz; dmarc={dmarc} header.from={domain}"
    msg["Received"] = f"from mail.{domain} by mx.smarthings.kz with ESMTPS; {format_datetime(utcnow())}"
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain="demo.example")
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    for name, value in extra.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body, subtype="html" if html else "plain")
    return msg.as_bytes()


def sample_messages() -> list[tuple[str, bytes]]:
    """(label, message) pairs: the demo's inbox, requests and ordinary mail mixed."""
    return [
        ("update, Russian", _message(
            "Иван Петров <ivan.petrov@example.ru>", "Обновление персональных данных",
            "Здравствуйте!\n\nПрошу обновить мои данные:\nТелефон: 8 (916) 765-43-21\n"
            "ФИО: Петров Иван Сергеевич\n\nСпасибо.\n", dmarc="pass")),
        ("question about an order", _message(
            "Buyer <buyer@example.org>", "Где мой заказ №1042?",
            "Добрый день, заказ оплачен неделю назад, когда доставка?\n")),
        ("withdrawal, Kazakh", _message(
            "Айгерим <aigerim.n@example.kz>",
            "Дербес деректерді өңдеуге келісімді кері қайтарып алу",
            "Сәлеметсіз бе! Дербес деректерімді өңдеуге келісімімді қайтарып аламын.\n")),
        ("opt-out, English", _message(
            "John Smith <john.smith@example.com>", "Unsubscribe",
            "Please stop sending me newsletters.\n")),
        ("HTML-only update, reply to an old thread", _message(
            "Dana <dana.k@example.kz>", "RE: Обновление персональных данных",
            "<html><body><div>Новый номер:</div><div>Телефон: +7 (707) 123-45-67</div>"
            "<div class=\"gmail_quote\">12.03.2025, 10:15, support@smarthings.kz:"
            "<blockquote>Телефон: +7 700 000 00 00</blockquote></div></body></html>",
            html=True, dmarc="pass")),
        ("delivery complaint", _message(
            "Client <client@example.net>", "Re: Доставка",
            "Курьер не приехал.\n\n> Здравствуйте, ваш заказ передан курьеру.\n")),
        ("update from an unknown address", _message(
            "Stranger <stranger@example.org>", "Personal data update", "Phone: +7 701 999 88 77\n")),
        ("update with an invalid phone", _message(
            "Olga <olga.s@example.kz>", "Обновление персональных данных", "Телефон: 12345\n")),
        ("access request, Russian", _message(
            "Ольга <olga.s@example.kz>", "Запрос на доступ к персональным данным",
            "Здравствуйте! Какие персональные данные вы храните обо мне?\n", dmarc="pass")),
        ("question about the processing, English", _message(
            "John Smith <john.smith@example.com>", "Question about the processing of personal data",
            "Hello, do you pass my phone number to the courier company?\n", dmarc="pass")),
        ("supplier newsletter", _message(
            "Supplier <news@supplier.example>", "Новинки сезона",
            "Каталог новинок во вложении.\n", List_Id="<news.supplier.example>")),
    ]


def build_demo(directory: Path) -> Path:
    """Create the demo directory from scratch; return its config path."""
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            raise SystemExit(f"dsr-mailbot demo: {directory} exists and is not a demo directory")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by dsr-mailbot demo\n", encoding="utf-8")
    config_path = directory / "config.toml"
    config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    config = load_config(config_path)
    assert config.maildir is not None
    ensure_maildir(config.maildir.path)
    for index, (_label, data) in enumerate(sample_messages()):
        _deliver(config.maildir.path, f"1700000{index:03d}.M{index}P1.demo", data)
    store = config.open_store()
    store.init_schema()
    import_users(store, read_users_csv(SAMPLE_USERS_CSV), actor="demo")
    store.dispose()
    return config_path


def _deliver(maildir: Path, name: str, data: bytes) -> None:
    tmp = maildir / "tmp" / name
    tmp.write_bytes(data)
    tmp.replace(maildir / "new" / name)


def _answer_challenges(outbox: Path, maildir: Path) -> int:
    """Play the people who reply to their challenges: one plain reply each, from the address written to."""
    answered = 0
    for path in sorted(outbox.glob("*.eml")):
        challenge = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        if "[DSR-" not in str(challenge["Subject"]):
            continue  # not a challenge: its subject carries no token
        reply = _message(str(challenge["To"]), f"Re: {challenge['Subject']}", "Да, подтверждаю.\n",
                         in_reply_to=str(challenge["Message-ID"]))
        _deliver(maildir, f"1800000{answered:03d}.R{answered}P1.demo", reply)
        answered += 1
    return answered


def _requests_table(store: Store, title: str, zone: str) -> Table:
    table = Table("id", "kind", "language", "received", "state", "outcome / reason", title=title)
    with store.transaction() as session:
        for r in all_requests(session):
            table.add_row(str(r.id), r.kind, r.language, shown_time(r.received_at, zone), r.state,
                          r.outcome or r.reason or "")
    return table


def run_demo(directory: Path, console: Console | None = None) -> None:
    console = console or Console()
    config_path = build_demo(directory)
    config = load_config(config_path)
    assert config.maildir is not None and config.file_delivery is not None
    inbox_before = sorted(p.name for p in (config.maildir.path / "new").iterdir())
    store = config.open_store()

    report = run_once_from_config(config, store)
    console.print(f"[bold]Run 1:[/bold] {report.summary()}")
    zone = config.policy.timezone
    console.print(_requests_table(store, "Requests after run 1", zone))
    answered = _answer_challenges(config.file_delivery.directory, config.maildir.path)
    console.print(f"{answered} person(s) replied to the confirmation challenge they got at the address on file.")
    report = run_once_from_config(config, store)
    console.print(f"[bold]Run 2:[/bold] {report.summary()}")
    console.print(_requests_table(store, "Requests after run 2", zone))

    users = Table("email", "phone", "name", "marketing", "processing", "erasure due", title="Users after the runs")
    for u in export_users(store):
        name = " ".join(filter(None, (u["surname"], u["first_name"], u["patronymic"])))
        users.add_row(u["email"], u["phone"] or "", name, str(u["marketing_consent"]),
                      str(u["processing_consent"]), (u["erasure_due_at"] or "")[:10])
    console.print(users)

    inbox_after = sorted(p.name for p in (config.maildir.path / "new").iterdir())
    untouched = [n for n in inbox_before if n in inbox_after]
    console.print(f"Ordinary mail left untouched in {config.maildir.path / 'new'}: {len(untouched)} message(s)")
    outbox = sorted(config.file_delivery.directory.glob("*.eml"))
    console.print(f"Replies written to {config.file_delivery.directory}: {len(outbox)} .eml file(s)")
    for path in outbox:
        console.print(f"  {path}")
    again = run_once_from_config(config, store)
    console.print(f"[bold]Run 3:[/bold] {again.summary()}")
    console.print(f"Configuration used: {config_path} (run it yourself: dsr-mailbot -c {config_path} run --once)")
    store.dispose()
