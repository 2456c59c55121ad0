"""The operator's daily digest: late and soon-due requests, to every operator address, once a day, no personal data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.digest import queue_digest
from dsr_mailbot.service.app import build_services
from dsr_mailbot.service.daemon import Daemon
from dsr_mailbot.store.models import utcnow
from tests.harness import Bot, mail

IVAN = "ivan@example.ru"
CONFLICTING = "Телефон: 8 701 765 43 21\nТелефон: 8 701 000 00 00"  # review: open until a person decides


def services_of(bot: Bot) -> Services:
    return build_services(bot.config, bot.store)


def test_the_digest_lists_late_and_soon_due_requests_once_a_day_without_personal_data(bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(mail(IVAN, "Обновление персональных данных", CONFLICTING), arrived=utcnow() - timedelta(days=20))
    bot.account.append(mail(IVAN, "Personal data update", CONFLICTING))
    bot.run()
    late, fresh = bot.requests()
    services = services_of(bot)

    with bot.store.transaction() as session:
        assert queue_digest(session, services.config, services.keyring, utcnow()) == 2
    with bot.store.transaction() as session:
        assert queue_digest(session, services.config, services.keyring, utcnow()) == 0  # once a day
    bot.run()  # sends what is queued

    digests = [m for m in bot.replies() if str(m["Subject"]).startswith("DSR digest")]
    assert sorted(str(m["To"]) for m in digests) == ["support@smarthings.kz", "support@smarththings.kz"]
    text = bot.reply_text(digests[0])
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("#")}
    assert "LATE" in lines[f"#{late.id}"] and "soon" in lines[f"#{fresh.id}"]  # due tomorrow (kz: 1 working day)
    assert all(" Asia/Almaty " in line for line in lines.values())  # each date in the policy's zone, named
    assert "1 late" in str(digests[0]["Subject"]) and digests[0]["Auto-Submitted"] == "auto-generated"
    assert "ivan" not in digests[0].as_string().lower() and "+7701" not in text
    assert all(len(str(m["Message-ID"])) <= 64 for m in digests)


def test_nothing_is_sent_on_a_day_with_nothing_due(bot: Bot) -> None:
    services = services_of(bot)
    with bot.store.transaction() as session:
        assert queue_digest(session, services.config, services.keyring, utcnow()) == 0


def test_the_daemon_schedules_it_at_the_configured_local_time(bot: Bot, tmp_path: Path) -> None:
    bot.write_config(extra='digest_time = "07:45"')
    daemon = Daemon(bot.config_path, services_of(bot))
    scheduler = daemon._scheduler()
    job = {j.id: j for j in scheduler.get_jobs()}["digest"]
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("7", "45") and str(job.trigger.timezone) == "Asia/Almaty"
