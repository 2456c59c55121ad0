"""A campaign across the data map: the shop's own tables are the recipients when the bot's store is not a system."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, update
from sqlmodel import select

from dsr_mailbot.lifecycle.base import KEPT_ON_CLOSE
from dsr_mailbot.lifecycle.systems import transient_person
from dsr_mailbot.replies.send import drain_outbox
from dsr_mailbot.service.app import build_services
from dsr_mailbot.service.campaign import queue_campaign
from dsr_mailbot.store.erasure import erase_user
from dsr_mailbot.store.models import CampaignNotice, NoticeState, OutboxState, Request, utcnow
from dsr_mailbot.store.notices import purpose_of, system_recipient_key
from tests.harness import Bot
from tests.systems.shop import B_USER, NEWSLETTER, shop_database

SHOP_MAP = """
[[systems]]
kind = "sql"
name = "Shop"
url = "{url}"
[[systems.tables]]
table = "b_user"
match = "EMAIL"
fields = {{ email = "EMAIL", processing_consent = "UF_AGREED" }}
erase = "delete"
[[systems.tables]]
table = "newsletter"
match = "ADDR"
fields = {{ email = "ADDR", marketing_consent = "ACTIVE" }}
erase = "delete"
"""


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url, engine = shop_database(request.param, request, tmp_path)
    with engine.begin() as conn:  # Pável withdrew in the shop itself; his newsletter row went with it
        conn.execute(update(B_USER).where(B_USER.c.ID == 2).values(UF_AGREED=False))
        conn.execute(delete(NEWSLETTER).where(NEWSLETTER.c.ID == 2))
    yield url, engine
    engine.dispose()


def test_notify_reaches_each_address_of_the_shop_once_and_not_who_withdrew(bot: Bot,
                                                                          shop: tuple[str, Engine]) -> None:
    url, _engine = shop
    bot.write_config(extra=SHOP_MAP.format(url=url))
    bot.add_user("only.in.the.bot@example.kz")  # the bot's own store is not in this data map: not a recipient
    with bot.store.transaction() as session:  # Anna withdrew by e-mail; the shop has not caught up yet
        session.add(Request(message_ref="r", source="x", uidvalidity=1, uid=1, kind="withdraw", intents=["withdraw"],
                            state="completed", language="kk", received_at=utcnow(), due_at=utcnow(),
                            subject_ref=bot.keyring.subject_ref("anna@xn--e1afmkfd.kz")))

    dry = bot.cli("notify", "--template", "policy-change", "--campaign", "c1", "--dry-run")
    assert dry.returncode == 0 and "2 user(s) would receive" in dry.stdout  # Pavel (twice in the shop), Anna
    sent = bot.cli("notify", "--template", "policy-change", "--campaign", "c1")
    assert sent.returncode == 0, sent.stderr

    assert Counter(m.rcpt_tos[0] for m in bot.smtp.messages) == {"pavel.k@example.com": 1}
    notices = {row.recipient: row for row in bot.outbox() if row.purpose == purpose_of("c1")}
    assert (notices["anna@xn--e1afmkfd.kz"].state, notices["anna@xn--e1afmkfd.kz"].last_error) == (
        OutboxState.FAILED, "consent withdrawn")
    again = bot.cli("notify", "--template", "policy-change", "--campaign", "c1")
    assert again.returncode == 0 and "0 queued now" in again.stdout and len(bot.smtp.messages) == 1


def test_a_shop_customer_erased_before_their_notice_is_written_gets_none_and_their_address_is_not_kept(
        bot: Bot, shop: tuple[str, Engine]) -> None:
    url, _engine = shop
    bot.write_config(extra=SHOP_MAP.format(url=url))
    services = build_services(bot.config, bot.store)
    assert queue_campaign(services, "c2", "policy_change").queued == 2  # Pavel and Anna, as addresses

    with bot.store.transaction() as session:  # Pavel's withdrawal is carried out: someone only the shop knew
        erase_user(session, bot.keyring, transient_person("pavel.k@example.com"), now=utcnow(),
                   actions_kept=KEPT_ON_CLOSE)
    with bot.store.transaction() as session:
        rows = {n.recipient_key: n for n in session.exec(select(CampaignNotice)).all()}
    pavel = rows[system_recipient_key(bot.keyring, "pavel.k@example.com")]
    assert (pavel.state, pavel.address) == (NoticeState.DROPPED, None)
    assert [n.address for n in rows.values() if n.state == NoticeState.QUEUED] == ["anna@xn--e1afmkfd.kz"]

    drain_outbox(bot.store, services.transport, services.config.reply_from, notice_check=services.notice_check)
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["anna@xn--e1afmkfd.kz"]]


def test_a_shop_customer_who_becomes_a_user_of_the_bot_is_not_notified_twice_by_a_rerun(
        bot: Bot, shop: tuple[str, Engine]) -> None:
    url, _engine = shop
    bot.write_config(extra='[[systems]]\nkind = "builtin"\n' + SHOP_MAP.format(url=url))
    assert bot.cli("notify", "--template", "policy-change", "--campaign", "c3").returncode == 0
    bot.add_user("pavel.k@example.com")  # he writes to the bot and becomes one of its users

    again = bot.cli("notify", "--template", "policy-change", "--campaign", "c3")

    assert again.returncode == 0 and "1 queued now; 0 sent now" in again.stdout, again.stdout
    assert Counter(m.rcpt_tos[0] for m in bot.smtp.messages)["pavel.k@example.com"] == 1
